"""GPU accounting as Kubernetes counts it, pool grouping, worker groups, MachineDeployments."""

from __future__ import annotations

from datetime import timedelta

from mltop.adapters.kube_pools import machine_deployment, node_pools, worker_groups
from mltop.adapters.kube_nodes import gpu_node, node_facts
from mltop.adapters.kube_parse import (
    effective_requests,
    pending_job,
    pod_facts,
)
from mltop.demo import kube_objects as k
from mltop.model import JobState
from tests.conftest import FIXED_NOW

T0 = FIXED_NOW - timedelta(days=3)


def facts(*pods):
    return [p for p in (pod_facts(x) for x in pods) if p is not None]


def test_requests_fall_back_to_limits_and_init_containers_count_as_kubernetes_counts():
    assert effective_requests(k.pod("a", "ml", gpus=2, created=T0)["spec"]) == {"nvidia.com/gpu": 2.0}
    assert effective_requests(k.pod("b", "ml", gpus=2, limits_only=True, created=T0)["spec"]) == {"nvidia.com/gpu": 2.0}
    # An init container needing more than the app raises the pod's effective request to it.
    assert effective_requests(k.pod("c", "ml", gpus=1, init_gpus=4, created=T0)["spec"]) == {"nvidia.com/gpu": 4.0}
    spec = k.pod("d", "ml", gpus=1, created=T0)["spec"]
    spec["initContainers"] = [
        {"name": "sidecar", "restartPolicy": "Always", "resources": {"limits": {"nvidia.com/gpu": "1"}}},
        {"name": "setup", "resources": {"limits": {"nvidia.com/gpu": "1"}}},
    ]
    spec["overhead"] = {"nvidia.com/gpu": "0"}
    # A sidecar runs beside the app: 1 (app) + 1 (sidecar); the setup init runs beside the sidecar: 2.
    assert effective_requests(spec) == {"nvidia.com/gpu": 2.0}
    assert effective_requests(k.pod("e", "ml", created=T0)["spec"]) == {}


def test_allocated_counts_bound_unfinished_pods_only():
    n = node_facts(k.gke_a100_node("a100-1", "a100-pool", T0))
    pods = facts(
        k.pod("run", "ml", gpus=4, node_name="a100-1", created=T0),
        k.pod("limits", "ml", gpus=1, limits_only=True, node_name="a100-1", created=T0),
        k.pod("done", "ml", gpus=2, node_name="a100-1", phase="Succeeded", created=T0),
        k.pod("failed", "ml", gpus=2, node_name="a100-1", phase="Failed", created=T0),
        k.pod("starting", "ml", gpus=1, node_name="a100-1", phase="Pending", created=T0),
        k.pod("cpu", "ml", node_name="a100-1", created=T0),
    )
    g = gpu_node(n, pods, "prod")
    assert (g.gpus_total, g.gpus_allocatable, g.gpus_allocated, g.gpus_free) == (8, 8, 6, 2)
    assert [p.name for p in g.pods] == ["limits", "run", "starting"]
    assert g.gpu_model == "NVIDIA-A100-SXM4-40GB" and g.pool == "a100-pool"
    assert g.instance_type == "a2-highgpu-8g" and g.zone == "us-central1-a" and g.capacity_type == "on-demand"
    assert g.taints == ("nvidia.com/gpu=present:NoSchedule",) and g.ready and g.schedulable
    assert g.key == "kubernetes/prod/a100-1" and g.created_at == T0


def test_cpu_only_nodes_and_cpu_pods_are_not_kept():
    assert node_facts(k.cpu_node("cpu-1", "default-pool", T0)) is None
    assert pod_facts(k.pod("web", "default", created=T0)) is None


def test_time_sliced_gpus_count_as_physical_gpus_with_the_sharing_shown():
    n = node_facts(k.time_sliced_node("t4-1", "shared", T0))
    pods = facts(*(k.pod(f"nb{i}", "lab", gpus=1, node_name="t4-1", created=T0) for i in range(3)))
    g = gpu_node(n, pods, "prod")
    assert g.gpus_total == 1 and g.gpus_allocated == 0.75 and g.gpus_free == 0.25
    assert g.sharing == "time-slicing x4"


def test_mig_slices_count_as_their_share_of_a_gpu():
    n = node_facts(k.mig_node("mig-1", "mig-pool", T0))
    pods = facts(*(k.pod(f"inf{i}", "serve", gpus=1, resource="nvidia.com/mig-1g.10gb", node_name="mig-1",
                         created=T0) for i in range(2)))
    g = gpu_node(n, pods, "prod")
    assert g.gpus_total == 1 and g.gpu_resource == "nvidia.com/mig-1g.10gb"
    assert g.sharing == "MIG 7x 1g.10gb"
    assert abs(g.gpus_allocated - 2 / 7) < 1e-9 and abs(g.gpus_allocatable - 1.0) < 1e-9


