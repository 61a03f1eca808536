"""`:queues`: Kueue's ClusterQueues (quota, usage, borrowing, pending and admitted workloads per flavor
and GPU resource), then the jobs Kueue holds, in queue order, with why. `esc` goes back.

A still picture of the view it was opened from (the lead's command line passes `view.queues` and
`view.jobs`). Everything a backend named is shown inert and as `Text`, never as markup.
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
from mltop import kueue
from mltop.model import Job, QueueUse
from mltop.safe_text import inert

HELD_COLUMNS = (("CLUSTERQUEUE", 18), ("POS", 5), ("JOB", 28), ("NAMESPACE", 12), ("GPU", 5), ("PRIO", 5),
                ("WHY", 40))
EMPTY = "No Kueue ClusterQueues: no watched cluster serves kueue.x-k8s.io (or none is defined)."


def held_rows(jobs: Iterable[Job]) -> list[tuple[str, ...]]:
    held = [j for j in jobs if kueue.held(j)]
    held.sort(key=lambda j: (j.cluster, j.cluster_queue or "", j.queue_position or 10**9, j.key))
    return [(j.cluster_queue or "?", kueue.position_text(j) or "-", j.name, j.namespace or "",
             fmt.gpus(j.gpus), "-" if j.priority is None else str(j.priority),
             j.queue_reason or j.admission or "") for j in held]


def _cells(row: tuple[str, ...], columns: tuple[tuple[str, int], ...]) -> list[Text]:
    return [Text(fmt.clip(inert(cell), width)) for cell, (_, width) in zip(row, columns)]


class QueuesScreen(Screen[None]):
    BINDINGS = [Binding("escape,q", "app.pop_screen", "Back", id="queues.back")]
    DEFAULT_CSS = """
    QueuesScreen #queues { border: round $accent; }
    QueuesScreen #cluster-queues { height: auto; max-height: 50%; }
    QueuesScreen #held-title { margin-top: 1; }
    QueuesScreen #held-jobs { height: 1fr; }
    """

    def __init__(self, queues: Iterable[QueueUse], jobs: Iterable[Job] = ()) -> None:
        super().__init__()
        self.queue_rows = kueue.queue_rows(queues)
        self.held = held_rows(jobs)

    def compose(self) -> ComposeResult:
        with Vertical(id="queues"):
            if not self.queue_rows:
                yield Static(Text(EMPTY), id="queues-empty")
            yield DataTable(id="cluster-queues", cursor_type="row", zebra_stripes=True)
            yield Static(Text("Held by Kueue, in queue order (~ = position estimated by mltop)", style="bold"),
                         id="held-title")
            yield DataTable(id="held-jobs", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#queues").border_title = Text("Kueue queues")
        for table_id, columns, rows in (("#cluster-queues", kueue.QUEUE_COLUMNS, self.queue_rows),
                                        ("#held-jobs", HELD_COLUMNS, self.held)):
            table = self.query_one(table_id, DataTable)
            for label, width in columns:
                table.add_column(Text(label), width=width)
            for row in rows:
                table.add_row(*_cells(row, columns))
