"""Every remappable key binding, by id: its default keys and what it does. No Textual here.

The TUI builds its `Binding`s from this table, the config checks `[keys]` against it, and the
headless layers name actions by these ids (a warning's remedy is "jobs.cancel", not "ctrl+d"),
so a screen or report can show the user's current key for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class KeySpec:
    keys: str  # Textual key names, comma-separated
    label: str  # the footer's word for it
    description: str  # what `?` says it does


BINDINGS: dict[str, KeySpec] = {
    "quit": KeySpec("q,ctrl+c", "Quit", "quit mltop (ctrl+c too, as in top and k9s)"),
    "help": KeySpec("question_mark", "Keys", "show every key"),
    "filter": KeySpec("slash", "Filter", "filter the jobs"),
    "command": KeySpec("colon", "Command", "a command: :jobs :nodes :pools :warnings :queues :teams :cluster/:ctx/:ns NAME :audit :q"),
    "filter.clear": KeySpec("escape", "Clear filter", "clear the filter"),
    "jobs.details": KeySpec("enter", "Details", "open the selected job's details"),
    "jobs.cancel": KeySpec("ctrl+d", "Cancel job", "cancel the selected job"),
    "jobs.retry": KeySpec("R", "Retry", "retry the selected failed or cancelled run"),
    "jobs.workload": KeySpec("a", "Kueue stop/resume", "stop the selected job's Kueue Workload (spec.active: false), "
                                                      "or resume a stopped one"),
    "pools.scale": KeySpec("s", "Scale", "scale the selected pool"),
    "warnings.show": KeySpec("w", "Warnings", "go to the idle-cost warnings"),
    "panel.details": KeySpec("enter", "Details", "open the selected node's or pool's details"),
    "panel.previous": KeySpec("left", "Previous panel", "go to the previous panel"),
    "panel.next": KeySpec("right", "Next panel", "go to the next panel"),
    "cursor.down": KeySpec("j,down", "Down", "move down"),
    "cursor.up": KeySpec("k,up", "Up", "move up"),
    "cursor.first": KeySpec("home,g", "First", "go to the first row"),
    "cursor.last": KeySpec("end,G", "Last", "go to the last row"),
    "refresh": KeySpec("r", "Refresh", "refresh every source now"),
    "jobs.mark": KeySpec("space", "Mark", "mark the job for one cancel or retry of several (esc clears the marks)"),
    "zoom": KeySpec("z", "Zoom", "the focused panel fills the screen (z or esc: back)"),
    "snapshot": KeySpec("e", "Snapshot", "write the triage picture (queue, reasons, idle GPUs, warnings, actions) "
                                         "to a Markdown file"),
    "logs": KeySpec("l", "Logs", "follow the selected job's or pod's log"),
    "raw": KeySpec("y", "Raw", "the selected object as the backend sent it (secrets redacted)"),
    "copy": KeySpec("c", "Copy id", "copy the selected row's id to your clipboard (OSC 52: works over SSH)"),
}

# How keys are written for people (the FIX column, the help and the report).
_SHORT = {"question_mark": "?", "slash": "/", "escape": "esc", "enter": "enter"}


def keys_for(binding_id: str, keymap: Mapping[str, str] | None = None) -> str:
    """The keys bound to `binding_id` now: the user's remap if any, else the default."""
    if keymap and binding_id in keymap:
        return keymap[binding_id]
    spec = BINDINGS.get(binding_id)
    return spec.keys if spec else ""


def key_label(binding_id: str | None, keymap: Mapping[str, str] | None = None) -> str | None:
    """The first key bound to `binding_id`, as a person reads it ("ctrl+d", "s", "/"); None for no action."""
    if not binding_id:
        return None
    first = keys_for(binding_id, keymap).split(",")[0].strip()
    for long, short in _SHORT.items():
        first = first.replace(long, short)
    return first or None
# What a key in a binding may be, as Textual names keys (kept here, not imported: this module
# must not import Textual; tests/test_local_input.py checks these against textual.keys).
# Modifiers in the order Textual writes them in a key event's name ("ctrl+shift+up"):
KEY_MODIFIERS = ("alt", "ctrl", "hyper", "meta", "shift", "super")
NAMED_KEYS = frozenset({
    "escape", "enter", "return", "tab", "space", "backspace", "delete", "insert", "home", "end",
    "pageup", "pagedown", "up", "down", "left", "right", *(f"f{n}" for n in range(1, 25)),
    # Printable ASCII characters, by the name Textual gives them (a lone "?" is also fine; ","
    # separates keys, so it is only ever written "comma").
    "ampersand", "apostrophe", "asterisk", "at", "backslash", "circumflex_accent", "colon", "comma",
    "dollar_sign", "equals_sign", "exclamation_mark", "full_stop", "grave_accent", "greater_than_sign",
    "left_curly_bracket", "left_parenthesis", "left_square_bracket", "less_than_sign", "minus",
    "number_sign", "percent_sign", "plus", "question_mark", "quotation_mark", "right_curly_bracket",
    "right_parenthesis", "right_square_bracket", "semicolon", "slash", "tilde", "underscore",
    "vertical_line",
})




def check_key(key: str) -> None:
    """One key of a binding ("ctrl+k", "question_mark", "?"), as Textual can match it; else ValueError."""
    if len(key) == 1:  # a lone character; Textual turns "?" into "question_mark" itself
        if not key.isprintable():
            raise ValueError(f"{key!r} is not a printable character; name the key (e.g. 'tab')")
        return
    *modifiers, name = key.split("+")
    unknown = [m for m in modifiers if m and m not in KEY_MODIFIERS]
    if unknown:
        raise ValueError(f"{key!r}: unknown modifier {unknown[0]!r}; modifiers: {', '.join(KEY_MODIFIERS)}")
    if "" in modifiers or not name:
        raise ValueError(f"{key!r}: a key is missing next to a '+' (the '+' key itself is 'plus')")
    if len(set(modifiers)) != len(modifiers):
        raise ValueError(f"{key!r}: a modifier is given twice")
    if not (name in NAMED_KEYS or (len(name) == 1 and name.isprintable() and not name.isspace())):
        what = f"{key!r}: {name!r}" if modifiers else repr(key)
        hint = "key names are lower case" if name.lower() in NAMED_KEYS else (
            "use one character or a key name such as escape, enter, tab, space, up, pageup, f1..f24, slash, "
            "question_mark")
        raise ValueError(f"{what} is not a key ({hint})")
    if modifiers != sorted(modifiers):
        # Textual names a key event with its modifiers sorted; "shift+ctrl+up" would never match.
        raise ValueError(f"{key!r}: write the modifiers in this order: {'+'.join([*sorted(modifiers), name])!r}")


def check_keys(value: str) -> str:
    """A binding's comma-separated keys (for `[keys]` in the config); ValueError names the bad one."""
    if not value.strip():
        raise ValueError("needs at least one key")
    for key in value.split(","):
        key = key.strip()
        if not key:
            raise ValueError(f"{value!r} has an empty key (write ',' as 'comma')")
        check_key(key)
    return value


