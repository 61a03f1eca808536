"""The jobs panel: records in, a keyed diff out. Display only; no I/O.

Facts this relies on (house style, measured on Textual 8.2): a keyed diff with `update_cell` on
changed cells only is far cheaper than clear-and-refill and keeps cursor and scroll; columns have
fixed widths (no `update_width` in the refresh path); the cursor is positional, so it is re-pinned
by row key after every diff; user text is wrapped in `Text` so `[` in a job name is not markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from rich.text import Text
from textual.binding import Binding

from mltop import format as fmt
from mltop.model import Job, JobState
from mltop.widgets.keyed_table import KeyedTable

STATE_STYLES = {
    JobState.PENDING: "bold yellow",
    JobState.RUNNING: "green",
    JobState.CANCELLING: "magenta",
    JobState.SUCCEEDED: "dim",
    JobState.FAILED: "bold red",
    JobState.CANCELLED: "dim",
}

# (key, title, width); width 0 is the flexible column, sized from the table's width.
COLUMNS = (
    ("cluster", "CLUSTER", 10),
    ("id", "ID", 26),  # a whole Ray submission id: raysubmit_ + 16 characters
    ("name", "NAME", 0),
    ("state", "STATE", 10),
    ("gpus", "GPUS", 4),
    ("time", "WAIT/RUN", 8),
    ("owner", "OWNER", 8),
)
NARROW_WIDTHS = {"cluster": 8, "id": 14, "owner": 7}  # below 110 columns
WIDE_WIDTHS = {"cluster": 14, "id": 30, "owner": 12}  # from 140 columns: whole Ray submission ids
MIN_NAME_WIDTH = 10


def state_text(job: Job, overdue: bool) -> Text:
    if job.stop_requested_at is not None:
        # Ray has no "cancelling" state: this is mltop's record that a stop was accepted.
        return Text("STOP SENT!" if overdue else "STOP SENT", style="bold red" if overdue else "magenta")
    return Text(job.state.value, style=STATE_STYLES[job.state])


def time_text(job: Job, now: datetime) -> Text:
    waited = job.queued_seconds(now)
    if waited is not None:
        return Text(fmt.short_duration(waited), style="yellow")
    return Text(fmt.short_duration(job.run_seconds(now)))


def row_cells(job: Job, now: datetime, widths: dict[str, int], overdue: bool = False) -> tuple[Text, ...]:
    ident = Text(fmt.clip_middle(job.id, widths["id"]))
    cells = (
        Text(fmt.clip(job.cluster, widths.get("cluster", 0))),
        ident,
        Text(fmt.clip(job.name, widths["name"])),
        state_text(job, overdue),
        Text(fmt.gpus(job.gpus), justify="right"),
        time_text(job, now),
        Text(fmt.clip(job.owner or "-", widths["owner"])),
    )
    return cells if "cluster" in widths else cells[1:]


def column_widths(total: int, several_clusters: bool = True) -> dict[str, int]:
    """Widths for a table `total` cells wide.

    The cluster column is always there from 100 columns up; below that, only when there are
    several clusters (with one, its name is on the status line and the name column needs the room).
    """
    show_cluster = several_clusters or total >= 100
    widths = {key: width for key, _, width in COLUMNS if show_cluster or key != "cluster"}
    if total < 110:
        widths.update({k: w for k, w in NARROW_WIDTHS.items() if k in widths})
    elif total >= 140:
        widths.update({k: w for k, w in WIDE_WIDTHS.items() if k in widths})
    fixed = sum(w for k, w in widths.items() if k != "name")
    padding = 2 * len(widths) + 1  # cell padding plus the scrollbar
    widths["name"] = max(MIN_NAME_WIDTH, total - fixed - padding)
    return widths


class JobsTable(KeyedTable[Job]):
    """The job queue, queue first. `sync()` keeps the cursor on the same job."""

    COLUMNS = COLUMNS
    BINDINGS = [Binding("enter", "select_cursor", "Details", id="jobs.details")]

    def __init__(self, several_clusters: bool = True, **kwargs: object) -> None:
        self.several_clusters = several_clusters
        self.now: datetime | None = None
        self.overdue: frozenset[str] = frozenset()
        super().__init__(**kwargs)

    @property
    def jobs(self) -> dict[str, Job]:
        return self.records

    @property
    def selected_job(self) -> Job | None:
        return self.selected

    def widths(self, total: int) -> dict[str, int]:
        return column_widths(total, self.several_clusters)

    def cells(self, record: Job, widths: dict[str, int]) -> tuple[Text, ...]:
        assert self.now is not None
        return row_cells(record, self.now, widths, record.key in self.overdue)

    def sync(  # type: ignore[override]
        self,
        jobs: Sequence[Job],
        now: datetime | None = None,
        overdue: frozenset[str] = frozenset(),
        keep: str | None = None,
    ) -> None:
        if now is not None:
            self.now, self.overdue = now, overdue
        super().sync(jobs, keep=keep)
