"""The confirmation that names exactly what will be cancelled. Focus starts on "keep"."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from mltop import format as fmt
from mltop.model import Job
from mltop.registry import display_name
from mltop.safe_text import inert
from mltop.widgets.facts import facts_grid




def describe(job: Job, acts_on: str | None = None) -> Table:
    """Every value is backend text; facts_grid shows it inert, never as markup. `acts_on`: which layer
    of its identity chain a cancel acts on and what the layers under it do (View.acts_on)."""
    return facts_grid((
        ("source", job.source),
        ("cluster", job.cluster),
        ("id", job.id),
        ("name", fmt.clip(job.name, 60)),
        ("state", job.state.value if job.native_state == job.state.value else f"{job.state.value} ({job.native_state})"),
        ("GPUs", fmt.gpus(job.gpus)),
        ("owner", job.owner or "-"),
        *((("experiment", job.experiment),) if job.experiment else ()),
        *((("RayCluster", job.ray_cluster),) if job.ray_cluster else ()),
        *((("what changes", job.cancel_effect),) if job.cancel_effect else ()),
        *((("acts on", acts_on),) if acts_on else ()),
    ))


class YesNoDialog(ModalScreen[bool]):
    """A confirmation: True only on an explicit yes (`y` or the yes button); focus starts on "no",
    so a stray enter changes nothing. Subclasses compose it with buttons `#no` and `#yes`."""

    BINDINGS = [Binding("y", "confirm", "Yes"), Binding("n,escape", "dismiss_no", "No")]

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_confirm(self) -> None:
        self.dismiss(True)

    def action_dismiss_no(self) -> None:
        self.dismiss(False)


class ConfirmCancel(YesNoDialog):
    """Returns True only on an explicit yes."""

    BINDINGS = [
        Binding("y", "confirm", "Stop the job"),
        Binding("n,escape", "dismiss_no", "Keep it"),
    ]

    def __init__(self, job: Job, *, retry: bool = False, noun: str = "job") -> None:
        super().__init__()
        self.job = job
        self.retry = retry
        self.noun = noun  # the backend's word for its jobs: "run" for KFP

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            backend = inert(display_name(self.job.source))
            noun = inert(self.noun)
            deletes = not self.retry and (self.job.cancel_effect or "").startswith("deletes")
            verb = "Retry" if self.retry else "Delete" if deletes else "Stop"
            yield Label(Text(f"{verb} this {backend} {noun}?", style="bold"))
            main = self.app.screen_stack[0] if self.app.screen_stack else None
            view = getattr(main, "view", None)  # the dashboard's view: the chain under this row
            acts_on = view.acts_on(self.job) if not self.retry and hasattr(view, "acts_on") else None
            yield Static(describe(self.job, acts_on))
            what = "re-run it" if self.retry else "delete it" if deletes else "stop it"
            yield Static(Text(f"mltop asks the backend to {what}, then shows what the backend reports.", style="dim"))
            with Horizontal(id="buttons"):
                yield Button("Keep it (n)" if not self.retry else "Don't (n)", id="no", variant="primary")
                yield Button(f"{verb} {noun} (y)", id="yes", variant="warning" if self.retry else "error")


class ConfirmWorkload(YesNoDialog):
    """Stop or resume a Kueue Workload: names the job, the Workload and the field that changes."""

    def __init__(self, job: Job, *, resume: bool) -> None:
        super().__init__()
        self.job, self.resume = job, resume

    def compose(self) -> ComposeResult:
        verb = "Resume" if self.resume else "Stop"
        with Vertical(id="dialog"):
            yield Label(Text(f"{verb} this job's Kueue workload?", style="bold"))
            yield Static(describe(self.job))
            change = "false -> true" if self.resume else "true -> false"
            yield Static(Text(f"Workload {inert(self.job.workload or '?')}: spec.active {change}"))
            what = ("Kueue may admit it again when quota allows" if self.resume else
                    "Kueue evicts it if admitted and keeps it out of the queue until resumed")
            yield Static(Text(f"{what}; mltop shows what the cluster reports.", style="dim"))
            with Horizontal(id="buttons"):
                yield Button("No (n)", id="no", variant="primary")
                yield Button(f"{verb} (y)", id="yes", variant="warning")
