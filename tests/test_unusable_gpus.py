"""Unusable GPUs: a node paid for with GPUs no pod can get (device plugin not registered, GPUs
marked unhealthy, NotReady) is its own priced warning, and its GPUs are in the idle rate once.

Nodes go through the real adapter (node_facts -> gpu_node) from real-shaped Node payloads: the
reference p4d Node of backend-apis.md C.1 and the demo's platform builders."""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest

from mltop.adapters.kube_nodes import gpu_node, node_facts
from mltop.adapters.kube_parse import pod_facts
from mltop.config import CostConfig, cost_policy
from mltop.cost import KINDS, CostPolicy, IdleHistory, evaluate
from mltop.demo import kube_objects as k
from mltop.model import Pool, Snapshot
from mltop.prices import price_book
from mltop.registry import wait_models
from tests.conftest import FIXED_NOW

NOW = FIXED_NOW
T0 = NOW - timedelta(days=3)
P4D, A2, P5 = 32.0, 30.0, 55.0
BOOK = price_book(instances={"p4d.24xlarge": P4D, "a2-highgpu-8g": A2, "p5.48xlarge": P5, "a2-highgpu-1g": 4.0,
                             "n1-standard-8": 1.0})
POLICY = CostPolicy(waits_on=wait_models())

# backend-apis.md C.1, "Representative GPU Node JSON" (GFD labels, core/v1 structure), as a cluster sends it.
REFERENCE_NODE = {
    "apiVersion": "v1", "kind": "Node",
    "metadata": {"name": "ip-10-0-12-34.ec2.internal", "resourceVersion": "884213", "creationTimestamp": "2026-11-01T08:00:00Z",
                 "labels": {"kubernetes.io/hostname": "ip-10-0-12-34.ec2.internal",
                            "node.kubernetes.io/instance-type": "p4d.24xlarge",
                            "topology.kubernetes.io/zone": "us-east-1a", "eks.amazonaws.com/nodegroup": "gpu-a100",
                            "nvidia.com/gpu.count": "8", "nvidia.com/gpu.family": "ampere",
                            "nvidia.com/gpu.product": "A100-SXM4-40GB"}},
    "spec": {"providerID": "aws:///us-east-1a/i-0abc",
             "taints": [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}]},
    "status": {"capacity": {"cpu": "96", "memory": "1176832740Ki", "nvidia.com/gpu": "8", "pods": "737"},
               "allocatable": {"cpu": "95690m", "memory": "1165332196Ki", "nvidia.com/gpu": "8", "pods": "737"},
               "conditions": [{"type": "Ready", "status": "True"}]},
}


def shaped(payload, *, capacity=None, allocatable=None, ready=None, pods=()):
    obj = copy.deepcopy(payload)
    if capacity is not None:
        obj["status"]["capacity"]["nvidia.com/gpu"] = str(capacity)
    if allocatable is not None:
        obj["status"]["allocatable"]["nvidia.com/gpu"] = str(allocatable)
    if ready is False:
        for c in obj["status"]["conditions"]:
            if c["type"] == "Ready":
                c.update(status="False", reason="KubeletNotReady", message="container runtime network not ready")
    name = obj["metadata"]["name"]
    facts = [pod_facts(k.pod(f"p{i}", ns, gpus=g, node_name=name, created=T0)) for i, (ns, g) in enumerate(pods)]
    return gpu_node(node_facts(obj), facts, "prod")


def snap(*nodes, pools=()):
    return Snapshot(generated_at=NOW, sources=(), jobs=(), nodes=tuple(nodes), pools=tuple(pools))


def run(*nodes, policy=POLICY, book=BOOK, pools=(), history=None, now=NOW):
    return evaluate(snap(*nodes, pools=pools), book, policy, history or IdleHistory(), now)


def only(report, kind):
    return [w for w in report.warnings if w.kind == kind]


def test_device_plugin_not_registered_on_the_reference_payload_is_priced_with_cause_and_remedy():
    node = shaped(REFERENCE_NODE, capacity=16, allocatable=0)
    assert (node.gpus_total, node.gpus_allocatable, node.gpus_free) == (16, 0, 0)  # "16 total, 0 free"
    report = run(node)
    (w,) = only(report, "unusable-gpus")
    assert w.target == node.key and w.idle_gpus == 16 and w.cost_per_hour == pytest.approx(P4D)
    assert "device plugin not registered (capacity 16, allocatable 0)" in w.message
    assert "device plugin / GPU operator pods on ip-10-0-12-34.ec2.internal" in w.remedy and "drain" in w.remedy
    assert w.idle_since == NOW and w.idle_since_is_lower_bound  # mltop cannot know when the plugin stopped
    assert report.idle_rate == pytest.approx(P4D) and report.warned_rate == pytest.approx(P4D)
    assert report.node_idle(node.key) == pytest.approx(P4D) and report.burn_rate == pytest.approx(P4D)
    assert not only(report, "idle-node")  # nothing is unallocated: it was silent before this kind


