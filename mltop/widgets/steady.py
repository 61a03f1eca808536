"""Update a Static, or a panel's border title, only when its text changed.

`Static.update` asks for a new layout by default (the new text might need another size), and a
layout re-renders every panel: at thousands of rows, a tenth of a second in which keys wait. The
status lines and the summary are set on every tick: drawn again only when what they say changed,
and laid out again only when their number of lines changed, the screen stays still and cheap.
"""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget
from textual.widgets import Static


def update_if_changed(widget: Static, text: Text) -> None:
    """`widget.update(text)` if `text` differs from what it shows; a new layout only when the
    number of lines changed (the widgets this serves do not wrap: same lines, same size)."""
    before: Text | None = getattr(widget, "_steady_text", None)
    if before == text:  # same characters and same styles
        return
    widget._steady_text = text  # type: ignore[attr-defined]
    widget.update(text, layout=before is None or before.plain.count("\n") != text.plain.count("\n"))


def set_border(widget: Widget, title: Text | str | None = None, subtitle: Text | str | None = None) -> None:
    """Set a panel's border title and subtitle, each only if it changed. Textual repaints the whole
    panel, every row of its table included, on each assignment even of the same text (measured:
    the jobs panel's title, set on every tick, was most of an idle screen's frames)."""
    for name, value in (("border_title", title), ("border_subtitle", subtitle)):
        if value is None:
            continue
        seen = f"_steady_{name}"
        if getattr(widget, seen, None) != value:
            setattr(widget, seen, value)
            setattr(widget, name, value)
