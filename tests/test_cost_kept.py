"""What the idle-cost engine keeps between evaluations (mltop/cost/kept.py) never changes an answer.

A cluster changes a few nodes per step (pods move, utilization is measured, nodes come and go,
pools gain and lose members or become scalable, the price book is swapped); each step is evaluated
twice: by an engine that keeps its answers per record, and by one that starts from nothing each
time. The reports must be the same, and the keeping engine must really have kept (it prices only
the nodes whose records are new).
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import timedelta

from mltop.cost import evaluate
from mltop.cost import node_costs as node_costs_module
from mltop.cost.context import Snapshot
from mltop.cost.history import IdleHistory
from mltop.cost.kept import Kept
from mltop.cost.policy import CostPolicy
from mltop.model import GpuNode, GpuPod, Pool
from mltop.prices import price_book
from mltop.registry import wait_models
from tests.test_cost_at_size import NOW, random_cluster


def pools_of(nodes: list[GpuNode], scalable: set[str]) -> tuple[Pool, ...]:
    members: dict[str, list[str]] = {}
    for node in nodes:
        members.setdefault(node.pool or "", []).append(node.name)
    return tuple(Pool(key=f"kubernetes/c/nodepool/-/{name}", cluster="c", kind="nodepool", name=name, namespace=None,
                      replicas=len(names), ready=len(names), min=0, max=10, gpus_per_replica=None,
                      scalable=name in scalable, members=tuple(names))
                 for name, names in sorted(members.items()))


def changed(node: GpuNode, rng: random.Random) -> GpuNode:
    """The node with its GPU pods moved: some freed, some taken, some measured busy or idle."""
    free = rng.choice((0.0, 1.0, node.gpus_total))
    pods = tuple(GpuPod("ml", f"{node.name}-{k}", 1.0, "Running", "Job/x",
                        utilization=rng.choice((None, 3.0, 95.0)))
                 for k in range(int(node.gpus_total - free)))
    return replace(node, gpus_allocated=node.gpus_total - free, pods=pods)


def test_an_engine_that_keeps_answers_as_one_that_starts_afresh(monkeypatch):
    rng = random.Random(7)
    nodes, jobs = random_cluster(3, count=150, pending=60)
    nodes = [changed(n, rng) if i % 3 == 0 else n for i, n in enumerate(nodes)]
    scalable = {"pool-1", "pool-3"}
    policy = CostPolicy(waits_on=wait_models())
    prices = price_book()
    keeping, afresh = IdleHistory(), IdleHistory()
    priced: list[int] = []
    original = node_costs_module.node_cost

    def counted(*args, **kwargs):
        priced[-1] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(node_costs_module, "node_cost", counted)
    kinds: set[str] = set()
    for step in range(16):
        now = NOW + timedelta(minutes=7 * step)  # idle thresholds and utilization windows get crossed
        for i in rng.sample(range(len(nodes)), 4):
            if nodes[i].pool != "pool-1":
                nodes[i] = changed(nodes[i], rng)
        if step == 1:  # pool-1 empties: an idle pool once the threshold has passed
            nodes = [replace(n, gpus_allocated=0.0, pods=(), ready=True) if n.pool == "pool-1" else n for n in nodes]
            nodes[0] = replace(nodes[0], ready=False, gpus_allocatable=nodes[0].gpus_total - 1)  # unusable GPUs
        if step == 5:
            nodes.pop(rng.randrange(len(nodes)))  # a node is gone ...
        if step == 8:  # ... one joins pool-2, one leaves pool-4
            nodes.append(replace(nodes[0], key="kubernetes/c/new", name="node-new", pool="pool-2", pods=()))
            nodes = [replace(n, pool="pool-9") if n.pool == "pool-4" and n.name.endswith("4") else n for n in nodes]
        if step == 10:
            scalable = {"pool-2"}
        if step == 12:
            prices = price_book(per_gpu={"NVIDIA-H100-80GB-HBM3": 2.5})
        snapshot = Snapshot(generated_at=now, sources=(), jobs=tuple(jobs), ray_clusters=(), nodes=tuple(nodes),
                            pools=pools_of(nodes, scalable))
        priced.append(0)
        kept_report = evaluate(snapshot, prices, policy, keeping, now)
        kept_priced = priced[-1]
        afresh.kept = Kept()
        assert evaluate(snapshot, prices, policy, afresh, now) == kept_report, f"step {step}"
        kinds |= {w.kind for w in kept_report.warnings}
        if step not in (0, 1, 8, 12):  # everything new; new records for a pool's nodes (1, 8); new prices
            assert kept_priced <= 6, f"step {step}: {kept_priced} nodes priced again for 4 or 5 changed"
    assert kinds == {"idle-pool", "idle-node", "unusable-gpus", "idle-while-waiting", "low-utilization"}
