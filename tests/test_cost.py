"""The idle-cost engine on its own: records, prices, policy and an injected clock in; warnings out."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from mltop.cost import CostPolicy, IdleHistory, evaluate
from mltop.model import GpuDevice, GpuNode, GpuPod, JobState, Pool, RayClusterState, RayNode, Snapshot
from mltop.prices import canonical_model, price_book
from tests.conftest import FIXED_NOW
from tests.factories import job

NOW = FIXED_NOW
MIN = timedelta(minutes=1)


def gpu_node(name, *, free=0, total=8, pool="pool-a", model="NVIDIA-H100-80GB-HBM3", itype="p5.48xlarge",
             created_min_ago=600, last_end=None, taints=(), labels=(), spot=False, cluster="c", ready=True, md=None):
    allocated = total - free
    return GpuNode(key=f"kubernetes/{cluster}/{name}", cluster=cluster, name=name, pool=pool, gpu_model=model,
                   gpu_resource="nvidia.com/gpu", gpus_total=total, gpus_allocatable=total, gpus_allocated=allocated,
                   ready=ready, schedulable=True, taints=tuple(taints), instance_type=itype, zone="z",
                   capacity_type="spot" if spot else "on-demand", created_at=NOW - created_min_ago * MIN,
                   pods=(GpuPod("ml", "p", allocated, "Running", "Job/x"),) if allocated else (),
                   labels=tuple(labels), machine_deployment=md, last_gpu_pod_end=last_end)


def nodepool(name, nodes, cluster="c", **kw):
    return Pool(key=f"kubernetes/{cluster}/nodepool/-/{name}", cluster=cluster, kind="nodepool", name=name,
                namespace=None, replicas=len(nodes), ready=len(nodes), min=None, max=None, gpus_per_replica=8,
                members=tuple(n.name for n in nodes), why_not_scalable="EKS resizes it, not Kubernetes", **kw)


def snap(nodes=(), pools=(), jobs=(), ray=()):
    return Snapshot(generated_at=NOW, sources=(), jobs=tuple(jobs), ray_clusters=tuple(ray), nodes=tuple(nodes),
                    pools=tuple(pools))


BOOK = price_book()
POLICY = CostPolicy()


def kinds(report):
    return [w.kind for w in report.warnings]


def test_price_matching_order_user_pool_instance_model_then_table():
    book = price_book(pools={"special": 10.0}, instances={"p5.48xlarge": 40.0}, per_gpu={"A100": 2.0}, spot_discount=0.6)
    p = dict(instance_type="p5.48xlarge", gpu_model="NVIDIA-H100-80GB-HBM3", gpus=8)
    assert book.price(pool="special", **p).per_hour == 10.0
    assert book.price(pool="other", **p).per_hour == 40.0
    assert book.price(pool=None, instance_type="x", gpu_model="nvidia-tesla-a100", gpus=4).per_hour == 8.0
    table = price_book(spot_discount=0.6)
    assert table.price(pool=None, **p).per_hour == pytest.approx(55.04)  # shipped table, by instance type
    assert table.price(pool=None, **p, spot=True).per_hour == pytest.approx(55.04 * 0.4)
    by_model = table.price(pool=None, instance_type="unknown.type", gpu_model="NVIDIA-L4", gpus=2)
    assert by_model.per_hour == pytest.approx(2 * 0.8048) and "per GPU" in by_model.basis
    unknown = table.price(pool=None, instance_type="weird", gpu_model="FooGPU", gpus=1)
    assert unknown.per_hour is None and "no known price" in unknown.basis
    assert canonical_model("NVIDIA-A100-SXM4-80GB") == "A100-80GB" and canonical_model("nvidia-tesla-a100") == "A100"


def test_idle_node_after_the_threshold_with_cost_and_lower_bound_since():
    history = IdleHistory()
    node, busy = gpu_node("n1", free=8, last_end=NOW - 40 * MIN), gpu_node("n2")
    report = evaluate(snap([node, busy], [nodepool("pool-a", [node, busy])]), BOOK, POLICY, history, NOW)
    (w,) = report.warnings
    assert w.kind == "idle-node" and w.idle_gpus == 8 and w.cost_per_hour == pytest.approx(55.04)
    assert w.idle_since == NOW - 40 * MIN and w.idle_since_is_lower_bound
    assert w.wasted == pytest.approx(55.04 * 40 / 60)
    assert "drain n1" in w.remedy and report.burn_rate == pytest.approx(2 * 55.04)


def test_below_the_threshold_no_warning_and_a_transition_seen_is_exact():
    history = IdleHistory()
    busy = gpu_node("n1", free=0)
    evaluate(snap([busy]), BOOK, POLICY, history, NOW)
    idle = replace(busy, gpus_allocated=2, pods=())
    report = evaluate(snap([idle]), BOOK, POLICY, history, NOW + 5 * MIN)
    assert report.warnings == () and report.idle_rate == pytest.approx(55.04 * 6 / 8)
    report = evaluate(snap([idle]), BOOK, POLICY, history, NOW + 21 * MIN)
    (w,) = report.warnings
    assert w.idle_since == NOW + 5 * MIN and not w.idle_since_is_lower_bound
    # A restart forgets: the same node is seen idle with an unknown past again.
    report = evaluate(snap([idle]), BOOK, POLICY, IdleHistory(), NOW + 21 * MIN)
    assert report.warnings[0].idle_since_is_lower_bound


def test_a_fully_idle_pool_is_one_warning_not_one_per_node_and_a_scalable_one_offers_s():
    nodes = [gpu_node(f"n{i}", free=8, md="capi/gpu-md-0") for i in range(2)]
    md = Pool(key="kubernetes/c/machinedeployment/capi/gpu-md-0", cluster="c", kind="machinedeployment",
              name="gpu-md-0", namespace="capi", replicas=2, ready=2, min=1, max=4, gpus_per_replica=8,
              scalable=True, members=("n0", "n1"))
    report = evaluate(snap(nodes, [md]), BOOK, POLICY, IdleHistory(), NOW)
    (w,) = report.warnings
    assert w.kind == "idle-pool" and w.idle_gpus == 16 and w.remedy_key == "s" and w.remedy_target == md.key
    assert "minimum of 1 keeps them alive" in w.message and w.cost_per_hour == pytest.approx(2 * 55.04)


def test_unknown_prices_say_so_and_are_never_free():
    node = gpu_node("odd", free=4, total=4, model="FooGPU", itype="weird.type")
    report = evaluate(snap([node]), BOOK, POLICY, IdleHistory(), NOW)
    (w,) = report.warnings
    assert w.cost_per_hour is None and w.wasted is None and "no known price" in w.message
    assert report.unpriced_nodes == 1


def test_shared_and_mig_nodes_cost_their_idle_share():
    t4 = gpu_node("t4", free=0, total=1, model="Tesla-T4-SHARED", itype="n1-standard-8", pool="shared")
    t4 = replace(t4, gpus_allocated=0.75, sharing="time-slicing x4")
    mig = replace(gpu_node("mig", total=1, model="NVIDIA-A100-SXM4-80GB", itype="a2-highgpu-1g", pool="mig"),
                  gpus_allocated=2 / 7, sharing="MIG 7x 1g.10gb")
    report = evaluate(snap([t4, mig]), BOOK, POLICY, IdleHistory(), NOW)
    by_name = {w.target_name: w for w in report.warnings}
    assert by_name["t4"].idle_gpus == pytest.approx(0.25)
    assert by_name["t4"].cost_per_hour == pytest.approx(0.526 * 0.25)
    assert by_name["mig"].idle_gpus == pytest.approx(5 / 7)
    assert by_name["mig"].cost_per_hour == pytest.approx(3.67 * 5 / 7)


def test_ray_cluster_holding_gpus_no_task_uses():
    device = GpuDevice(0, "NVIDIA A100-SXM4-80GB", 0.0, 0.0, 81920.0)
    cluster = RayClusterState(nodes=(RayNode("a", "10.0.0.1", "w1", False, True, 8, 2, (device,) * 8),), demands=())
    report = evaluate(snap(ray=[("prod", cluster)]), BOOK, POLICY, IdleHistory(), NOW)
    assert report.warnings == ()  # first sighting: not yet past the threshold
    history = IdleHistory()
    evaluate(snap(ray=[("prod", cluster)]), BOOK, POLICY, history, NOW)
    report = evaluate(snap(ray=[("prod", cluster)]), BOOK, POLICY, history, NOW + 16 * MIN)
    (w,) = report.warnings
    assert w.kind == "ray-idle" and w.idle_gpus == 6 and w.cost_per_hour == pytest.approx(3.67 * 6)
    assert w.idle_since_is_lower_bound


def test_a_job_hogging_gpus_at_low_utilization_after_the_window():
    history = IdleHistory()
    device = GpuDevice(0, "NVIDIA A100-SXM4-80GB", 3.0, 0.0, 81920.0)
    cluster = RayClusterState(nodes=(RayNode("a", "x", "w1", False, True, 8, 6, (device,) * 8),), demands=())
    hog = replace(job("hog", JobState.RUNNING, gpus=6, cluster="prod"), gpu_utilization=3.0, cancellable=True)
    busy = replace(job("busy", JobState.RUNNING, gpus=2, cluster="prod"), gpu_utilization=95.0)
    evaluate(snap(jobs=[hog, busy], ray=[("prod", cluster)]), BOOK, POLICY, history, NOW)
    report = evaluate(snap(jobs=[hog, busy], ray=[("prod", cluster)]), BOOK, POLICY, history, NOW + 9 * MIN)
    assert "low-utilization" not in kinds(report)
    report = evaluate(snap(jobs=[hog, busy], ray=[("prod", cluster)]), BOOK, POLICY, history, NOW + 11 * MIN)
    (w,) = [w for w in report.warnings if w.kind == "low-utilization"]
    assert w.target == hog.key and w.remedy_key == "ctrl+d" and "3% utilization" in w.message
    assert w.cost_per_hour == pytest.approx(3.67 * 6)
    # Back to work: the warning clears.
    report = evaluate(snap(jobs=[replace(hog, gpu_utilization=90.0), busy], ray=[("prod", cluster)]), BOOK, POLICY,
                      history, NOW + 12 * MIN)
    assert "low-utilization" not in kinds(report)


def waiting(name, gpus, *, placement=(), tolerates=("nvidia.com/gpu",), minutes=10):
    return replace(job(name, JobState.PENDING, gpus=gpus, cluster="c", submitted_min_ago=minutes),
                   key=f"kubernetes/c/ml/{name}", source="kubernetes", placement=tuple(placement), tolerates=tolerates)


def test_idle_while_waiting_explains_wrong_model_taint_and_fragmentation():
    h100 = gpu_node("h100", free=8, labels=[("nvidia.com/gpu.product", "NVIDIA-H100-80GB-HBM3")])
    tainted = gpu_node("t", free=8, taints=["dedicated=infer:NoSchedule"], pool="p2")
    report = evaluate(snap([h100], jobs=[waiting("a100-job", 8, placement=[("nvidia.com/gpu.product", "A100")])]),
                      BOOK, POLICY, IdleHistory(), NOW)
    (w,) = [w for w in report.warnings if w.kind == "idle-while-waiting"]
    assert "requires nvidia.com/gpu.product=A100" in w.message and w.cost_per_hour == pytest.approx(55.04)
    report = evaluate(snap([tainted], jobs=[waiting("x", 8)]), BOOK, POLICY, IdleHistory(), NOW)
    assert "taint dedicated=infer:NoSchedule" in [w for w in report.warnings if w.kind == "idle-while-waiting"][0].message
    frag = [gpu_node(f"f{i}", free=4) for i in range(2)]
    report = evaluate(snap(frag, jobs=[waiting("big", 8)]), BOOK, POLICY, IdleHistory(), NOW)
    assert "scattered across 2 nodes (fragmentation)" in [w for w in report.warnings
                                                          if w.kind == "idle-while-waiting"][0].message
    # A job the scheduler will place is not a warning.
    report = evaluate(snap([gpu_node("ok", free=8)], jobs=[waiting("fits", 8)]), BOOK, POLICY, IdleHistory(), NOW)
    assert "idle-while-waiting" not in kinds(report)


def test_demand_with_no_capacity_coming():
    full = gpu_node("full", free=0, total=4)
    report = evaluate(snap([full], jobs=[waiting("huge", 8)]), BOOK, POLICY, IdleHistory(), NOW)
    (w,) = [w for w in report.warnings if w.kind == "no-capacity-coming"]
    assert w.cost_per_hour is None and "nothing is scaling up" in w.message
    booting = replace(gpu_node("new", free=8, ready=False), gpus_allocated=0)
    report = evaluate(snap([full, booting], jobs=[waiting("huge", 8)]), BOOK, POLICY, IdleHistory(), NOW)
    assert "no-capacity-coming" not in kinds(report)


def test_warnings_are_ranked_by_cost_and_kinds_can_be_turned_off():
    cheap = gpu_node("cheap", free=1, total=1, model="NVIDIA-L4", itype="g6.xlarge", pool="l4")
    dear = gpu_node("dear", free=8)
    report = evaluate(snap([cheap, dear]), BOOK, POLICY, IdleHistory(), NOW)
    assert [w.target_name for w in report.warnings] == ["dear", "cheap"]
    policy = replace(POLICY, kinds=frozenset({"idle-pool"}), idle_threshold=timedelta(hours=100))
    assert evaluate(snap([cheap, dear]), BOOK, policy, IdleHistory(), NOW).warnings == ()


def test_waste_today_accumulates_between_evaluations_and_resets_at_midnight():
    history = IdleHistory()
    node = gpu_node("n", free=8, created_min_ago=60 * 24 * 5)  # idle for days: today counts from midnight
    first = evaluate(snap([node]), BOOK, POLICY, history, NOW)
    assert first.wasted_today == pytest.approx(55.04 * 12)  # FIXED_NOW is 12:00
    later = evaluate(snap([node]), BOOK, POLICY, history, NOW + 30 * MIN)
    assert later.wasted_today == pytest.approx(55.04 * 12.5)
    tomorrow = evaluate(snap([node]), BOOK, POLICY, history, NOW + timedelta(hours=13))
    assert tomorrow.wasted_today < 55.04 * 2


def test_logical_ray_gpus_without_telemetry_have_no_price_and_the_cost_line_says_so():
    from mltop.report import cost_line

    cluster = RayClusterState(nodes=(RayNode("a", "x", "head", True, True, 4, 0, ()),), demands=())
    report = evaluate(snap(ray=[("local", cluster)]), BOOK, POLICY, IdleHistory(), NOW)
    assert report.unpriced_nodes == 1 and report.burn_rate == 0
    assert cost_line(report).startswith("GPU cost unknown: 1 GPU nodes without a price")


def test_waste_before_start_is_counted_once_whichever_source_answers_first():
    history = IdleHistory()
    evaluate(snap(), BOOK, POLICY, history, NOW)  # the first refresh had no Kubernetes data yet
    node = gpu_node("n", free=8, created_min_ago=60 * 24 * 5)
    report = evaluate(snap([node]), BOOK, POLICY, history, NOW + MIN)
    assert report.wasted_today == pytest.approx(55.04 * (12 + 1 / 60))  # since midnight, counted once
    report = evaluate(snap([node]), BOOK, POLICY, history, NOW + 2 * MIN)
    assert report.wasted_today == pytest.approx(55.04 * (12 + 2 / 60))
