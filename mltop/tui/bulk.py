"""Several jobs at once: `space` marks rows; cancel or retry on marked rows asks once, listing
every target, sends each action exactly once and reports each result.

A mixin of MltopApp. The targets are captured by key when the key is pressed; a marked job that
the action cannot apply to is listed with the reason and not sent.
"""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Label, Static

from mltop import format as fmt
from mltop.model import Job
from mltop.safe_text import inert
from mltop.tui.confirm import YesNoDialog
from mltop.widgets.facts import boxed_table

MAX_LISTED = 200  # rows in the confirmation; more are counted, never silently dropped


def applicable(job: Job, retry: bool) -> str | None:
    """Why the action cannot apply to `job`; None when it can."""
    if retry:
        return None if job.retryable else f"it is {job.native_state}: nothing to retry"
    if job.stop_requested_at is not None:
        return "a stop was already sent"
    return None if job.cancellable else (job.not_cancellable_because or f"it is {job.native_state}: nothing to cancel")


def targets_table(jobs: list[tuple[Job, str]], title: str) -> Table:
    """Every target by cluster and id (backend text, inert); `why` when it is not sent."""
    table = boxed_table(title, expand=False)
    reasons = any(why for _, why in jobs)
    for column in ("cluster", "id", "name", "state", *(("why not",) if reasons else ())):
        table.add_column(column)
    for job, why in jobs[:MAX_LISTED]:
        values = (job.cluster, fmt.clip_middle(job.id, 40), fmt.clip(job.name, 30), job.native_state,
                  *((fmt.clip(why, 32),) if reasons else ()))
        table.add_row(*(Text(inert(v)) for v in values))
    if len(jobs) > MAX_LISTED:
        table.add_row(Text(f"... and {len(jobs) - MAX_LISTED} more"))
    return table


class ConfirmBulk(YesNoDialog):
    """Names every target; True only on an explicit yes. Focus starts on "no"."""

    def __init__(self, send: list[Job], skip: list[tuple[Job, str]], *, retry: bool) -> None:
        super().__init__()
        self.send, self.skip, self.retry = send, skip, retry

    def compose(self) -> ComposeResult:
        verb = "Retry" if self.retry else "Stop"
        with Vertical(id="dialog"):
            count = "this job" if len(self.send) == 1 else f"these {len(self.send)} jobs"
            yield Label(Text(f"{verb} {count}?", style="bold"))
            with VerticalScroll(id="bulk-targets"):
                yield Static(targets_table([(job, "") for job in self.send], f"{verb}: one request each"))
                if self.skip:
                    yield Static(targets_table(self.skip, "Marked, not sent"))
            yield Static(Text("mltop sends each request once, then shows what each backend reports.", style="dim"))
            with Horizontal(id="buttons"):
                yield Button("No (n)", id="no", variant="primary")
                yield Button(f"{verb} {len(self.send)} (y)", id="yes", variant="warning" if self.retry else "error")


class BulkActions:
    """Mixed into MltopApp: uses its jobs table, sources, loops, runner, dashboard and say()."""

    def action_toggle_mark(self) -> None:
        table = self.table  # type: ignore[attr-defined]
        if self.focused is not table:  # type: ignore[attr-defined]
            self.say("marks are for the jobs panel: several jobs, one cancel or retry", severity="warning")  # type: ignore[attr-defined]
            return
        job = table.toggle_mark()
        if job is None:
            self.say("nothing selected to mark", severity="warning")  # type: ignore[attr-defined]
            return
        if table.cursor_row < table.row_count - 1:
            table.move_cursor(row=table.cursor_row + 1, animate=False)  # on to the next row, never the next panel
        self.main._jobs_title(self.main.view)  # type: ignore[attr-defined]

    def confirm_bulk(self, binding_id: str) -> None:
        table = self.table  # type: ignore[attr-defined]
        retry = binding_id == "jobs.retry"
        marked = [job for key, job in table.records.items() if key in table.marked]
        send = [job for job in marked if applicable(job, retry) is None]
        skip = [(job, applicable(job, retry) or "") for job in marked if applicable(job, retry) is not None]
        if not send:
            self.say(f"none of the {len(marked)} marked jobs can be {'retried' if retry else 'cancelled'}: "  # type: ignore[attr-defined]
                     f"{skip[0][1] if skip else ''}", severity="warning", timeout=10)
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.run_bulk(binding_id, send)

        self.push_screen(ConfirmBulk(send, skip, retry=retry), confirmed)  # type: ignore[attr-defined]

    @work(group="actions", description="an action on several jobs", exit_on_error=False)
    async def run_bulk(self, binding_id: str, jobs: list[Job]) -> None:
        lines, accepted = [], 0
        for job in jobs:  # one at a time: gentle on the backends, and each result is its own
            result = await self.send_one(binding_id, job)  # type: ignore[attr-defined]
            accepted += result.outcome is not None
            answer = result.outcome.message if result.outcome else result.error or "failed"
            lines.append(inert(answer if answer.startswith(f"{job.cluster}/{job.id}") else
                               f"{job.cluster}/{job.id}: {answer}"))
        self.table.clear_marks()  # type: ignore[attr-defined]
        self._draw(with_cost=False)  # type: ignore[attr-defined]
        verb = "retry" if binding_id == "jobs.retry" else "stop"
        shown = "\n".join(lines[:12]) + (f"\n... {len(lines) - 12} more in :audit" if len(lines) > 12 else "")
        self.say(f"{verb}: {accepted} of {len(jobs)} accepted\n{shown}",  # type: ignore[attr-defined]
                 severity="information" if accepted == len(jobs) else "warning", timeout=20)
