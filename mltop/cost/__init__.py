"""The idle-cost engine: which GPUs are paid for and doing nothing, since when, what it costs,
and what to do about it. Pure: records, prices, a policy, the idle history and a time in;
warnings and rates out. No I/O, no Textual.

Idle comes in two kinds (as OpenCost defines idle: capacity cost minus what workloads use):
- unallocated: GPUs on a node that no running pod requests; logical Ray GPUs no task holds;
- allocated but unused: GPUs a job holds while its measured utilization stays below a threshold
  for longer than a window.

How each total is computed is said once, on CostReport (mltop/cost/rates.py).

Modules: policy (KINDS, CostPolicy), history (IdleHistory), rates (prices, CostReport),
context (one look at the platform, shared by the kinds), kinds (one function per warning kind).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from mltop.cost.context import CostContext, Finding, observe, ray_free_key, with_measurements
from mltop.cost.history import IdleHistory
from mltop.cost.kinds import CHECKS
from mltop.cost.policy import KINDS, CostPolicy
from mltop.cost.rates import CostReport, full_sum, known_sum
from mltop.cost.teams import TeamCost, team_costs
from mltop.model import Snapshot, ray_node_key
from mltop.prices import PriceBook

__all__ = ["KINDS", "CostPolicy", "CostReport", "IdleHistory", "TeamCost", "evaluate"]


def evaluate(snapshot: Snapshot, prices: PriceBook, policy: CostPolicy, history: IdleHistory, now: datetime) -> CostReport:
    """Every warning the policy asks for, and the totals (see CostReport), as of `now`."""
    snapshot = with_measurements(snapshot)
    ctx = observe(snapshot, prices, policy, history, now)
    findings = [f for check in CHECKS for f in check(snapshot, ctx) if f.warning.kind in policy.kinds]
    findings.sort(key=lambda f: (-(f.warning.cost_per_hour or 0.0), f.warning.kind, f.warning.target))
    idle_rate = ctx.cost_of(ctx.idle) or 0.0
    history.add_waste(now, idle_rate, [(f.key, f.warning.idle_since, f.warning.cost_per_hour)
                                       for f in findings if f.warning.idle_since_is_lower_bound],
                      groups={k: g.cost_per_hour for k, g in ctx.idle.items()})
    node_idle = {key: c.idle_per_hour for key, c in ctx.node_costs.items()}
    ray_prices = {ray_node_key(name, node_id): price for (name, node_id), price in ctx.ray_prices.items()}
    pool_nodes = history.kept.membership.member_keys(snapshot.nodes, snapshot.pools)
    return CostReport(
        warnings=tuple(f.warning for f in findings),
        node_prices=ctx.node_prices,
        burn_rate=_burn(snapshot, ctx),
        idle_rate=idle_rate,
        warned_rate=ctx.cost_of(_about(findings)) or 0.0,
        wasted_today=history.wasted_today,
        unpriced_nodes=sum(1 for p in ctx.node_prices.values() if p.per_hour is None) + sum(
            1 for name, c in snapshot.ray_clusters for n in c.nodes
            if n.alive and n.gpus_total and ctx.ray_prices[(name, n.node_id)].per_hour is None),
        node_idle_costs=node_idle | _ray_node_idle(snapshot, ctx),
        pool_idle_costs={p: full_sum(node_idle[n] for n in nodes) for p, nodes in pool_nodes.items()},
        pool_prices={p: full_sum(ctx.node_prices[n].per_hour for n in nodes) for p, nodes in pool_nodes.items()},
        currency=prices.currency,
        ray_node_prices=ray_prices,
        teams=team_costs(snapshot, ctx),
    )


def _ray_node_idle(snapshot: Snapshot, ctx: CostContext) -> dict[str, float | None]:
    """Each Ray GPU node's idle $/h under its nodes-panel key: the GPUs idle_rate already counts as
    free in Ray, none new. 0 when none is free; None when its price or what it holds is unknown."""
    out: dict[str, float | None] = {}
    for name, cluster in snapshot.ray_clusters:
        for node in cluster.nodes:
            if not node.gpus_total:
                continue
            idle = ctx.idle.get(ray_free_key(name, node.node_id))
            if idle is not None:
                value = idle.cost_per_hour
            elif node.gpus_used is None or ctx.ray_prices[(name, node.node_id)].per_hour is None:
                value = None
            else:
                value = 0.0
            out[ray_node_key(name, node.node_id)] = value
    return out


def _about(findings: Iterable[Finding]) -> set[str]:
    out: set[str] = set()
    seen: set[int] = set()
    for f in findings:  # pods waiting alike share one `about`: each set is added once
        if id(f.about) not in seen:
            seen.add(id(f.about))
            out |= f.about
    return out


def _burn(snapshot: Snapshot, ctx: CostContext) -> float:
    """$/h of every priced GPU node: Kubernetes nodes, and live Ray nodes with GPUs that are not pods
    on those nodes (a KubeRay pod's GPUs are paid for in its Kubernetes node's price)."""
    kube = sum((p.per_hour for p in ctx.node_prices.values() if p.per_hour is not None), 0.0)
    if not snapshot.ray_clusters:
        return kube
    pods = {p.name for n in snapshot.nodes for p in n.pods}
    ray = known_sum(ctx.ray_prices[(name, n.node_id)].per_hour for name, c in snapshot.ray_clusters
                    for n in c.nodes if n.alive and n.gpus_total and n.hostname not in pods)
    return kube + (ray or 0.0)
