"""One look at the platform, shared by every warning kind: prices, pools, what is idle and since when.

`observe` is the only step that reads and updates the idle history; the kinds are pure functions of
the snapshot and the context it returns.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from mltop.cost.history import IdleHistory
from mltop.cost.kept import Kept
from mltop.cost.node_costs import NodeCost, unallocated_key  # noqa: F401 (unallocated_key: re-exported)
from mltop.cost.policy import CostPolicy
from mltop.cost.rates import IdleGpus, known_sum, ray_node_price, share
from mltop.model import GpuNode, GpuPod, IdleWarning, Job, JobState, Pool, Snapshot
from mltop.prices import Price, PriceBook


def ray_free_key(cluster: str, node_id: str) -> str:
    return f"ray-free/{cluster}/{node_id}"


def job_util_key(job: Job) -> str:
    return f"util/{job.key}"


@dataclass(frozen=True)
class Finding:
    """A warning with what it is about: keys of CostContext.idle, and the history key it was observed under."""

    warning: IdleWarning
    about: frozenset[str] = frozenset()
    key: str = ""


@dataclass(frozen=True)
class CostContext:
    now: datetime
    policy: CostPolicy
    node_prices: Mapping[str, Price]  # node key -> price of the whole node
    ray_prices: Mapping[tuple[str, str], Price]  # (cluster, node id) of Ray GPU nodes -> price
    pool_of_node: Mapping[str, Pool]  # node key -> its node pool or MachineDeployment
    pool_members: Mapping[str, tuple[GpuNode, ...]]  # pool key -> its nodes
    since: Mapping[str, tuple[datetime | None, bool]]  # observed key -> (idle since, lower bound)
    idle: Mapping[str, IdleGpus]  # every GPU idle now, each in one group (see CostReport)
    ray_free: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # Ray cluster -> its idle group keys
    ray_hosts: frozenset[str] = frozenset()  # hostnames of live Ray nodes (KubeRay: their pod names)
    node_costs: Mapping[str, NodeCost] = field(default_factory=dict)  # node key -> its price and idle GPUs
    kept: Kept = field(default_factory=Kept, compare=False, repr=False)  # the history's (kept.py)
    # GPU pods with a measured utilization, in the nodes' order: the only pods that can be under the
    # utilization threshold (a KubeRay pod left out: see _measured)
    measured_pods: tuple[tuple[GpuNode, GpuPod, str], ...] = ()  # (node, pod, pod_util_key)
    _memo: dict = field(default_factory=dict, init=False, compare=False, repr=False)  # cost_of's answers

    def idle_long_enough(self, key: str) -> tuple[datetime, bool] | None:
        """(since, lower bound) when `key` has been idle for the policy's threshold."""
        return self._for(key, self.policy.idle_threshold)

    def low_for_the_window(self, key: str) -> tuple[datetime, bool] | None:
        """(since, lower bound) when `key` has stayed under the utilization threshold for the window."""
        return self._for(key, self.policy.low_utilization_window)

    def _for(self, key: str, long: timedelta) -> tuple[datetime, bool] | None:
        since, lower = self.since.get(key, (None, False))
        return (since, lower) if since is not None and self.now - since >= long else None

    def cost_of(self, about: Iterable[str]) -> float | None:
        if isinstance(about, (frozenset, list, tuple)) and len(about) == 1:  # most warnings: one group
            group = self.idle.get(next(iter(about)))
            return None if group is None else group.cost_per_hour
        if isinstance(about, frozenset):  # the same idle groups behind many waiting pods: summed once
            memo = self._memo
            if about not in memo:
                memo[about] = known_sum(self.idle[k].cost_per_hour for k in about if k in self.idle)
            return memo[about]
        return known_sum(self.idle[k].cost_per_hour for k in about if k in self.idle)

    def gpus_of(self, about: Iterable[str]) -> float:
        return sum(self.idle[k].gpus for k in about if k in self.idle)


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
        if not any((p.namespace, p.name) in by_pod for p in node.pods):
            nodes.append(node)  # the same record: what node_costs remembers for it holds
            continue
        pods = tuple(
            replace(p, utilization=sum(v) / len(v)) if (v := by_pod.get((p.namespace, p.name))) else p
            for p in node.pods
        )
        nodes.append(replace(node, pods=pods))
    return replace(snapshot, nodes=tuple(nodes))


