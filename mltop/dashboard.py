"""One headless dashboard: source updates and the clock in, one frozen view of everything a screen
or a report shows out. No Textual here.

The TUI and `--once` (text and JSON) both render a `View` made here, so they can never disagree:
the same queue order, stop state, nodes, pools, cost figures and summary.

Flow of one refresh: a source's loop polls its adapter -> `SourceUpdate` -> `Dashboard.update()`
-> `Dashboard.view(now)` -> each panel `sync(view)` (or the report renders it).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from datetime import datetime, timezone

from mltop.cost import CostPolicy, CostReport, IdleHistory, evaluate
from mltop.state_store import StateStore, open_store
from mltop.cost.spent import gpu_cost_so_far
from mltop.incremental_sort import IncrementalSort
from mltop.jobs import StopEvent, StopTracker, order_jobs, pending_pods
from mltop import chain, kueue
from mltop.model import GpuNode, Job, JobState, Pool, QueueUse
from mltop.prices import PriceBook
from mltop.refresh import SourceUpdate, snapshot_of
from mltop.summary import SourceLine, Summary, source_lines, summarize
from mltop.waiting import first_words, ray_short, scheduler_short

POOL_ORDER = {"raycluster-workergroup": 0, "machinedeployment": 1, "nodepool": 2}
# With the same data, the idle-cost engine runs again only this often (for what the clock alone
# changes: idle thresholds crossed, dollars wasted). At 5,000 nodes an evaluation costs ~65 ms of CPU:
# every 2 s for a cluster where nothing happened would be 3% of a core for nothing. Where an
# evaluation costs more than COST_CLOCK_SHARE of a core every 10 s, the interval grows to keep that
# share (up to a minute): a large quiet cluster's idle figures move in steps of tens of seconds.
COST_REFRESH_SECONDS, COST_REFRESH_MAX_SECONDS, COST_CLOCK_SHARE = 10.0, 60.0, 0.005
# New data is evaluated at once, unless an evaluation is not quick (over COST_SLOW_SECONDS of CPU)
# and evaluating every change would take more than COST_CHANGE_SHARE of a core: then at most that
# often, and at most COST_CHANGED_MAX_SECONDS behind (1,000 nodes changing every poll, ~40 ms an
# evaluation: every 8 s; 5,000 nodes, 65-100 ms: every 13-20 s; the header says how far behind the
# figures are). Until 2026-12-01 (50 ms, 1%, 10 s) a 1,000-node cluster was evaluated on every poll
# and 5,000 nodes every 10 s: 20-40 of the 50 ms a refresh may cost. The tables show every poll's
# records either way; only the dollar figures and the warnings wait (a demo-sized platform's few ms: never).
COST_CHANGE_SHARE = 0.005
COST_CHANGED_MAX_SECONDS = 30.0
COST_SLOW_SECONDS = 0.01
WAITING_KINDS = ("idle-while-waiting", "no-capacity-coming")  # warnings that explain a waiting job


@dataclass(frozen=True)
class View:
    now: datetime
    sources: tuple[SourceLine, ...]
    jobs: tuple[Job, ...]  # queue, running, the most recent finished; stop requests applied
    overdue: frozenset[str]  # keys of jobs whose stop did not take within the patience
    nodes: tuple[GpuNode, ...]  # free GPUs first: that is where money idles
    pools: tuple[Pool, ...]
    cost: CostReport | None
    summary: Summary
    events: tuple[StopEvent, ...] = ()  # what the user must be told about stops, once
    stale_after: float = 10.0
    owners: dict[str, str] = field(default_factory=dict)  # record key -> the key of the source it came from
    pending_pods: dict[str, tuple[Job, ...]] = field(default_factory=dict)  # pod name -> pending pod jobs
    queues: tuple[QueueUse, ...] = ()  # Kueue ClusterQueues (the queues view; mltop/kueue.py)
    chains: chain.Chains = field(default_factory=chain.Chains)  # rows folded under another (mltop/chain.py)
    cost_behind: float = 0.0  # seconds the cost figures lag newer records (a slow evaluation waiting its turn)
    # The last view's REASON texts by job key (`short_reasons`), shared by one Dashboard's views.
    short_memo: dict[str, tuple[Job, object, str | None]] = field(default_factory=dict, repr=False, compare=False)

    def children_of(self, key: str) -> tuple[Job, ...]:
        return self.chains.children(key)

    def parent_of(self, key: str) -> str | None:
        return self.chains.parents.get(key)

    def chain_tree(self, key: str) -> list[str]:
        """A job's identity chain as tree lines (empty when it is in none)."""
        return chain.tree_lines(self.chains, key, self.pools)

    def acts_on(self, job: Job) -> str | None:
        return chain.acts_on(self.chains, job)

    def waits(self, job: Job) -> bool:
        """Queued, or (a KFP run) running with a step whose pod has not started, or (the top of an
        identity chain, mltop/chain.py) running with a layer under it that waits."""
        if job.state is JobState.PENDING or job.state.is_terminal:
            return job.state is JobState.PENDING
        return job.waiting_step is not None or any(self.waits(c) for c in self.children_of(job.key))

    def _waiting_child(self, job: Job) -> Job | None:
        """The layer under a running chain top that waits (a RayJob Kueue holds, a queued Ray job)."""
        if job.state is JobState.PENDING or job.waiting_step is not None:
            return None
        return next((c for c in self.children_of(job.key) if self.waits(c)), None)

    def pod_for(self, job: Job) -> Job | None:
        """The pending pod (seen by a Kubernetes source) that a KFP run's waiting step runs in."""
        pods = self.pending_pods.get(job.waiting_pod or "", ())
        return next((p for p in pods if job.namespace is None or p.namespace == job.namespace), None)

    def waiting_reason(self, job: Job) -> str | None:
        """Why a waiting job waits, in plain words, for the details, the report and the JSON: the
        idle-cost engine's explanation when it has one (GPUs idle that do not take it, and why;
        demand no node can take), the scheduler's own message, else the backend's; for a KFP run,
        the step that waits and why its pod does. None for a job not waiting."""
        if not self.waits(job):
            return None
        if job.waiting_step is not None:
            return self._step_reason(job)
        if (child := self._waiting_child(job)) is not None:
            return f"{chain.layer_name(child)} waits: {self.waiting_reason(child)}"
        warning = next((w for w in (self.cost.warnings if self.cost else ()) if w.target == job.key
                        and w.kind in WAITING_KINDS), None)
        if warning is not None:
            said = f". The scheduler says: {job.scheduler_message}" if job.scheduler_message else ""
            if kueue.held(job):
                said = f". {kueue.sentence(job, quota=False)}"
            return f"{warning.message}; {warning.remedy}{said}"
        return kueue.sentence(job) or job.scheduler_message or job.message or "the backend gives no reason"

    def _step_reason(self, job: Job) -> str:
        pod = self.pod_for(job)
        if pod is not None:
            why = self.waiting_reason(pod)
            return f"step {job.waiting_step} waits: its pod {pod.cluster}/{pod.id} is Pending: {why}"
        if job.waiting_pod:
            return (f"step {job.waiting_step} waits for its pod {job.waiting_pod} to start; no Kubernetes source "
                    "shows it unscheduled (it may be starting, or its cluster is not watched)")
        return f"step {job.waiting_step} waits; KFP names no pod for it yet"

    def waiting_short(self, job: Job) -> str | None:
        """`waiting_reason` in a few words, for the jobs table's REASON column; None if not waiting."""
        if not self.waits(job):
            return None
        if job.waiting_step is not None:
            pod = self.pod_for(job)
            inner = self.waiting_short(pod) if pod is not None else None
            return f"{job.waiting_step}: {inner or 'pod not started'}"
        if (child := self._waiting_child(job)) is not None:
            return f"{'RayJob' if child.source == chain.RAYJOB else 'Ray job'}: {self.waiting_short(child)}"
        if kueue.held(job):  # a pod Kueue gates never reaches the scheduler: Kueue's reason is the one
            return kueue.short(job)
        said = job.scheduler_message or job.message
        source = self.owners.get(job.key)
        cluster = next((line.cluster for line in self.sources if line.key == source), None)
        free = self._most_free.get(job.cluster)
        return scheduler_short(said, job.gpus, free) or ray_short(job.gpus, cluster) or first_words(said)

    @cached_property
    def _most_free(self) -> dict[str, dict[str, float]]:
        """Per cluster, the most free GPUs any one node has, by resource: once per view, not per pod.
        The nodes come most free first (Dashboard's order): a walk from the end keeps each cluster's
        first node per resource, without comparing (`most_free` took 2-4 ms a view at 5,000 nodes)."""
        first = {(n.cluster, n.gpu_resource): n.gpus_free for n in reversed(self.nodes)}
        out: dict[str, dict[str, float]] = {}
        for (cluster, resource), free in first.items():
            if resource is not None:
                out.setdefault(cluster, {})[resource] = free
        return out

    @cached_property
    def short_reasons(self) -> dict[str, str]:
        """Job key -> `waiting_short`, for the jobs table's REASON column (computed off the UI thread).
        A job with no step and no layer under it (nearly every pending pod) keeps last view's text
        while its record is the same object and its source's cluster and most free GPUs are equal:
        working out 950 pending pods' reasons on every poll was 6-11 ms a view at 5,000 nodes."""
        clusters = {line.key: line.cluster for line in self.sources}
        memo, fresh, out = self.short_memo, {}, {}
        for job in self.jobs:
            if job.waiting_step is not None or self.children_of(job.key):
                short = self.waiting_short(job)  # reads other records too: worked out every time
            else:
                context = (clusters.get(self.owners.get(job.key) or ""), self._most_free.get(job.cluster))
                seen = memo.get(job.key)
                if seen is not None and seen[0] is job and seen[1] == context:
                    short = seen[2]
                else:
                    short = self.waiting_short(job)
                fresh[job.key] = (job, context, short)
            if short:
                out[job.key] = short
        memo.clear()  # only what this view holds: never more than its jobs
        memo.update(fresh)
        return out

    # Node (pool) key -> its idle $/h, as `node_idle_cost` gives it: the cost report's own mapping, read
    # with .get (a node newer than the evaluation is None there too; copying it was 5,000 lookups a view).
    @property
    def node_idle_costs(self) -> Mapping[str, float | None]:
        return self.cost.node_idle_costs if self.cost else {}

    @property
    def pool_idle_costs(self) -> Mapping[str, float | None]:
        return self.cost.pool_idle_costs if self.cost else {}

    # Counted once per view, in the derive worker (tui/derive.py), for the panels' titles: a walk
    # over every job (1,400 at the largest bench workload) each time the jobs panel's title is drawn
    # was a tenth of the UI thread's time on a quiet platform; the Ray nodes among 5,000, 2 ms a view.
    @cached_property
    def waiting(self) -> int:
        return sum(1 for j in self.jobs if j.state is JobState.PENDING)

    @cached_property
    def running(self) -> int:
        return sum(1 for j in self.jobs if j.state in (JobState.RUNNING, JobState.CANCELLING))

    @cached_property
    def ray_nodes(self) -> int:
        return sum(1 for n in self.nodes if n.origin == "ray")

    def source_of(self, record_key: str) -> str | None:
        """The key of the source a job, node or pool came from (set by the adapters' sources)."""
        return self.owners.get(record_key)

    def node_idle_cost(self, node: GpuNode) -> float | None:
        return self.cost.node_idle(node.key) if self.cost else None

    def job_cost_so_far(self, job: Job) -> float | None:
        """What its GPUs have cost so far (mltop.cost.spent); None when unknown, never invented."""
        keys = job.node_keys
        prices = {k: self.cost.node_price(k) for k in keys} if self.cost else {}
        return gpu_cost_so_far(job, {n.key: n for n in self.nodes if n.key in keys}, prices, self.now)

    def pool_idle_cost(self, pool: Pool) -> float | None:
        return self.cost.pool_idle(pool.key) if self.cost else None


