"""The cost engine's per-node memo (mltop/cost/node_costs.py) answers as if nothing were remembered:
a node record that is a new object, an OpenCost price that changed or another price book is worked
out again, and evaluations over changing nodes equal evaluations from a fresh history's memo."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from mltop.cost import evaluate
from mltop.cost.history import IdleHistory
from mltop.cost.node_costs import NodeCosts, node_cost
from mltop.cost.policy import CostPolicy
from mltop.model import GpuNode, GpuPod, NodeCost, Snapshot
from mltop.prices import PriceBook, price_book
from tests.conftest import FIXED_NOW


def gpu_node(i: int, allocated: float = 4.0) -> GpuNode:
    return GpuNode(key=f"kubernetes/c/n{i}", cluster="c", name=f"n{i}", pool="p", gpu_model="NVIDIA-H100-80GB-HBM3",
                   gpu_resource="nvidia.com/gpu", gpus_total=8, gpus_allocatable=8, gpus_allocated=allocated,
                   ready=True, schedulable=True, instance_type="p5.48xlarge", zone="us-east-1a",
                   capacity_type="on-demand", created_at=FIXED_NOW - timedelta(days=2),
                   pods=(GpuPod("ml", f"p{i}", allocated, "Running", "Job/x"),) if allocated else ())


def test_the_same_record_is_answered_from_memory_and_a_new_one_afresh():
    book, costs = price_book(), NodeCosts()
    a, b = gpu_node(1), gpu_node(2)
    first = costs([a, b], book, {})
    again = costs([a, b], book, {})
    assert again[a.key] is first[a.key]  # remembered
    changed = replace(b, gpus_allocated=0.0, pods=())
    after = costs([a, changed], book, {})
    assert after[a.key] is first[a.key]
    assert after[b.key] == node_cost(changed, book, None) and after[b.key].free == 8
    assert after[b.key].unallocated is not None and after[b.key].unallocated.gpus == 8


def test_an_opencost_price_or_another_price_book_prices_the_node_again():
    book, costs = price_book(), NodeCosts()
    a = gpu_node(1)
    listed = costs([a], book, {})[a.key]
    own = costs([a], book, {"n1": NodeCost("n1", total_per_hour=10.0)})[a.key]
    assert own.price.per_hour == 10.0 and listed.price.per_hour != 10.0
    other = PriceBook(user_instances={"p5.48xlarge": 1.0})
    assert costs([a], other, {})[a.key].price.per_hour == 1.0


def test_evaluations_over_changing_nodes_equal_evaluations_without_memory():
    book, policy = price_book(), CostPolicy()
    nodes = [gpu_node(i, allocated=float(i % 3) * 4) for i in range(30)]
    remembered = IdleHistory()
    for step in range(6):
        now = FIXED_NOW + timedelta(minutes=20 * step)
        nodes[step] = replace(nodes[step], gpus_allocated=0.0, pods=())  # one node frees its GPUs per step
        snapshot = Snapshot(generated_at=now, sources=(), jobs=(), ray_clusters=(), nodes=tuple(nodes), pools=())
        report = evaluate(snapshot, book, policy, remembered, now)
        fresh = IdleHistory(_since=dict(remembered._since), _busy_seen=set(remembered._busy_seen))
        fresh_report = evaluate(snapshot, book, policy, fresh, now)
        assert report.warnings == fresh_report.warnings
        assert report.node_idle_costs == fresh_report.node_idle_costs and report.idle_rate == fresh_report.idle_rate
