"""`enter` on an idle-cost warning: the whole warning, where the table has room for one line.

Kind, target, since when, what it costs an hour and so far, the full message wrapped, the remedy
and the key that carries it out; `enter` (or `g`) goes to the target's row, `esc` goes back.
Everything a backend named (targets, messages) is shown inert and as `Text`, never as markup.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from rich.console import Group
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from mltop import format as fmt
from mltop.keys import key_label
from mltop.model import IdleWarning
from mltop.safe_text import inert
from mltop.widgets.facts import facts_grid

KIND_WORDS = {
    "idle-node": "idle node: GPUs on a node nobody uses",
    "idle-pool": "idle pool: a whole pool's GPUs unused",
    "ray-idle": "Ray idle: a Ray cluster's GPUs unused",
    "low-utilization": "low utilization: GPUs held but barely used",
    "idle-while-waiting": "idle while waiting: GPUs idle that a waiting job cannot use",
    "no-capacity-coming": "no capacity coming: a job waits and nothing will make room",
}


def money(amount: float | None, currency: str, suffix: str = "") -> str:
    return "unknown (no price for these GPUs)" if amount is None else f"{currency}{amount:,.2f}{suffix}"


def warning_view(warning: IdleWarning, now: datetime, currency: str = "$",
                 keymap: Mapping[str, str] | None = None) -> Group:
    """The warning in full: facts, then the message and the remedy as wrapped paragraphs."""
    if warning.idle_since is None:
        since = "unknown"
    else:
        age = fmt.long_duration((now - warning.idle_since).total_seconds())
        bound = "at least " if warning.idle_since_is_lower_bound else ""
        since = f"{bound}{age} (since {warning.idle_since:%Y-%m-%d %H:%M} UTC)"
    key = key_label(warning.remedy_action, keymap)
    facts = facts_grid([
        ("kind", KIND_WORDS.get(warning.kind, warning.kind)),
        ("target", f"{warning.cluster}/{warning.target_name}"),
        ("GPUs", fmt.gpus(warning.idle_gpus)),
        ("idle since", since),
        ("costs", money(warning.cost_per_hour, currency, " an hour")),
        ("wasted so far", money(warning.wasted, currency)),
        ("fix key", f"{key} (on the target's row; enter goes there)" if key else "none: mltop cannot do it for you"),
    ])
    # Several lines, wrapped by the screen: inert() keeps the newlines and makes every other control visible.
    message = Text(inert(warning.message, multiline=True))
    remedy = Text(inert(warning.remedy, multiline=True))
    return Group(facts, Text(""), Text("What", style="bold"), message, Text(""), Text("Remedy", style="bold"), remedy)


class WarningScreen(Screen[None]):
    """One warning in full. `go_to(target key)` puts the cursor on the target's row (False: no
    panel lists it any more), as `enter` on a warning used to do directly."""

    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back"),
        Binding("enter,g", "go_to_target", "Go to target"),
    ]

    def __init__(self, warning: IdleWarning, clock: Callable[[], datetime], *,
                 go_to: Callable[[str], bool] | None = None, currency: str = "$",
                 keymap: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.warning = warning
        self.clock = clock
        self.go_to = go_to
        self.currency = currency
        self.keymap = dict(keymap or {})

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="details"):
            yield Static(warning_view(self.warning, self.clock(), self.currency, self.keymap), id="body")
        yield Footer()

    def on_mount(self) -> None:
        # A Text title is taken as-is; a str one would be parsed as markup.
        title = f"Warning: {self.warning.cluster}/{self.warning.target_name}"
        self.query_one("#details").border_title = Text(inert(title))

    def action_go_to_target(self) -> None:
        warning = self.warning
        self.app.pop_screen()
        if self.go_to is None or not self.go_to(warning.target):
            self.app.notify(inert(f"{warning.target_name}: no panel lists it now; {warning.remedy}"),
                            severity="warning", timeout=10, markup=False)
