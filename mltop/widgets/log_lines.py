"""A followed log, drawn line by line (Textual's Line API): only the visible lines are rendered,
so 10,000 of them cost what a screenful does.

Display only: it reads a LogBuffer (mltop.logs), whose lines are already inert; each is drawn as
a `rich.text.Text`, never as markup, so `[red]` in a log is shown as typed. Following keeps the
view at the bottom as lines arrive; scrolling up pauses it (the view then stays on the same
lines even while old ones are dropped from the buffer's front); end, G or f resume it.
"""

from __future__ import annotations

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.events import MouseScrollUp
from textual.geometry import Size
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from mltop.logs import LogBuffer

MATCH = Style(bgcolor="yellow", color="black")
CURRENT_LINE = Style(reverse=True)
PARTIAL = Style(dim=True)


class LogLines(ScrollView, can_focus=True):
    DEFAULT_CSS = """
    LogLines { background: $surface; color: $text; overflow: auto; height: 1fr; }
    """
    BINDINGS = [
        Binding("k,up", "scroll_up", "Up (pauses following)", show=False, id="log.up"),
        Binding("j,down", "scroll_down", "Down", show=False, id="log.down"),
        Binding("g,home", "scroll_home", "First line (pauses following)", show=False, id="log.first"),
        Binding("G,end", "scroll_end", "Last line (follows again)", show=False, id="log.last"),
    ]

    follow: reactive[bool] = reactive(True)

    def __init__(self, buffer: LogBuffer, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.buffer = buffer
        self.query_text = ""
        self.current: int | None = None  # line number (from 0, counting dropped lines) of the match jumped to
        self._width = 0
        self._seen_version = -1
        self._seen_total = 0  # lines ever added, as of the last sync
        self._seen_dropped = 0

    # -- taking the buffer's news ------------------------------------------------------------

    def sync(self) -> None:
        """Grow to the buffer's lines; stay at the bottom when following, else on the same lines."""
        buffer = self.buffer
        if buffer.version == self._seen_version:
            return
        self._seen_version = buffer.version
        total = buffer.dropped + len(buffer)
        new = min(total - self._seen_total, len(buffer))
        shifted = buffer.dropped - self._seen_dropped  # lines gone from the front: the view moves up as many
        self._seen_dropped = buffer.dropped
        self._seen_total = total
        for index in range(len(buffer) - new, len(buffer)):
            self._width = max(self._width, cell_len(buffer.lines[index]))
        if buffer.partial:
            self._width = max(self._width, cell_len(buffer.partial_shown))
        self.virtual_size = Size(self._width, len(buffer) + (1 if buffer.partial else 0))
        if self.follow:
            self.scroll_end(animate=False, immediate=True, x_axis=False)
        elif shifted:
            self.scroll_to(y=max(0, self.scroll_y - shifted), animate=False, immediate=True)
        self.refresh()

    # -- following and searching ----------------------------------------------------------------

    def action_scroll_up(self) -> None:
        self.follow = False
        super().action_scroll_up()

    def action_page_up(self) -> None:
        self.follow = False
        super().action_page_up()

    def action_scroll_home(self) -> None:
        self.follow = False
        super().action_scroll_home()

    def action_scroll_end(self) -> None:
        self.follow = True
        super().action_scroll_end()

    def _on_mouse_scroll_up(self, event: MouseScrollUp) -> None:
        self.follow = False

    def watch_follow(self, follow: bool) -> None:
        if follow and self.is_mounted:
            self.scroll_end(animate=False, immediate=True, x_axis=False)

    def search(self, query: str, *, backwards: bool = False, from_bottom: bool = False) -> int | None:
        """Jump to the next line containing `query` (below the current match, or above it when
        `backwards`; the first jump looks up from the bottom of the view). Pauses following."""
        self.sync()
        self.query_text = query
        dropped = self.buffer.dropped
        if from_bottom or self.current is None or self.current < dropped:
            start = min(len(self.buffer), int(self.scroll_y) + self.size.height)
            backwards = True
        else:
            start = self.current - dropped
        found = self.buffer.find(query, start, backwards=backwards)
        if found is not None:
            self.current = dropped + found
            self.follow = False
            self.scroll_to(y=max(0, found - self.size.height // 2), animate=False, immediate=True)
        self.refresh()
        return found

    def clear_search(self) -> None:
        self.query_text = ""
        self.current = None
        self.refresh()

    # -- drawing -----------------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        # The view was laid out at the last sync; lines dropped since then shift the buffer, not
        # what the user looks at.
        number = self._seen_dropped + scroll_y + y
        index = number - self.buffer.dropped
        width = self.size.width
        rich_style = self.rich_style
        buffer = self.buffer
        if 0 <= index < len(buffer):
            text = Text(buffer.lines[index], no_wrap=True, end="")
        elif index == len(buffer) and buffer.partial:
            text = Text(buffer.partial_shown, style=PARTIAL, no_wrap=True, end="")
        else:
            return Strip.blank(width, rich_style)
        if self.query_text:
            self._highlight(text)
            if number == self.current:
                text.stylize(CURRENT_LINE)
        strip = Strip(text.render(self.app.console), text.cell_len)
        return strip.crop_extend(scroll_x, scroll_x + width, rich_style)

    def _highlight(self, text: Text) -> None:
        plain = text.plain.lower()
        needle = self.query_text.lower()
        start = plain.find(needle)
        while start != -1 and needle:
            text.stylize(MATCH, start, start + len(needle))
            start = plain.find(needle, start + len(needle))
