"""One function per warning kind: (snapshot, context) in, findings out. Pure.

Remedies are said in words ("scale it down", "stop it"); the action that carries one out is named
by its binding id (mltop.keys), never by a key, so each screen shows the user's own key.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from datetime import datetime
from functools import partial

from mltop.cost.context import CostContext, Finding, job_util_key, unallocated_key
from mltop.cost.kept import PerRecord
from mltop.cost.history import hours
from mltop.format import gpus as g
from mltop.model import GpuNode, IdleWarning, Job, JobState, Pool, Snapshot

CANCEL_JOB = "jobs.cancel"
SCALE_POOL = "pools.scale"


def finding(kind: str, ctx: CostContext, *, key: str, target: str, name: str, cluster: str, gpus: float,
            since: tuple[datetime | None, bool], about: Iterable[str], remedy: str, message: str,
            action: str | None = None, action_target: str | None = None) -> Finding:
    """A warning about the idle GPU groups `about`, priced from the context."""
    about = about if isinstance(about, frozenset) else frozenset(about)
    rate = ctx.cost_of(about)
    return Finding(IdleWarning(
        kind=kind, target=target, target_name=name, cluster=cluster, idle_gpus=gpus,
        idle_since=since[0], idle_since_is_lower_bound=since[1], cost_per_hour=rate,
        wasted=None if rate is None else rate * hours(since[0], ctx.now), remedy=remedy, message=message,
        remedy_action=action, remedy_target=action_target if action else None,
    ), about, key)


def pool_warned(pool: Pool, ctx: CostContext) -> bool:
    """A fully idle pool is one idle-pool warning, instead of one idle-node warning per node."""
    return "idle-pool" in ctx.policy.kinds and ctx.idle_long_enough(pool.key) is not None


def idle_pools(snapshot: Snapshot, ctx: CostContext) -> list[Finding]:
    out = []
    for pool in snapshot.pools:
        members = ctx.pool_members.get(pool.key, ())
        since = ctx.idle_long_enough(pool.key)
        if not members or since is None:
            continue
        gpus = sum(n.gpus_allocatable for n in members)
        if pool.scalable:
            floor = f" (its autoscaler minimum is {pool.min}: lower that annotation to go further)" if pool.min else ""
            remedy, action = f"scale {pool.name} down{floor}", SCALE_POOL
        else:
            remedy, action = f"resize it where it is managed: {pool.why_not_scalable or 'outside Kubernetes'}", None
        out.append(finding(
            "idle-pool", ctx, key=pool.key, target=pool.key, name=pool.name, cluster=pool.cluster, gpus=gpus,
            since=since, about=[unallocated_key(n) for n in members], remedy=remedy,
            message=f"all {g(gpus)} GPUs of {pool.kind} {pool.name} idle ({len(members)} nodes)"
                    + (f"; its minimum of {pool.min} keeps them alive" if pool.min else ""),
            action=action, action_target=pool.key))
    return out


def idle_nodes(snapshot: Snapshot, ctx: CostContext) -> list[Finding]:
    out = []
    for node in snapshot.nodes:
        cost = ctx.node_costs[node.key]
        if cost.free <= 0 or (since := ctx.idle_long_enough(node.key)) is None:
            continue
        pool = ctx.pool_of_node.get(node.key)
        if pool is not None and pool_warned(pool, ctx):
            continue
        price = cost.price
        drain = f"drain {node.name} (kubectl drain {node.name} --ignore-daemonsets)"
        if pool is not None and pool.scalable:
            remedy, action = f"scale {pool.name} down, or drain {node.name}", SCALE_POOL
        elif pool is not None and pool.why_not_scalable:
            remedy, action = f"{drain}; {pool.why_not_scalable}", None
        else:
            remedy, action = f"{drain} and remove it", None
        out.append(finding(
            "idle-node", ctx, key=node.key, target=node.key, name=node.name, cluster=node.cluster,
            gpus=cost.free, since=since, about=[cost.unallocated_key], remedy=remedy,
            message=f"{node.name} has {g(cost.free)} of {g(node.gpus_total)} GPUs unallocated"
                    + ("" if price.per_hour is not None else f" ({price.basis})"),
            action=action, action_target=pool.key if pool is not None else None))
    return out


def unusable(snapshot: Snapshot, ctx: CostContext) -> list[Finding]:
    """GPUs paid for that no pod can get: the device plugin is not registered or reports GPUs
    unhealthy (capacity above allocatable), or the node is NotReady (then its unallocated GPUs too).
    A node younger than the idle threshold is left alone: its device plugin may still be starting.
    Missing allocatable on an older node is warned at once (one look is enough: `--once` says it);
    NotReady alone waits for the threshold, as kubelets flap."""
    out = []
    for node in snapshot.nodes:
        cost = ctx.node_costs[node.key]
        lost = cost.unusable
        gpus = lost + (cost.free if not node.ready else 0.0)
        if gpus <= 0:
            continue  # most nodes: nothing unusable
        since = ctx.idle_long_enough(cost.unusable_key)
        young = node.created_at is not None and ctx.now - node.created_at < ctx.policy.idle_threshold
        if young or (since is None and (node.created_at is None or not lost)):
            continue
        seen = ctx.since.get(cost.unusable_key, (ctx.now, True))
        about = [cost.unusable_key] + ([] if node.ready else [cost.unallocated_key])
        out.append(finding(
            "unusable-gpus", ctx, key=cost.unusable_key, target=node.key, name=node.name, cluster=node.cluster,
            gpus=gpus, since=(seen[0], seen[1]), about=about,
            remedy=f"check the device plugin / GPU operator pods on {node.name} "
                   f"(kubectl get pods -A -o wide --field-selector spec.nodeName={node.name}), "
                   f"or cordon and drain it (kubectl drain {node.name} --ignore-daemonsets)",
            message=f"{node.name}: {g(gpus)} of {g(node.gpus_total)} GPUs unusable: {unusable_cause(node)}"))
    return out


def unusable_cause(node: GpuNode) -> str:
    """The likely cause, from the node's readiness and its capacity against allocatable."""
    counts = f"(capacity {g(node.gpus_total)}, allocatable {g(node.gpus_allocatable)})"
    if not node.ready:
        said = next((m for t, _, m in node.conditions if t == "Ready" and m), "")
        return "NotReady" + (f" ({said[:80]})" if said else "")
    if node.gpus_allocatable <= 0:
        return f"device plugin not registered {counts}"
    return f"GPUs marked unhealthy {counts}"


