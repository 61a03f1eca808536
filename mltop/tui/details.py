"""`enter` on a job: everything the backend says about it, and the tail of its log."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from mltop import format as fmt
from mltop.actions import HasJobDetails
from mltop.errors import SourceError
from mltop.model import Job, JobState
from mltop.safe_text import inert
from mltop.widgets.facts import facts_grid


def facts(job: Job, now: datetime, waiting_reason: str | None = None) -> Table:
    waited = job.queued_seconds(now)
    rows = [
        ("source", f"{job.source}/{job.cluster}"),
        ("id", job.id),
        ("name", job.name),
        ("state", f"{job.state.value}   ({job.source} says {job.native_state})"),
        ("type", job.kind or "-"),
        ("GPUs asked", fmt.gpus(job.gpus)),
        ("CPUs asked", fmt.gpus(job.cpus)),
        ("owner", job.owner or "-"),
        ("submitted", fmt.timestamp(job.submitted_at)),
        ("waiting for", fmt.long_duration(waited)) if waited is not None else ("started", fmt.timestamp(job.started_at)),
        ("finished", fmt.timestamp(job.finished_at)),
        # Here the entrypoint keeps its lines (the jobs table folds them into one); each stays inert.
        ("entrypoint", Text(inert(job.entrypoint or "-", multiline=True))),
    ]
    if job.namespace:
        rows.insert(2, ("namespace", job.namespace))
    if waiting_reason and job.state is JobState.PENDING:
        rows.insert(rows.index(("waiting for", fmt.long_duration(waited))) + 1, ("why it waits", waiting_reason))
    if job.stop_requested_at is not None:
        rows.append(("stop", f"requested {fmt.long_duration((now - job.stop_requested_at).total_seconds())} ago; "
                             f"not yet confirmed by {job.source}"))
    return facts_grid(rows)


class JobDetailsScreen(Screen[None]):
    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back"),
        Binding("r", "reload", "Reload"),
    ]

    def __init__(self, job: Job, source: HasJobDetails | None, *, clock: Callable[[], datetime],
                 waiting_reason: str | None = None) -> None:
        super().__init__()
        self.job = job
        self.source = source
        self.clock = clock
        self.waiting_reason = waiting_reason  # the dashboard's words for why it waits

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="details"):
            yield Static(facts(self.job, self.clock(), self.waiting_reason), id="facts")
            yield Static(message_text(self.job), id="message")
            loading = "loading…" if self.source is not None else ""
            yield Static(Text(loading, style="dim"), id="log")
        yield Footer()

    def on_mount(self) -> None:
        # Screen.sub_title keeps a plain str (never markup); a Text border title is taken as-is,
        # where a str one would be parsed as markup.
        self.sub_title = inert(f"{self.job.cluster}/{self.job.id}")
        self.query_one("#details").border_title = Text(inert(f"Job {self.job.cluster}/{self.job.id}"))
        if self.source is not None:  # a pending pod has nothing more to fetch than what is shown
            self.load()

    def action_reload(self) -> None:
        if self.source is not None:
            self.load()

    @work(exclusive=True, group="details", description="load job details", exit_on_error=False)
    async def load(self) -> None:
        log = self.query_one("#log", Static)
        try:
            detail = await self.source.job_detail(self.job.id)
        except SourceError as exc:
            log.update(Text(inert(f"could not load details: {exc}"), style="red"))
            return
        job = detail.job
        if self.job.stop_requested_at is not None and not job.state.is_terminal:
            from dataclasses import replace

            job = replace(job, stop_requested_at=self.job.stop_requested_at)
        self.job = job
        self.query_one("#facts", Static).update(facts(job, self.clock(), self.waiting_reason))
        self.query_one("#message", Static).update(message_text(job))
        log.update(sections_text(detail.sections))


def message_text(job: Job) -> Text:
    return Text(inert(job.message or "", multiline=True), style="italic")


def sections_text(sections: Iterable[tuple[str, str]]) -> Text:
    """Log tails and state histories: several lines, each inert (a log line is anyone's text)."""
    body = Text()
    for title, text in sections:
        body.append(f"{inert(title)}:\n", style="bold")
        body.append(inert(text.rstrip("\n"), multiline=True) + "\n\n")
    return body
