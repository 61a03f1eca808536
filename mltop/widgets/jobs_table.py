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

# Each state reads by its word first; the styles add weight that survives 16 colours, a light theme
# and NO_COLOR (bold, italic, reverse are attributes, not hues): a failure is never quieter than a
# success, and a stop in progress never looks like a failure.
STATE_STYLES = {
    JobState.PENDING: "bold yellow",
    JobState.RUNNING: "green",
    JobState.CANCELLING: "italic magenta",
    JobState.SUCCEEDED: "dim",
    JobState.FAILED: "bold reverse red",
    JobState.CANCELLED: "dim",
}
STOP_SENT_STYLE = "italic magenta"
STOP_OVERDUE_STYLE = "bold italic underline magenta"

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
MIN_NAME_WIDTH = 10


def state_text(job: Job, overdue: bool) -> Text:
    if job.stop_requested_at is not None:
        # Ray has no "cancelling" state: this is mltop's record that a stop was accepted.
        return Text("STOP SENT!" if overdue else "STOP SENT", style=STOP_OVERDUE_STYLE if overdue else STOP_SENT_STYLE)
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


class JobsTable(KeyedTable[Job]):
    """The job queue, queue first. `sync()` keeps the cursor on the same job.

    The name, id, cluster and owner columns share the room by what their values need (an id is
    not cut while the name has blank cells); a name longer than 48 competes as 48."""

    COLUMNS = COLUMNS
    SHARED = {"name": (MIN_NAME_WIDTH, 48), "id": (14, 40), "cluster": (8, 16), "owner": (7, 20)}
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

    def shown_keys(self, total: int) -> set[str]:
        """The cluster column is always there from 100 columns up; below that, only with several
        clusters (with one, its name is on the header's source line)."""
        keys = {key for key, _, _ in COLUMNS}
        return keys if self.several_clusters or total >= 100 else keys - {"cluster"}

    def needs(self, job: Job) -> dict[str, int]:
        return {"name": len(job.name), "id": len(job.id), "cluster": len(job.cluster), "owner": len(job.owner or "-")}

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