def ray_idle(snapshot: Snapshot, ctx: CostContext) -> list[Finding]:
    out = []
    for name, _ in snapshot.ray_clusters:
        about = ctx.ray_free.get(name, ())
        since = ctx.idle_long_enough(f"ray/{name}")
        if not about or since is None:
            continue
        gpus = ctx.gpus_of(about)
        out.append(finding(
            "ray-idle", ctx, key=f"ray/{name}", target=f"ray/{name}", name=name, cluster=name, gpus=gpus,
            since=since, about=about,
            # The Ray autoscaler judges idleness by logical resources: a minimum is what keeps these.
            remedy="the Ray autoscaler releases idle workers after idleTimeoutSeconds; if it keeps them, "
                   "lower the worker group's minReplicas or stop the cluster",
            message=f"Ray cluster {name} holds {g(gpus)} GPUs that no task or actor uses"))
    return out


def low_utilization_jobs(snapshot: Snapshot, ctx: CostContext) -> list[Finding]:
    out = []
    for job in snapshot.jobs:
        key = job_util_key(job)
        since = ctx.low_for_the_window(key)
        if since is None or key not in ctx.idle:
            continue
        out.append(finding(
            "low-utilization", ctx, key=key, target=job.key, name=job.name, cluster=job.cluster,
            gpus=job.gpus or 0.0, since=since, about=[key],
            remedy="ask its owner, or stop it" if job.cancellable else "ask its owner to release the GPUs",
            message=f"{job.name} holds {g(job.gpus)} GPUs at {job.gpu_utilization or 0:.0f}% utilization"
                    + (f" ({job.owner})" if job.owner else ""),
            action=CANCEL_JOB if job.cancellable else None, action_target=job.key))
    return out


def low_utilization_pods(snapshot: Snapshot, ctx: CostContext) -> list[Finding]:
    out = []
    for node, pod, key in ctx.measured_pods:  # the only pods that can be under the threshold
        since = ctx.low_for_the_window(key)
        if since is None or key not in ctx.idle:
            continue
        out.append(finding(
            "low-utilization", ctx, key=key, target=node.key, name=f"{pod.namespace}/{pod.name}",
            cluster=node.cluster, gpus=pod.gpus, since=since, about=[key],
            remedy=f"ask the owner ({pod.owner or 'unknown'}) to release the GPUs or stop the pod",
            message=f"pod {pod.namespace}/{pod.name} on {node.name} holds {g(pod.gpus)} GPUs at "
                    f"{pod.utilization or 0:.0f}% utilization"))
    return out


