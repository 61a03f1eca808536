"""The jobs panel: records in, a keyed diff out. Display only; no I/O.

Facts this relies on (house style, measured on Textual 8.2): a keyed diff with `update_cell` on
changed cells only is far cheaper than clear-and-refill and keeps cursor and scroll; columns have
fixed widths (no `update_width` in the refresh path); the cursor is positional, so it is re-pinned
by row key after every diff; user text is wrapped in `Text` so `[` in a job name is not markup.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from datetime import datetime

from rich.text import Text
from textual.binding import Binding

from mltop import format as fmt
from mltop.model import Job, JobState
from mltop.query import Value, job_fields
from mltop.widgets.keyed_table import sort_bindings, KeyedTable

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
    ("reason", "REASON", 0),  # why a waiting job waits, in a few words (View.waiting_short)
)
MIN_NAME_WIDTH = 10
# Table columns (a 112-column terminal) from which the REASON column shows; below, the reason stays
# in the details (enter), so STATE, GPUS and WAIT/RUN keep their room.
REASON_FROM = 110


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


def _bold(cell: Text) -> Text:
    out = cell.copy()
    out.stylize("bold")
    return out


def row_cells(job: Job, now: datetime, widths: dict[str, int], overdue: bool = False,
              reason: str | None = None) -> tuple[Text, ...]:
    """The row's cells, for the columns in `widths` (the cluster and reason columns come and go)."""
    cells = {
        "cluster": Text(fmt.clip(job.cluster, widths.get("cluster", 0))),
        "id": Text(fmt.clip_middle(job.id, widths["id"])),
        "name": Text(fmt.clip(job.name, widths["name"])),
        "state": state_text(job, overdue),
        "gpus": Text(fmt.gpus(job.gpus), justify="right"),
        "time": time_text(job, now),
        "owner": Text(fmt.clip(job.owner or "-", widths["owner"])),
        # Backend text (a scheduler message): fmt.clip makes it inert; a Text is never markup.
        "reason": Text(fmt.clip(reason, widths.get("reason", 0)), style="yellow") if reason else Text(""),
    }
    return tuple(cells[key] for key, _, _ in COLUMNS if key in widths)