def test_unhealthy_gpus_beside_unallocated_ones_are_two_warnings_and_each_gpu_counts_once():
    node = shaped(k.gke_a100_node("a100-1", "a100-pool", T0), allocatable=6, pods=[("ml", 4)])
    assert (node.gpus_total, node.gpus_allocatable, node.gpus_allocated, node.gpus_free) == (8, 6, 4, 2)
    report = run(node)
    (lost,) = only(report, "unusable-gpus")
    (free,) = only(report, "idle-node")
    assert "GPUs marked unhealthy (capacity 8, allocatable 6)" in lost.message and lost.idle_gpus == 2
    assert lost.cost_per_hour == pytest.approx(A2 * 2 / 8) and free.cost_per_hour == pytest.approx(A2 * 2 / 8)
    # 2 unallocated + 2 unusable of 8: half the node idle, never 6 of 8.
    assert report.idle_rate == pytest.approx(A2 / 2) and report.warned_rate == pytest.approx(A2 / 2)
    assert report.node_idle(node.key) == pytest.approx(A2 / 2)


def test_gpus_still_held_by_pods_past_allocatable_are_not_unusable():
    # Pods bound before two GPUs went unhealthy keep them: held, not idle.
    node = shaped(k.gke_a100_node("a100-1", "a100-pool", T0), allocatable=6, pods=[("ml", 8)])
    report = run(node)
    assert not only(report, "unusable-gpus") and report.idle_rate == 0


def test_not_ready_node_says_so_and_its_free_gpus_count_once_without_an_idle_node_warning():
    node = shaped(k.eks_h100_node("ip-10-0-1-2", "h100-ng", T0), ready=False, pods=[("ml", 2)])
    assert not node.ready and node.gpus_allocatable == 8
    history = IdleHistory()
    assert not only(run(node, history=history), "unusable-gpus")  # kubelets flap: NotReady waits for the threshold
    report = run(node, history=history, now=NOW + timedelta(minutes=15))
    (w,) = only(report, "unusable-gpus")
    assert w.message.endswith("6 of 8 GPUs unusable: NotReady (container runtime network not ready)")
    assert w.cost_per_hour == pytest.approx(P5 * 6 / 8)
    assert not only(report, "idle-node") and report.idle_rate == pytest.approx(P5 * 6 / 8)


@pytest.mark.parametrize("payload", [k.mig_node("mig-1", "mig-pool", T0), k.time_sliced_node("t4-1", "t4", T0),
                                     REFERENCE_NODE, k.gke_a100_node("a100-1", "a100-pool", T0)])
def test_healthy_nodes_of_every_shape_raise_nothing(payload):
    node = shaped(payload)
    report = run(node)
    assert not only(report, "unusable-gpus")
    assert report.idle_rate == pytest.approx(report.node_idle(node.key) or 0.0)


def test_a_node_still_starting_is_left_alone_until_the_threshold():
    payload = copy.deepcopy(k.gke_a100_node("new-1", "a100-pool", NOW - timedelta(minutes=2)))
    node = shaped(payload, allocatable=0)
    history = IdleHistory()
    first = run(node, history=history)
    assert not only(first, "unusable-gpus") and first.idle_rate == pytest.approx(A2)  # paid for all the same
    later = run(node, history=history, now=NOW + timedelta(minutes=15))
    (w,) = only(later, "unusable-gpus")
    assert w.idle_since == NOW and w.wasted == pytest.approx(A2 / 4)


def test_unpriced_node_warns_without_a_price_and_adds_nothing():
    # A bare-metal node with no instance type and no GPU model label: no price is known, none is made up.
    unpriced = run(shaped(k.node("bare-1", labels={}, gpus=4, created=T0), allocatable=0))
    (u,) = only(unpriced, "unusable-gpus")
    assert u.cost_per_hour is None and u.wasted is None and u.idle_gpus == 4
    assert unpriced.idle_rate == 0 and unpriced.unpriced_nodes == 1


def test_the_kind_can_be_turned_off_and_its_gpus_stay_in_the_idle_rate():
    node = shaped(REFERENCE_NODE, allocatable=0)
    off = cost_policy(CostConfig(kinds=[k_ for k_ in KINDS if k_ != "unusable-gpus"]))
    report = run(node, policy=off)
    assert not report.warnings and report.idle_rate == pytest.approx(P4D) and report.warned_rate == 0
    assert "unusable-gpus" in CostConfig().kinds and "unusable-gpus" in KINDS  # on by default


def test_a_pool_whose_only_node_is_unusable_is_not_an_idle_pool():
    node = shaped(REFERENCE_NODE, allocatable=0)
    pool = Pool(key="kubernetes/prod/nodepool/-/gpu-a100", cluster="prod", kind="nodepool", name="gpu-a100",
                namespace=None, replicas=1, ready=1, min=None, max=None, gpus_per_replica=8, members=(node.name,))
    history = IdleHistory()
    run(node, pools=[pool], history=history)
    report = run(node, pools=[pool], history=history, now=NOW + timedelta(hours=1))
    assert [w.kind for w in report.warnings] == ["unusable-gpus"] and report.idle_rate == pytest.approx(P4D)
