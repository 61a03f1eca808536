"""Following a job's log: the capability a source offers, the bounded line buffer, and the loop
that keeps a follow going. No Textual here.

A source that can show logs has `why_no_log(job)` (the reason there is none here, or None) and
`log_stream(job)`: a stream whose `chunks()` yields text as the backend sends it, each call
resuming where the last one stopped. The follower runs it, puts its text into a LogBuffer
(at most `LOG_LINES` lines: the oldest are dropped and counted), reconnects with backoff when
the connection fails, and always says what state it is in: a failure is shown with its age,
never hidden.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Protocol, runtime_checkable

from mltop import format as fmt
from mltop.errors import NotYet, SourceError
from mltop.model import Job
from mltop.safe_text import inert

LOG_LINES = 10_000  # lines kept per followed log; older ones are dropped (and counted)
MAX_LINE_CHARS = 4_000  # a longer line is cut: one line must not hold megabytes
BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0)  # seconds between reconnects, growing while they fail


@runtime_checkable
class LogStream(Protocol):
    title: str  # what is followed, in the user's words: "Ray job raysubmit_1 on prod (driver log)"
    end_reason: str  # said once the log has ended for good

    def chunks(self) -> AsyncIterator[str]:
        """Text as the backend sends it, from where the last call stopped (the first: the tail).

        Yields "" once connected. Returns when the log has ended for good (the job finished);
        raises NotYet while there is no log yet, SourceError when the connection fails."""
        ...


@runtime_checkable
class HasLogs(Protocol):
    """Its jobs' logs can be followed."""

    def why_no_log(self, job: Job) -> str | None: ...

    def log_stream(self, job: Job) -> LogStream: ...


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class LogBuffer:
    """The last `max_lines` lines of a log, each made inert (safe to draw) as it arrives.

    Text arrives in chunks that may split a line: the unfinished tail is kept in `partial` (shown,
    not yet counted) until its newline comes. A carriage return keeps only what follows it, as a
    terminal would show a progress bar. `dropped` counts the lines that fell off the front, so
    line numbers stay true: line `i` of the buffer is line `dropped + i + 1` of the log.
    """

    def __init__(self, max_lines: int = LOG_LINES) -> None:
        self.lines: deque[str] = deque(maxlen=max_lines)
        self.dropped = 0
        self.partial = ""
        self.version = 0  # moves on every change, so a view redraws only when there is news

    def __len__(self) -> int:
        return len(self.lines)

    @property
    def max_lines(self) -> int:
        return self.lines.maxlen or 0

    def feed(self, text: str) -> int:
        """Add a chunk of raw backend text; returns how many lines were dropped to make room."""
        if not text:
            return 0
        pieces = (self.partial + text).split("\n")
        self.partial = pieces.pop()
        if len(self.partial) > MAX_LINE_CHARS:  # a line without end: show what came, go on
            pieces.append(self.partial)
            self.partial = ""
        dropped = max(0, len(self.lines) + len(pieces) - self.max_lines)
        self.lines.extend(_shown(p) for p in pieces)
        self.dropped += dropped
        self.version += 1
        return dropped

    def flush(self) -> None:
        """The log ended: its unfinished last line is a line."""
        if self.partial:
            self.feed("\n")

    @property
    def partial_shown(self) -> str:
        return _shown(self.partial) if self.partial else ""

    def find(self, query: str, start: int, *, backwards: bool = False) -> int | None:
        """The index of the next line after `start` (before it, `backwards`) that contains
        `query`, case-insensitive, wrapping around; None when no line does."""
        if not query or not self.lines:
            return None
        needle = query.lower()
        count = len(self.lines)
        step = -1 if backwards else 1
        for offset in range(1, count + 1):
            index = (start + step * offset) % count
            if needle in self.lines[index].lower():
                return index
        return None


def _shown(line: str) -> str:
    if "\r" in line:
        line = line.rstrip("\r")
        line = line.rsplit("\r", 1)[-1]
    line = inert(line)
    return line if len(line) <= MAX_LINE_CHARS else line[: MAX_LINE_CHARS - len(fmt.ELLIPSIS)] + fmt.ELLIPSIS


@dataclass(frozen=True)
class FollowState:
    kind: str  # connecting, following, waiting (no log yet), failed (retrying), ended
    message: str
    since: datetime  # when this state began: a failure is shown with its age
    retry_at: datetime | None = None


class LogFollower:
    """Keeps one log followed: reads the stream into the buffer, reconnects with backoff."""

    def __init__(self, stream: LogStream, buffer: LogBuffer, *, clock: Callable[[], datetime] = utcnow,
                 backoff: tuple[float, ...] = BACKOFF, on_change: Callable[[], None] = lambda: None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.stream = stream
        self.buffer = buffer
        self.clock = clock
        self.backoff = backoff
        self.on_change = on_change
        self.sleep = sleep
        self.state = FollowState("connecting", f"connecting to {stream.title}", clock())

    def _set(self, kind: str, message: str, retry_in: float | None = None) -> None:
        now = self.clock()
        # The same trouble again keeps its first time: its age says how long it has lasted.
        since = self.state.since if (kind, message) == (self.state.kind, self.state.message) else now
        retry_at = None if retry_in is None else now + timedelta(seconds=retry_in)
        self.state = FollowState(kind, message, since, retry_at)
        self.on_change()

    async def run(self) -> None:
        """Follow until the log ends; cancel the task to stop (nothing here waits on the network
        beyond the stream's own deadlines)."""
        failures = 0
        while True:
            try:
                async for text in self.stream.chunks():
                    if self.state.kind != "following":
                        self._set("following", "following")
                        failures = 0
                    if text:
                        self.buffer.feed(text)
                        self.on_change()
                self.buffer.flush()
                self._set("ended", f"stream ended: {self.stream.end_reason}")
                return
            except NotYet as exc:
                delay = self.backoff[min(failures, len(self.backoff) - 1)]
                self._set("waiting", str(exc), delay)
            except SourceError as exc:
                delay = self.backoff[min(failures, len(self.backoff) - 1)]
                self._set("failed", str(exc), delay)
            failures += 1
            await self.sleep(delay)
            self._set_connecting()

    def _set_connecting(self) -> None:
        if self.state.kind == "failed":
            # Keep the failure on screen while trying again: it is the last thing known.
            self.state = FollowState("failed", self.state.message, self.state.since, None)
            self.on_change()


KFP_NO_LOG = ("a KFP run's log is in the pods of its steps: mltop follows a step's pod only while the step waits "
              "for it and a kubernetes source on that cluster sees the pod; otherwise `kubectl logs -n NAMESPACE POD`")


def why_no_log(job: Job, source: object) -> str | None:
    """Why `l` cannot follow `job`'s log through `source`, in the user's words; None if it can."""
    if source is None:
        return "its source is no longer configured"
    if not isinstance(source, HasLogs):
        if job.source == "kfp":
            return KFP_NO_LOG
        return f"{getattr(source, 'kind', 'this')} sources do not serve logs to mltop"
    return source.why_no_log(job)
