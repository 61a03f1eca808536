"""KubeSource against the fake API server, through a kubeconfig, as against a real cluster."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace

import pytest

from mltop.errors import Conflict, Unauthorized
from mltop.scaling import plan
from tests.kube_helpers import start_fake_cluster

RAY = ("ray.io/v1", "RayCluster")


@pytest.fixture
def cluster(tmp_path):
    fake = start_fake_cluster(tmp_path)
    yield fake
    fake.server.stop()


@pytest.fixture
async def source(cluster):
    src = cluster.source()
    yield src
    await src.aclose()


def pools_by_name(data):
    return {p.name: p for p in data.pools}


async def test_nodes_pending_pods_and_pools(source):
    data = await source.fetch()
    nodes = {n.name: n for n in data.nodes}
    assert len(nodes) == 10  # CPU-only nodes are not GPU nodes; 2 are the MachineDeployment's
    assert nodes["ip-10-0-41-17.ec2.internal"].gpus_allocated == 0  # the idle H100 node
    assert nodes["gke-a100-pool-7f3a-1"].gpus_allocated == 8
    assert nodes["gke-shared-t4-9e0d-1"].sharing == "time-slicing x4"
    assert [j.id for j in sorted(data.jobs, key=lambda j: j.id)] == ["ml/finetune-70b-0-q8m4t", "research/sweep-lr-3-b2d9f"]
    pools = pools_by_name(data)
    assert {"a100-pool", "h100-ng", "l4-spot", "train-cluster/gpu-workers", "serve-cluster/inference", "gpu-md-0"} <= set(pools)
    assert pools["h100-ng"].gpus_idle == 8 and not pools["h100-ng"].scalable
    assert pools["train-cluster/gpu-workers"].ready == 2 and pools["train-cluster/gpu-workers"].scalable


async def test_scale_a_worker_group_without_the_autoscaler_changes_replicas(cluster, source):
    pool = pools_by_name(await source.fetch())["train-cluster/gpu-workers"]
    message = (await source.scale(plan(pool, 3))).message
    assert "replicas 2 -> 3" in message
    rc = cluster.call(lambda: cluster.store.get(*RAY, "train-cluster", "ml"))
    assert rc["spec"]["workerGroupSpecs"][0]["replicas"] == 3
    assert pools_by_name(await source.fetch())["train-cluster/gpu-workers"].replicas == 3


async def test_scale_an_autoscaled_group_changes_its_floor_not_replicas(cluster, source):
    pool = pools_by_name(await source.fetch())["serve-cluster/inference"]
    p = plan(pool, 5)
    assert [c.field.rsplit(".", 1)[1] for c in p.changes] == ["minReplicas", "maxReplicas"]
    await source.scale(p)
    group = cluster.call(lambda: cluster.store.get(*RAY, "serve-cluster", "serve"))["spec"]["workerGroupSpecs"][0]
    assert (group["replicas"], group["minReplicas"], group["maxReplicas"]) == (1, 5, 5)


async def test_a_concurrent_change_is_refused_not_overwritten(cluster, source):
    pool = pools_by_name(await source.fetch())["train-cluster/gpu-workers"]

    def someone_else():
        rc = cluster.store.get(*RAY, "train-cluster", "ml")
        rc["spec"]["workerGroupSpecs"][0]["replicas"] = 1
        cluster.store.put(rc)

    cluster.call(someone_else)
    with pytest.raises(Conflict, match="someone changed it"):
        await source.scale(plan(pool, 4))
    rc = cluster.call(lambda: cluster.store.get(*RAY, "train-cluster", "ml"))
    assert rc["spec"]["workerGroupSpecs"][0]["replicas"] == 1


async def test_the_json_patch_test_guards_against_a_change_between_read_and_write(cluster, source, monkeypatch):
    pool = pools_by_name(await source.fetch())["train-cluster/gpu-workers"]
    real_get = source._custom.get_namespaced_custom_object

    def get_then_someone_changes_it(*args, **kwargs):
        obj = real_get(*args, **kwargs)

        def change():
            rc = cluster.store.get(*RAY, "train-cluster", "ml")
            rc["spec"]["workerGroupSpecs"][0]["replicas"] = 0
            cluster.store.put(rc)

        cluster.call(change)
        return obj

    monkeypatch.setattr(source._custom, "get_namespaced_custom_object", get_then_someone_changes_it)
    with pytest.raises(Conflict):
        await source.scale(plan(pool, 4))
    rc = cluster.call(lambda: cluster.store.get(*RAY, "train-cluster", "ml"))
    assert rc["spec"]["workerGroupSpecs"][0]["replicas"] == 0


async def test_scale_a_machine_deployment_through_the_scale_subresource(cluster, source):
    pool = pools_by_name(await source.fetch())["gpu-md-0"]
    assert plan(pool, 9).refusal == "9 is above the autoscaler's max size (6)"
    await source.scale(plan(pool, 4))
    md = cluster.call(lambda: cluster.store.get("cluster.x-k8s.io/v1beta1", "MachineDeployment", "gpu-md-0", "capi"))
    assert md["spec"]["replicas"] == 4


async def test_permission_denied_dims_the_pool_and_a_403_is_told(cluster, source):
    cluster.call(lambda: cluster.store.denied_verbs.add(("patch", "rayclusters")))
    pool = pools_by_name(await source.fetch())["train-cluster/gpu-workers"]
    assert not pool.scalable and "may not patch rayclusters in namespace ml" in pool.why_not_scalable
    assert pools_by_name(await source.fetch())["gpu-md-0"].scalable  # another verb, another resource
    # Even if the access review had said yes (it is cached), the API server's 403 is told plainly.
    forced = replace(pool, scalable=True)
    with pytest.raises(Unauthorized, match="forbidden"):
        await source.scale(plan(forced, 3))


def test_once_json_with_kubeconfig_and_context(cluster, tmp_path):
    second = start_fake_cluster(tmp_path, context="other-ctx")
    # One kubeconfig with two contexts, as users have.
    merged = json.loads(open(cluster.kubeconfig).read())
    other = json.loads(open(second.kubeconfig).read())
    for part in ("clusters", "contexts"):
        merged[part] += other[part]
    path = tmp_path / "merged"
    path.write_text(json.dumps(merged))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "MLTOP_", "KUBE"))}
    env["MLTOP_CONFIG"] = os.devnull
    try:
        out = subprocess.run([sys.executable, "-m", "mltop", "--once", "--json", "--kubeconfig", str(path),
                              "--context", "test-ctx", "--context", "other-ctx"],
                             capture_output=True, text=True, timeout=60, env=env)
    finally:
        second.server.stop()
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert {s["name"] for s in report["sources"]} == {"test-ctx", "other-ctx"}
    node_keys = {"key", "cluster", "name", "pool", "gpu_model", "gpus_total", "gpus_allocated", "gpus_free", "ready",
                 "schedulable", "instance_type", "zone", "capacity_type", "created_at"}
    pool_keys = {"key", "cluster", "kind", "name", "namespace", "replicas", "ready", "min", "max",
                 "gpus_per_replica", "scalable", "autoscaled"}
    assert len(report["nodes"]) == 20 and all(node_keys <= set(n) for n in report["nodes"])
    assert all(pool_keys <= set(p) for p in report["pools"])
    assert {p["kind"] for p in report["pools"]} == {"nodepool", "raycluster-workergroup", "machinedeployment"}
    h100 = next(n for n in report["nodes"] if n["pool"] == "h100-ng" and n["cluster"] == "test-ctx")
    assert (h100["gpus_total"], h100["gpus_free"], h100["capacity_type"]) == (8.0, 8.0, "on-demand")
    pending = [j for j in report["jobs"] if j["source"] == "kubernetes"]
    assert len(pending) == 4 and all(j["namespace"] for j in pending)


def test_a_missing_context_is_one_line_exit_2(cluster):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "MLTOP_", "KUBE"))}
    env["MLTOP_CONFIG"] = os.devnull
    out = subprocess.run([sys.executable, "-m", "mltop", "--once", "--kubeconfig", cluster.kubeconfig,
                          "--context", "nope"], capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "nope" in out.stderr
