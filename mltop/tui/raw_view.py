"""`y`: the selected row's object as its backend holds it, fetched fresh, as YAML or JSON.

Secret-like values are redacted and every line is inert before it is drawn (mltop.raw); the text
goes to a `Log`, which draws each line as plain `Text` (never markup) and only the lines on
screen, so a large object scrolls without being laid out whole.
"""

from __future__ import annotations

import asyncio
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Log, Static

from mltop import format as fmt
from mltop.errors import SourceError
from mltop.model import GpuNode, IdleWarning, Job, Pool, RawObject
from mltop.raw import HasRawObject, RawText, render
from mltop.safe_text import inert


class RawActions:
    """Mixed into MltopApp: uses its focused panel, main view, sources, say() and _source_of()."""

    def action_show_raw(self) -> None:
        app: Any = self
        record, why = self._raw_record()
        if record is None:
            app.say(why, severity="warning")
            return
        source = app._source_of(record.key)
        if not isinstance(source, HasRawObject):
            where = getattr(source, "key", None) or "its source"
            app.say(f"{where} cannot show {_what(record)} as it holds it (no raw view for this backend)",
                    severity="warning", timeout=8)
            return
        refusal = source.raw_refusal(record)
        if refusal:
            app.say(refusal, severity="warning", timeout=10)
            return
        app.push_screen(RawScreen(record, source))

    def _raw_record(self) -> tuple[Job | GpuNode | Pool | None, str]:
        """The record under the cursor of the focused panel (the jobs panel if none is), or why none."""
        app: Any = self
        focused = app.focused
        selected = getattr(focused, "selected", None) if focused is not None else None
        if selected is None and not hasattr(focused, "selected"):
            selected = app.table.selected
        if selected is None:
            return None, "nothing selected to show"
        if isinstance(selected, IdleWarning):
            return self._warning_target(selected)
        if isinstance(selected, (Job, GpuNode, Pool)):
            return selected, ""
        return None, "this row has no object of its own to show"

    def _warning_target(self, warning: IdleWarning) -> tuple[Job | GpuNode | Pool | None, str]:
        view = getattr(self, "main").view
        records = (*view.jobs, *view.nodes, *view.pools) if view is not None else ()
        target = next((r for r in records if r.key == warning.target), None)
        if target is not None:
            return target, ""
        if warning.target.count("/") == 1:
            return None, (f"this warning is about {warning.target_name} as a whole, not one object: "
                          "press enter to go to its rows, then y on one")
        return None, f"{warning.target_name}: its target is no longer listed"


def _what(record: Job | GpuNode | Pool) -> str:
    if isinstance(record, Job):
        return f"job {record.cluster}/{record.id}"
    return f"{'node' if isinstance(record, GpuNode) else 'pool'} {record.cluster}/{record.name}"


class RawScreen(Screen[None]):
    """One object, fetched when opened (and on `r`), shown as YAML; `f` switches to JSON and back."""

    DEFAULT_CSS = """
    RawScreen #raw-head { height: auto; padding: 0 1; background: $panel; }
    RawScreen #raw-body { height: 1fr; }
    """
    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back"),
        Binding("f", "show('json')", "JSON"),
        Binding("f", "show('yaml')", "YAML"),
        Binding("r", "reload", "Reload"),
        Binding("j", "scroll(1)", "Down", show=False),
        Binding("k", "scroll(-1)", "Up", show=False),
        Binding("g", "edge('home')", "Top", show=False),
        Binding("G", "edge('end')", "Bottom", show=False),
    ]

    def __init__(self, record: Job | GpuNode | Pool, source: HasRawObject) -> None:
        super().__init__()
        self.record = record
        self.source = source
        self.format = "yaml"
        self.raw: RawObject | None = None
        self.shown: dict[str, RawText] = {}  # rendered per format, once per fetch

    def compose(self) -> ComposeResult:
        yield Static(Text(inert(f"{_what(self.record)}: fetching{fmt.ELLIPSIS}"), style="bold"), id="raw-head")
        yield Log(id="raw-body", highlight=False, auto_scroll=False)
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = inert(_what(self.record))  # a plain str: never markup
        self.query_one(Log).focus()
        self.load()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "show":
            return parameters[0] != self.format  # `f` names the other format
        return True

    def action_reload(self) -> None:
        self.load()

    def action_show(self, form: str) -> None:
        self.format = form
        self.refresh_bindings()
        if self.raw is not None:
            self.draw()

    def action_scroll(self, lines: int) -> None:
        self.query_one(Log).scroll_relative(y=lines, animate=False)

    def action_edge(self, where: str) -> None:
        log = self.query_one(Log)
        log.scroll_home(animate=False) if where == "home" else log.scroll_end(animate=False)

    @work(exclusive=True, group="raw", description="fetch the raw object", exit_on_error=False)
    async def load(self) -> None:
        head = self.query_one("#raw-head", Static)
        head.update(Text(inert(f"{_what(self.record)}: fetching{fmt.ELLIPSIS}"), style="bold"))
        try:
            raw = await self.source.raw_object(self.record)
        except SourceError as exc:
            head.update(Text(inert(f"could not fetch {_what(self.record)}: {exc}"), style="red"))
            self.app.say(f"raw view: {exc}", severity="error", timeout=10)  # type: ignore[attr-defined]
            return
        self.raw, self.shown = raw, {}
        await self.draw_async()

    def draw(self) -> None:
        self.run_worker(self.draw_async(), group="raw-draw", exclusive=True, exit_on_error=False)

    async def draw_async(self) -> None:
        raw, form = self.raw, self.format
        if raw is None:
            return
        if form not in self.shown:
            # A KFP run with its pipeline spec is megabytes: dump and redact it off the UI thread.
            self.shown[form] = await asyncio.to_thread(render, raw, form)
        shown = self.shown[form]
        head = Text(shown.title, style="bold")
        head.append(f"   {form.upper()}", style="cyan")
        head.append("\n" + shown.subtitle, style="dim")
        self.query_one("#raw-head", Static).update(head)
        log = self.query_one(Log)
        log.clear()
        log.write_lines(shown.lines)
        log.scroll_home(animate=False)

    @property
    def text(self) -> str:
        """What the body shows now (tests)."""
        return "\n".join(self.query_one(Log).lines)
