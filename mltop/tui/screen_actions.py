"""Keys that work on what the screen shows, not on a backend: copy an id, zoom a panel, write an
incident snapshot. A mixin of MltopApp (tui/app.py)."""

from __future__ import annotations

from mltop import incident
from mltop.model import IdleWarning
from mltop.widgets.infra_tables import NodesTable, PoolsTable, WarningsTable
from mltop.widgets.jobs_table import JobsTable
from mltop.widgets.keyed_table import KeyedTable


class ScreenActions:
    """Mixed into MltopApp: uses its main screen, focus, runner and say()."""

    def action_copy_id(self) -> None:
        """The selected row's id to the user's clipboard, through the terminal (OSC 52, base64:
        the id cannot act on the terminal), so it reaches their own machine over SSH."""
        focused = self.focused
        record = focused.selected if isinstance(focused, (JobsTable, NodesTable, PoolsTable, WarningsTable)) else None
        if record is None:
            self.say("nothing selected to copy", severity="warning")
            return
        text = record.target if isinstance(record, IdleWarning) else getattr(record, "id", None) or record.name
        self.copy_to_clipboard(text)
        self.say(f"copied {text}", timeout=3)

    def action_zoom(self) -> None:
        """`z`: the focused panel (title and all) fills the screen, as tmux's zoom; again: back."""
        screen = self.main
        table = self.focused if isinstance(self.focused, KeyedTable) else None
        if screen.maximized is not None or table is None or table.parent is None:
            screen.minimize()
        else:
            screen.maximized = table.parent  # the panel, so its title (counts, filter, sort) stays
        self.call_after_refresh(screen.relayout)

    def action_incident_snapshot(self) -> None:
        """`e`: the triage picture as Markdown in a new file; the status line says where."""
        view = self.main.view
        if view is None:
            self.say("nothing to write yet: no source has answered", severity="warning")
            return
        audit = self.runner.audit.read(limit=50) if self.runner.audit is not None else []
        try:
            path = incident.write(incident.render(view, audit, user=self.runner.audit.user if self.runner.audit else ""),
                                  view.now)
        except OSError as exc:
            self.say(f"the snapshot was not written: {exc}", severity="error", timeout=10)
            return
        self.say(f"snapshot written to {path}", timeout=15)