def test_capacity_type_and_model_from_each_platforms_labels():
    eks = gpu_node(node_facts(k.eks_h100_node("ip-10-0-1-2", "h100-ng", T0)), [], "c")
    karp = gpu_node(node_facts(k.karpenter_l4_node("ip-10-0-3-4", "l4-spot", T0)), [], "c")
    aks = gpu_node(node_facts(k.aks_a100_node("aks-a100-1", "a100pool", T0)), [], "c")
    gke_spot = gpu_node(node_facts(k.gke_a100_node("gke-1", "spot-pool", T0, spot=True)), [], "c")
    l4 = gpu_node(node_facts(k.gke_l4_node("gke-l4", "l4-pool", T0)), [], "c")
    assert (eks.gpu_model, eks.capacity_type, eks.pool) == ("NVIDIA-H100-80GB-HBM3", "on-demand", "h100-ng")
    assert (karp.gpu_model, karp.capacity_type, karp.pool) == ("l4", "spot", "l4-spot")
    assert (aks.gpu_model, aks.capacity_type, aks.pool) == ("NVIDIA-A100-PCIE-80GB", "on-demand", "a100pool")
    assert gke_spot.capacity_type == "spot"
    assert l4.gpu_model == "nvidia-l4"  # no GFD labels: GKE's accelerator label


def test_pending_gpu_pods_join_the_queue_with_owner_and_the_schedulers_reason():
    p = pod_facts(k.pod("train-abc", "ml", gpus=8, created=FIXED_NOW - timedelta(minutes=7), owner=("Job", "train"),
                        unschedulable_message="0/9 nodes are available: 9 Insufficient nvidia.com/gpu."))
    job = pending_job(p, "prod")
    assert job.state is JobState.PENDING and job.gpus == 8 and job.id == "ml/train-abc"
    assert job.owner == "Job/train" and job.name == "train" and job.namespace == "ml"
    assert job.queued_seconds(FIXED_NOW) == 420 and "Insufficient nvidia.com/gpu" in job.message
    assert job.key == "kubernetes/prod/ml/train-abc" and not job.cancellable
    bound = pod_facts(k.pod("x", "ml", gpus=1, node_name="n", created=T0))
    assert pending_job(bound, "prod") is None


def test_node_pools_group_by_label_with_gpu_totals_and_why_they_cannot_be_scaled():
    nodes = [k.gke_a100_node(f"a100-{i}", "a100-pool", T0) for i in range(2)] + [k.eks_h100_node("h1", "h100-ng", T0)]
    pods = facts(k.pod("p", "ml", gpus=8, node_name="a100-0", created=T0))
    pairs = []
    for raw in nodes:
        f = node_facts(raw)
        pairs.append((f, gpu_node(f, [p for p in pods if p.node_name == f.name], "c")))
    pools = {p.name: p for p in node_pools(pairs, "c")}
    a100 = pools["a100-pool"]
    assert (a100.replicas, a100.gpus_total, a100.gpus_allocated, a100.gpus_idle) == (2, 16, 8, 8)
    assert a100.kind == "nodepool" and not a100.scalable and "gcloud" in a100.why_not_scalable
    assert "eksctl" in pools["h100-ng"].why_not_scalable


def test_worker_groups_read_replicas_bounds_gpus_and_ready_workers():
    rc = k.raycluster("train", "ml", autoscaling=True, created=T0, groups=[
        k.worker_group("gpu-a100", replicas=2, min_replicas=1, max_replicas=4, gpus=8),
        k.worker_group("cpu", replicas=1, min_replicas=0, max_replicas=2147483647, gpus=0),
    ])
    labels = {"ray.io/cluster": "train", "ray.io/group": "gpu-a100", "ray.io/node-type": "worker"}
    pods = facts(
        k.pod("w1", "ml", gpus=8, node_name="n1", created=T0, labels=labels),
        k.pod("w2", "ml", gpus=8, phase="Pending", created=T0, labels=labels),
    )
    gpu, cpu = worker_groups(rc, pods, "c")
    assert (gpu.name, gpu.replicas, gpu.ready, gpu.min, gpu.max, gpu.gpus_per_replica) == ("train/gpu-a100", 2, 1, 1, 4, 8)
    assert gpu.autoscaled and gpu.scalable and gpu.members == ("w1", "w2") and gpu.parent == "train"
    assert cpu.max is None and cpu.gpus_per_replica == 0


def test_machine_deployment_reads_autoscaler_annotations():
    md = machine_deployment(k.machine_deployment("gpu-md-0", "capi", replicas=3, ready=2, min_size=1, max_size=6,
                                                 gpus_per_machine=4, created=T0), "c")
    assert (md.replicas, md.ready, md.min, md.max, md.gpus_per_replica, md.autoscaled) == (3, 2, 1, 6, 4, True)