def observe(snapshot: Snapshot, prices: PriceBook, policy: CostPolicy, history: IdleHistory, now: datetime) -> CostContext:
    """Price everything, record in `history` what is idle now, and forget what is gone."""
    opencost = {c.node: c for c in snapshot.node_costs}  # by node name: OpenCost labels nodes by name only
    history.kept.turn()
    costs = history.kept.node_costs(snapshot.nodes, prices, opencost)  # remembered per node record (node_costs.py)
    node_prices = {key: c.price for key, c in costs.items()}
    ray_prices = {(name, n.node_id): ray_node_price(n, prices)
                  for name, c in snapshot.ray_clusters for n in c.nodes if n.gpus_total}
    pool_of_node, pool_members = history.kept.membership.scaled(snapshot.nodes, snapshot.pools)
    idle = {c.unallocated_key: c.unallocated for c in costs.values() if c.unallocated is not None}
    idle |= {c.unusable_key: c.unusable_idle for c in costs.values() if c.unusable_idle is not None}
    idle |= _ray_free(snapshot, ray_prices)
    ray_free = {name: tuple(ray_free_key(name, n.node_id) for n in c.nodes if ray_free_key(name, n.node_id) in idle)
                for name, c in snapshot.ray_clusters}
    ray_hosts = frozenset(n.hostname for _, c in snapshot.ray_clusters for n in c.nodes if n.alive)
    since = _observe_nodes(snapshot, pool_members, history, now)
    since |= {(c := costs[n.key]).unusable_key: history.observe(c.unusable_key, c.unusable > 0 or not n.ready, now)
              for n in snapshot.nodes}
    since |= {f"ray/{name}": history.observe(f"ray/{name}", bool(keys), now) for name, keys in ray_free.items()}
    measured_pods = tuple((node, node.pods[i], cost.pod_keys[i]) for node in snapshot.nodes
                          if (cost := costs[node.key]).measured for i in cost.measured
                          if node.pods[i].name not in ray_hosts)
    low = {k: history.observe(k, u < policy.low_utilization_percent, now)
           for k, u in _measured(snapshot, measured_pods).items()}
    history.forget_except(set(since) | set(low))
    ctx = CostContext(now=now, policy=policy, node_prices=node_prices, ray_prices=ray_prices,
                      pool_of_node=pool_of_node, pool_members=pool_members, since=since | low, idle=idle,
                      ray_free=ray_free, ray_hosts=ray_hosts, node_costs=costs,
                      kept=history.kept, measured_pods=measured_pods)
    return replace(ctx, idle=idle | _allocated_unused(snapshot, ctx))


def _ray_free(snapshot: Snapshot, ray_prices: Mapping[tuple[str, str], Price]) -> dict[str, IdleGpus]:
    idle = {}
    for name, cluster in snapshot.ray_clusters:
        for node in cluster.nodes:
            if not node.alive or not node.gpus_total or node.gpus_used is None:
                continue  # Ray did not say what is held: not counted as idle
            free = max(0.0, node.gpus_total - node.gpus_used)
            if free > 0:
                idle[ray_free_key(name, node.node_id)] = IdleGpus(
                    free, share(ray_prices[(name, node.node_id)], free, node.gpus_total))
    return idle


def _observe_nodes(snapshot: Snapshot, pool_members: Mapping[str, tuple[GpuNode, ...]], history: IdleHistory,
                   now: datetime) -> dict[str, tuple[datetime | None, bool]]:
    since = {n.key: history.observe(n.key, n.gpus_free > 0 and n.ready, now, n.last_gpu_pod_end or n.created_at)
             for n in snapshot.nodes}
    for pool_key, members in pool_members.items():
        # All free, and something to free: a pool whose GPUs are all unusable is not idle (unusable-gpus says so)
        all_idle = all(n.gpus_allocated == 0 and n.ready for n in members) and any(n.gpus_free > 0 for n in members)
        estimate = max((s for n in members if (s := since[n.key][0]) is not None), default=None)
        since[pool_key] = history.observe(pool_key, all_idle, now, estimate)
    return since


def _measured(snapshot: Snapshot, pods: tuple[tuple[GpuNode, GpuPod, str], ...]) -> dict[str, float]:
    """Measured utilization of running GPU jobs and of GPU pods, by history key.

    A pod that is itself a Ray node (KubeRay) is left out: Ray accounts for its GPUs, and counting
    them twice would overstate what is idle."""
    util = {job_util_key(j): u for j in snapshot.jobs
            if j.state is JobState.RUNNING and j.gpus and (u := j.gpu_utilization) is not None}
    util |= {key: pod.utilization for _, pod, key in pods}
    return util


def _allocated_unused(snapshot: Snapshot, ctx: CostContext) -> dict[str, IdleGpus]:
    """GPUs held by a job or pod under the utilization threshold for the whole window."""
    idle = {}
    for job in snapshot.jobs:
        if ctx.low_for_the_window(key := job_util_key(job)) is not None:
            idle[key] = IdleGpus(job.gpus or 0.0, _ray_job_rate(job, snapshot, ctx))
    for node, pod, key in ctx.measured_pods:
        if ctx.low_for_the_window(key) is not None:
            idle[key] = IdleGpus(pod.gpus, share(ctx.node_prices[node.key], pod.gpus, node.gpus_total))
    return idle


def _ray_job_rate(job: Job, snapshot: Snapshot, ctx: CostContext) -> float | None:
    """A Ray job's GPUs at the per-GPU price of its cluster's first GPU node (Ray does not say which nodes)."""
    in_ray = ctx.policy.wait_model(job.source) == "ray-cluster"
    cluster = dict(snapshot.ray_clusters).get(job.cluster) if in_ray else None
    node = next((n for n in cluster.nodes if n.gpus_total), None) if cluster else None
    if node is None:
        return None
    price = ctx.ray_prices.get((job.cluster, node.node_id)) or Price(None, "")
    return share(price, job.gpus or 0.0, node.gpus_total)
