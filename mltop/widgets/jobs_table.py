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
from textual.widgets import DataTable

from mltop import format as fmt
from mltop.model import Job, JobState

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


class KeyedText(Text):
    """A cell that knows its row's key, so rows can be ordered by the queue's order."""

    row_key: str = ""


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
    ident = KeyedText(fmt.clip_middle(job.id, widths["id"]))
    ident.row_key = job.key
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


class JobsTable(DataTable):
    """The job queue. `sync()` applies a keyed diff and keeps the cursor on the same job."""

    BINDINGS = [
        Binding("enter", "select_cursor", "Details", id="jobs.details"),
        Binding("j,down", "cursor_down", "Down", show=False, id="cursor.down"),
        Binding("k,up", "cursor_up", "Up", show=False, id="cursor.up"),
    ]

    def __init__(self, several_clusters: bool = True, **kwargs: object) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)  # type: ignore[arg-type]
        self.several_clusters = several_clusters
        self.jobs: dict[str, Job] = {}
        self._cells: dict[str, tuple[Text, ...]] = {}
        self._order: list[str] = []
        self._widths = column_widths(80, several_clusters)
        self._sync_now: datetime | None = None
        self._sync_overdue: frozenset[str] = frozenset()

    def _build_columns(self, width: int) -> None:
        self._widths = column_widths(width, self.several_clusters)
        for key, title, _ in self.columns_shown:
            self.add_column(title, width=self._widths[key], key=key)

    @property
    def columns_shown(self) -> tuple[tuple[str, str, int], ...]:
        return tuple(c for c in COLUMNS if c[0] in self._widths)

    def relayout(self, width: int) -> None:
        """Size the columns for a table `width` cells wide (at mount, then only on resize)."""
        if self.columns and column_widths(width, self.several_clusters) == self._widths:
            return
        jobs, order = list(self.jobs.values()), list(self._order)
        selected = self.selected_key
        self.clear(columns=True)
        self.jobs, self._cells, self._order = {}, {}, []
        self._build_columns(width)
        if jobs and self._sync_now is not None:
            by_key = {j.key: j for j in jobs}
            self.sync([by_key[k] for k in order], self._sync_now, self._sync_overdue, keep=selected)

    @property
    def selected_key(self) -> str | None:
        if not self._order or self.cursor_row < 0 or self.cursor_row >= self.row_count:
            return None
        return self.coordinate_to_cell_key((self.cursor_row, 0)).row_key.value

    @property
    def selected_job(self) -> Job | None:
        key = self.selected_key
        return self.jobs.get(key) if key else None

    def sync(
        self,
        jobs: Sequence[Job],
        now: datetime,
        overdue: frozenset[str] = frozenset(),
        keep: str | None = None,
    ) -> None:
        """Show exactly `jobs`, in this order, changing only what changed."""
        self._sync_now, self._sync_overdue = now, overdue
        selected = keep or self.selected_key
        old_index = self.cursor_row
        wanted = [j.key for j in jobs]
        wanted_set = set(wanted)
        with self.app.batch_update():
            for key in [k for k in self._order if k not in wanted_set]:
                self.remove_row(key)
                del self._cells[key]
                del self.jobs[key]
            for job in jobs:
                cells = row_cells(job, now, self._widths, job.key in overdue)
                old = self._cells.get(job.key)
                if old is None:
                    self.add_row(*cells, key=job.key)
                else:
                    for (col_key, _, _), new, before in zip(self.columns_shown, cells, old):
                        if new != before or new.style != before.style:
                            self.update_cell(job.key, col_key, new)
                self._cells[job.key] = cells
                self.jobs[job.key] = job
            if wanted != self._current_order():
                rank = {key: i for i, key in enumerate(wanted)}
                self.sort("id", key=lambda ident: rank[ident.row_key])
            self._order = wanted
            if selected in wanted_set:
                self.move_cursor(row=self.get_row_index(selected), animate=False)
            elif wanted:
                self.move_cursor(row=min(max(old_index, 0), len(wanted) - 1), animate=False)

    def _current_order(self) -> list[str]:
        return [self.coordinate_to_cell_key((i, 0)).row_key.value for i in range(self.row_count)]
