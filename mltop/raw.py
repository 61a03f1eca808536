"""The raw view's headless half: which sources can fetch an object as they hold it, and the text
shown for it (YAML or JSON, secrets redacted, every character inert). No Textual here.

A source offers the raw view by having `raw_object`: it fetches the record's object fresh from
the backend when the user asks (nothing is kept per row: 5,000 nodes stay light), bounded in time
and size like every other call. `raw_refusal` says at once, without a call, why a record has no
object of its own (a node pool is a label on nodes; a Ray cluster as a whole is no one object).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import yaml

from mltop import format as fmt_text
from mltop.model import RawObject
from mltop.redaction import redact_object
from mltop.safe_text import inert

FORMATS = ("yaml", "json")


@runtime_checkable
class HasRawObject(Protocol):
    def raw_refusal(self, record: Any) -> str | None:
        """Why `record` (a Job, GpuNode or Pool of this source) has no object to show; None if it has."""

    async def raw_object(self, record: Any) -> RawObject:
        """The record's object, fetched now; SourceError (one line) when it cannot be."""


@dataclass(frozen=True)
class RawText:
    """What the raw view shows for one object in one format."""

    title: str  # "RayCluster ml/train-cluster on demo-k8s"
    subtitle: str  # where it came from, when, and how many values were redacted
    lines: tuple[str, ...]  # inert: safe to draw as they are
    redacted: int


class _Dumper(yaml.SafeDumper):
    """Block style; multi-line strings (a log in a message, a last-applied configuration) as `|`
    blocks so they read as they are, not as one escaped line."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    # PyYAML falls back to a quoted, escaped string where a block cannot hold the text exactly.
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _str)


def to_yaml(body: Any) -> str:
    return yaml.dump(body, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False, width=120)


def to_json(body: Any) -> str:
    return json.dumps(body, indent=2, ensure_ascii=False)


def describe(raw: RawObject) -> str:
    return f"{raw.kind} {raw.name} on {raw.cluster}"


def render(raw: RawObject, fmt: str = "yaml") -> RawText:
    """The object as the user sees it: secret-like values redacted, then dumped, then made inert
    (YAML and JSON escape control characters, but not bidi overrides or zero-width characters)."""
    body, redacted = redact_object(raw.body)
    text = to_json(body) if fmt == "json" else to_yaml(body)
    lines = tuple(inert(line) for line in text.rstrip("\n").split("\n"))
    fetched = raw.fetched_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    parts = [raw.api, f"fetched at {fetched}",
             f"{redacted} secret-like value{'s' if redacted != 1 else ''} redacted" if redacted else "nothing redacted"]
    if raw.note:
        parts.insert(0, raw.note)
    return RawText(title=inert(describe(raw)), subtitle=inert(f" {fmt_text.SEPARATOR} ".join(p for p in parts if p)), lines=lines,
                   redacted=redacted)
