"""The mltop application: wires refresh loops to widgets and runs the actions users confirm.

Data flow: a SourceLoop per source (async worker) -> SourceUpdated message (replaceable: a burst
collapses to the newest) -> handler on the UI thread -> JobsTable.sync (keyed diff).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Footer, Input, Static

from mltop.adapters.base import ActionOutcome, Cancellable, HasJobDetails, Retryable, Scalable, Source
from mltop import format as fmt
from mltop.config import Config, cost_policy, cost_prices
from mltop.cost import CostReport, IdleHistory, IdleWarning, evaluate
from mltop.errors import OutcomeUnknown, SourceError
from mltop.safe_text import inert
from mltop.jobs import StopTracker, matches, order_jobs
from mltop.model import Job, JobState, Pool, RayClusterState, SourceHealth
from mltop.scaling import ScalePlan
from mltop.refresh import SourceLoop, SourceUpdate, snapshot_of, source_key, utcnow
from mltop.report import cost_line
from mltop.tui.commands import MltopCommands
from mltop.tui.confirm import ConfirmCancel
from mltop.tui.details import JobDetailsScreen
from mltop.tui.help import HelpScreen
from mltop.tui.infra_details import InfraDetailsScreen
from mltop.tui.scale import ScaleDialog
from mltop.tui.messages import SourceUpdated
from mltop.widgets.infra_tables import NodesTable, PoolsTable, WarningsTable, short_model
from mltop.widgets.jobs_table import JobsTable
from mltop.widgets.source_status import SourceStatus

MUTATING_ACTIONS = {"cancel_job", "retry_job", "scale_pool"}
# The longest an action may take before its outcome is reported as unknown (adapters have their
# own, shorter deadlines; this one also covers a backend that ignores them).
ACTION_DEADLINE = 60.0
CLOSE_DEADLINE = 1.0  # quitting waits at most this long for each source to close
MAIN_SCREEN_ACTIONS = {"cancel_job", "retry_job", "scale_pool", "filter", "clear_filter", "refresh"}
WIDE = 120  # from this many columns the nodes and pools panels sit side by side


class MltopApp(App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "mltop"
    COMMANDS = App.COMMANDS | {MltopCommands}
    ENABLE_COMMAND_PALETTE = True

    BINDINGS = [
        Binding("q", "quit", "Quit", id="quit"),
        Binding("question_mark", "help", "Keys", id="help"),
        Binding("slash", "filter", "Filter", id="filter"),
        Binding("ctrl+d", "cancel_job", "Cancel job", id="jobs.cancel"),
        Binding("R", "retry_job", "Retry", id="jobs.retry"),
        Binding("s", "scale_pool", "Scale", id="pools.scale"),
        Binding("w", "show_warnings", "Warnings", id="warnings.show"),
        Binding("r", "refresh", "Refresh", show=False, id="refresh"),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="filter.clear"),
    ]

    def __init__(
        self,
        config: Config,
        sources: Sequence[Source],
        *,
        clock: Callable[[], datetime] = utcnow,
        start_polling: bool = True,
    ) -> None:
        super().__init__()
        self.config = config
        self.read_only = config.read_only
        self.clock = clock
        self.start_polling = start_polling
        self.sources = {source_key(s): s for s in sources}
        self.loops = {key: SourceLoop(s, config.refresh, self._post_update, clock=clock) for key, s in self.sources.items()}
        self.updates: dict[str, SourceUpdate] = {}
        self.stops = StopTracker(config.stop_patience)
        self.filter_text = ""
        self.cancels_in_flight: set[str] = set()
        self.scales_in_flight: set[str] = set()
        self.all_jobs: list[Job] = []
        self.has_infra = any(s.kind == "kubernetes" for s in sources)
        self.history = IdleHistory()
        self.policy = cost_policy(config.cost)
        self.prices = cost_prices(config.cost)
        self.cost: CostReport | None = None

    def say(self, message: str, *, severity: str = "information", timeout: float = 6) -> None:
        """A notification. It often quotes backend text (ids, names, error bodies): shown inert,
        never parsed as markup."""
        self.notify(inert(message), severity=severity, timeout=timeout, markup=False)  # type: ignore[arg-type]

    # -- layout ---------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(id="summary")
        with Vertical(id="jobs-panel", classes="panel"):
            yield JobsTable(several_clusters=len(self.sources) > 1, id="jobs")
        with Vertical(id="warnings-panel", classes="panel"):
            yield WarningsTable(id="warnings")
        if self.has_infra:
            with Horizontal(id="infra"):
                with Vertical(id="nodes-panel", classes="panel"):
                    yield NodesTable(id="nodes")
                with Vertical(id="pools-panel", classes="panel"):
                    yield PoolsTable(id="pools")
        yield Input(placeholder="filter jobs: words to match, Enter keeps, Esc clears", id="filter")
        yield SourceStatus(id="sources")
        yield Footer()

    @property
    def table(self) -> JobsTable:
        return self.query_one(JobsTable)

    def on_mount(self) -> None:
        if self.config.keymap:
            self.set_keymap(dict(self.config.keymap))
        self.query_one("#filter", Input).display = False
        self._relayout()
        self.table.focus()
        self._render_all()
        if self.start_polling:
            for key, loop in self.loops.items():
                self.run_worker(loop.run(), group="refresh", description=f"poll {key}", exit_on_error=False)
        # Ages and the stop watchdog advance even when no source answers.
        self.set_interval(1.0, self._tick)

    async def on_unmount(self) -> None:
        # Stops the watch threads and closes connections, but never waits on a dead server.
        async def close(source: Source) -> None:
            try:
                await asyncio.wait_for(source.aclose(), CLOSE_DEADLINE)
            except (asyncio.TimeoutError, Exception):
                pass

        await asyncio.gather(*(close(s) for s in self.sources.values()))

    def on_resize(self) -> None:
        self._relayout()

    def _relayout(self) -> None:
        width = self.size.width
        self.table.relayout(width - 2)  # inside the panel's border
        self.query_one(WarningsTable).relayout(width - 2)
        if self.has_infra:
            wide = width >= WIDE
            self.query_one("#infra").set_class(not wide, "stacked")
            half = width // 2 - 2 if wide else width - 2
            self.query_one(NodesTable).relayout(half)
            self.query_one(PoolsTable).relayout(half)

    # -- data -----------------------------------------------------------------------------

    def _post_update(self, update: SourceUpdate) -> None:
        self.post_message(SourceUpdated(update))

    async def refresh_now(self) -> None:
        """Poll every source once and apply the results (tests and the `r` key)."""
        for loop in self.loops.values():
            await loop.run_once()

    def on_source_updated(self, message: SourceUpdated) -> None:
        self.updates[message.update.key] = message.update
        if not self.screen_stack or not self.screen_stack[0].is_mounted:
            return  # a late poll during shutdown
        self._render_all(settled={message.update.key} if message.update.health.ok else set())
        self._render_cost()
        if self.has_infra:
            self._render_infra()

    def _render_cost(self) -> None:
        now = self.clock()
        snapshot = snapshot_of(self.updates.values(), now)
        snapshot = replace(snapshot, jobs=tuple(self.all_jobs))
        self.cost = evaluate(snapshot, self.prices, self.policy, self.history, now)
        table = self.query_one(WarningsTable)
        table.now, table.currency = now, self.cost.currency
        # Unless the user is in the panel, its cursor stays on the most expensive warning.
        table.sync(list(self.cost.warnings), pin=table.has_focus)
        total = sum(w.cost_per_hour or 0.0 for w in self.cost.warnings)
        panel = self.query_one("#warnings-panel")
        panel.border_title = Text(inert(f"Idle-cost warnings: {len(self.cost.warnings)}, {self.cost.currency}{total:,.2f}/h"
                                        if self.cost.warnings else "Idle-cost warnings: none"))
        panel.border_subtitle = "w: go here, enter: go to target"
        # Its height follows its rows (set here: `height: auto` missed rows added after the first layout).
        self._size_warnings()
        self._render_summary({k: u.data.ray_cluster for k, u in self.updates.items() if u.data and u.data.ray_cluster})

    def _render_infra(self) -> None:
        nodes = [n for u in self.updates.values() if u.data for n in u.data.nodes]
        pools = [p for u in self.updates.values() if u.data for p in u.data.pools]
        # Nodes with free GPUs first (that is where money idles), then by name.
        nodes.sort(key=lambda n: (-n.gpus_free, n.cluster, n.name))
        order = {"raycluster-workergroup": 0, "machinedeployment": 1, "nodepool": 2}
        pools.sort(key=lambda p: (order.get(p.kind, 9), p.cluster, p.name))
        table = self.query_one(NodesTable)
        table.idle_costs = {n.key: self.cost.node_idle_cost(n) for n in nodes} if self.cost else {}
        table.sync(nodes)
        pools_table = self.query_one(PoolsTable)
        pools_table.idle_costs = self._pool_idle_costs(nodes, pools)
        pools_table.sync(pools)
        self._explain_pool(self.query_one(PoolsTable).selected)
        total = sum(n.gpus_allocatable for n in nodes)
        allocated = sum(n.gpus_allocated for n in nodes)
        self.query_one("#nodes-panel").border_title = (
            f"GPU nodes: {len(nodes)}, {fmt.gpus(allocated)}/{fmt.gpus(total)} GPUs allocated")
        scalable = sum(1 for p in pools if p.scalable)
        self.query_one("#pools-panel").border_title = f"Pools: {len(pools)}, {scalable} scalable"
        self._infra = (nodes, pools)

    def _tick(self) -> None:
        try:
            self._render_all()
        except NoMatches:
            pass  # shutting down: the widgets are already gone

    def _render_all(self, settled: set[str] | None = None) -> None:
        now = self.clock()
        jobs = [job for u in self.updates.values() if u.data for job in u.data.jobs]
        jobs, events = self.stops.apply(jobs, now, sources=settled or set())
        for event in events:
            self.say(event.message, severity=event.severity, timeout=10)  # type: ignore[arg-type]
        self.all_jobs = order_jobs(jobs, self.config.finished_limit)
        shown = [j for j in self.all_jobs if matches(j, self.filter_text)]
        overdue = frozenset(j.key for j in shown if self.stops.is_overdue(j, now))
        self.table.sync(shown, now, overdue)
        self._render_titles(shown)
        healths = [self._health(key) for key in self.sources]
        clusters = {k: u.data.ray_cluster for k, u in self.updates.items() if u.data and u.data.ray_cluster}
        extras = {}
        for key, u in self.updates.items():
            if u.data and u.data.nodes:
                alloc = sum(n.gpus_allocated for n in u.data.nodes)
                cap = sum(n.gpus_allocatable for n in u.data.nodes)
                waiting = sum(1 for j in u.data.jobs if j.state is JobState.PENDING)
                extras[key] = (f"{len(u.data.nodes)} GPU nodes, {fmt.gpus(alloc)}/{fmt.gpus(cap)} GPUs allocated, "
                               f"{waiting} pods wait for GPUs")
        self.query_one(SourceStatus).sync(healths, clusters, now, stale_after=max(10.0, 3 * self.config.refresh),
                                          extras=extras)
        self._render_summary(clusters)

    def _health(self, key: str) -> SourceHealth:
        update = self.updates.get(key)
        if update is not None:
            return update.health
        source = self.sources[key]
        return SourceHealth(source.kind, source.name, False, None, None, None, None)

    def _render_titles(self, shown: list[Job]) -> None:
        panel = self.query_one("#jobs-panel")
        waiting = sum(1 for j in self.all_jobs if j.state is JobState.PENDING)
        running = sum(1 for j in self.all_jobs if j.state in (JobState.RUNNING, JobState.CANCELLING))
        title = f"Jobs: {waiting} waiting, {running} running"
        if self.filter_text:
            title += f"  [filter: {self.filter_text}, {len(shown)} of {len(self.all_jobs)}]"
        panel.border_title = Text(inert(title))  # the filter is the user's text: never markup
        panel.border_subtitle = "read-only" if self.read_only else ""

    def _pool_idle_costs(self, nodes: list, pools: list[Pool]) -> dict[str, float | None]:
        """A pool's idle $/h: its nodes' idle $/h added up (unknown if any node has no price)."""
        if self.cost is None:
            return {}
        by_name = {f"{n.cluster}/{n.name}": n for n in nodes}
        out: dict[str, float | None] = {}
        for pool in pools:
            members = [by_name[f"{pool.cluster}/{m}"] for m in pool.members if f"{pool.cluster}/{m}" in by_name]
            costs = [self.cost.node_idle_cost(n) for n in members]
            out[pool.key] = None if not costs or any(c is None for c in costs) else sum(c for c in costs if c)
        return out

    def _render_summary(self, clusters: dict[str, RayClusterState]) -> None:
        total = sum(c.gpus_total for c in clusters.values())
        used_values = [c.gpus_used for c in clusters.values()]
        used = None if any(u is None for u in used_values) else sum(u for u in used_values if u is not None)
        ok = sum(1 for k in self.sources if (u := self.updates.get(k)) is not None and u.health.ok)
        text = " mltop"
        # The cost comes first so that it stays visible on an 80-column terminal.
        if self.cost is not None and (self.cost.node_prices or clusters):
            text += f"  {cost_line(self.cost)}"
        text += f"  ·  {ok}/{len(self.sources)} sources up"
        if clusters:
            text += f"  ·  Ray GPUs {fmt.gpus(used)}/{fmt.gpus(total)} in use"
        nodes = [n for u in self.updates.values() if u.data for n in u.data.nodes]
        if nodes:
            alloc = sum(n.gpus_allocated for n in nodes)
            cap = sum(n.gpus_allocatable for n in nodes)
            text += f"  ·  K8s GPUs {fmt.gpus(alloc)}/{fmt.gpus(cap)} allocated, {fmt.gpus(cap - alloc)} idle"
            by_model: dict[str, list[float]] = {}
            for n in nodes:
                entry = by_model.setdefault(short_model(n.gpu_model), [0.0, 0.0])
                entry[0] += n.gpus_allocated
                entry[1] += n.gpus_allocatable
            text += "  ·  " + "  ".join(
                f"{model} {fmt.gpus(a)}/{fmt.gpus(c)}" for model, (a, c) in sorted(by_model.items()))
        self.query_one("#summary", Static).update(Text(inert(text)))  # GPU model names come from node labels

    # -- actions --------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in MUTATING_ACTIONS and self.read_only:
            return False  # hidden from footer, help and palette; the key does nothing
        if action in MAIN_SCREEN_ACTIONS and self.screen is not self.screen_stack[0]:
            return False  # these act on the jobs table, which another screen covers
        if action in ("cancel_job", "scale_pool") and isinstance(self.focused, WarningsTable):
            warning = self.focused.selected
            wanted = "ctrl+d" if action == "cancel_job" else "s"
            return True if warning is not None and warning.remedy_key == wanted else False
        if action == "cancel_job":
            if self.has_infra and not isinstance(self.focused, JobsTable):
                return False  # the key is for the jobs panel
            job = self.table.selected_job if self.is_mounted else None
            if job is not None and job.not_cancellable_because:
                return True  # the key answers with the reason (an id the backend cannot address safely)
            if job is None or not job.cancellable or job.stop_requested_at is not None:
                return None  # shown dimmed: the key exists, but not for this row
        if action == "retry_job":
            if self.has_infra and not isinstance(self.focused, JobsTable):
                return False
            job = self.table.selected_job if self.is_mounted else None
            if job is None or not job.retryable:
                return False if not any(isinstance(s, Retryable) for s in self.sources.values()) else None
        if action == "scale_pool":
            if not self.has_infra or not isinstance(self.focused, PoolsTable):
                return False
            pool = self.focused.selected
            if pool is None or not pool.scalable or pool.key in self.scales_in_flight:
                return None
        return True

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.screen.active_bindings))

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        box.focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        if box.display or self.filter_text:
            box.value = ""
            box.display = False
            self.filter_text = ""
            self.table.focus()
            self._render_all()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            self.filter_text = event.value.strip()
            self._render_all()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter":
            if not event.value.strip():
                event.input.display = False
            self.table.focus()

    def action_refresh(self) -> None:
        for loop in self.loops.values():
            loop.poke()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.refresh_bindings()  # cancel and scale depend on the row under the cursor
        if isinstance(event.data_table, PoolsTable):
            self._explain_pool(event.data_table.selected)

    def _explain_pool(self, pool: Pool | None) -> None:
        """Where scaling is dimmed, the panel says why, under the pool the cursor is on."""
        reason = ""
        if pool is not None and not self.read_only:
            reason = "s: scale" if pool.scalable else f"not scalable here: {pool.why_not_scalable}"
        self.query_one("#pools-panel").border_subtitle = Text(inert(reason))

    def on_descendant_focus(self) -> None:
        self.refresh_bindings()
        self._size_warnings()

    def _size_warnings(self) -> None:
        """The warnings panel is as tall as its rows (up to 4), and takes room when it has the focus."""
        if not self.is_mounted or self.cost is None:
            return
        panel = self.query_one("#warnings-panel")
        focused = isinstance(self.focused, WarningsTable)
        panel.styles.max_height = None if focused else min(7, len(self.cost.warnings) + 3)

    def action_show_warnings(self) -> None:
        self.query_one(WarningsTable).focus()

    def go_to(self, warning: IdleWarning) -> bool:
        """Put the cursor on a warning's target in its own panel; False when it has none here."""
        target = warning.target
        tables = [self.table] + ([self.query_one(NodesTable), self.query_one(PoolsTable)] if self.has_infra else [])
        for table in tables:
            if table.select_key(target):
                table.focus()
                return True
        return False

    def _remedy_target(self, action: str) -> bool:
        """From the warnings panel, the remedy key acts on the warning's remedy target."""
        if not isinstance(self.focused, WarningsTable):
            return True
        warning = self.focused.selected
        if warning is None or warning.remedy_target is None:
            return False
        tables = [self.table] + ([self.query_one(PoolsTable)] if self.has_infra else [])
        for table in tables:
            if table.select_key(warning.remedy_target):
                table.focus()
                return True
        self.say(f"{warning.target_name}: its target is no longer listed", severity="warning")
        return False

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        key = event.row_key.value
        if isinstance(event.data_table, WarningsTable):
            warning = event.data_table.records.get(key) if key else None
            if warning is not None and not self.go_to(warning):
                self.say(f"{warning.target_name}: {warning.remedy}", timeout=10)
            return
        if isinstance(event.data_table, (NodesTable, PoolsTable)):
            record = event.data_table.records.get(key) if key else None
            if record is not None:
                self.push_screen(InfraDetailsScreen(record, self.clock))
            return
        job = self.table.jobs.get(key) if key else None
        if job is None:
            return
        source = self.sources.get(f"{job.source}/{job.cluster}")
        self.push_screen(
            JobDetailsScreen(job, source if isinstance(source, HasJobDetails) else None, clock=self.clock)
        )

    def action_cancel_job(self) -> None:
        if self.read_only or not self._remedy_target("cancel_job"):
            return
        # The target is captured now, by key: whatever the table does next, this is the job.
        job = self.table.selected_job
        if job is None:
            return
        if not job.cancellable:
            why = job.not_cancellable_because or f"it is {job.native_state}: nothing to cancel"
            self.say(f"{job.cluster}/{job.id}: {why}", severity="warning", timeout=10)
            return
        if job.key in self.cancels_in_flight or job.stop_requested_at is not None:
            self.say(f"a stop for {job.cluster}/{job.id} is already under way", severity="warning")
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.cancel(job)

        self.push_screen(ConfirmCancel(job), confirmed)

    def action_retry_job(self) -> None:
        if self.read_only:
            return
        job = self.table.selected_job  # captured now, by key
        if job is None or not job.retryable:
            return
        if job.key in self.cancels_in_flight:
            self.say(f"an action on {job.cluster}/{job.id} is already under way", severity="warning")
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.retry(job)

        self.push_screen(ConfirmCancel(job, retry=True), confirmed)

    async def _job_action(self, job: Job, capability: type, verb: str) -> ActionOutcome | None:
        """Call one job action on the job's own source; errors become one line. None if it failed
        or its outcome is unknown."""
        key = f"{job.source}/{job.cluster}"
        source = self.sources.get(key)
        if not isinstance(source, capability) or (source.kind, source.name) != (job.source, job.cluster):
            self.say(f"{key} cannot {verb} jobs", severity="error")
            return None
        self.cancels_in_flight.add(job.key)
        try:
            call = source.retry_job if verb == "retry" else source.cancel_job  # type: ignore[attr-defined]
            return await asyncio.wait_for(call(job.id), ACTION_DEADLINE)
        except (OutcomeUnknown, asyncio.TimeoutError) as exc:
            detail = str(exc) if isinstance(exc, OutcomeUnknown) else (
                f"{verb} {job.cluster}/{job.id}: no answer within {ACTION_DEADLINE:.0f}s")
            self.say(f"outcome unknown: {detail}. Check the backend; the next refresh shows the truth.",
                     severity="warning", timeout=15)
            return None
        except SourceError as exc:
            self.say(str(exc), severity="error", timeout=10)
            return None
        finally:
            self.cancels_in_flight.discard(job.key)
            self.loops[key].poke()

    @work(group="actions", description="retry a run", exit_on_error=False)
    async def retry(self, job: Job) -> None:
        outcome = await self._job_action(job, Retryable, "retry")
        if outcome is not None:
            self.say(f"{outcome.message}; the table shows its state once the server reports it", timeout=6)

    @work(group="actions", description="cancel a job", exit_on_error=False)
    async def cancel(self, job: Job) -> None:
        outcome = await self._job_action(job, Cancellable, "cancel")
        if outcome is not None:
            self.stops.requested(job, self.clock())
            self.say(f"{outcome.message}; waiting for it to report the job stopped", timeout=6)
            self._render_all()

    def action_scale_pool(self) -> None:
        if self.read_only or not self.has_infra or not self._remedy_target("scale_pool"):
            return
        table = self.query_one(PoolsTable)
        pool = table.selected  # captured now, by key
        if pool is None:
            return
        if not pool.scalable:
            self.say(f"{pool.name}: {pool.why_not_scalable}", severity="warning", timeout=8)
            return
        if pool.key in self.scales_in_flight:
            self.say(f"a scale of {pool.name} is already under way", severity="warning")
            return

        def confirmed(plan: ScalePlan | None) -> None:
            if plan is not None:
                self.scale(plan)

        self.push_screen(ScaleDialog(pool), confirmed)

    @work(group="actions", description="scale a pool", exit_on_error=False)
    async def scale(self, plan: ScalePlan) -> None:
        pool = plan.pool
        key = f"kubernetes/{pool.cluster}"
        source = self.sources.get(key)
        if not isinstance(source, Scalable):
            self.say(f"{key} cannot scale pools", severity="error")
            return
        self.scales_in_flight.add(pool.key)
        try:
            message = await asyncio.wait_for(source.scale(plan), ACTION_DEADLINE)
        except asyncio.TimeoutError:
            self.say(f"outcome unknown: scaling {pool.name} got no answer within {ACTION_DEADLINE:.0f}s. Check the "
                     "cluster; the next refresh shows what it holds.", severity="warning", timeout=15)
            return
        except OutcomeUnknown as exc:
            self.say(str(exc), severity="warning", timeout=15)
            return
        except SourceError as exc:
            self.say(str(exc), severity="error", timeout=12)
            return
        finally:
            self.scales_in_flight.discard(pool.key)
            self.loops[key].poke()  # show what the server holds now, success or not
        self.say(f"{message}; the pools panel shows the new value once the server reports it", timeout=8)
