"""Cost per team: what each team's GPUs cost now (burn) and how much of that is idle. Pure.

A team is the Kubernetes namespace of the pods holding GPUs (KFP runs and KubeRay clusters run in
pods, so their namespace is theirs), or, for a Ray job on a Ray cluster outside Kubernetes, the
owner its submitter named. GPUs no one holds (unallocated, unusable, free in Ray outside
Kubernetes) belong to no team: the "unassigned" row.

Each GPU counts once, in the same groups as the engine's idle rate (mltop/cost/rates.py), so the
teams' idle adds up to `CostReport.idle_rate` and, for Kubernetes nodes, their burn to the nodes'
prices. An idle reservation (GPUs held under the low-utilization threshold for the whole window,
or Ray GPUs of a KubeRay pod that no task uses) is charged to the namespace that holds them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from mltop.cost.context import CostContext, _ray_job_rate, job_util_key, ray_free_key
from mltop.cost.node_costs import UNASSIGNED
from mltop.cost.rates import known_sum
from mltop.model import JobState, Snapshot

NO_OWNER = "(no owner)"


@dataclass(frozen=True)
class TeamCost:
    team: str  # a namespace, a Ray job owner, or "unassigned"
    kind: str  # "namespace" | "owner" | "unassigned"
    gpus: float  # GPUs it holds now (unassigned: GPUs nobody holds)
    burn_per_hour: float | None  # $/h of those GPUs; None: none of them has a known price
    idle_per_hour: float | None  # of that, $/h idle now (idle reservations; unassigned: all of it)


@dataclass
class _Tally:
    gpus: float = 0.0
    burn: list[float | None] = field(default_factory=list)
    idle: list[float | None] = field(default_factory=list)


def team_costs(snapshot: Snapshot, ctx: CostContext) -> tuple[TeamCost, ...]:
    """Burn and idle per team, most expensive first (see the module's docstring)."""
    tally: dict[tuple[str, str], _Tally] = {}

    idle = ctx.idle

    def add(team: tuple[str, str], gpus: float, burn: float | None, idle_keys: Iterable[str]) -> None:
        t = tally.get(team)
        if t is None:
            t = tally[team] = _Tally()
        t.gpus += gpus
        t.burn.append(burn)
        for key in idle_keys:
            if key in idle:
                t.idle.append(idle[key].cost_per_hour)

    for node in snapshot.nodes:  # what each node adds, worked out once per node record (node_costs.py)
        for part in ctx.node_costs[node.key].team_parts:
            add(*part)
    # KubeRay: a Ray node's hostname is its pod's name
    hosting = {p.name: p.namespace for n in snapshot.nodes for p in n.pods} if snapshot.ray_clusters else {}
    hosted = _ray_nodes(snapshot, ctx, hosting, add)
    for job in snapshot.jobs:
        if job.state is not JobState.RUNNING or not job.gpus:
            continue
        if ctx.policy.wait_model(job.source) == "ray-cluster" and job.cluster not in hosted:
            add((job.owner or NO_OWNER, "owner"), job.gpus, _ray_job_rate(job, snapshot, ctx), [job_util_key(job)])
            continue
        # Its GPUs are pods' GPUs, already counted: only its idle reservation is added, to its namespace.
        namespace = hosted.get(job.cluster) or job.namespace
        team = (namespace, "namespace") if namespace else (job.owner or NO_OWNER, "owner")
        if job_util_key(job) in ctx.idle:
            add(team, 0.0, None, [job_util_key(job)])
    rows = [TeamCost(team, kind, t.gpus, known_sum(t.burn), known_sum(t.idle) if t.idle else 0.0)
            for (team, kind), t in tally.items()]
    rows.sort(key=lambda r: (-(r.burn_per_hour or 0.0), r.kind == UNASSIGNED, r.team))
    return tuple(rows)


Add = Callable[[tuple[str, str], float, "float | None", Iterable[str]], None]


def _ray_nodes(snapshot: Snapshot, ctx: CostContext, hosting: dict[str, str], add: Add) -> dict[str, str]:
    """Add Ray's free GPUs: a KubeRay pod's to its namespace (an idle reservation), a node outside
    Kubernetes's to "unassigned". Returns Ray cluster name -> the namespace of the pods hosting it."""
    hosted: dict[str, str] = {}
    for name, cluster in snapshot.ray_clusters:
        for node in cluster.nodes:
            if not node.alive or not node.gpus_total:
                continue
            key = ray_free_key(name, node.node_id)
            if node.hostname in hosting:
                hosted.setdefault(name, hosting[node.hostname])
                if key in ctx.idle:
                    add((hosting[node.hostname], "namespace"), 0.0, None, [key])
            elif key in ctx.idle:
                add((UNASSIGNED, UNASSIGNED), ctx.idle[key].gpus, ctx.idle[key].cost_per_hour, [key])
    return hosted
