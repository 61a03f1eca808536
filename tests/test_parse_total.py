"""Parsing is total: bad backend data makes one field unknown or one item skipped (and counted),
never the whole source, never a crash, never a NaN on screen.

Property tests feed every parser arbitrary JSON and "almost right" objects (real shapes with a few
fields replaced by junk); concrete tests pin the cases users hit.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import random
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mltop import format as fmt
from mltop.adapters.kube_cache import WatchCache
from mltop.adapters.kube_pools import machine_deployment, node_pools, worker_groups
from mltop.adapters.kube_nodes import gpu_node, node_facts
from mltop.adapters.kube_parse import (
    Unreadable,
    pending_job,
    pod_facts,
    quantity,
)
from mltop.adapters.prometheus import BadSeries, parse_vector, sample
from mltop.adapters.ray_cluster import parse_cluster, with_utilization
from mltop.adapters.values import Skips
from mltop.registry import wait_models
from mltop.cost import CostPolicy, IdleHistory, evaluate
from mltop.demo import kube_objects as k
from mltop.errors import BadResponse
from mltop.model import Job, JobState, Snapshot
from mltop.prices import price_book
from tests.conftest import FIXED_NOW, FIXTURES
from tests.kube_helpers import start_fake_cluster

DAY = timedelta(days=1)
PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- strategies ---------------------------------------------------------------------------------

NASTY_TEXT = st.sampled_from(
    ["nan", "NaN", "-nan", "Infinity", "-Infinity", "inf", "-1", "1e309", "-1e309", "0", "1", "8", "4", "",
     " ", "abc", "²", "٣", "1.2.3", "500m", "9E", "1Ki", "sNaN", "True", "null", "[]", "{}", "2147483648",
     "99999999999999999999", "0x10", "1_000", "Ready", "True", "False", "ALIVE", "worker", "Always", "In"]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([2**31, 2**63, -(2**31), 10**30, -(10**30), 10**400, 2147483647, 0, -3])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | NASTY_TEXT
)
KEYS = st.text(max_size=8) | st.sampled_from(["metadata", "name", "spec", "status", "nvidia.com/gpu", "GPU"])
JSON = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=4),
    max_leaves=12,
)
# What replaces a field of an almost-right object: mostly the values that break parsers.
NASTY_VALUES = ["nan", "NaN", "Infinity", "-Infinity", "-1", "1e309", "abc", "", "²", "1.2.3", "0", "2147483648",
                float("nan"), float("inf"), -float("inf"), -1, -0.5, 10**400, 1e300, None, True, [], {}, [None],
                {"": 0}]


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, prefix + (key,))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, prefix + (index,))
    return found


def _set(root: Any, path: tuple, junk: Any, delete: bool) -> Any:
    if not path:
        return junk
    parent = root
    for step in path[:-1]:
        try:
            parent = parent[step]
        except (KeyError, IndexError, TypeError):
            return root  # an earlier replacement removed this path
    try:
        if delete and isinstance(parent, dict):
            parent.pop(path[-1], None)
        else:
            parent[path[-1]] = junk
    except (KeyError, IndexError, TypeError):
        pass
    return root


@st.composite
def almost(draw: st.DrawFn, bases: list[Any]) -> Any:
    """A real-shaped object with a few of its values (each with the same chance, 2-15%) replaced
    by junk or removed. Paths are picked by a seeded Random, not by sampled_from: Hypothesis
    favours the first choices, which would mutate `apiVersion` far more often than a GPU count."""
    obj = copy.deepcopy(draw(st.sampled_from(bases)))
    rnd = random.Random(draw(st.integers(0, 2**32)))  # one draw: Ray's node summaries have ~1,000 paths
    rate = rnd.choice([0.02, 0.05, 0.15])
    paths = _paths(obj)
    for path in [p for p in paths if rnd.random() < rate] or [rnd.choice(paths)]:
        junk = copy.deepcopy(rnd.choice(NASTY_VALUES)) if rnd.random() < 0.7 else draw(JSON)
        obj = _set(obj, path, junk, delete=rnd.random() < 0.2)
    return obj


def _kube_nodes() -> list[dict[str, Any]]:
    t = FIXED_NOW - 3 * DAY
    capi = k.node("gpu-md-0-0", labels=k.gfd_labels("NVIDIA-A10G", 4, 23028), gpus=4, created=t)
    capi["metadata"]["annotations"] = {"cluster.x-k8s.io/owner-kind": "MachineSet",
                                       "cluster.x-k8s.io/owner-name": "gpu-md-0-7d9f8",
                                       "cluster.x-k8s.io/cluster-namespace": "capi"}
    # backend-apis.md C.1's representative GPU node, as the API server sends it.
    doc = {"apiVersion": "v1", "kind": "Node",
           "metadata": {"name": "ip-10-0-12-34.ec2.internal", "resourceVersion": "884213",
                        "labels": {"node.kubernetes.io/instance-type": "p4d.24xlarge",
                                   "eks.amazonaws.com/nodegroup": "gpu-a100", "nvidia.com/gpu.count": "8",
                                   "nvidia.com/gpu.product": "A100-SXM4-40GB"}},
           "spec": {"providerID": "aws:///us-east-1a/i-0abc",
                    "taints": [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}]},
           "status": {"capacity": {"cpu": "96", "nvidia.com/gpu": "8", "pods": "737"},
                      "allocatable": {"cpu": "95690m", "nvidia.com/gpu": "8", "pods": "737"},
                      "conditions": [{"type": "Ready", "status": "True"}]}}
    return [k.gke_a100_node("a100-1", "a100-pool", t, spot=True), k.eks_h100_node("h100-1", "h100-ng", t),
            k.karpenter_l4_node("l4-1", "l4-spot", t), k.aks_a100_node("aks-1", "a100pool", t),
            k.mig_node("mig-1", "mig-pool", t), k.time_sliced_node("t4-1", "shared-t4", t), capi, doc]


def _kube_pods() -> list[dict[str, Any]]:
    t = FIXED_NOW - DAY
    pending = k.pod("wait-0", "ml", gpus=8, created=t, owner=("Job", "wait"), node_selector={"pool": "x"})
    pending["spec"]["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "gpu", "operator": "In", "values": ["a100"]}]}]}}}
    pending["spec"]["overhead"] = {"nvidia.com/gpu": "0"}
    sidecar = k.pod("side-0", "ml", gpus=1, node_name="a100-1", created=t, init_gpus=2)
    sidecar["spec"]["initContainers"].append({"name": "proxy", "restartPolicy": "Always",
                                              "resources": {"requests": {"nvidia.com/gpu": "1"}}})
    done = k.pod("done-0", "ml", gpus=2, node_name="a100-1", phase="Succeeded", created=t)
    done["status"]["containerStatuses"] = [{"name": "main", "state": {"terminated": {
        "finishedAt": "2026-11-28T11:00:00Z"}}}]
    worker = k.pod("rc-gpu-worker-1", "ml", gpus=4, node_name="l4-1", created=t, owner=("RayCluster", "rc"),
                   labels={"ray.io/cluster": "rc", "ray.io/group": "gpu", "ray.io/node-type": "worker"})
    mig = k.pod("embed-0", "serve", gpus=1, resource="nvidia.com/mig-1g.10gb", node_name="mig-1", created=t)
    return [pending, sidecar, done, worker, mig,
            k.pod("bound-0", "ml", gpus=8, node_name="h100-1", created=t, owner=("Job", "train"), limits_only=True),
            k.pod("cpu-0", "ml", created=t)]


def _rayclusters() -> list[dict[str, Any]]:
    t = FIXED_NOW - DAY
    groups = [k.worker_group("gpu", replicas=2, min_replicas=0, max_replicas=4, gpus=4),
              k.worker_group("cpu", replicas=1, min_replicas=1, max_replicas=2147483647, gpus=0)]
    groups[1]["rayStartParams"] = {"num-gpus": "1"}
    groups[1]["numOfHosts"] = 2
    return [k.raycluster("rc", "ml", groups=groups, autoscaling=True, created=t),
            k.raycluster("rc2", "ml", groups=groups[:1], autoscaling=False, created=t)]


def _machine_deployments() -> list[dict[str, Any]]:
    return [k.machine_deployment("gpu-md-0", "capi", replicas=2, ready=2, min_size=0, max_size=6,
                                 gpus_per_machine=4, created=FIXED_NOW - DAY),
            k.machine_deployment("gpu-md-1", "capi", replicas=1, ready=0, min_size=None, max_size=None,
                                 gpus_per_machine=8, created=FIXED_NOW - DAY)]


def _load(path: Path) -> Any:
    return json.loads(path.read_text())


def _ray_payloads() -> tuple[list[Any], list[Any]]:
    """Real captures: node summaries and cluster statuses of Ray 2.49, 2.60 and an H200 box."""
    nodes, statuses = [], []
    for root in (FIXTURES,):  # copies of ../shared/fixtures, plus the H200 capture
        for version in ("ray-2.49", "ray-2.60", "ray-2.60-h200"):
            for name in ("nodes_summary.json", "nodes_summary_burn.json"):
                if (root / version / name).exists():
                    nodes.append(_load(root / version / name))
            if (root / version / "cluster_status.json").exists():
                statuses.append(_load(root / version / "cluster_status.json"))
    return nodes, statuses


def _prometheus_answers() -> list[Any]:
    def series(host: str, gpu: str, value: str, pod: str | None = None) -> dict[str, Any]:
        metric = {"__name__": "DCGM_FI_DEV_GPU_UTIL", "gpu": gpu, "UUID": f"GPU-{host}-{gpu}", "Hostname": host,
                  "modelName": "NVIDIA H100 80GB HBM3", "device": f"nvidia{gpu}"}
        if pod:
            metric.update(namespace="ml", pod=pod, container="main")
        return {"metric": metric, "value": [1795879810.39, value]}

    return [{"resultType": "vector", "result": [series("n1", "0", "3", "train-0"), series("n1", "1", "97.5"),
                                                 series("n2", "0", "0")]}]


NODES, PODS, RAYCLUSTERS, MDS = _kube_nodes(), _kube_pods(), _rayclusters(), _machine_deployments()
RAY_NODES, RAY_STATUSES = _ray_payloads()
PROM = _prometheus_answers()
assert RAY_NODES and RAY_STATUSES  # the real captures are the base shapes; without them this tests little


# -- what every result must satisfy -----------------------------------------------------------


def assert_finite(value: Any, where: str = "result") -> None:
    """Every float in a record (dataclasses, tuples, lists, dicts, all the way down) is finite."""
    if isinstance(value, float):
        assert math.isfinite(value), f"{where} = {value}"
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            assert_finite(getattr(value, f.name), f"{where}.{f.name}")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            assert_finite(item, f"{where}[{i}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            assert_finite(item, f"{where}[{key!r}]")


def assert_pool_sane(pool: Any) -> None:
    assert_finite(pool)
    for name in ("replicas", "ready", "min", "max"):
        value = getattr(pool, name)
        assert value is None or (isinstance(value, int) and 0 <= value <= 2147483647), (name, value)
    if not pool.scalable:
        assert pool.why_not_scalable
    # What the screen and the report do with it never raises.
    for cell in (fmt.count(pool.replicas), fmt.count(pool.min, "0"), fmt.count(pool.max, "∞"),
                 fmt.gpus(pool.gpus_per_replica), fmt.gpus(pool.gpus_idle)):
        assert "nan" not in cell.lower() and "inf" not in cell.lower()


def read_node(obj: Any) -> Any:
    try:
        return node_facts(obj)
    except Unreadable as exc:
        assert str(exc) and "\n" not in str(exc)
        return None


def read_pod(obj: Any) -> Any:
    try:
        return pod_facts(obj)
    except Unreadable as exc:
        assert str(exc) and "\n" not in str(exc)
        return None


GOOD_PODS = [f for f in map(read_pod, PODS) if f is not None]


def check_kubernetes(nodes: list[Any], pods: list[Any], rcs: list[Any], mds: list[Any]) -> None:
    """The whole Kubernetes path of one poll, as KubeSource._collect runs it, then the cost engine."""
    facts = [f for f in map(read_node, nodes) if f is not None]
    pod_records = [f for f in map(read_pod, pods) if f is not None] + GOOD_PODS
    gpu_nodes = [gpu_node(f, [p for p in pod_records if p.node_name == f.name], "c") for f in facts]
    jobs = [j for p in pod_records if (j := pending_job(p, "c")) is not None]
    pools = node_pools(list(zip(facts, gpu_nodes)), "c")
    skips = Skips()
    for rc in rcs:
        try:
            pools += worker_groups(rc, pod_records, "c", skips)
        except Unreadable as exc:
            skips.add(str(exc))
    for md in mds:
        try:
            pools.append(machine_deployment(md, "c", gpu_nodes))
        except Unreadable as exc:
            skips.add(str(exc))
    for record in [*facts, *pod_records, *gpu_nodes, *jobs]:
        assert_finite(record)
    for node in gpu_nodes:
        for cell in (fmt.gpus(node.gpus_total), fmt.gpus(node.gpus_free), fmt.gpus(node.gpus_allocated)):
            assert cell != "?"
    for pool in pools:
        assert_pool_sane(pool)
    snapshot = Snapshot(generated_at=FIXED_NOW, sources=(), jobs=tuple(jobs), nodes=tuple(gpu_nodes),
                        pools=tuple(pools))
    report = evaluate(snapshot, PRICES, CostPolicy(waits_on=wait_models()), IdleHistory(), FIXED_NOW)
    assert_finite(report.warnings)
    assert math.isfinite(report.burn_rate) and math.isfinite(report.idle_rate)


PRICES = price_book()


# -- properties: any JSON value -----------------------------------------------------------------


@PROPERTY
@given(JSON)
def test_kubernetes_parsers_take_any_json(value):
    check_kubernetes([value], [value], [value], [value])


@PROPERTY
@given(JSON)
def test_quantity_is_finite_non_negative_or_none(value):
    amount = quantity(value)
    assert amount is None or (math.isfinite(amount) and amount >= 0)


@PROPERTY
@given(JSON, JSON)
def test_prometheus_and_ray_take_any_json(data, status):
    try:
        samples, skips = parse_vector(data)
    except BadResponse:
        pass
    else:
        assert_finite(samples)
        assert all(0 <= s.utilization <= 100 for s in samples)
        assert skips.count + len(samples) == len(data["result"])
    try:
        sample(data)
    except BadSeries:
        pass
    try:
        cluster = parse_cluster(data, status, Skips())
    except BadResponse:
        pass
    else:
        assert_finite(cluster)
        fmt.gpus(cluster.gpus_used), fmt.gpus(cluster.gpus_waiting)


# -- properties: almost-right objects -------------------------------------------------------------


@PROPERTY
@given(st.lists(almost(NODES), min_size=1, max_size=3), st.lists(almost(PODS), max_size=3))
def test_almost_right_nodes_and_pods(nodes, pods):
    check_kubernetes(nodes + NODES, pods, RAYCLUSTERS, MDS)


@PROPERTY
@given(st.lists(almost(RAYCLUSTERS), min_size=1, max_size=2), st.lists(almost(MDS), min_size=1, max_size=2))
def test_almost_right_rayclusters_and_machine_deployments(rcs, mds):
    check_kubernetes(NODES, PODS, rcs, mds)


@PROPERTY
@given(almost(PROM))
def test_almost_right_prometheus_answers(data):
    try:
        samples, skips = parse_vector(data)
    except BadResponse:
        return
    assert_finite(samples)
    assert all(0 <= s.utilization <= 100 and isinstance(s.hostname, str) for s in samples)
    assert skips.count + len(samples) == len(data["result"])


@PROPERTY
@given(almost(RAY_NODES), st.one_of(almost(RAY_STATUSES), st.sampled_from(RAY_STATUSES), JSON))
def test_almost_right_ray_cluster_payloads(nodes_raw, status_raw):
    skips = Skips()
    try:
        cluster = parse_cluster(nodes_raw, status_raw, skips)
    except BadResponse:
        return
    assert_finite(cluster)
    entries = nodes_raw["data"].get("summary") or []  # absent: no nodes
    assert len(cluster.nodes) <= len(entries)
    if len(cluster.nodes) < len(entries):
        assert skips.count and skips.reason  # a node left out is counted, and why
    job = Job(key="ray/c/j", source="ray", cluster="c", id="j", name="j", state=JobState.RUNNING,
              native_state="RUNNING", gpus=1.0, submitted_at=None, started_at=None, finished_at=None)
    for node in cluster.nodes:
        for raw in ({"driver_node_id": node.node_id, "driver_info": {"pid": "3632"}},
                    {"driver_node_id": node.node_id, "driver_info": ["junk"]}, {"driver_node_id": [1]}):
            assert_finite(with_utilization(job, raw, cluster, sole=True))
    snapshot = Snapshot(generated_at=FIXED_NOW, sources=(), jobs=(), ray_clusters=(("c", cluster),))
    report = evaluate(snapshot, PRICES, CostPolicy(waits_on=wait_models()), IdleHistory(), FIXED_NOW)
    assert_finite(report.warnings)


# -- concrete cases -------------------------------------------------------------------------------


@pytest.mark.parametrize("junk", ["nan", "NaN", "Infinity", "-Infinity", "-1", "1e309", "abc", float("nan"),
                                  float("inf"), -2, True, None, [], {}])
def test_quantity_refuses_what_is_not_an_amount(junk):
    assert quantity(junk) is None
    assert quantity("500m") == 0.5 and quantity("8") == 8.0 and quantity(2) == 2.0 and quantity("1Ki") == 1024.0


def test_a_node_with_a_nan_gpu_count_is_skipped_with_its_reason_not_shown_as_a_number():
    node = k.gke_a100_node("gpu-bad", "a100-pool", FIXED_NOW)
    node["status"]["capacity"]["nvidia.com/gpu"] = "nan"
    with pytest.raises(Unreadable, match=r"node gpu-bad: capacity nvidia.com/gpu 'nan' is not a quantity"):
        node_facts(node)
    node["status"]["capacity"]["nvidia.com/gpu"] = "NaN"  # parse_quantity reads this one as Decimal NaN
    with pytest.raises(Unreadable):
        node_facts(node)


def test_junk_fields_make_those_fields_unknown_not_the_node():
    node = k.time_sliced_node("t4", "shared-t4", FIXED_NOW)
    node["metadata"]["labels"]["nvidia.com/gpu.replicas"] = "²"  # isdigit() says yes, int() raises
    node["metadata"]["labels"]["bad"] = {"not": "a string"}
    node["status"]["conditions"] = "Ready"
    node["spec"]["taints"] = [None, {"key": ["x"]}, {"key": "gpu", "effect": 3}]
    node["spec"]["unschedulable"] = "false"
    facts = node_facts(node)
    assert facts is not None and "bad" not in dict(facts.labels)
    assert (facts.ready, facts.unschedulable, facts.taints) == (False, False, ("gpu:",))
    assert gpu_node(facts, (), "c").gpus_total == 4  # replicas unknown: counted as not shared


def test_a_bad_worker_group_is_skipped_and_junk_counts_are_unknown_and_not_scalable():
    groups = [k.worker_group("ok", replicas=2, min_replicas=0, max_replicas=4, gpus=1) for _ in range(4)]
    groups[1].update(groupName="replicas-junk", replicas="abc", minReplicas=-3, maxReplicas=10**12)
    groups[2].update(groupName="hosts-junk", numOfHosts="NaN")
    groups[3] = "not a group"
    rc = k.raycluster("rc", "ml", groups=groups + [{"groupName": 7}], autoscaling=False, created=FIXED_NOW)
    skips = Skips()
    pools = {p.name: p for p in worker_groups(rc, [], "c", skips)}
    assert set(pools) == {"rc/ok", "rc/replicas-junk", "rc/hosts-junk"}
    assert skips.count == 2 and "worker group #3" in (skips.reason or "")
    junk = pools["rc/replicas-junk"]
    assert (junk.replicas, junk.min, junk.max, junk.scalable) == (None, None, None, False)
    assert "replicas 'abc'" in junk.why_not_scalable
    assert pools["rc/hosts-junk"].gpus_per_replica is None and pools["rc/hosts-junk"].scalable
    assert pools["rc/ok"].scalable and pools["rc/ok"].gpus_per_replica == 1.0
    with pytest.raises(Unreadable):
        worker_groups({"metadata": {"name": "x"}, "spec": {"workerGroupSpecs": {"a": 1}}}, [], "c")
    md = k.machine_deployment("md", "capi", replicas=2, ready=2, min_size=0, max_size=6, gpus_per_machine=4,
                              created=FIXED_NOW)
    md["spec"]["replicas"] = "abc"
    md["metadata"]["annotations"]["capacity.cluster-autoscaler.kubernetes.io/gpu-count"] = "Infinity"
    pool = machine_deployment(md, "c")
    assert (pool.replicas, pool.gpus_per_replica, pool.scalable) == (None, None, False)
    with pytest.raises(Unreadable):
        machine_deployment({"metadata": "junk"}, "c")


def test_prometheus_bad_series_are_skipped_and_counted_and_a_bad_answer_fails():
    good = PROM[0]["result"][0]
    bad_values = [dict(good, value=[1.0, v]) for v in ("NaN", "+Inf", "-1", "101", "abc")]
    data = {"resultType": "vector", "result": [good, *bad_values, "junk", {"metric": {"gpu": 0}, "value": [1, "5"]}]}
    samples, skips = parse_vector(data)
    assert [s.utilization for s in samples] == [3.0]
    assert skips.count == 7 and "not a percent" in (skips.reason or "")
    for bad in (None, [], {"resultType": "vector", "result": {}}, {"resultType": "matrix", "result": []}):
        with pytest.raises(BadResponse):
            parse_vector(bad)


def test_ray_a_broken_node_entry_is_skipped_and_counted_the_rest_shown():
    nodes_raw = _load(FIXTURES / "ray-2.60-h200" / "nodes_summary_burn.json")
    good = len(nodes_raw["data"]["summary"])
    nodes_raw["data"]["summary"] += ["junk", {"raylet": {"nodeId": "n-nan", "resourcesTotal": {"GPU": "NaN"}}}]
    nodes_raw["data"]["summary"][0]["gpus"].append({"index": "x"})
    skips = Skips()
    cluster = parse_cluster(nodes_raw, {"data": {"clusterStatus": {"loadMetricsReport": {
        "resourceDemand": [[{"GPU": "abc"}, 1], [{"GPU": 1.0}, 2]], "usageByNode": []}}}}, skips)
    assert len(cluster.nodes) == good and skips.count == 4
    assert cluster.gpus_waiting == 2.0
    assert_finite(cluster)
    with pytest.raises(BadResponse):
        parse_cluster({"data": {"summary": {}}}, None)


@pytest.mark.parametrize("value, shown", [(float("nan"), "?"), (float("inf"), "?"), (-float("inf"), "?"),
                                          (None, "-"), (2.0, "2"), (0.75, "0.75"), (10**400, "?")])
def test_gpu_cells_never_raise(value, shown):
    assert fmt.gpus(value) == shown


def test_count_cells_never_raise():
    assert fmt.count(float("nan")) == "?" and fmt.count(float("inf")) == "?" and fmt.count(None, "∞") == "∞"
    assert fmt.count(10**5000) == "?" and fmt.count(3) == "3"


# -- the watch cache and KubeSource against the fake API server ------------------------------------


def eventually(check, timeout=8.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    assert check()


def nan_node(name: str) -> dict[str, Any]:
    node = k.eks_h100_node(name, "h100-ng", FIXED_NOW - DAY)
    node["status"]["capacity"]["nvidia.com/gpu"] = "nan"
    return node


def junk_fields_node(name: str) -> dict[str, Any]:
    node = k.gke_a100_node(name, "a100-pool", FIXED_NOW - DAY)
    node["metadata"]["labels"]["nvidia.com/gpu.count"] = "Infinity"
    node["status"]["conditions"] = [None, "Ready", {"type": ["Ready"]}]
    return node


@pytest.fixture
def cluster(tmp_path):
    fake = start_fake_cluster(tmp_path, seed=False, bookmark_seconds=0.2)
    yield fake
    fake.server.stop()


async def test_one_malformed_node_is_skipped_counted_and_cleared_by_a_good_modified(cluster):
    for obj in (k.gke_a100_node("a100-1", "a100-pool", FIXED_NOW - DAY), nan_node("h100-bad"),
                junk_fields_node("a100-junk"), k.eks_h100_node("h100-1", "h100-ng", FIXED_NOW - DAY)):
        cluster.call(lambda obj=obj: cluster.store.put(obj))
    source = cluster.source()
    try:
        data = await source.fetch()
        assert sorted(n.name for n in data.nodes) == ["a100-1", "a100-junk", "h100-1"]
        assert data.skipped == 1
        assert "h100-bad" in data.skip_reason and "'nan' is not a quantity" in data.skip_reason
        junk = next(n for n in data.nodes if n.name == "a100-junk")
        assert junk.gpus_total == 8 and not junk.ready  # its conditions are junk: Ready is unknown, not True
        # A later MODIFIED that fixes it clears the count: the count is current, per object.
        cluster.call(lambda: cluster.store.put(k.eks_h100_node("h100-bad", "h100-ng", FIXED_NOW - DAY)))
        eventually(lambda: source.nodes.skips().count == 0)
        data = await source.fetch()
        assert data.skipped == 0 and data.skip_reason is None
        assert "h100-bad" in {n.name for n in data.nodes}
        # ...and one that breaks it again counts it again, and drops what was shown for it.
        cluster.call(lambda: cluster.store.put(nan_node("h100-bad")))
        eventually(lambda: source.nodes.skips().count == 1)
        data = await source.fetch()
        assert "h100-bad" not in {n.name for n in data.nodes} and data.skipped == 1
        cluster.call(lambda: cluster.store.delete("v1", "Node", "h100-bad"))
        eventually(lambda: source.nodes.skips().count == 0)
    finally:
        await source.aclose()


async def test_broken_custom_objects_are_counted_with_the_caches_skips(cluster):
    cluster.call(lambda: cluster.store.put(nan_node("h100-bad")))
    rc = k.raycluster("rc", "ml", groups=[k.worker_group("gpu", replicas=1, min_replicas=0, max_replicas=2, gpus=1)],
                      autoscaling=False, created=FIXED_NOW)
    broken_rc = copy.deepcopy(rc)
    broken_rc["metadata"]["name"] = "rc-broken"
    broken_rc["spec"]["workerGroupSpecs"] = "junk"
    md = k.machine_deployment("md", "capi", replicas=1, ready=1, min_size=None, max_size=None, gpus_per_machine=1,
                              created=FIXED_NOW)
    broken_md = copy.deepcopy(md)
    broken_md["metadata"]["name"] = "md-broken"
    broken_md["spec"] = ["junk"]
    for obj in (rc, broken_rc, md, broken_md):
        cluster.call(lambda obj=obj: cluster.store.put(obj))
    source = cluster.source()
    try:
        data = await source.fetch()
        assert {p.name for p in data.pools} == {"rc/gpu", "md"}
        assert data.skipped == 3 and "h100-bad" in data.skip_reason  # the node's reason comes first
    finally:
        await source.aclose()


async def test_custom_objects_answer_without_an_items_list_is_an_error_not_nothing(cluster, monkeypatch):
    source = cluster.source()
    try:
        class Answer:  # what urllib3 hands back with _preload_content=False: read as a stream
            data = b'{"apiVersion": "ray.io/v1", "kind": "RayClusterList", "items": {"a": 1}}'

            def stream(self, amt=None, decode_content=True):
                yield self.data

            def release_conn(self):
                pass

        monkeypatch.setattr(source._custom, "list_cluster_custom_object", lambda *a, **kw: Answer())
        with pytest.raises(BadResponse, match="rayclusters.ray.io: the list answer has no items array"):
            source._list_custom("ray.io", "v1", "rayclusters")
        Answer.data = b"<html>"
        with pytest.raises(BadResponse, match="did not answer with JSON"):
            source._list_custom("ray.io", "v1", "rayclusters")
    finally:
        await source.aclose()


def test_watch_lines_that_are_not_objects_are_skipped_and_counted():
    cache = WatchCache("c: nodes", lambda **kw: None, node_facts)
    good = k.gke_a100_node("a1", "p", FIXED_NOW)
    cache._apply_line(json.dumps({"type": "ADDED", "object": good}))
    for line in ("not json", "[1, 2]", '"ADDED"', '{"type": "ADDED", "object": "junk"}',
                 '{"type": "SURPRISE", "object": {"metadata": {"name": "a1"}}}', "[" * 100000):
        cache._apply_line(line)
    # An unknown event type does not delete the object it names; the bad lines count as one skip.
    assert [r.name for r in cache.snapshot()] == ["a1"]
    skips = cache.skips()
    assert skips.count == 1 and "watch event" in skips.reason
    cache._apply_line(json.dumps({"type": "MODIFIED", "object": nan_node("a2")}))
    assert cache.skips().count == 2
    cache._apply_line(json.dumps({"type": "DELETED", "object": nan_node("a2")}))
    assert cache.skips().count == 1


def test_once_json_with_a_malformed_node_exits_0_with_the_good_nodes(tmp_path):
    fake = start_fake_cluster(tmp_path)  # the demo cluster: 10 GPU nodes
    try:
        fake.call(lambda: fake.store.put(nan_node("h100-bad")))
        fake.call(lambda: fake.store.put(junk_fields_node("a100-junk")))
        env = {key: v for key, v in os.environ.items() if not key.startswith(("RAY_", "MLTOP_", "KUBE"))}
        env["MLTOP_CONFIG"] = os.devnull
        out = subprocess.run([sys.executable, "-m", "mltop", "--once", "--json", "--kubeconfig", fake.kubeconfig,
                              "--context", fake.context], capture_output=True, text=True, timeout=60, env=env)
    finally:
        fake.server.stop()
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    report = json.loads(out.stdout)
    names = {n["name"] for n in report["nodes"]}
    assert len(names) == 11 and "a100-junk" in names and "h100-bad" not in names
    assert all(s["ok"] for s in report["sources"]), report["sources"]