class Dashboard:
    """Holds the latest update of every source, the stop requests and the idle history."""

    def __init__(self, source_keys: Sequence[str], *, prices: PriceBook, policy: CostPolicy,
                 finished_limit: int = 50, stop_patience: float = 30.0, refresh: float = 2.0,
                 names: dict[str, tuple[str, str]] | None = None, store: StateStore | None = None) -> None:
        self.source_keys = list(source_keys)
        self.names = names or {}  # source key -> (kind, name), for sources that never answered
        self.updates: dict[str, SourceUpdate] = {}
        self.stops = StopTracker(stop_patience)
        self.history = IdleHistory(persistent=store is not None)
        self.store = store  # history that survives restarts (mltop/state_store.py); None: this process only
        self.history_note: str | None = None  # a line about the store not yet said (take_history_note)
        self._stored_waste = 0.0
        self.prices, self.policy, self.finished_limit = prices, policy, finished_limit
        self.stale_after = max(10.0, 3 * refresh)
        self.cost: CostReport | None = None
        self._settled: set[str] = set()
        self._basis, self._basis_at = None, datetime.min.replace(tzinfo=timezone.utc)  # the last evaluation's data, time
        self.cost_every = COST_REFRESH_SECONDS  # seconds between evaluations of the same data (see above)
        self.cost_every_changed = 0.0  # ... and of new data
        self._cost_waits_since: datetime | None = None  # since when new records wait for an evaluation
        self._last: tuple[View | None, dict] = (None, {})  # the last view and its parts (_parts), and
        self._last_data, self._last_jobs, self._last_health = None, [], ()  # what they were made from
        self._lock, self._stops_lock = threading.Lock(), threading.Lock()  # views derive in a thread (TUI)
        self._short_memo: dict = {}  # the REASON texts of the last view (View.short_reasons)
        # Free GPUs first (that is where money idles), then by name; the key is unique to the last
        # field, so re-placing only the changed nodes gives exactly a full sort's order.
        self._node_order = IncrementalSort(lambda n: (-n.gpus_free, n.cluster, n.name, n.key))

    def update(self, update: SourceUpdate) -> None:
        """A source's newest poll. A good one settles that source's stop requests (against this data)."""
        with self._stops_lock:
            self.updates[update.key] = update
            if update.health.ok:
                self._settled.add(update.key)

    def stop_requested(self, job: Job, at: datetime, source_key: str) -> None:
        with self._stops_lock:
            self.stops.requested(job, at, source_key)

    def view(self, now: datetime, *, with_cost: bool = True) -> View:
        """Everything a screen shows now. `with_cost` evaluates the idle-cost engine (it keeps
        history: do it once per source update, not on every clock tick)."""
        with self._lock:  # one view at a time: the cost engine's history and the store are not shared
            return self._view(now, with_cost)

    def _view(self, now: datetime, with_cost: bool) -> View:
        with self._stops_lock:  # one consistent set: a source may update while this runs (TUI worker)
            updates, settled, self._settled = self._updates(), self._settled, set()
        jobs = [job for u in updates if u.data for job in u.data.jobs]
        with self._stops_lock:
            jobs, events = self.stops.apply(jobs, now, sources=settled)
        data = tuple((u.key, u.data) for u in updates)
        last, parts = self._last
        same = last is not None and data == self._last_data and jobs == self._last_jobs
        parts = parts if same else self._parts(updates, jobs)
        basis = (data, parts["everything"])
        since = (now - self._basis_at).total_seconds()
        if with_cost and since < (self.cost_every if basis == self._basis else self.cost_every_changed):
            with_cost = False  # the last evaluation stands (tuples of the same records compare fast)
            if basis != self._basis and self._cost_waits_since is None:
                self._cost_waits_since = now  # new records, figures from older ones: the screen says so
        if with_cost:
            snapshot = replace(snapshot_of(updates, now), jobs=parts["everything"])
            if self.store is not None:
                self.store.load(self.history, now)
            began = time.thread_time()
            self.cost = evaluate(snapshot, self.prices, self.policy, self.history, now)
            took = time.thread_time() - began
            self._basis, self._basis_at = basis, now  # after it succeeded: a failure is retried at the next request
            self._cost_waits_since = None
            self.cost_every = min(COST_REFRESH_MAX_SECONDS, max(COST_REFRESH_SECONDS, took / COST_CLOCK_SHARE))
            slow = took >= COST_SLOW_SECONDS  # a quick evaluation is never held back
            self.cost_every_changed = min(COST_CHANGED_MAX_SECONDS, took / COST_CHANGE_SHARE) if slow else 0.0
            if self.store is not None:
                self.cost = self._stored(self.cost, now)
        with self._stops_lock:
            overdue = self.stops.overdue(parts["everything"], now)
        health = tuple(u.health for u in updates)  # the same records and health: the same lines and totals
        if same and last is not None and health == self._last_health:
            lines, summary = last.sources, last.summary  # (summing 5,000 nodes on every tick is not free)
        else:
            lines = tuple(source_lines(updates, self.source_keys, self.names))
            summary = summarize(parts["kube_nodes"], updates, len(self.source_keys))
        view = View(
            now=now, sources=lines, overdue=overdue, cost=self.cost, events=tuple(events),
            summary=summary, stale_after=self.stale_after,
            cost_behind=(now - self._cost_waits_since).total_seconds() if self._cost_waits_since else 0.0,
            short_memo=self._short_memo,
            **{k: parts[k] for k in ("jobs", "nodes", "pools", "owners", "pending_pods", "queues", "chains")})
        if same and last is not None:  # the same records: what was worked out from them holds (not the clock's)
            carried = ("_most_free", "short_reasons", "waiting", "running", "ray_nodes")
            view.__dict__.update({k: last.__dict__[k] for k in carried if k in last.__dict__})
        self._last, self._last_data, self._last_jobs, self._last_health = (view, parts), data, jobs, health
        return view

    def _parts(self, updates: list[SourceUpdate], jobs: list[Job]) -> dict[str, object]:
        """What a view holds that depends only on the records (not on the clock or the cost)."""
        chains = chain.link(jobs)  # a KFP run, its RayJob and its Ray job: one row (mltop/chain.py)
        everything = tuple(order_jobs(jobs, self.finished_limit))
        kube_nodes = [n for u in updates if u.data for n in u.data.nodes]
        # Ray's nodes are shown beside them, but only Kubernetes nodes make the K8s totals (SourceData.ray_nodes).
        nodes = self._node_order([*kube_nodes, *(n for u in updates if u.data for n in u.data.ray_nodes)])
        pools = sorted((p for u in updates if u.data for p in u.data.pools),
                       key=lambda p: (POOL_ORDER.get(p.kind, 9), p.cluster, p.name))
        return dict(
            everything=everything, kube_nodes=kube_nodes, chains=chains, owners=self._owners(updates),
            jobs=tuple(j for j in everything if j.key not in chains.parents), nodes=tuple(nodes), pools=tuple(pools),
            pending_pods=pending_pods(everything), queues=tuple(q for u in updates if u.data for q in u.data.queues))

    def _stored(self, cost: CostReport, now: datetime) -> CostReport:
        """Write this evaluation to the store; "wasted today" becomes today's, all processes together."""
        assert self.store is not None
        total = self.store.sync(self.history, now)
        if total is not None:
            self._stored_waste = total
        with self._stops_lock:  # take_history_note reads it on the UI thread
            self.history_note = self.store.take_problem() or self.history_note
        return replace(cost, wasted_today=max(self._stored_waste, self.history.wasted_today))

    def take_history_note(self) -> str | None:
        """One line about the history store (locked, unusable), once; None when all is well."""
        with self._stops_lock:  # the derivation thread may be setting one
            note, self.history_note = self.history_note, None
        return note

    def close(self, wait: float = 1.0) -> None:
        """Close the history store, after the view being worked out (if any), waiting at most `wait`
        seconds: quitting never hangs on it (SQLite keeps what was committed either way)."""
        if not self._lock.acquire(timeout=wait):
            return
        try:
            if self.store is not None:
                self.store.close()
                self.store = None
        finally:
            self._lock.release()

    # -- parts of the view -------------------------------------------------------------------------

    def _updates(self) -> list[SourceUpdate]:
        updates = self.updates
        return [u for k in self.source_keys if (u := updates.get(k)) is not None]

    @staticmethod
    def _owners(updates: list[SourceUpdate]) -> dict[str, str]:
        owners: dict[str, str] = {}
        for u in updates:
            if u.data:
                for record in (*u.data.jobs, *u.data.nodes, *u.data.ray_nodes, *u.data.pools):
                    owners[record.key] = u.key
        return owners


def dashboard_for(sources: Sequence[object], config: object) -> Dashboard:
    """A dashboard for these sources, with the config's prices, policy and limits."""
    from mltop.config import cost_policy, cost_prices

    store, note = open_store() if getattr(config, "history", True) else (None, None)
    dashboard = Dashboard(
        [s.key for s in sources],  # type: ignore[attr-defined]
        prices=cost_prices(config.cost), policy=cost_policy(config.cost),  # type: ignore[attr-defined]
        finished_limit=config.finished_limit, stop_patience=config.stop_patience,  # type: ignore[attr-defined]
        refresh=config.refresh,  # type: ignore[attr-defined]
        names={s.key: (s.kind, s.name) for s in sources},  # type: ignore[attr-defined]
        store=store,
    )
    dashboard.history_note = note
    return dashboard
