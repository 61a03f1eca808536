"""The main screen: the summary line, the jobs, warnings, nodes and pools panels, the source lines.

It draws one `dashboard.View` at a time: `show(view)` hands it to every panel (`sync`), and a
panel whose data is absent (no Kubernetes source yet: no nodes, no pools) is not shown. It holds
no state of its own beyond what is on screen; the app owns the dashboard and the actions.
"""

from __future__ import annotations

from collections.abc import Mapping

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from mltop import format as fmt
from mltop.dashboard import View
from mltop.keys import key_label
from mltop.model import IdleWarning, Pool
from mltop.report import cost_line
from mltop.safe_text import inert
from mltop.tui.command_line import SUGGESTER
from mltop.widgets.steady import set_border, update_if_changed
from mltop.widgets.infra_tables import NodesTable, PoolsTable, WarningsTable, short_model
from mltop.widgets.jobs_table import JobsTable
from mltop.widgets.keyed_table import KeyedTable
from mltop.widgets.source_status import SourceStatus

WIDE = 120  # from this many columns the nodes and pools panels sit side by side
TALL = 40  # below this many rows they sit side by side too: stacked, each would get a row or two
MIN_SIZE = (80, 24)  # the smallest terminal the layout is made for (README)


def nodes_title(view: View) -> str:
    """Kubernetes and Ray nodes are counted apart: a KubeRay pod's GPUs are in both."""
    s = view.summary
    ray = view.ray_nodes  # counted in the derive worker: 5,000 nodes walked on the UI thread each view
    kube = len(view.nodes) - ray
    ray_part = f"{ray} Ray, {fmt.gpus(s.ray_gpus_used)}/{fmt.gpus(s.ray_gpus_total)} in use"
    if not ray:
        return f"GPU nodes: {kube}, {fmt.gpus(s.gpus_allocated)}/{fmt.gpus(s.gpus_allocatable)} allocated"
    if not kube:
        return f"GPU nodes: {ray_part}"
    return f"GPU nodes: {kube} K8s, {fmt.gpus(s.gpus_allocated)}/{fmt.gpus(s.gpus_allocatable)} allocated; {ray_part}"