def waiting_jobs(snapshot: Snapshot, ctx: CostContext) -> list[Finding]:
    """GPUs idle while a GPU job waits for a minute or more (idle-while-waiting), or demand that no
    node can take with nothing scaling up (no-capacity-coming)."""
    out = []
    clusters: dict[str, _Cluster] = {}  # built once per evaluation, not once per waiting pod
    verdicts: dict[tuple[object, ...], _Verdict] = {}  # pods alike (placement, GPUs) get one answer
    for job in snapshot.jobs:
        if job.state is not JobState.PENDING or not job.gpus or (job.queued_seconds(ctx.now) or 0) < 60:
            continue
        model = ctx.policy.wait_model(job.source)
        if model == "nodes":
            cluster = clusters.get(job.cluster)
            if cluster is None:
                nodes = [n for n in snapshot.nodes if n.cluster == job.cluster]
                cluster = clusters[job.cluster] = _Cluster(nodes, ctx.kept.free_order(job.cluster, nodes),
                                                           ctx.kept.per_record("labels"))
            found = _why_pod_waits(job, cluster, ctx, verdicts)
        elif model == "ray-cluster":
            found = _why_ray_job_waits(job, snapshot, ctx)
        else:
            found = None
        if found is not None:
            out.append(found)
    return out


CHECKS = (idle_pools, idle_nodes, unusable, ray_idle, low_utilization_jobs, low_utilization_pods, waiting_jobs)


def _waiting(kind: str, job: Job, ctx: CostContext, about: Iterable[str], gpus: float, message: str,
             remedy: str) -> Finding:
    return finding(kind, ctx, key=job.key, target=job.key, name=job.name, cluster=job.cluster, gpus=gpus,
                   since=(job.submitted_at, False), about=about, remedy=remedy, message=message)


class _Cluster:
    """One cluster's GPU nodes, indexed once per evaluation: which have free GPUs (most free
    first: `by_free`, the nodes in kept.free_first order, kept between evaluations), the largest,
    whether one is not Ready, and each node's labels as a dict (`labels`, kept per node record)."""

    def __init__(self, nodes: list[GpuNode], by_free: list[GpuNode], labels: PerRecord[dict[str, str]]) -> None:
        self.nodes = nodes
        self.idle = by_free[:bisect.bisect_left(by_free, True, key=lambda n: n.gpus_free <= 0)]
        self.free = {n.key: n.gpus_free for n in self.idle}
        self.largest = max((n.gpus_allocatable for n in nodes), default=0.0)
        self.not_ready = any(not n.ready for n in nodes)
        self.labels = labels

    def fits(self, job: Job, node: GpuNode) -> str | None:
        return _fits(job, node, self.labels(node, None, partial(dict, node.labels)))


# A verdict for every waiting pod alike: None (it fits: nothing to explain), or (kind, GPUs idle, the
# reason after "waits for N: ", the idle groups it is about).
_Verdict = "tuple[str, float, str, frozenset[str]] | None"


def _fits(job: Job, node: GpuNode, labels: dict[str, str] | None = None) -> str | None:
    """Why `job` cannot run on `node` as it is; None when it could."""
    labels = dict(node.labels) if labels is None else labels
    for key, value in job.placement:
        if labels.get(key) != value:
            return f"it requires {key}={value}, which {node.name} does not have"
    if "*" not in job.tolerates:
        for taint in node.taints:
            key = taint.split("=", 1)[0].split(":", 1)[0]
            if taint.endswith((":NoSchedule", ":NoExecute")) and key not in job.tolerates:
                return f"{node.name} has the taint {taint}, which it does not tolerate"
    if not node.ready or not node.schedulable:
        return f"{node.name} is {'not Ready' if not node.ready else 'cordoned'}"
    return None


