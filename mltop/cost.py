"""The idle-cost engine: which GPUs are paid for and doing nothing, since when, what it costs,
and what to do about it. Pure: records, prices, a policy, the idle history and a time in;
warnings and rates out. No I/O, no Textual.

Idle comes in two kinds (as OpenCost defines idle: capacity cost minus what workloads use):
- unallocated: GPUs on a node that no running pod requests; logical Ray GPUs no task holds;
- allocated but unused: GPUs a job holds while its measured utilization stays below a threshold
  for longer than a window.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from mltop.format import gpus as g
from mltop.model import GpuNode, Job, JobState, Pool, RayClusterState, Snapshot
from mltop.prices import Price, PriceBook

KINDS = (
    "idle-node",  # a GPU node idle longer than the threshold
    "idle-pool",  # a pool whose GPUs are all idle (its minimum may be what keeps them alive)
    "ray-idle",  # a Ray cluster holding GPUs no task uses
    "low-utilization",  # a job holding GPUs at low measured utilization
    "idle-while-waiting",  # GPUs idle while GPU jobs wait: the most expensive kind
    "no-capacity-coming",  # GPU demand waiting with nothing scaling up
)


@dataclass(frozen=True)
class CostPolicy:
    idle_threshold: timedelta = timedelta(minutes=15)
    low_utilization_percent: float = 10.0
    low_utilization_window: timedelta = timedelta(minutes=10)
    kinds: frozenset[str] = frozenset(KINDS)


@dataclass(frozen=True)
class IdleWarning:
    kind: str
    target: str  # the key of the node, pool, job or cluster it is about
    target_name: str
    cluster: str
    idle_gpus: float
    idle_since: datetime | None
    idle_since_is_lower_bound: bool
    cost_per_hour: float | None  # None: no known price (never counted as free)
    wasted: float | None  # so far, since idle_since
    remedy: str
    message: str
    remedy_key: str | None = None  # the key that carries out the remedy, on remedy_target
    remedy_target: str | None = None


@dataclass
class IdleHistory:
    """When each target became idle, remembered across refreshes (and lost on restart).

    A target first seen idle has an unknown past: its start is an estimate from the cluster (the
    end of its last GPU pod, its creation) or the first sighting, and is flagged as a lower bound
    on the idle time. A target seen busy and then idle became idle at that refresh: exact.
    """

    _since: dict[str, tuple[datetime, bool]] = field(default_factory=dict)
    _busy_seen: set[str] = field(default_factory=set)
    wasted_today: float = 0.0
    _day: str = ""
    _last: datetime | None = None
    _counted: set[str] = field(default_factory=set)  # targets whose pre-start waste is counted
    _first_seen: dict[str, datetime] = field(default_factory=dict)

    def observe(self, key: str, idle: bool, now: datetime, estimate: datetime | None = None) -> tuple[datetime | None, bool]:
        if not idle:
            self._busy_seen.add(key)
            self._since.pop(key, None)
            return None, False
        if key not in self._since:
            if key in self._busy_seen:
                self._since[key] = (now, False)
            else:
                start = min(estimate, now) if estimate is not None else now
                self._since[key] = (start, True)
                # From the last evaluation on, the running count covers it.
                self._first_seen[key] = self._last or now
        return self._since[key]

    def forget_except(self, keys: set[str]) -> None:
        """Targets that are gone (deleted nodes, finished jobs) leave the history: memory stays bounded."""
        for key in list(self._since):
            if key not in keys:
                del self._since[key]
                self._first_seen.pop(key, None)
        self._busy_seen &= keys

    def add_waste(self, now: datetime, idle_rate: float, warnings: Iterable[IdleWarning]) -> None:
        """Accumulate today's idle spend between evaluations; reset at midnight UTC.

        Between evaluations every idle GPU counts. What a target wasted before mltop first saw it
        (from its estimated idle start, or midnight, to that first sighting) is added once, when
        it is first warned about; targets seen going idle are already in the running count.
        """
        day = now.strftime("%Y-%m-%d")
        if day != self._day:
            self._day, self.wasted_today, self._last = day, 0.0, None
            self._counted.clear()
        if self._last is not None:
            self.wasted_today += idle_rate * max(0.0, (now - self._last).total_seconds()) / 3600
        for w in warnings:
            if not w.idle_since_is_lower_bound or w.target in self._counted or w.idle_since is None:
                continue
            self._counted.add(w.target)
            seen = self._first_seen.get(w.target, now)
            self.wasted_today += (w.cost_per_hour or 0.0) * hours(max(w.idle_since, _midnight(now)), seen)
        self._last = now


@dataclass(frozen=True)
class CostReport:
    warnings: tuple[IdleWarning, ...]
    node_prices: dict[str, Price]  # node key -> price of the whole node
    burn_rate: float  # $/h of every priced GPU node
    idle_rate: float  # $/h of the idle GPUs among them
    wasted_today: float
    unpriced_nodes: int
    currency: str = "$"

    def node_idle_cost(self, node: GpuNode) -> float | None:
        price = self.node_prices.get(node.key)
        if price is None or price.per_hour is None or not node.gpus_total:
            return None
        return price.per_hour * node.gpus_free / node.gpus_total


def hours(since: datetime | None, now: datetime) -> float:
    return max(0.0, (now - since).total_seconds() / 3600) if since else 0.0


def _share(price: Price, gpus: float, total: float) -> float | None:
    if price.per_hour is None or not total:
        return None
    return price.per_hour * gpus / total


def _money(value: float | None, currency: str) -> str:
    return "unknown" if value is None else f"{currency}{value:,.2f}"


def with_measurements(snapshot: Snapshot) -> Snapshot:
    """Join DCGM samples (from Prometheus) to the pods holding the GPUs, by namespace and pod."""
    if not snapshot.gpu_samples:
        return snapshot
    by_pod: dict[tuple[str, str], list[float]] = {}
    for s in snapshot.gpu_samples:
        if s.namespace and s.pod:
            by_pod.setdefault((s.namespace, s.pod), []).append(s.utilization)
    nodes = []
    for node in snapshot.nodes:
        pods = tuple(
            replace(p, utilization=sum(v) / len(v)) if (v := by_pod.get((p.namespace, p.name))) else p
            for p in node.pods
        )
        nodes.append(replace(node, pods=pods))
    return replace(snapshot, nodes=tuple(nodes))


def evaluate(
    snapshot: Snapshot,
    prices: PriceBook,
    policy: CostPolicy,
    history: IdleHistory,
    now: datetime,
) -> CostReport:
    snapshot = with_measurements(snapshot)
    cur = prices.currency
    warnings: list[IdleWarning] = []
    node_prices: dict[str, Price] = {}
    seen: set[str] = set()
    threshold = policy.idle_threshold

    def long_enough(since: datetime | None) -> bool:
        return since is not None and now - since >= threshold

    # -- Kubernetes nodes and pools ---------------------------------------------------------
    pool_of_node: dict[str, Pool] = {}
    for pool in snapshot.pools:
        for member in pool.members:
            if pool.kind in ("nodepool", "machinedeployment"):
                pool_of_node[f"{pool.cluster}/{member}"] = pool
    node_since: dict[str, tuple[datetime | None, bool]] = {}
    for node in snapshot.nodes:
        price = prices.price(pool=node.pool, instance_type=node.instance_type, gpu_model=node.gpu_model,
                             gpus=node.gpus_total, spot=node.capacity_type == "spot")
        node_prices[node.key] = price
        seen.add(node.key)
        estimate = node.last_gpu_pod_end or node.created_at
        node_since[node.key] = history.observe(node.key, node.gpus_free > 0 and node.ready, now, estimate)

    fully_idle_pools: set[str] = set()
    for pool in snapshot.pools:
        members = [n for n in snapshot.nodes if pool_of_node.get(f"{n.cluster}/{n.name}") is pool]
        if not members or pool.kind not in ("nodepool", "machinedeployment"):
            continue
        all_idle = all(n.gpus_allocated == 0 and n.ready for n in members)
        since, lower = history.observe(pool.key, all_idle, now,
                                       max((node_since[n.key][0] for n in members if node_since[n.key][0]), default=None))
        seen.add(pool.key)
        if not all_idle or not long_enough(since) or "idle-pool" not in policy.kinds:
            continue
        fully_idle_pools.add(pool.key)
        gpus = sum(n.gpus_allocatable for n in members)
        rate = _sum(_share(node_prices[n.key], n.gpus_free, n.gpus_total) for n in members)
        remedy, key = _pool_remedy(pool)
        warnings.append(IdleWarning(
            kind="idle-pool", target=pool.key, target_name=pool.name, cluster=pool.cluster, idle_gpus=gpus,
            idle_since=since, idle_since_is_lower_bound=lower, cost_per_hour=rate,
            wasted=None if rate is None else rate * hours(since, now), remedy=remedy,
            message=f"all {g(gpus)} GPUs of {pool.kind} {pool.name} idle ({len(members)} nodes)"
                    + (f"; its minimum of {pool.min} keeps them alive" if pool.min else ""),
            remedy_key=key, remedy_target=pool.key if key else None,
        ))

    if "idle-node" in policy.kinds:
        for node in snapshot.nodes:
            pool = pool_of_node.get(f"{node.cluster}/{node.name}")
            since, lower = node_since[node.key]
            if node.gpus_free <= 0 or not long_enough(since) or (pool and pool.key in fully_idle_pools):
                continue
            rate = _share(node_prices[node.key], node.gpus_free, node.gpus_total)
            remedy, key = _node_remedy(node, pool)
            warnings.append(IdleWarning(
                kind="idle-node", target=node.key, target_name=node.name, cluster=node.cluster,
                idle_gpus=node.gpus_free, idle_since=since, idle_since_is_lower_bound=lower, cost_per_hour=rate,
                wasted=None if rate is None else rate * hours(since, now), remedy=remedy,
                message=f"{node.name} has {g(node.gpus_free)} of {g(node.gpus_total)} GPUs unallocated"
                        + ("" if node_prices[node.key].per_hour is not None else f" ({node_prices[node.key].basis})"),
                remedy_key=key, remedy_target=pool.key if key and pool else None,
            ))

    # -- Ray clusters -----------------------------------------------------------------------
    ray_rates: dict[str, tuple[float | None, float]] = {}
    for name, cluster in snapshot.ray_clusters:
        rate, idle = _ray_idle(cluster, prices)
        ray_rates[name] = (rate, idle)
        key = f"ray/{name}"
        seen.add(key)
        since, lower = history.observe(key, idle > 0, now)
        if idle > 0 and long_enough(since) and "ray-idle" in policy.kinds:
            warnings.append(IdleWarning(
                kind="ray-idle", target=key, target_name=name, cluster=name, idle_gpus=idle, idle_since=since,
                idle_since_is_lower_bound=lower, cost_per_hour=rate,
                wasted=None if rate is None else rate * hours(since, now),
                remedy="the Ray autoscaler releases idle workers after idleTimeoutSeconds; if it keeps them, "
                       "lower the worker group's minReplicas (s in the pools panel) or stop the cluster",
                message=f"Ray cluster {name} holds {g(idle)} GPUs that no task or actor uses",
            ))

    def low_for_the_window(key: str, utilization: float) -> tuple[datetime, bool] | None:
        """(since, lower bound) when `key` has been under the threshold for the whole window."""
        seen.add(key)
        low = utilization < policy.low_utilization_percent
        since, lower = history.observe(key, low, now)
        if not low or since is None or now - since < policy.low_utilization_window:
            return None
        return (since, lower) if "low-utilization" in policy.kinds else None

    # -- jobs holding GPUs at low utilization -----------------------------------------------
    for job in snapshot.jobs:
        if job.state is not JobState.RUNNING or not job.gpus or job.gpu_utilization is None:
            continue
        low = low_for_the_window(f"util/{job.key}", job.gpu_utilization)
        if low is None:
            continue
        since, lower = low
        rate = _job_rate(job, snapshot, prices)
        warnings.append(IdleWarning(
            kind="low-utilization", target=job.key, target_name=job.name, cluster=job.cluster, idle_gpus=job.gpus,
            idle_since=since, idle_since_is_lower_bound=lower, cost_per_hour=rate,
            wasted=None if rate is None else rate * hours(since, now),
            remedy="ask its owner; ctrl+d stops it" if job.cancellable else "ask its owner to release the GPUs",
            message=f"{job.name} holds {g(job.gpus)} GPUs at {job.gpu_utilization:.0f}% utilization"
                    + (f" ({job.owner})" if job.owner else ""),
            remedy_key="ctrl+d" if job.cancellable else None, remedy_target=job.key if job.cancellable else None,
        ))

    # -- pods holding GPUs at low measured utilization (DCGM through Prometheus) ------------
    for node in snapshot.nodes:
        for pod in node.pods:
            if pod.utilization is None or not pod.gpus:
                continue
            low = low_for_the_window(f"util/{node.cluster}/{pod.namespace}/{pod.name}", pod.utilization)
            if low is None:
                continue
            since, lower = low
            rate = _share(node_prices[node.key], pod.gpus, node.gpus_total)
            warnings.append(IdleWarning(
                kind="low-utilization", target=node.key, target_name=f"{pod.namespace}/{pod.name}",
                cluster=node.cluster, idle_gpus=pod.gpus, idle_since=since, idle_since_is_lower_bound=lower,
                cost_per_hour=rate, wasted=None if rate is None else rate * hours(since, now),
                remedy=f"ask the owner ({pod.owner or 'unknown'}) to release the GPUs or stop the pod",
                message=f"pod {pod.namespace}/{pod.name} on {node.name} holds {g(pod.gpus)} GPUs at "
                        f"{pod.utilization:.0f}% utilization",
            ))

    # -- GPUs idle while GPU jobs wait, and demand with nothing coming ----------------------
    for job in snapshot.jobs:
        if job.state is not JobState.PENDING or not job.gpus:
            continue
        waited = job.queued_seconds(now) or 0
        explanation = _why_waiting(job, snapshot, node_prices, ray_rates)
        if explanation is None:
            continue
        kind, message, rate, idle_gpus = explanation
        if kind not in policy.kinds or waited < 60:
            continue
        since = job.submitted_at
        warnings.append(IdleWarning(
            kind=kind, target=job.key, target_name=job.name, cluster=job.cluster, idle_gpus=idle_gpus,
            idle_since=since, idle_since_is_lower_bound=False, cost_per_hour=rate,
            wasted=None if rate is None else rate * hours(since, now),
            remedy=message[1], message=message[0],
        ))

    history.forget_except(seen)
    priced = [p.per_hour for p in node_prices.values() if p.per_hour is not None]
    ray_burn = _sum(_ray_burn(c, prices) for _, c in snapshot.ray_clusters) or 0.0
    burn = sum(priced) + ray_burn
    idle_rate = sum(w.cost_per_hour or 0.0 for w in warnings if w.kind in ("idle-node", "idle-pool", "ray-idle",
                                                                            "low-utilization"))
    # The idle rate counts every idle GPU, warned about yet or not (the warnings wait for the threshold).
    idle_now = sum(_share(node_prices[n.key], n.gpus_free, n.gpus_total) or 0.0 for n in snapshot.nodes)
    idle_now += sum(rate or 0.0 for rate, _ in ray_rates.values())
    history.add_waste(now, idle_now, warnings)
    warnings.sort(key=lambda w: (-(w.cost_per_hour or 0.0), w.kind, w.target))
    return CostReport(
        warnings=tuple(warnings),
        node_prices=node_prices,
        burn_rate=burn,
        idle_rate=max(idle_rate, idle_now),
        wasted_today=history.wasted_today,
        unpriced_nodes=sum(1 for p in node_prices.values() if p.per_hour is None) + sum(
            1 for _, c in snapshot.ray_clusters for n in c.nodes
            if n.alive and n.gpus_total and _ray_node_price(n, prices).per_hour is None
        ),
        currency=cur,
    )


def _midnight(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def _sum(values: Iterable[float | None]) -> float | None:
    total, any_known = 0.0, False
    for value in values:
        if value is not None:
            total, any_known = total + value, True
    return total if any_known else None


def _ray_node_price(node, prices: PriceBook) -> Price:  # type: ignore[no-untyped-def]
    model = node.devices[0].name if node.devices else None
    return prices.price(pool=None, instance_type=None, gpu_model=model, gpus=node.gpus_total)


def _ray_idle(cluster: RayClusterState, prices: PriceBook) -> tuple[float | None, float]:
    rate: float | None = None
    idle = 0.0
    for node in cluster.nodes:
        if not node.alive or not node.gpus_total or node.gpus_used is None:
            continue
        free = max(0.0, node.gpus_total - node.gpus_used)
        idle += free
        share = _share(_ray_node_price(node, prices), free, node.gpus_total)
        if share is not None:
            rate = (rate or 0.0) + share
    return rate, idle


def _ray_burn(cluster: RayClusterState, prices: PriceBook) -> float | None:
    return _sum(_ray_node_price(n, prices).per_hour for n in cluster.nodes if n.alive and n.gpus_total)


def _job_rate(job: Job, snapshot: Snapshot, prices: PriceBook) -> float | None:
    for name, cluster in snapshot.ray_clusters:
        if name == job.cluster and job.source == "ray":
            node = next((n for n in cluster.nodes if n.gpus_total), None)
            if node is not None:
                return _share(_ray_node_price(node, prices), job.gpus or 0, node.gpus_total)
    return None


def _node_remedy(node: GpuNode, pool: Pool | None) -> tuple[str, str | None]:
    if pool is not None and pool.scalable:
        return f"scale {pool.name} down (s on the pool), or drain {node.name}", "s"
    if pool is not None and pool.why_not_scalable:
        return f"drain {node.name} (kubectl drain {node.name} --ignore-daemonsets); {pool.why_not_scalable}", None
    return f"drain {node.name} (kubectl drain {node.name} --ignore-daemonsets) and remove it", None


def _pool_remedy(pool: Pool) -> tuple[str, str | None]:
    if pool.scalable:
        floor = f" (its autoscaler minimum is {pool.min}: lower that annotation to go further)" if pool.min else ""
        return f"scale {pool.name} down with s{floor}", "s"
    return f"resize it where it is managed: {pool.why_not_scalable or 'outside Kubernetes'}", None


def _fits(job: Job, node: GpuNode) -> str | None:
    """Why `job` cannot run on `node` as it is; None when it could."""
    labels = dict(node.labels)
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


def _why_waiting(
    job: Job,
    snapshot: Snapshot,
    node_prices: dict[str, Price],
    ray_rates: dict[str, tuple[float | None, float]],
) -> tuple[str, tuple[str, str], float | None, float] | None:
    wanted = job.gpus or 0
    if job.source == "kubernetes":
        nodes = [n for n in snapshot.nodes if n.cluster == job.cluster]
        idle = sorted((n for n in nodes if n.gpus_free > 0), key=lambda n: (-n.gpus_free, n.name))
        idle_gpus = sum(n.gpus_free for n in idle)
        rate = _sum(_share(node_prices[n.key], n.gpus_free, n.gpus_total) for n in idle)
        if not idle:
            if any(n.gpus_allocatable >= wanted and _fits(job, n) is None for n in nodes):
                return None  # it fits once something finishes: an ordinary queue
            coming = any(not n.ready for n in nodes)
            if coming:
                return None
            return ("no-capacity-coming",
                    (f"{job.name} waits for {g(wanted)} GPUs and no node can take it; nothing is scaling up",
                     "add capacity: scale a pool that has this GPU, or check the autoscaler"), None, 0.0)
        reasons = []
        for node in idle:
            why = _fits(job, node)
            if why is None and node.gpus_free < wanted:
                why = f"{node.name} has only {g(node.gpus_free)} free"
            if why is None:
                return None  # the scheduler will place it: nothing to explain
            reasons.append(why)
        if idle_gpus >= wanted and all("only" in r for r in reasons):
            reason = f"{g(idle_gpus)} GPUs are free but scattered across {len(idle)} nodes (fragmentation)"
        else:
            reason = reasons[0] + (f" (and {len(reasons) - 1} more nodes with free GPUs)" if len(reasons) > 1 else "")
        return ("idle-while-waiting",
                (f"{g(idle_gpus)} GPUs idle while {job.name} waits for {g(wanted)}: {reason}",
                 "fix the job's placement (selector, tolerations, GPU count) or move the idle capacity"), rate, idle_gpus)
    if job.source == "ray":
        rate, idle = ray_rates.get(job.cluster, (None, 0.0))
        cluster = dict(snapshot.ray_clusters).get(job.cluster)
        largest = max((n.gpus_total for n in cluster.nodes if n.alive), default=0) if cluster else 0
        if cluster and wanted > largest:
            return ("no-capacity-coming",
                    (f"{job.name} waits for {g(wanted)} GPUs on one node; the largest node of {job.cluster} has "
                     f"{g(largest)} and Ray will fail it at its start timeout",
                     "ask for fewer GPUs per job (spread the work over tasks), or add bigger nodes"), None, 0.0)
        if idle <= 0:
            return None
        best = max((n.gpus_total - (n.gpus_used or 0) for n in cluster.nodes), default=0) if cluster else 0
        if best >= wanted:
            return None
        why = (f"{g(idle)} GPUs are free but no node has {g(wanted)} (the most free on one node is {g(best)})"
               if idle >= wanted else f"only {g(idle)} GPUs are free")
        return ("idle-while-waiting",
                (f"{g(idle)} Ray GPUs idle while {job.name} waits for {g(wanted)}: {why}",
                 "ask for GPUs per task rather than per job, or add a node that fits it"), rate, idle)
    return None
