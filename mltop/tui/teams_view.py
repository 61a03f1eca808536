"""`:teams`: cost per team. Burn and idle $/h per Kubernetes namespace and per Ray job owner,
most expensive first, with "unassigned" for GPUs no one holds. `esc` goes back.

A still picture of the view it was opened from (the lead's command line passes `view.cost.teams`
and the currency). Team names come from backends: shown inert and as `Text`, never as markup.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from mltop import format as fmt
from mltop.cost import TeamCost
from mltop.safe_text import inert

COLUMNS = (("TEAM", 28), ("KIND", 10), ("GPUS", 6), ("BURN/H", 12), ("IDLE/H", 12), ("IDLE %", 7))
EMPTY = "No GPU cost to share out: no priced GPU node or Ray cluster is reporting."
NOTE = ("Each GPU counted once: pods by namespace (KFP and KubeRay included), Ray jobs outside Kubernetes by "
        "owner; idle = unallocated or unusable GPUs (unassigned) and GPUs held at low utilization (their team).")


def team_rows(teams: Iterable[TeamCost], currency: str = "$") -> list[tuple[str, ...]]:
    """One row per team, most expensive first (unknown prices last): the cells as they are shown."""
    c = inert(currency)

    def money(value: float | None) -> str:
        return "unknown" if value is None else f"{c}{value:,.2f}"

    ordered = sorted(teams, key=lambda t: (t.burn_per_hour is None, -(t.burn_per_hour or 0.0), t.team))
    return [(t.team, t.kind, fmt.gpus(t.gpus), money(t.burn_per_hour), money(t.idle_per_hour), _share(t))
            for t in ordered]


def _share(t: TeamCost) -> str:
    if not t.burn_per_hour or t.idle_per_hour is None:
        return "-"
    return f"{100 * t.idle_per_hour / t.burn_per_hour:.0f}%"


class TeamsScreen(Screen[None]):
    BINDINGS = [Binding("escape,q", "app.pop_screen", "Back", id="teams.back")]
    DEFAULT_CSS = """
    TeamsScreen #teams { border: round $accent; }
    TeamsScreen #team-costs { height: 1fr; }
    TeamsScreen #teams-note { color: $text-muted; }
    """

    def __init__(self, teams: Iterable[TeamCost], currency: str = "$") -> None:
        super().__init__()
        self.rows = team_rows(teams, currency)

    def compose(self) -> ComposeResult:
        with Vertical(id="teams"):
            if not self.rows:
                yield Static(Text(EMPTY), id="teams-empty")
            yield DataTable(id="team-costs", cursor_type="row", zebra_stripes=True)
            yield Static(Text(NOTE), id="teams-note")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#teams").border_title = Text("Cost by team (burn and idle per hour, now)")
        table = self.query_one("#team-costs", DataTable)
        for label, width in COLUMNS:
            table.add_column(Text(label), width=width)
        for row in self.rows:
            table.add_row(*(Text(fmt.clip(inert(cell), width)) for cell, (_, width) in zip(row, COLUMNS)))