class JobsTable(KeyedTable[Job]):
    """The job queue, queue first. `sync()` keeps the cursor on the same job.

    The name, id, cluster and owner columns share the room by what their values need (an id is
    not cut while the name has blank cells); a name longer than 48 competes as 48."""

    COLUMNS = COLUMNS
    # An id competes up to 36 (a KFP run's uuid whole; pod ids are cut in the middle), so the reason
    # (28 from the start: "Insufficient nvidia.com/gpu" whole) gets its room where it shows.
    SHARED = {"name": (MIN_NAME_WIDTH, 48), "id": (14, 36), "cluster": (8, 16), "owner": (7, 20),
              "reason": (28, 40)}
    SORT_KEYS = {"C": ("cluster", False), "I": ("id", False), "N": ("name", False), "S": ("state", False),
                 "U": ("gpus", True), "W": ("time", True), "O": ("owner", False)}
    BINDINGS = [Binding("enter", "select_cursor", "Details", id="jobs.details"), *sort_bindings(SORT_KEYS)]

    def __init__(self, several_clusters: bool = True, **kwargs: object) -> None:
        self.several_clusters = several_clusters
        self.now: datetime | None = None
        self.overdue: frozenset[str] = frozenset()
        self.reasons: dict[str, str] = {}  # job key -> why it waits, short (View.waiting_short)
        self.marked: set[str] = set()  # job keys marked with space, for one action on several
        self._synced: tuple[list[Job], frozenset[str], dict[str, str]] | None = None  # the last full sync
        self._due: list[tuple[float, str]] = []  # a heap of (when its WAIT/RUN text changes, row key)
        self._due_at: dict[str, tuple[float, Job]] = {}  # row key -> its entry in force, for that record
        super().__init__(**kwargs)

    @property
    def jobs(self) -> dict[str, Job]:
        return self.records

    @property
    def selected_job(self) -> Job | None:
        return self.selected

    def shown_keys(self, total: int) -> set[str]:
        """The cluster column is always there from 100 columns up; below that, only with several
        clusters (with one, its name is on the header's source line). The reason column from
        REASON_FROM columns up, while some job waits."""
        keys = {key for key, _, _ in COLUMNS} - ({"reason"} if total < REASON_FROM or not self.reasons else set())
        return keys if self.several_clusters or total >= 100 else keys - {"cluster"}

    def fields(self, job: Job) -> dict[str, Value]:
        return job_fields(job, self.now)

    def needs(self, job: Job) -> dict[str, int]:
        return {"name": len(job.name), "id": len(job.id), "cluster": len(job.cluster), "owner": len(job.owner or "-"),
                "reason": len(self.reasons.get(job.key, ""))}

    def cells(self, record: Job, widths: dict[str, int]) -> tuple[Text, ...]:
        assert self.now is not None
        cells = row_cells(record, self.now, widths, record.key in self.overdue, self.reasons.get(record.key))
        if record.key not in self.marked:
            return cells
        # A marked row reads as marked by more than colour: a mark before its id, and bold.
        at = [key for key, _, _ in self.columns_shown].index("id")
        mark = Text(fmt.MARK + fmt.clip_middle(record.id, widths["id"] - len(fmt.MARK)), style="bold reverse")
        return tuple(mark if i == at else _bold(c) for i, c in enumerate(cells))

    def pinned(self) -> set[str]:
        return super().pinned() | self.marked  # a marked job stays a row, so the action reaches it

    def row_token(self, record: Job) -> object:
        assert self.now is not None
        key = record.key
        overdue, reason, marked = key in self.overdue, self.reasons.get(key), key in self.marked
        last = self._tokens.get(key)
        if (last is not None and last[0] is record and last[2] == overdue and last[3] == reason
                and last[4] == marked and self._time_holds(key, record)):
            return last  # (working out 940 rows' WAIT/RUN text on every poll was ~2 ms at 5,000 nodes)
        waited = record.queued_seconds(self.now)  # the TIME column, as coarsely as time_text shows it
        shown = ("waited", fmt.short_duration(waited)) if waited is not None else \
            ("ran", fmt.short_duration(record.run_seconds(self.now)))
        return (record, shown, overdue, reason, marked)

    def _time_holds(self, key: str, record: Job) -> bool:
        """Whether the row's WAIT/RUN text is still the one its token was made with: the clock's plan
        (below) for this very record says when it next changes; a row with none never changes (a
        finished job). Every row with a token was planned after it was drawn (sync, resync)."""
        entry = self._due_at.get(key)
        if entry is None:
            return key in self.records
        return entry[1] is record and self.now is not None and self.now.timestamp() < entry[0]

    def toggle_mark(self) -> Job | None:
        job = self.selected
        if job is not None:
            self.marked.symmetric_difference_update({job.key})
            self.resync()
        return job

    def clear_marks(self) -> None:
        self.marked.clear()
        self.resync()

    def sync(  # type: ignore[override]
        self,
        jobs: Sequence[Job],
        now: datetime | None = None,
        overdue: frozenset[str] = frozenset(),
        keep: str | None = None,
        reasons: dict[str, str] | None = None,
    ) -> None:
        if self.marked:
            self.marked &= {job.key for job in jobs}  # a job that left the queue is no longer marked
        if now is not None and keep is None and self._clock_only(jobs, overdue, reasons):
            self.now = now
            self._redraw_due(now)
            return
        if now is not None:
            self.now, self.overdue = now, overdue
        if reasons is not None:
            self.reasons = reasons
        super().sync(jobs, keep=keep)
        self._synced = (list(jobs), self.overdue, self.reasons)
        self._plan()

    def resync(self) -> None:
        """The same jobs arranged again (a filter, a sort, a mark, a row pinned past the cap): rows
        that come into view are due on the clock too."""
        super().resync()
        self._plan()

    # -- the clock's tick: only the rows whose WAIT/RUN text changes ------------------------------
    # Between source updates the records are the same and only the clock moves. Re-checking every
    # row each second is most of an idle screen's CPU at 1,000 rows; instead each row is due again
    # when its coarse duration ("7m", "3h05m") next reads differently, and only due rows are redrawn.

    def _clock_only(self, jobs: Sequence[Job], overdue: frozenset[str], reasons: dict[str, str] | None) -> bool:
        """The same jobs, stops and reasons as the last sync, and no filter or sort (a filter may
        read durations): only the clock moved."""
        if self._synced is None or self.query or self.sort_by is not None:
            return False
        given, last_overdue, last_reasons = self._synced
        return overdue == last_overdue and (reasons is None or reasons == last_reasons) and list(jobs) == given

    def _changes_in(self, job: Job, now: datetime) -> float | None:
        """Seconds until the row's WAIT/RUN cell reads differently; None: never (a finished job)."""
        waited = job.queued_seconds(now)
        if waited is not None:
            return fmt.short_duration_changes_in(waited)
        ran = job.run_seconds(now) if job.finished_at is None else None
        return fmt.short_duration_changes_in(ran) if ran is not None else None

    def _plan(self) -> None:
        """Each row's next change on the heap. A row whose record is the one planned for keeps its
        entry (the moment its text changes is fixed by the record's own times): working out 940
        rows again after every sync was ~3 ms a refresh at 5,000 nodes. Entries of rows gone or
        planned again are dropped as they come up (`_redraw_due`), and the heap is rebuilt when
        they outnumber the live ones."""
        if self.now is None:
            return
        at, planned, fresh = self.now.timestamp(), self._due_at, {}
        for key in self._order:
            record = self.records[key]
            entry = planned.get(key)
            if entry is None or entry[1] is not record:
                after = self._changes_in(record, self.now)
                if after is None:
                    continue
                entry = (at + after, record)
                heapq.heappush(self._due, (entry[0], key))
            fresh[key] = entry
        self._due_at = fresh
        if len(self._due) > 2 * len(fresh) + 64:
            self._due = [(when, key) for key, (when, _) in fresh.items()]
            heapq.heapify(self._due)

    def _redraw_due(self, now: datetime) -> None:
        at = now.timestamp()
        if not self._due or self._due[0][0] > at:
            return
        with self.app.batch_update():
            while self._due and self._due[0][0] <= at:
                when, key = heapq.heappop(self._due)
                record = self.records.get(key)
                entry = self._due_at.get(key)
                if record is None or entry is None or entry[0] != when:
                    continue  # a row gone, or planned again since (its newer entry is on the heap)
                token = self.row_token(record)
                if token != self._tokens.get(key):
                    self._redraw_row(key, record, token, defer=True)
                after = self._changes_in(record, now)
                if after is None:
                    del self._due_at[key]
                else:
                    self._due_at[key] = (at + after, record)
                    heapq.heappush(self._due, (at + after, key))
