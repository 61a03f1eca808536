"""`:` commands, as k9s has them: jump to a panel, narrow the queue to a cluster, context or
namespace, read the audit trail, quit. The input completes command names as you type."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Static

from mltop.audit import AuditLog
from mltop.safe_text import inert
from mltop.widgets.facts import boxed_table

PANELS = {"jobs": "#jobs", "nodes": "#nodes", "pools": "#pools", "warnings": "#warnings"}
FILTERS = ("cluster", "ctx", "ns")  # each narrows the panels to rows of that cluster or namespace
COMMANDS = (*PANELS, *FILTERS, "audit", "queues", "teams", "q", "quit")
SUGGESTER = SuggestFromList([f"{c} " if c in FILTERS else c for c in COMMANDS], case_sensitive=False)


@dataclass(frozen=True)
class Command:
    name: str
    argument: str = ""


def parse(text: str) -> Command | str:
    """A command, or one line saying what is wrong with `text`."""
    words = text.strip().lstrip(":").split(maxsplit=1)
    if not words:
        return "type a command: " + ", ".join(COMMANDS)
    name, argument = words[0].lower(), (words[1].strip() if len(words) > 1 else "")
    if name not in COMMANDS:
        return f"no command {name!r}; commands: {', '.join(COMMANDS)}"
    if name in FILTERS and not argument:
        return f":{name} needs a name (:{name} NAME)"
    return Command("quit" if name == "q" else name, argument)


class AuditScreen(ModalScreen[None]):
    """`:audit`: the most recent actions, newest first, as the audit log holds them."""

    BINDINGS = [Binding("escape,q", "dismiss", "Close")]

    def __init__(self, log: AuditLog) -> None:
        super().__init__()
        self.audit = log

    def compose(self) -> ComposeResult:
        table = boxed_table(f"Audit trail: {inert(str(self.audit.path))}", expand=True)
        for column in ("time", "user", "action", "target", "change", "outcome", "answer"):
            table.add_column(column, overflow="fold")
        entries = list(reversed(self.audit.read(200)))
        for entry in entries:
            table.add_row(*(Text(inert(str(entry.get(key, "")))) for key in
                            ("time", "user", "action", "target_name", "change", "outcome", "answer")))
        with VerticalScroll(id="audit"):
            yield Static(table if entries else Text("No action has been taken yet (the log is empty).", style="dim"))
            yield Static(Text("esc to close", style="dim"))


def execute(app, text: str) -> None:  # app: MltopApp (not imported: it imports this module)
    """Carry out a `:` command on the app's main screen."""
    from textual.widgets import Input

    command = parse(text)
    if isinstance(command, str):
        app.say(command, severity="warning")
        return
    if command.name in PANELS:
        if command.name in ("nodes", "pools") and not app.main.has_infra:
            app.say(f"no source reports {command.name}", severity="warning")
            return
        app.main.query_one(PANELS[command.name]).focus()
    elif command.name in FILTERS:
        # The whole screen narrows to the cluster (jobs, warnings, nodes, pools); a namespace
        # narrows what has one (jobs, pools). The queue's `/` box shows the filter.
        field = "namespace" if command.name == "ns" else "cluster"
        for table_id in ("jobs", "pools") if field == "namespace" else ("jobs", "warnings", "nodes", "pools"):
            app._set_filter(app.main.query_one(f"#{table_id}"), f"{field}:{command.argument}")
        box = app.main.query_one("#filter", Input)
        app.filter_target = app.table
        with box.prevent(Input.Changed):
            box.value = f"{field}:{command.argument}"
        box.display = True
        app.table.focus()
    elif command.name == "queues":
        from mltop.tui.queues_view import QueuesScreen

        view = app.main.view
        if view is None or not view.queues:
            app.say("no source reports Kueue queues (no Kueue on these clusters, or not readable)", severity="warning")
            return
        app.push_screen(QueuesScreen(view.queues, view.jobs))
    elif command.name == "teams":
        from mltop.tui.teams_view import TeamsScreen

        view = app.main.view
        if view is None or view.cost is None or not view.cost.teams:
            app.say("no GPU cost to share out yet (no GPU node or Ray cluster is reporting)", severity="warning")
            return
        app.push_screen(TeamsScreen(view.cost.teams, view.cost.currency))
    elif command.name == "audit" and app.runner.audit is not None:
        app.push_screen(AuditScreen(app.runner.audit))
    elif command.name == "quit":
        app.exit()
