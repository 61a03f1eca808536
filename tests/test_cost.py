"""The idle-cost engine on its own: records, prices, policy and an injected clock in; warnings out."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from mltop.registry import wait_models
from mltop.cost import CostPolicy, IdleHistory, evaluate
from mltop.model import GpuDevice, GpuNode, GpuPod, JobState, Pool, RayClusterState, RayNode, Snapshot
from mltop.price_catalog import shipped_catalog
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
POLICY = CostPolicy(waits_on=wait_models())


def kinds(report):
    return [w.kind for w in report.warnings]


def test_price_matching_order_user_pool_instance_model_then_table():
    book = price_book(pools={"special": 10.0}, instances={"p5.48xlarge": 40.0}, per_gpu={"A100": 2.0}, spot_discount=0.6)
    p = dict(instance_type="p5.48xlarge", gpu_model="NVIDIA-H100-80GB-HBM3", gpus=8)
    assert book.price(pool="special", **p).per_hour == 10.0
    assert book.price(pool="other", **p).per_hour == 40.0
    assert book.price(pool=None, instance_type="x", gpu_model="nvidia-tesla-a100", gpus=4).per_hour == 8.0
    table = price_book(spot_discount=0.6)
    assert table.price(pool=None, **p).per_hour == pytest.approx(H100_NODE)  # shipped table, by instance type
    assert table.price(pool=None, **p, spot=True).per_hour == pytest.approx(listed("p5.48xlarge")[1])  # its spot price
    no_spot_price = dict(instance_type="p5.4xlarge", gpu_model="H100", gpus=1)
    assert listed("p5.4xlarge")[1] is None  # the catalog has no spot price there: the discount applies
    assert table.price(pool=None, **no_spot_price, spot=True).per_hour == pytest.approx(listed("p5.4xlarge")[0] * 0.4)
    by_model = table.price(pool=None, instance_type="unknown.type", gpu_model="NVIDIA-L4", gpus=2)
    # The lowest per-GPU L4 price in the default regions: GCP's g2-standard-4 (host + one L4) in us-central1.
    assert by_model.per_hour == pytest.approx(2 * gcp("g2-standard-4")[0])
    assert by_model.source == "catalog: per-GPU model"
    unknown = table.price(pool=None, instance_type="weird", gpu_model="FooGPU", gpus=1)
    assert unknown.per_hour is None and "no known price" in unknown.basis
    assert canonical_model("NVIDIA-A100-SXM4-80GB") == "A100-80GB" and canonical_model("nvidia-tesla-a100") == "A100"


def test_idle_node_after_the_threshold_with_cost_and_lower_bound_since():
    history = IdleHistory()
    node, busy = gpu_node("n1", free=8, last_end=NOW - 40 * MIN), gpu_node("n2")
    report = evaluate(snap([node, busy], [nodepool("pool-a", [node, busy])]), BOOK, POLICY, history, NOW)
    (w,) = report.warnings
    assert w.kind == "idle-node" and w.idle_gpus == 8 and w.cost_per_hour == pytest.approx(H100_NODE)
    assert w.idle_since == NOW - 40 * MIN and w.idle_since_is_lower_bound
    assert w.wasted == pytest.approx(H100_NODE * 40 / 60)
    assert "drain n1" in w.remedy and report.burn_rate == pytest.approx(2 * 55.04)


def test_below_the_threshold_no_warning_and_a_transition_seen_is_exact():
    history = IdleHistory()
    busy = gpu_node("n1", free=0)
    evaluate(snap([busy]), BOOK, POLICY, history, NOW)
    idle = replace(busy, gpus_allocated=2, pods=())
    report = evaluate(snap([idle]), BOOK, POLICY, history, NOW + 5 * MIN)
    assert report.warnings == () and report.idle_rate == pytest.approx(H100_NODE * 6 / 8)
    report = evaluate(snap([idle]), BOOK, POLICY, history, NOW + 21 * MIN)
    (w,) = report.warnings
    assert w.idle_since == NOW + 5 * MIN and not w.idle_since_is_lower_bound
    # A restart forgets: the same node is seen idle with an unknown past again.
    report = evaluate(snap([idle]), BOOK, POLICY, IdleHistory(), NOW + 21 * MIN)
    assert report.warnings[0].idle_since_is_lower_bound


def test_a_fully_idle_pool_is_one_warning_not_one_per_node_and_a_scalable_one_offers_scaling():
    nodes = [gpu_node(f"n{i}", free=8, md="capi/gpu-md-0") for i in range(2)]
    md = Pool(key="kubernetes/c/machinedeployment/capi/gpu-md-0", cluster="c", kind="machinedeployment",
              name="gpu-md-0", namespace="capi", replicas=2, ready=2, min=1, max=4, gpus_per_replica=8,
              scalable=True, members=("n0", "n1"))
    report = evaluate(snap(nodes, [md]), BOOK, POLICY, IdleHistory(), NOW)
    (w,) = report.warnings
    assert w.kind == "idle-pool" and w.idle_gpus == 16 and w.remedy_action == "pools.scale" and w.remedy_target == md.key
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
    # GKE n1 + T4: priced by GPU model, GCP's T4 accelerator alone (the n1 host is not in the table).
    assert by_name["t4"].cost_per_hour == pytest.approx(gcp("T4 x1 (GPU only)")[0] * 0.25)
    assert by_name["mig"].idle_gpus == pytest.approx(5 / 7)
    assert by_name["mig"].cost_per_hour == pytest.approx(gcp("a2-highgpu-1g")[0] * 5 / 7)  # by its instance type


def test_ray_cluster_holding_gpus_no_task_uses():
    device = GpuDevice(0, "NVIDIA A100-SXM4-80GB", 0.0, 0.0, 81920.0)
    cluster = RayClusterState(nodes=(RayNode("a", "10.0.0.1", "w1", False, True, 8, 2, (device,) * 8),), demands=())
    report = evaluate(snap(ray=[("prod", cluster)]), BOOK, POLICY, IdleHistory(), NOW)
    assert report.warnings == ()  # first sighting: not yet past the threshold
    history = IdleHistory()
    evaluate(snap(ray=[("prod", cluster)]), BOOK, POLICY, history, NOW)
    report = evaluate(snap(ray=[("prod", cluster)]), BOOK, POLICY, history, NOW + 16 * MIN)
    (w,) = report.warnings
    assert w.kind == "ray-idle" and w.idle_gpus == 6 and w.cost_per_hour == pytest.approx(A100_GPU * 6)
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
    assert w.target == hog.key and w.remedy_action == "jobs.cancel" and "3% utilization" in w.message
    assert w.cost_per_hour == pytest.approx(A100_GPU * 6)
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
    assert "requires nvidia.com/gpu.product=A100" in w.message and w.cost_per_hour == pytest.approx(H100_NODE)
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
    assert first.wasted_today == pytest.approx(H100_NODE * 12)  # FIXED_NOW is 12:00
    later = evaluate(snap([node]), BOOK, POLICY, history, NOW + 30 * MIN)
    assert later.wasted_today == pytest.approx(H100_NODE * 12.5)
    tomorrow = evaluate(snap([node]), BOOK, POLICY, history, NOW + timedelta(hours=13))
    assert tomorrow.wasted_today < H100_NODE * 2


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
    assert report.wasted_today == pytest.approx(H100_NODE * (12 + 1 / 60))  # since midnight, counted once
    report = evaluate(snap([node]), BOOK, POLICY, history, NOW + 2 * MIN)
    assert report.wasted_today == pytest.approx(H100_NODE * (12 + 2 / 60))



def test_what_was_counted_before_start_is_forgotten_with_its_target_and_the_total_stays():
    """A churning cluster's gone targets do not pile up in the day's record of pre-start counts."""
    history = IdleHistory()
    nodes = [gpu_node(f"n{i}", free=8, created_min_ago=60 * 24 * 5) for i in range(3)]
    evaluate(snap(nodes), BOOK, POLICY, history, NOW)
    assert {k.rsplit("/", 1)[1] for k in history.pre_start} == {"n0", "n1", "n2"}
    before = evaluate(snap(nodes[:1]), BOOK, POLICY, history, NOW).wasted_today
    assert {k.rsplit("/", 1)[1] for k in history.pre_start} == {"n0"}
    assert {k.rsplit("/", 1)[1] for k in history._counted} == {"n0"}
    assert before == pytest.approx(3 * H100_NODE * 12)  # what the gone ones wasted stays counted
    later = evaluate(snap(nodes[:1]), BOOK, POLICY, history, NOW + MIN).wasted_today
    assert later == pytest.approx(before + H100_NODE / 60)  # n0 is not counted again

# -- one definition of idle $/h ------------------------------------------------------------------

def listed(instance_type: str, region: str = "us-east-1", cloud: str = "aws") -> list:
    """[on-demand, spot] of an instance type in the shipped catalog (so a refresh moves no test)."""
    return shipped_catalog().clouds[cloud][instance_type]["regions"][region]


def gcp(instance_type: str) -> list:
    return listed(instance_type, "us-central1", "gcp")


H100_NODE = listed("p5.48xlarge")[0]  # 8 GPUs
# Per GPU: the lowest per-GPU price of an A100-80GB in each cloud's default region (today Lambda's
# gpu_8x_a100_80gb_sxm4 / 8 in us-east-1, below GCP's a2-ultragpu-1g and AWS's p4de.24xlarge / 8).
A100_GPU = shipped_catalog().per_gpu("A100-80GB", canonical_model, {})[0]


def test_a_waiting_job_and_the_idle_node_it_cannot_use_count_those_gpus_once():
    node = gpu_node("h100", free=8, labels=[("nvidia.com/gpu.product", "NVIDIA-H100-80GB-HBM3")])
    stuck = waiting("a100-job", 8, placement=[("nvidia.com/gpu.product", "A100")])
    report = evaluate(snap([node], jobs=[stuck]), BOOK, POLICY, IdleHistory(), NOW)
    assert sorted(kinds(report)) == ["idle-node", "idle-while-waiting"]
    assert all(w.cost_per_hour == pytest.approx(H100_NODE) for w in report.warnings)  # each says what it is about
    assert report.warned_rate == pytest.approx(H100_NODE)  # ... but the same 8 GPUs count once
    assert report.idle_rate == pytest.approx(H100_NODE)


def test_a_waiting_ray_job_and_its_idle_cluster_count_those_gpus_once():
    device = GpuDevice(0, "NVIDIA A100-SXM4-80GB", 0.0, 0.0, 81920.0)
    nodes = tuple(RayNode(f"n{i}", "x", f"w{i}", False, True, 4, 2, (device,) * 4) for i in range(2))
    cluster = RayClusterState(nodes=nodes, demands=())
    big = job("big", JobState.PENDING, gpus=4, cluster="prod")
    history = IdleHistory()
    evaluate(snap(jobs=[big], ray=[("prod", cluster)]), BOOK, POLICY, history, NOW)
    report = evaluate(snap(jobs=[big], ray=[("prod", cluster)]), BOOK, POLICY, history, NOW + 16 * MIN)
    assert sorted(kinds(report)) == ["idle-while-waiting", "ray-idle"]
    assert report.warned_rate == pytest.approx(4 * A100_GPU) == report.idle_rate


def test_idle_rate_adds_allocated_but_unused_gpus_to_unallocated_ones():
    history = IdleHistory()
    device = GpuDevice(0, "NVIDIA A100-SXM4-80GB", 3.0, 0.0, 81920.0)
    cluster = RayClusterState(nodes=(RayNode("a", "x", "w1", False, True, 8, 6, (device,) * 8),), demands=())
    hog = replace(job("hog", JobState.RUNNING, gpus=6, cluster="prod"), gpu_utilization=3.0)
    node = gpu_node("n", free=2)
    look = snap([node], jobs=[hog], ray=[("prod", cluster)])
    evaluate(look, BOOK, POLICY, history, NOW)
    unallocated = H100_NODE * 2 / 8 + A100_GPU * 2
    assert evaluate(look, BOOK, POLICY, history, NOW + 5 * MIN).idle_rate == pytest.approx(unallocated)
    report = evaluate(look, BOOK, POLICY, history, NOW + 11 * MIN)  # low for the whole window now
    assert report.idle_rate == pytest.approx(unallocated + A100_GPU * 6)
    # The Ray cluster's 2 free GPUs are not yet warned about (first seen idle 11 minutes ago).
    assert report.warned_rate == pytest.approx(H100_NODE * 2 / 8 + A100_GPU * 6)
    # With the kind turned off the GPUs are still idle: only the warning goes.
    quiet = evaluate(look, BOOK, replace(POLICY, kinds=frozenset()), history, NOW + 12 * MIN)
    assert quiet.warnings == () and quiet.warned_rate == 0 and quiet.idle_rate == pytest.approx(report.idle_rate)


def test_a_pod_that_is_a_ray_node_is_counted_by_ray_only():
    from mltop.model import GpuSample

    device = GpuDevice(0, "NVIDIA A100-SXM4-80GB", 0.0, 0.0, 81920.0)
    ray = RayClusterState(nodes=(RayNode("a", "x", "ray-worker-abc", False, True, 8, 0, (device,) * 8),), demands=())
    node = replace(gpu_node("n", free=0), pods=(GpuPod("ray", "ray-worker-abc", 8, "Running", "RayCluster/r"),))
    samples = tuple(GpuSample("n", str(i), f"u{i}", "A100", 0.0, "ray", "ray-worker-abc") for i in range(8))
    look = replace(snap([node], ray=[("r", ray)]), gpu_samples=samples)
    history = IdleHistory()
    evaluate(look, BOOK, POLICY, history, NOW)
    report = evaluate(look, BOOK, POLICY, history, NOW + 16 * MIN)
    assert kinds(report) == ["ray-idle"] and report.idle_rate == pytest.approx(8 * A100_GPU)


def test_node_and_pool_idle_costs_and_pool_prices():
    priced = [gpu_node("a", free=2), gpu_node("b", free=0)]
    odd = gpu_node("odd", free=4, total=4, model="FooGPU", itype="weird.type", pool="mixed")
    pools = [nodepool("pool-a", priced), nodepool("mixed", [priced[0], odd]), nodepool("empty", [])]
    report = evaluate(snap([*priced, odd], pools), BOOK, POLICY, IdleHistory(), NOW)
    assert report.node_idle(priced[0].key) == pytest.approx(H100_NODE / 4)
    assert report.node_idle(priced[1].key) == 0.0 and report.node_idle(odd.key) is None
    assert report.pool_idle(pools[0].key) == pytest.approx(H100_NODE / 4)
    assert report.pool_price(pools[0].key) == pytest.approx(2 * H100_NODE)
    # Unknown is never zero: one unpriced member makes the pool's figures unknown.
    assert report.pool_idle(pools[1].key) is None and report.pool_price(pools[1].key) is None
    assert report.pool_idle(pools[2].key) is None and report.pool_price(pools[2].key) is None


# -- warned_rate <= idle_rate, over generated clusters ---------------------------------------------

def _cluster(draw):
    from hypothesis import strategies as st

    from mltop.model import GpuSample

    nodes, samples = [], []
    for i in range(draw(st.integers(0, 4))):
        total = draw(st.sampled_from([1, 2, 4, 8]))
        free = draw(st.integers(0, total))
        priced = draw(st.booleans())
        node = gpu_node(f"n{i}", free=free, total=total, pool=draw(st.sampled_from(["pa", "pb"])),
                        model="NVIDIA-H100-80GB-HBM3" if priced else "FooGPU", itype="p5.48xlarge" if priced else "x",
                        ready=draw(st.booleans()), labels=[("gpu", draw(st.sampled_from(["h100", "a100"])))])
        node = replace(node, pods=tuple(replace(p, name=f"p{i}") for p in node.pods))
        if node.pods and draw(st.booleans()):
            samples.append(GpuSample(node.name, "0", f"u{i}", None, draw(st.sampled_from([1.0, 50.0])), "ml", f"p{i}"))
        nodes.append(node)
    pools = [nodepool(p, [n for n in nodes if n.pool == p]) for p in ("pa", "pb")]
    device = GpuDevice(0, "NVIDIA A100-SXM4-80GB", 0.0, 0.0, 81920.0)
    ray_nodes = []
    for i in range(draw(st.integers(0, 3))):
        total = draw(st.sampled_from([0, 1, 4, 8]))
        used = draw(st.one_of(st.none(), st.integers(0, total)))
        ray_nodes.append(RayNode(f"r{i}", "x", f"h{i}", False, draw(st.booleans()), total, used,
                                 (device,) * total if draw(st.booleans()) else ()))
    ray = [("prod", RayClusterState(nodes=tuple(ray_nodes), demands=()))] if ray_nodes else []
    jobs = [replace(job(f"j{i}", JobState.RUNNING, gpus=draw(st.integers(1, 4))),
                    gpu_utilization=draw(st.sampled_from([None, 2.0, 80.0]))) for i in range(draw(st.integers(0, 2)))]
    jobs += [job(f"w{i}", JobState.PENDING, gpus=draw(st.integers(1, 16))) for i in range(draw(st.integers(0, 2)))]
    jobs += [waiting(f"k{i}", draw(st.integers(1, 16)), placement=[("gpu", draw(st.sampled_from(["h100", "a100"])))])
             for i in range(draw(st.integers(0, 2)))]
    return replace(snap(nodes, pools, jobs, ray), gpu_samples=tuple(samples))


def test_warned_rate_never_exceeds_idle_rate():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    @settings(max_examples=150, deadline=None)
    @given(st.data())
    def check(data):
        look = _cluster(data.draw)
        history = IdleHistory()
        evaluate(look, BOOK, POLICY, history, NOW)
        report = evaluate(look, BOOK, POLICY, history, NOW + 20 * MIN)  # past every threshold and window
        assert report.warned_rate <= report.idle_rate + 1e-9
        assert all((w.cost_per_hour or 0.0) <= report.warned_rate + 1e-9 for w in report.warnings)
        unallocated = sum(c for n in look.nodes if (c := report.node_idle(n.key)) is not None)
        assert report.idle_rate >= unallocated - 1e-9

    check()


# -- each kind on its own ----------------------------------------------------------------------

KEY_WORDS = ("ctrl+", " s ", "(s", "with s", "panel")


def look_at(snapshot, history=None, now=NOW, policy=POLICY):
    """The context the kinds see, after a first look 20 minutes earlier (past every threshold)."""
    from mltop.cost.context import observe

    history = history or IdleHistory()
    observe(snapshot, BOOK, policy, history, now - 20 * MIN)
    return observe(snapshot, BOOK, policy, history, now)


def test_idle_pools_kind():
    from mltop.cost.kinds import idle_pools

    nodes = [gpu_node(f"n{i}", free=8, created_min_ago=5) for i in range(2)]
    pool = replace(nodepool("pool-a", nodes), scalable=True, min=1)
    (f,) = idle_pools(snap(nodes, [pool]), look_at(snap(nodes, [pool])))
    assert f.warning.kind == "idle-pool" and f.warning.remedy_action == "pools.scale"
    assert f.warning.remedy_target == pool.key and f.about == {f"unallocated/{n.key}" for n in nodes}
    assert "scale pool-a down" in f.warning.remedy and not any(k in f.warning.remedy for k in KEY_WORDS)
    busy = [nodes[0], gpu_node("n1", free=4)]
    assert idle_pools(snap(busy, [pool]), look_at(snap(busy, [pool]))) == []


def test_idle_nodes_kind_defers_to_a_pool_warning():
    from mltop.cost.kinds import idle_nodes

    nodes = [gpu_node(f"n{i}", free=8) for i in range(2)]
    pool = replace(nodepool("pool-a", nodes), scalable=True)
    assert idle_nodes(snap(nodes, [pool]), look_at(snap(nodes, [pool]))) == []  # the pool speaks for them
    no_pools = replace(POLICY, kinds=frozenset({"idle-node"}))
    found = idle_nodes(snap(nodes, [pool]), look_at(snap(nodes, [pool]), policy=no_pools))
    assert [f.warning.remedy_action for f in found] == ["pools.scale", "pools.scale"]
    assert all(not any(k in f.warning.remedy for k in KEY_WORDS) for f in found)
    (alone,) = idle_nodes(snap([nodes[0]]), look_at(snap([nodes[0]])))
    assert alone.warning.remedy_action is None and "drain n0" in alone.warning.remedy


def test_ray_idle_kind():
    from mltop.cost.kinds import ray_idle

    device = GpuDevice(0, "NVIDIA A100-SXM4-80GB", 0.0, 0.0, 81920.0)
    cluster = RayClusterState(nodes=(RayNode("a", "x", "w", False, True, 8, 2, (device,) * 8),
                                     RayNode("b", "x", "v", False, False, 8, 0, ())), demands=())
    look = snap(ray=[("prod", cluster)])
    (f,) = ray_idle(look, look_at(look))
    assert f.warning.idle_gpus == 6 and f.about == {"ray-free/prod/a"}  # the dead node is not idle
    assert "minReplicas" in f.warning.remedy and not any(k in f.warning.remedy for k in KEY_WORDS)


def test_low_utilization_kinds_for_jobs_and_pods():
    from mltop.cost.kinds import low_utilization_jobs, low_utilization_pods
    from mltop.model import GpuSample

    hog = replace(job("hog", JobState.RUNNING, gpus=2), gpu_utilization=1.0, cancellable=True)
    node = replace(gpu_node("n", free=0), pods=(GpuPod("ml", "trainer", 8, "Running", "Job/t"),))
    look = replace(snap([node], jobs=[hog]), gpu_samples=(GpuSample("n", "0", "u", None, 2.0, "ml", "trainer"),))
    from mltop.cost.context import with_measurements

    look = with_measurements(look)
    ctx = look_at(look)
    (j,) = low_utilization_jobs(look, ctx)
    assert j.warning.remedy_action == "jobs.cancel" and j.warning.remedy_target == hog.key
    assert j.warning.remedy == "ask its owner, or stop it"
    (p,) = low_utilization_pods(look, ctx)
    assert p.warning.target == node.key and p.warning.cost_per_hour == pytest.approx(H100_NODE)
    assert p.warning.remedy_action is None


def test_waiting_jobs_kind_and_a_dead_ray_node_does_not_hide_the_wait():
    from mltop.cost.kinds import waiting_jobs

    device = GpuDevice(0, "NVIDIA A100-SXM4-80GB", 0.0, 0.0, 81920.0)
    cluster = RayClusterState(nodes=(RayNode("a", "x", "w", False, True, 8, 6, (device,) * 8),
                                     RayNode("b", "x", "v", False, True, 8, 6, (device,) * 8),
                                     RayNode("dead", "x", "d", False, False, 8, None, ())), demands=())
    big = job("big", JobState.PENDING, gpus=4, cluster="prod")
    look = snap(jobs=[big], ray=[("prod", cluster)])
    (f,) = waiting_jobs(look, look_at(look))
    assert f.warning.kind == "idle-while-waiting" and f.about == {"ray-free/prod/a", "ray-free/prod/b"}
    assert f.warning.cost_per_hour == pytest.approx(4 * A100_GPU) and "most free on one node is 2" in f.warning.message
    full = gpu_node("full", free=0, total=4)
    look = snap([full], jobs=[waiting("huge", 8)])
    (f,) = waiting_jobs(look, look_at(look))
    assert f.warning.kind == "no-capacity-coming" and f.about == frozenset() and f.warning.cost_per_hour is None
