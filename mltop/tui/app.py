"""The mltop application: wires the refresh loops to the headless dashboard and its screen, and
carries out the actions users confirm.

Data flow: a SourceLoop per source (async worker) -> SourceUpdated message (replaceable: a burst
collapses to the newest) -> Dashboard.update -> Dashboard.view -> DashboardScreen.show, where
each panel syncs (a keyed diff).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from datetime import datetime

from textual.command import CommandPalette
from textual.app import App
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.widgets import DataTable, Input

from mltop import format as fmt
from mltop.actions import ActionRunner, HasJobDetails, Source, can
from mltop.audit import AuditLog
from mltop.config import Config
from mltop.dashboard import Dashboard, View, dashboard_for
from mltop.keys import BINDINGS
from mltop.model import GpuNode, IdleWarning, Job
from mltop.refresh import SourceLoop, SourceUpdate, utcnow
from mltop.safe_text import inert
from mltop.tui.command_line import execute
from mltop.tui.commands import MltopCommands
from mltop.tui.dashboard_screen import DashboardScreen
from mltop.tui.derive import Deriving, derive
from mltop.tui.details import JobDetailsScreen, forward_view
from mltop.tui.terminal import catch_signals
from mltop.tui.warning_view import WarningScreen
from mltop.tui.help import HelpScreen
from mltop.tui.infra_details import InfraDetailsScreen
from mltop.tui.bulk import BulkActions
from mltop.tui.screen_actions import ScreenActions
from mltop.tui.job_actions import JobActions
from mltop.tui.log_view import LogActions
from mltop.tui.raw_view import RawActions
from mltop.tui.memory import freeze_long_lived
from mltop.tui.messages import SourceUpdated
from mltop.widgets.infra_tables import NodesTable, PoolsTable, WarningsTable
from mltop.widgets.jobs_table import JobsTable
from mltop.widgets.keyed_table import KeyedTable

MUTATING_ACTIONS = {"cancel_job", "retry_job", "scale_pool", "toggle_mark", "workload_active"}
MAIN_SCREEN_ACTIONS = {"cancel_job", "retry_job", "scale_pool", "filter", "clear_filter", "refresh", "command",
                       "show_log", "show_raw", "toggle_mark", "zoom", "incident_snapshot", "workload_active",
                       "show_warnings"}
PANEL_NAMES = {"jobs": "jobs", "warnings": "warnings", "nodes": "nodes", "pools": "pools"}
FILTER_HINT = "regex, field:value, gpus>4, !negates; Enter keeps, Esc clears"
CLOSE_DEADLINE = 1.0  # quitting waits at most this long for each source to close
POKE_URGENT_SECONDS = 10.0  # after `r`, answers are shown as they come, not at the next tick
# Binding id -> (action method, shown in the footer). Keys and words come from mltop.keys.
APP_ACTIONS = {
    "quit": ("quit", True), "help": ("help", True), "filter": ("filter", True), "jobs.cancel": ("cancel_job", True),
    "jobs.retry": ("retry_job", True), "pools.scale": ("scale_pool", True), "warnings.show": ("show_warnings", True),
    "refresh": ("refresh", False), "filter.clear": ("clear_filter", False), "copy": ("copy_id", False),
    "command": ("command", False), "logs": ("show_log", False), "raw": ("show_raw", False),
    "jobs.mark": ("toggle_mark", False), "jobs.workload": ("workload_active", False), "snapshot": ("incident_snapshot", False), "zoom": ("zoom", False),
}


def _binding(binding_id: str) -> Binding:
    action, show = APP_ACTIONS[binding_id]
    spec = BINDINGS[binding_id]
    return Binding(spec.keys, action, spec.label, show=show, id=binding_id)


_ASCII_KEY_NAMES = {"⏎": "enter", "↑": "up", "↓": "down", "←": "left", "→": "right"}


class MltopApp(Deriving, JobActions, BulkActions, LogActions, RawActions, ScreenActions, App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "mltop"
    COMMANDS = App.COMMANDS | {MltopCommands}
    ENABLE_COMMAND_PALETTE = True
    BINDINGS = [_binding(binding_id) for binding_id in APP_ACTIONS]

    def __init__(self, config: Config, sources: Sequence[Source], *, clock: Callable[[], datetime] = utcnow,
                 start_polling: bool = True, ascii_only: bool = False, ansi_colors: bool = False) -> None:
        # A terminal whose locale is not UTF-8 gets ASCII borders, ellipses and marks; one with 16
        # colours gets the terminal's own palette (states still read by word and weight).
        fmt.use_ascii(ascii_only)
        super().__init__(css_path=[self.CSS_PATH, "ascii.tcss"] if ascii_only else None,
                         ansi_color=True if ansi_colors else None)
        if ansi_colors:
            self.theme = "ansi-dark"
        self.config = config
        self.read_only = config.read_only
        self._filter_target: KeyedTable | None = None  # the panel the `/` box filters
        self.clock = clock
        self.start_polling = start_polling
        self._frozen = False  # long-lived objects moved out of the collector's way (mltop/tui/memory.py)
        self._poked_at = -POKE_URGENT_SECONDS  # when `r` was pressed (monotonic)
        self.sources = {s.key: s for s in sources}
        self.loops = {key: SourceLoop(s, config.refresh, self._post_update, clock=clock) for key, s in self.sources.items()}
        self.dashboard: Dashboard = dashboard_for(sources, config)
        self.runner = ActionRunner(audit=AuditLog())

    def get_key_display(self, binding: Binding) -> str:
        shown = super().get_key_display(binding)
        if fmt.ELLIPSIS != "…":  # an ASCII terminal: Textual writes enter and arrows as UTF-8 glyphs
            for glyph, name in _ASCII_KEY_NAMES.items():
                shown = shown.replace(glyph, name)
        return shown

    def action_command_palette(self) -> None:
        if fmt.ELLIPSIS == "…":
            super().action_command_palette()
        elif self.use_command_palette and not CommandPalette.is_open(self):  # no UTF-8 ellipsis
            self.push_screen(CommandPalette(id="--command-palette", placeholder="Search for commands..."))

    def get_default_screen(self) -> DashboardScreen:
        return DashboardScreen(several_sources=len(self.sources) > 1, read_only=self.read_only,
                               keymap=self.config.keymap)

    @property
    def main(self) -> DashboardScreen:
        return self.screen_stack[0]  # type: ignore[return-value]

    @property
    def table(self) -> JobsTable:
        return self.main.jobs

    def say(self, message: str, *, severity: str = "information", timeout: float = 6) -> None:
        """A notification. It often quotes backend text (ids, names, error bodies): shown inert,
        never parsed as markup."""
        self.notify(inert(message), severity=severity, timeout=timeout, markup=False)  # type: ignore[arg-type]

    def on_mount(self) -> None:
        if self.config.keymap:
            self.set_keymap(dict(self.config.keymap))
        catch_signals(self)
        # The main screen's panels exist once it has been composed: start from there.
        self.call_after_refresh(self._start)

    def _start(self) -> None:
        self._show(derive(self.dashboard, self.clock(), False), cost_changed=False)  # no data yet: cheap
        if self.start_polling:
            for key, loop in self.loops.items():
                self.run_worker(loop.run(), group="refresh", description=f"poll {key}", exit_on_error=False)
        # Ages and the stop watchdog advance even when no source answers.
        self.set_interval(1.0, self._tick)

    async def action_quit(self) -> None:
        """q and ctrl+c quit at once; only while an action is in flight is a second press asked for."""
        if self.runner.in_flight and time.monotonic() - getattr(self, "_quit_asked", 0.0) > 3.0:
            self._quit_asked = time.monotonic()
            self.say("an action is still waiting for its answer: press again to quit anyway", severity="warning")
            return
        self.exit()

    async def on_unmount(self) -> None:
        # Stops the watch threads and closes connections, but never waits on a dead server.
        async def close(source: Source) -> None:
            try:
                await asyncio.wait_for(source.aclose(), CLOSE_DEADLINE)
            except Exception:  # TimeoutError included: a source that will not close never keeps us here
                pass

        await asyncio.gather(*(close(s) for s in self.sources.values()))
        try:
            self.dashboard.close()  # the history store: a short, local close
        except Exception:
            pass

    # -- data -------------------------------------------------------------------------------------

    def _post_update(self, update: SourceUpdate) -> None:
        self.post_message(SourceUpdated(update))

    async def refresh_now(self) -> None:
        """Poll every source once and wait until the screen shows the results (tests)."""
        for loop in self.loops.values():
            update = await loop.run_once()
            self.dashboard.update(update)  # its SourceUpdated message comes later, and changes nothing
        self._draw(with_cost=True)
        await self.derived()

    def on_source_updated(self, message: SourceUpdated) -> None:
        update = message.update
        last = self.dashboard.updates.get(update.key)
        self.dashboard.update(update)
        if not self.screen_stack or not self.main.is_mounted:
            return  # a late poll during shutdown
        # A source's first answer, a source going down or coming back, and the answer to `r` are
        # shown at once; other news waits for the clock's next tick (within a second), which
        # redraws the ages anyway: one view and one frame where there were two. At 5,000 nodes a
        # view applied and drawn costs tens of milliseconds of the UI thread.
        urgent = (last is None or last.health.ok != update.health.ok
                  or time.monotonic() - self._poked_at < POKE_URGENT_SECONDS)
        self._draw(with_cost=True, soon=not urgent)

    def _tick(self) -> None:
        try:
            self._draw(with_cost=False)
        except NoMatches:
            pass  # shutting down: the widgets are already gone

    def _show(self, view: View, *, cost_changed: bool) -> None:
        """Apply a derived view (mltop/tui/derive.py) to the screen: the only part on the UI thread."""
        for event in view.events:
            self.say(event.message, severity=event.severity, timeout=10)
        self.main.show(view, cost_changed=cost_changed)
        forward_view(self.screen_stack, view)  # an open job details screen stays live
        if not self._frozen and len(self.dashboard.updates) == len(self.dashboard.source_keys):
            self._frozen = True
            freeze_long_lived()
        note = self.dashboard.take_history_note()  # the history store locked or unusable: said once
        if note:
            self.say(note, severity="warning", timeout=15)

    # -- which keys apply where -------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in MUTATING_ACTIONS and self.read_only:
            return False  # hidden from footer, help and palette; the key does nothing
        # The command palette asks which actions apply while it covers the main screen: it offers
        # what applies to the main screen's selection (it runs the action once it has closed).
        palette = isinstance(self.screen, CommandPalette)
        if action in MAIN_SCREEN_ACTIONS and self.screen is not self.screen_stack[0] and not palette:
            return False  # these act on the main screen's panels, which another screen covers
        focused = self.main.focused if self.is_mounted else None
        if action in ("cancel_job", "scale_pool") and isinstance(focused, WarningsTable):
            wanted = "jobs.cancel" if action == "cancel_job" else "pools.scale"  # some warning's FIX
            return any(w.remedy_action == wanted for w in focused.records.values())
        if action in ("cancel_job", "retry_job"):
            return self._job_action_state(action, focused)
        if action == "workload_active":  # only where some source can: a cluster with Kueue
            return (any(can(s, "jobs.workload") for s in self.sources.values())
                    and (not self.main.has_infra or isinstance(focused, JobsTable)))
        if action == "scale_pool":
            if not self.main.has_infra or not isinstance(focused, PoolsTable):
                return False
            # A pool that cannot be scaled keeps the key: pressing it says why (not a silent key).
            return None if focused.selected is None else True
        return True

    def _job_action_state(self, action: str, focused: object) -> bool | None:
        """The key is for the jobs panel. On a row it cannot apply to, it stays live and says why
        when pressed (not a silent key); with no row at all it is shown dimmed."""
        if self.main.has_infra and not isinstance(focused, JobsTable):
            return False
        if action == "retry_job" and not any(can(s, "jobs.retry") for s in self.sources.values()):
            return False  # no source here can retry anything: not offered at all
        job = self.table.selected_job if self.is_mounted else None
        return None if job is None and not (self.is_mounted and self.table.marked) else True

    # -- keys ---------------------------------------------------------------------------------------

    def action_help(self) -> None:
        table = self.focused if isinstance(self.focused, KeyedTable) else None
        titles = {key: title for key, title, _ in table.COLUMNS} if table else {}
        sorts = ", ".join(f"{letter} {titles.get(column, column)}" for letter, (column, _) in
                          (table.SORT_KEYS.items() if table else ()))
        self.push_screen(HelpScreen(self.screen.active_bindings, sorts))

    @property
    def filter_target(self) -> KeyedTable:
        return self._filter_target or self.table

    @filter_target.setter
    def filter_target(self, table: KeyedTable) -> None:
        self._filter_target = table

    def action_filter(self) -> None:
        """`/` filters the focused panel (the queue when none is focused)."""
        table = self.focused if isinstance(self.focused, KeyedTable) else self.table
        self.filter_target = table
        box = self.main.query_one("#filter", Input)
        box.placeholder = f"filter {PANEL_NAMES.get(table.id or '', 'rows')}: {FILTER_HINT}"
        box.value = table.query.text
        box.display = True
        box.focus()

    def action_command(self) -> None:
        box = self.main.query_one("#command", Input)
        box.value = ""
        box.display = True
        box.focus()

    def action_clear_filter(self) -> None:
        command = self.main.query_one("#command", Input)
        if command.display:
            command.display = False
            self.filter_target.focus()
            return
        box = self.main.query_one("#filter", Input)
        if not box.display and self.table.marked and self.focused is self.table:
            self.table.clear_marks()  # esc: first the marks, then the filter
            self.main._jobs_title(self.main.view)
            self.say("marks cleared", timeout=2)
            return
        table = self.filter_target if box.display else self.focused
        if isinstance(table, KeyedTable) and (box.display or table.query.text):
            box.value = ""
            box.display = False
            self._set_filter(table, "")
            table.focus()

    def _set_filter(self, table: KeyedTable, text: str) -> None:
        table.set_filter(text)
        self.main.on_keyed_table_arranged(KeyedTable.Arranged(table))

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            self._set_filter(self.filter_target, event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "command":
            event.input.display = False
            self.filter_target.focus()
            execute(self, event.value)  # a `:` command (tui/command_line.py)
            return
        if event.input.id == "filter":
            if not event.value.strip():
                event.input.display = False
            self.filter_target.focus()

    def action_refresh(self) -> None:
        self._poked_at = time.monotonic()
        for loop in self.loops.values():
            loop.poke()
        self.say(f"refreshing {len(self.loops)} sources now", timeout=2)  # r is never a silent key

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        # Cancel, retry, scale and the Kueue key depend on the row under the cursor. Redrawing the
        # footer costs more than a cursor move (tens of ms): only when one of them changed.
        if self._row_keys_now() != getattr(self, "_row_keys", None):
            self.refresh_bindings()
        if isinstance(event.data_table, PoolsTable):
            self.main.explain_pool(event.data_table.selected)

    def on_descendant_focus(self) -> None:
        self.refresh_bindings()

    def refresh_bindings(self) -> None:
        self._row_keys = self._row_keys_now()  # what the footer now shows of the row-dependent keys
        super().refresh_bindings()

    def _row_keys_now(self) -> tuple[bool | None, ...]:
        try:
            return tuple(self.check_action(action, ()) for action in MUTATING_ACTIONS)
        except NoMatches:  # before the panels exist, or after they are gone
            return ()

    def action_show_warnings(self) -> None:
        self.main.query_one(WarningsTable).focus()

    def _remedy_target(self, binding_id: str = "") -> bool:
        """From the warnings panel, the remedy key acts on a warning's remedy target: the selected
        warning's when this key is its FIX, else the first warning (most expensive) whose FIX it is,
        which gets the cursor first, so the screen shows what the dialog names."""
        if not isinstance(self.focused, WarningsTable):
            return True
        table = self.focused
        warning = table.selected
        if warning is None or warning.remedy_action != binding_id:
            ordered = [table.records[key] for key in table._order]
            warning = next((w for w in ordered if w.remedy_action == binding_id), None)
            if warning is None:
                return False
            table.select_key(table.key_of(warning))
        if warning.remedy_target is None:
            return False
        if self.main.go_to(warning.remedy_target, [self.table, self.main.query_one(PoolsTable)]):
            return True
        self.say(f"{warning.target_name}: its target is no longer listed", severity="warning")
        return False

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        key = event.row_key.value
        record = event.data_table.records.get(key) if key else None  # type: ignore[attr-defined]
        if record is None:
            return
        if isinstance(record, IdleWarning):  # the whole warning, with a key to go to its target
            self.push_screen(WarningScreen(record, self.clock, go_to=self.main.go_to,
                                           currency=event.data_table.currency, keymap=self.config.keymap))
        elif isinstance(event.data_table, (NodesTable, PoolsTable)):
            cost = self.main.view.cost if self.main.view else None
            price = cost.node_price(record.key) if cost is not None and isinstance(record, GpuNode) else None
            self.push_screen(InfraDetailsScreen(record, self.clock, price=price,  # with where the price came from
                                                currency=cost.currency if cost else "$"))
        elif isinstance(record, Job):
            source = self._source_of(record.key)
            reason = self.main.view.waiting_reason(record) if self.main.view else None
            self.push_screen(JobDetailsScreen(record, source if isinstance(source, HasJobDetails) else None,
                                              clock=self.clock, waiting_reason=reason))

    def _source_of(self, record_key: str) -> Source | None:
        view = self.main.view
        key = view.source_of(record_key) if view else None
        return self.sources.get(key) if key else None
