"""`?`: every key that works here, as the user's keymap has it."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import ActiveBinding, Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from mltop.safe_text import inert

EXTRA_KEYS = (
    ("pgup/pgdn", "a page up or down in the focused panel"),
    ("ctrl+p", "command palette"),
)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "close", "Close")]

    def __init__(self, bindings: dict[str, ActiveBinding], sort_keys: str = "") -> None:
        super().__init__()
        self.bindings_shown = bindings
        self.sort_keys = sort_keys  # the focused panel's shift+letter sorts, "N name, U gpus, ..."

    def compose(self) -> ComposeResult:
        # mltop's own bindings all carry an id (that is what makes them remappable); the widgets'
        # built-in ones (page left, focus next...) would bury them, so only id'd ones are listed.
        keys_by_action: dict[str, list[str]] = {}
        rows: dict[str, tuple[str, bool]] = {}
        for active in self.bindings_shown.values():
            binding = active.binding
            if binding.id is None:
                continue
            keys_by_action.setdefault(binding.action, []).append(self.app.get_key_display(binding))
            rows[binding.action] = (binding.description or binding.action, active.enabled)
        table = Table.grid(padding=(0, 3))
        table.add_column(style="bold cyan")
        table.add_column()
        for action, (description, enabled) in sorted(rows.items(), key=lambda kv: kv[1][0]):
            note = "" if enabled else " (not for the selected row)"
            # Keys and descriptions can come from the keymap in the config file: never markup.
            table.add_row(Text(inert(", ".join(keys_by_action[action]))), Text(inert(description) + note))
        for key, description in EXTRA_KEYS:
            table.add_row(key, description)
        if self.sort_keys:
            table.add_row("shift+letter", Text("sort this panel (again: reverse, a third time: mltop's order): "
                                               + self.sort_keys))
        with VerticalScroll(id="help"):
            yield Static(Text("Keys", style="bold"))
            yield Static(table)
            yield Static(Text("esc to close", style="dim"))

    def action_close(self) -> None:
        self.dismiss(None)