class DashboardScreen(Screen[None]):
    def __init__(self, *, several_sources: bool, read_only: bool, keymap: Mapping[str, str]) -> None:
        super().__init__()
        self.several_sources = several_sources
        self.read_only = read_only
        self.keymap = keymap
        self.view: View | None = None
        self._infra_present = False
        self._warned: object = None  # the cost report the warnings panel shows
        self._pools_present = True  # the pools panel is shown (a Ray-only platform has none: hidden)
        self._small = False

    def compose(self) -> ComposeResult:
        yield Static(id="too-small")
        # The header says where you are, as k9s does: the cost, then each cluster or endpoint (a
        # Kubernetes source is its kubeconfig context) with its state and the age of its data.
        yield Static(id="summary")
        yield SourceStatus(id="sources")
        with Vertical(id="jobs-panel", classes="panel"):
            yield JobsTable(several_clusters=self.several_sources, id="jobs")
        with Vertical(id="warnings-panel", classes="panel"):
            yield WarningsTable(id="warnings")
        with Horizontal(id="infra"):
            with Vertical(id="nodes-panel", classes="panel"):
                yield NodesTable(id="nodes")
            with Vertical(id="pools-panel", classes="panel"):
                yield PoolsTable(id="pools")
        yield Input(placeholder="filter jobs: words to match, Enter keeps, Esc clears", id="filter")
        yield Input(placeholder=":jobs :nodes :pools :warnings :queues :teams :cluster NAME :ctx NAME :ns NAME :audit :q",
                    id="command", suggester=SUGGESTER)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#filter", Input).display = False
        self.query_one("#command", Input).display = False
        self.query_one("#infra").display = False
        self.relayout()
        self.jobs.focus()

    @property
    def jobs(self) -> JobsTable:
        return self.query_one(JobsTable)

    @property
    def has_infra(self) -> bool:
        """The nodes and pools panels are shown: some source reported nodes or pools."""
        return self._infra_present

    def tables(self) -> list[KeyedTable]:
        return [self.jobs, self.query_one(WarningsTable), self.query_one(NodesTable), self.query_one(PoolsTable)]

    # -- layout -----------------------------------------------------------------------------------

    def on_resize(self) -> None:
        self.relayout()

    def relayout(self) -> None:
        width, height = self.app.size
        self._too_small(width, height)
        self.jobs.relayout(width - 2)  # inside the panel's border
        self.query_one(WarningsTable).relayout(width - 2)
        wide = width >= WIDE or height < TALL
        self.query_one("#infra").set_class(not wide, "stacked")
        half = width // 2 - 2 if wide and self._pools_present else width - 2
        zoomed = self.maximized
        for table in (self.query_one(NodesTable), self.query_one(PoolsTable)):
            table.relayout(width - 2 if zoomed is not None and table.parent is zoomed else half)
        self.size_warnings()

    def _too_small(self, width: int, height: int) -> None:
        """Below the minimum size, say what size is needed instead of drawing empty panels."""
        small = width < MIN_SIZE[0] or height < MIN_SIZE[1]
        notice = self.query_one("#too-small", Static)
        if small:
            notice.update(Text(f"mltop needs a terminal of at least {MIN_SIZE[0]}x{MIN_SIZE[1]}; this one is "
                               f"{width}x{height}.\nMake the window larger, or press q to quit."))
        if small == self._small:
            return
        self._small = small
        self.set_class(small, "-too-small")  # the stylesheet hides the panels and shows the notice
        if not small:
            self.jobs.focus()  # the panels are back: so are their keys

    # -- drawing a view ---------------------------------------------------------------------------

    def show(self, view: View, *, cost_changed: bool = True) -> None:
        """Draw `view`. The warnings, nodes and pools only change with new data (`cost_changed`);
        the clock's tick redraws the jobs and the source lines."""
        self.view = view
        self.jobs.sync(list(view.jobs), view.now, view.overdue, reasons=view.short_reasons)
        self._jobs_title(view)
        self.query_one(SourceStatus).sync(view.sources, view.now, view.stale_after)
        if cost_changed:
            # The warnings come from the cost report alone: while nodes change and the report is the
            # same (a large cluster's evaluation waits its turn), their 1,000 rows need no diff; their
            # ages move with the next report, as on a quiet cluster.
            if view.cost is not self._warned:
                self._warnings(view)
            self._infra(view)
        self._summary(view)

    def _jobs_title(self, view: View) -> None:
        panel = self.query_one("#jobs-panel")
        marked = f", {len(self.jobs.marked)} marked" if self.jobs.marked else ""
        title = f"Jobs: {view.waiting} waiting, {view.running} running{marked}"
        # The filter is the user's text: never markup.
        set_border(panel, self._title(self.jobs, title), "read-only" if self.read_only else "")

    def _warnings(self, view: View) -> None:
        cost = view.cost
        if cost is None:
            return
        self._warned = cost
        table = self.query_one(WarningsTable)
        table.now, table.currency = view.now, cost.currency
        table.keymap = dict(self.keymap)
        # Unless the user is in the panel, its cursor stays on the most expensive warning.
        table.sync(list(cost.warnings), pin=table.has_focus)
        currency = cost.currency
        title = (f"Idle-cost warnings: {len(cost.warnings)}, {currency}{cost.warned_rate:,.2f}/h of the "
                 f"{currency}{cost.idle_rate:,.2f}/h idle" if cost.warnings else "Idle-cost warnings: none")
        panel = self.query_one("#warnings-panel")
        set_border(panel, self._title(table, title), "w: go here, enter: the whole warning")
        self.size_warnings()

    def _infra(self, view: View) -> None:
        infra = self.query_one("#infra")
        present = bool(view.nodes or view.pools)
        if present != self._infra_present:
            self._infra_present = present  # a panel appears when its data is present
            infra.display = present
            self.relayout()
        if not present:
            return
        if bool(view.pools) != self._pools_present:  # Ray nodes and no pools: the nodes take the width
            self._pools_present = bool(view.pools)
            self.query_one("#pools-panel").display = self._pools_present
            self.relayout()
        nodes_table, pools_table = self.query_one(NodesTable), self.query_one(PoolsTable)
        nodes_table.idle_costs = view.node_idle_costs
        nodes_table.sync(list(view.nodes))
        pools_table.idle_costs = view.pool_idle_costs
        pools_table.sync(list(view.pools))
        self.explain_pool(pools_table.selected)
        nodes_panel, pools_panel = self.query_one("#nodes-panel"), self.query_one("#pools-panel")
        set_border(nodes_panel, self._title(nodes_table, nodes_title(view)))
        scalable = sum(1 for p in view.pools if p.scalable)
        set_border(pools_panel, self._title(pools_table, f"Pools: {len(view.pools)}, {scalable} scalable"))

    @staticmethod
    def _title(table: KeyedTable, text: str) -> Text:
        """A panel's title and its filter and sort, cut by mltop (inert, with the terminal's own
        ellipsis) to fit its top border, rather than by Textual, which would always cut with a
        UTF-8 ellipsis. The counts give way first: the filter in force must stay readable."""
        extra = table.describe().strip()
        room = max(8, table.total_width - 4)
        if not extra:
            return Text(fmt.clip(text, room))
        return Text(fmt.clip(text, max(8, room - len(extra) - 2)) + "  " + fmt.clip(extra, room))

    def on_keyed_table_arranged(self, message: KeyedTable.Arranged) -> None:
        """A panel's filter or sort changed: redraw the titles that say so."""
        if self.view is not None:
            self._jobs_title(self.view)
            self._warnings(self.view)
            self._infra(self.view)

    def _summary(self, view: View) -> None:
        s, cost = view.summary, view.cost
        text = " mltop"
        # The cost comes first so that it stays visible on an 80-column terminal.
        if cost is not None and (cost.node_prices or s.has_ray):
            text += f"  {cost_line(cost)}"
            if view.cost_behind >= 1:  # a large cluster's slow evaluation waits its turn: the tables are newer
                text += f" (costs {view.cost_behind:.0f}s behind)"
        text += f"  {fmt.SEPARATOR}  {s.sources_up}/{s.sources_total} sources up"
        if s.has_ray:
            text += f"  {fmt.SEPARATOR}  Ray GPUs {fmt.gpus(s.ray_gpus_used)}/{fmt.gpus(s.ray_gpus_total)} in use"
        if s.has_nodes:
            idle = s.gpus_allocatable - s.gpus_allocated
            text += (f"  {fmt.SEPARATOR}  K8s GPUs {fmt.gpus(s.gpus_allocated)}/{fmt.gpus(s.gpus_allocatable)} allocated, "
                     f"{fmt.gpus(idle)} idle")
            models: dict[str, list[float]] = {}
            for use in s.by_model:
                entry = models.setdefault(short_model(use.model), [0.0, 0.0])
                entry[0] += use.allocated
                entry[1] += use.allocatable
            text += f"  {fmt.SEPARATOR}  " + "  ".join(f"{m} {fmt.gpus(a)}/{fmt.gpus(c)}" for m, (a, c) in sorted(models.items()))
        update_if_changed(self.query_one("#summary", Static), Text(inert(text)))  # GPU model names come from node labels

    # -- focus and the panels' own words ---------------------------------------------------------

    def explain_pool(self, pool: Pool | None) -> None:
        """Where scaling is dimmed, the panel says why, under the pool the cursor is on."""
        reason = ""
        if pool is not None and not self.read_only:
            key = key_label("pools.scale", self.keymap) or "s"
            reason = f"{key}: scale" if pool.scalable else f"not scalable here: {pool.why_not_scalable}"
        set_border(self.query_one("#pools-panel"), subtitle=Text(inert(reason)))

    def size_warnings(self) -> None:
        """The warnings panel is as tall as its rows: up to 4, or 1 on a terminal under 32 rows (the
        queue keeps its 8). It does not grow when it has the focus: it scrolls."""
        if self.view is None or self.view.cost is None:
            return
        rows = 4 if self.app.size.height >= 32 else 1
        self.query_one("#warnings-panel").styles.max_height = min(rows, len(self.view.cost.warnings)) + 3

    def go_to(self, target: str, tables: list[KeyedTable] | None = None) -> bool:
        """Put the cursor on `target` in its own panel; False when no panel lists it."""
        infra = (NodesTable, PoolsTable)
        for table in tables or [t for t in self.tables() if not isinstance(t, WarningsTable)]:
            if isinstance(table, infra) and not self.has_infra:
                continue
            if table.select_key(target):
                table.focus()
                return True
        return False

    def warning_target(self, warning: IdleWarning) -> bool:
        return self.go_to(warning.target)
