"""`s` on a pool: the current value, the allowed range, and exactly what would change."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from mltop import format as fmt
from mltop.model import Pool
from mltop.safe_text import inert
from mltop.scaling import ScalePlan, current_value, plan
from mltop.widgets.facts import facts_grid

KIND_NAMES = {"raycluster-workergroup": "KubeRay worker group", "machinedeployment": "Cluster API MachineDeployment",
              "nodepool": "node pool"}


def describe(pool: Pool) -> Table:
    rows = [
        ("cluster", pool.cluster),
        ("what", f"{KIND_NAMES.get(pool.kind, pool.kind)} {pool.namespace}/{pool.name}"),
        ("replicas", f"{fmt.count(pool.replicas)} ({fmt.count(pool.ready)} ready)"),
        ("range", f"{fmt.count(pool.min, '0')} .. {fmt.count(pool.max, 'no limit')}"),
        ("GPUs each", fmt.gpus(pool.gpus_per_replica)),
    ]
    if pool.autoscaled:
        rows.append(("autoscaled", "yes"))
    return facts_grid(rows)


def describe_plan(p: ScalePlan) -> Text:
    # Object names, refusals and notes carry the pool's names: backend text, shown inert.
    if p.refusal:
        return Text(f"Not allowed: {inert(p.refusal)}", style="bold red")
    out = Text("Will change:\n", style="bold")
    for change in p.changes:
        out.append(f"  {inert(change.obj)}\n  {inert(change.field)}: ")
        out.append(f"{fmt.count(change.old, 'unset')} -> {change.new}\n", style="bold cyan")
    if p.note:
        out.append(inert(p.note), style="italic")
    return out


class ScaleDialog(ModalScreen["ScalePlan | None"]):
    """Returns the plan the user confirmed, or None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, pool: Pool, proposed: int | None = None) -> None:
        super().__init__()
        self.pool = pool
        self.proposed = proposed  # from an idle-cost warning: the size that removes the idle replicas
        self.plan: ScalePlan | None = None

    def compose(self) -> ComposeResult:
        label = "Set the autoscaler's floor (minReplicas) to:" if (
            self.pool.kind == "raycluster-workergroup" and self.pool.autoscaled) else "Scale to:"
        with Vertical(id="scale-dialog"):
            yield Label(Text(f"Scale {inert(self.pool.name)}", style="bold"))
            yield Static(describe(self.pool))
            yield Label(label)
            start = self.proposed if self.proposed is not None else current_value(self.pool) or 0
            yield Input(value=str(start), type="integer", id="target")
            yield Static(id="plan")
            with Horizontal(id="buttons"):
                yield Button("Cancel (esc)", id="cancel", variant="primary")
                yield Button("Scale", id="scale", variant="warning")

    def on_mount(self) -> None:
        self.query_one("#target", Input).focus()
        self._update(self.query_one("#target", Input).value)

    def on_input_changed(self, event: Input.Changed) -> None:
        self._update(event.value)

    def _update(self, value: str) -> None:
        try:
            target = int(value)
        except ValueError:
            self.plan = None
            self.query_one("#plan", Static).update(Text("Type a whole number.", style="dim"))
            self.query_one("#scale", Button).disabled = True
            return
        self.plan = plan(self.pool, target)
        if target == current_value(self.pool):
            self.query_one("#plan", Static).update(Text(f"Now {target}: type the new value.", style="dim"))
        else:
            self.query_one("#plan", Static).update(describe_plan(self.plan))
        self.query_one("#scale", Button).disabled = not self.plan.allowed

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self._confirm()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "scale":
            self._confirm()
        else:
            self.dismiss(None)

    def _confirm(self) -> None:
        if self.plan is not None and self.plan.allowed:
            self.dismiss(self.plan)

    def action_cancel(self) -> None:
        self.dismiss(None)