def _why_pod_waits(job: Job, cluster: _Cluster, ctx: CostContext,
                   verdicts: dict[tuple[object, ...], _Verdict]) -> Finding | None:
    wanted = job.gpus or 0
    signature = (job.cluster, wanted, job.placement, job.tolerates, bool(job.held_by))
    if signature not in verdicts:
        verdicts[signature] = _held_verdict(job, cluster) if job.held_by else _pod_verdict(job, cluster, wanted)
    verdict = verdicts[signature]
    if verdict is None:
        return None
    kind, idle_gpus, reason, about = verdict
    if kind == "no-capacity-coming":
        return _waiting(kind, job, ctx, (), 0.0,
                        f"{job.name} waits for {g(wanted)} GPUs and no node can take it; nothing is scaling up",
                        "add capacity: scale a pool that has this GPU, or check the autoscaler")
    if job.held_by:  # Kueue holds it for quota: idle GPUs it could use stay idle for that reason
        return _waiting(kind, job, ctx, about, idle_gpus,
                        f"{g(idle_gpus)} GPUs idle while {job.name} waits for {g(job.gpus)}: held by quota: {job.held_by}",
                        "raise the ClusterQueue's nominal quota, let it borrow through a cohort, or stop a workload in it")
    return _waiting(kind, job, ctx, about, idle_gpus, f"{g(idle_gpus)} GPUs idle while {job.name} waits for {g(wanted)}: {reason}",
                    "fix the job's placement (selector, tolerations, GPU count) or move the idle capacity")


def _pod_verdict(job: Job, cluster: _Cluster, wanted: float) -> _Verdict:
    idle = cluster.idle
    if not idle:
        if any(n.gpus_allocatable >= wanted and cluster.fits(job, n) is None for n in cluster.nodes) or cluster.not_ready:
            return None  # it fits once something finishes (an ordinary queue), or a node is coming up
        return ("no-capacity-coming", 0.0, "", ())
    reasons = []
    for node in idle:
        why = cluster.fits(job, node)
        if why is None and cluster.free[node.key] < wanted:
            why = f"{node.name} has only {g(cluster.free[node.key])} free"
        if why is None:
            return None  # the scheduler will place it: nothing to explain
        reasons.append(why)
    idle_gpus = sum(cluster.free[n.key] for n in idle)
    if wanted > cluster.largest:  # not fragmentation: no node could ever hold it
        reason = f"no node has {g(wanted)} GPUs for one pod (the largest has {g(cluster.largest)})"
    elif idle_gpus >= wanted and all("only" in r for r in reasons):
        reason = f"{g(idle_gpus)} GPUs are free but scattered across {len(idle)} nodes (fragmentation)"
    else:
        reason = reasons[0] + (f" (and {len(reasons) - 1} more nodes with free GPUs)" if len(reasons) > 1 else "")
    return ("idle-while-waiting", idle_gpus, reason, frozenset(unallocated_key(n) for n in idle))


def _held_verdict(job: Job, cluster: _Cluster) -> _Verdict:
    idle = [n for n in cluster.idle if cluster.fits(job, n) is None]
    if not idle:
        return None  # nothing idle that it could use: an ordinary queue
    return ("idle-while-waiting", sum(cluster.free[n.key] for n in idle), "",
            frozenset(unallocated_key(n) for n in idle))


def _why_ray_job_waits(job: Job, snapshot: Snapshot, ctx: CostContext) -> Finding | None:
    wanted = job.gpus or 0
    cluster = dict(snapshot.ray_clusters).get(job.cluster)
    if cluster is None:
        return None
    alive = [n for n in cluster.nodes if n.alive]
    largest = max((n.gpus_total for n in alive), default=0)
    if wanted > largest:
        return _waiting("no-capacity-coming", job, ctx, (), 0.0,
                        f"{job.name} waits for {g(wanted)} GPUs on one node; the largest node of {job.cluster} "
                        f"has {g(largest)} and Ray will fail it at its start timeout",
                        "ask for fewer GPUs per job (spread the work over tasks), or add bigger nodes")
    about = ctx.ray_free.get(job.cluster, ())
    idle = ctx.gpus_of(about)
    best = max((n.gpus_total - (n.gpus_used or 0) for n in alive), default=0)
    if idle <= 0 or best >= wanted:
        return None  # nothing idle, or Ray will place it
    why = (f"{g(idle)} GPUs are free but no node has {g(wanted)} (the most free on one node is {g(best)})"
           if idle >= wanted else f"only {g(idle)} GPUs are free")
    return _waiting("idle-while-waiting", job, ctx, about, idle,
                    f"{g(idle)} Ray GPUs idle while {job.name} waits for {g(wanted)}: {why}",
                    "ask for GPUs per task rather than per job, or add a node that fits it")
