"""`?`: every key that works here, as the user's keymap has it."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import ActiveBinding, Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

EXTRA_KEYS = (
    ("up/down, j/k", "move in the jobs table"),
    ("ctrl+p", "command palette"),
)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "close", "Close")]

    def __init__(self, bindings: dict[str, ActiveBinding]) -> None:
        super().__init__()
        self.bindings_shown = bindings

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 3))
        table.add_column(style="bold cyan")
        table.add_column()
        seen: set[str] = set()
        for key, active in sorted(self.bindings_shown.items(), key=lambda kv: kv[1].binding.description or kv[0]):
            description = active.binding.description or active.binding.action
            if active.binding.action in seen and not active.binding.show:
                continue
            seen.add(active.binding.action)
            shown_key = self.app.get_key_display(active.binding)
            note = "" if active.enabled else " (not for the selected row)"
            table.add_row(shown_key, Text(description + note))
        for key, description in EXTRA_KEYS:
            table.add_row(key, description)
        with VerticalScroll(id="help"):
            yield Static(Text("Keys", style="bold"))
            yield Static(table)
            yield Static(Text("esc to close", style="dim"))

    def action_close(self) -> None:
        self.dismiss(None)
