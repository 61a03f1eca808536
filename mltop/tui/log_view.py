"""`l`: follow the selected job's or pod's log, over the backend's own log API.

The screen runs a LogFollower (mltop.logs) in a worker of its own: closing the screen or quitting
cancels it, and nothing waits on the network. The follower fills a bounded LogBuffer; a timer
draws what is new a few times a second, however fast lines come. The state line always says
where the stream stands: following, paused, waiting for a log to exist, failed (with the error,
its age and the next try), or ended.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Input, Static
from textual.worker import Worker

from mltop import format as fmt
from mltop.model import Job, JobState
from mltop.logs import LOG_LINES, HasLogs, LogBuffer, LogFollower, LogStream, utcnow, why_no_log
from mltop.safe_text import inert
from mltop.widgets.jobs_table import JobsTable
from mltop.widgets.log_lines import LogLines

REDRAW_SECONDS = 0.2
STATE_STYLE = {"following": "green", "connecting": "dim", "waiting": "yellow", "failed": "bold red", "ended": "bold"}


class LogActions:
    """Mixed into MltopApp: uses its main screen, the jobs table, _source_of() and say()."""

    def action_show_log(self) -> None:
        if self.main.has_infra and not isinstance(self.focused, JobsTable):  # type: ignore[attr-defined]
            self.say("l follows the log of the job selected in the jobs panel", severity="warning")  # type: ignore[attr-defined]
            return
        job = self.table.selected_job  # type: ignore[attr-defined]
        if job is None:
            self.say("no job selected: nothing to follow", severity="warning")  # type: ignore[attr-defined]
            return
        source = self._source_of(job.key)  # type: ignore[attr-defined]
        if not isinstance(source, HasLogs):
            # A KFP run's step runs in a pod: the one a Kubernetes source sees its waiting step in.
            view = self.main.view  # type: ignore[attr-defined]
            pod = view.pod_for(job) if view is not None else None
            if pod is not None and isinstance(self._source_of(pod.key), HasLogs):  # type: ignore[attr-defined]
                job, source = pod, self._source_of(pod.key)  # type: ignore[attr-defined]
        why = why_no_log(job, source)
        if why:
            self.say(f"{job.cluster}/{job.id}: no log to follow: {why}", severity="warning", timeout=12)  # type: ignore[attr-defined]
            return
        self.push_screen(LogScreen(source.log_stream(job), job=job))  # type: ignore[attr-defined, union-attr]


class LogScreen(Screen[None]):
    BINDINGS = [
        # Ids for the help screen (and for the keymap, once mltop.keys lists them).
        Binding("escape,q", "back", "Back", id="log.back"),
        Binding("f", "toggle_follow", "Follow", tooltip="follow new lines, or pause", id="log.follow"),
        Binding("slash", "search", "Search", id="log.search"),
        Binding("n", "next_match", "Next match (down)", show=False, id="log.next"),
        Binding("N", "previous_match", "Previous match (up)", show=False, id="log.previous"),
    ]

    def __init__(self, stream: LogStream, *, job: Job | None = None, max_lines: int = LOG_LINES,
                 clock: Callable[[], datetime] = utcnow) -> None:
        super().__init__()
        self.stream = stream
        self.job = job
        self.clock = clock
        self.buffer = LogBuffer(max_lines)
        self.follower = LogFollower(stream, self.buffer, clock=clock)
        self.worker: Worker[None] | None = None
        self.last_line_at: datetime | None = None
        self._lines_seen = -1
        self.search_note = ""

    def compose(self) -> ComposeResult:
        yield Static(Text(inert(self.stream.title), style="bold"), id="log-title")
        yield LogLines(self.buffer, id="log-lines")
        yield Static(Text(""), id="log-state")
        yield Input(placeholder="search (case-insensitive text; enter: find, esc: cancel)", id="log-search")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = inert(self.stream.title)
        self.query_one("#log-search", Input).display = False
        self.query_one(LogLines).focus()
        self.worker = self.run_worker(self.follower.run(), group="log", description=f"follow {self.stream.title}",
                                      exit_on_error=False)
        self.set_interval(REDRAW_SECONDS, self.redraw)
        self.redraw()

    def on_unmount(self) -> None:
        if self.worker is not None:
            self.worker.cancel()  # closing the screen (or quitting) never waits on the stream

    @property
    def lines(self) -> LogLines:
        return self.query_one(LogLines)

    def redraw(self) -> None:
        if self.buffer.version != self._lines_seen:
            self._lines_seen = self.buffer.version
            self.last_line_at = self.clock()
            self.lines.sync()
        self.query_one("#log-state", Static).update(self.state_text())

    def state_text(self) -> Text:
        state = self.follower.state
        now = self.clock()
        text = Text()
        if state.kind == "following" and not self.lines.follow:
            text.append("paused", style="yellow")
            text.append(" (f or G: follow again)")
        elif state.kind == "following" and not len(self.buffer) and not self.buffer.partial:
            text.append("connected, no output yet", style="green")
            if self.job is not None and self.job.state is JobState.PENDING:
                text.append(f" (the job is {inert(self.job.native_state)}: its log begins when it starts)")
        elif state.kind in ("waiting", "failed"):
            text.append("waiting: " if state.kind == "waiting" else "error: ", style=STATE_STYLE[state.kind])
            text.append(inert(state.message))
            text.append(f" (for {fmt.long_duration((now - state.since).total_seconds())}")
            if state.retry_at is not None:
                text.append(f"; next try in {max(0, round((state.retry_at - now).total_seconds()))}s")
            text.append(")")
        else:
            text.append(inert(state.message), style=STATE_STYLE.get(state.kind, ""))
        text.append(f" {fmt.SEPARATOR} {self.buffer.dropped + len(self.buffer):,} lines")
        if self.last_line_at is not None and len(self.buffer):
            text.append(f", last {fmt.long_duration((now - self.last_line_at).total_seconds())} ago")
        if self.buffer.dropped:
            text.append(f" {fmt.SEPARATOR} {self.buffer.dropped:,} older lines dropped (the last {self.buffer.max_lines:,} are kept)",
                        style="yellow")
        if self.search_note:
            text.append(f" {fmt.SEPARATOR} {self.search_note}")
        return text

    # -- keys --------------------------------------------------------------------------------------

    def action_back(self) -> None:
        box = self.query_one("#log-search", Input)
        if box.display:
            box.display = False
            self.lines.focus()
            return
        self.app.pop_screen()

    def action_toggle_follow(self) -> None:
        self.lines.follow = not self.lines.follow
        self.redraw()

    def action_search(self) -> None:
        box = self.query_one("#log-search", Input)
        box.display = True
        box.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        event.input.display = False
        self.lines.focus()
        query = event.value if event.value.strip() else ""  # spaces may matter: " 1000:" is not "21000:"
        if not query:
            self.lines.clear_search()
            self.search_note = ""
        else:
            self._jump(self.lines.search(query, from_bottom=True))
        self.redraw()

    def action_next_match(self) -> None:
        self._step(backwards=False)

    def action_previous_match(self) -> None:
        self._step(backwards=True)

    def _step(self, *, backwards: bool) -> None:
        if not self.lines.query_text:
            self.search_note = "no search yet: / to search"
        else:
            self._jump(self.lines.search(self.lines.query_text, backwards=backwards))
        self.redraw()

    def _jump(self, found: int | None) -> None:
        query = inert(self.lines.query_text)
        if found is None:
            self.search_note = f'search "{query}": not in the last {len(self.buffer):,} lines'
        else:
            self.search_note = f'search "{query}": line {(self.lines.current or 0) + 1:,} (n: next, N: previous)'
