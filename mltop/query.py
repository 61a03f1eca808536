"""The `/` filter language and the fields it (and sorting) reads from each kind of row. No Textual.

A filter is terms separated by spaces; a row is kept when every term holds:
- `word` or `regex`: a case-insensitive regular expression found in any one of the row's fields
  (text that is not a valid expression is matched as plain text, and the title says so);
- `field:value`: the expression found in that field (`owner:alice`, `state:pend`, `cluster:prod`);
- `field>N`, `field<N`, `field>=N`, `field<=N`, `field=N`: a number compared (`gpus>4`); a row
  whose field is unknown does not match;
- `!term`: the term does not hold (`!state:running`; a lone `!regex` inverts the filter, as in k9s).
Field names are the lower-case column titles and a few aliases (`ns`, `user`, `gpu`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from mltop.model import GpuNode, IdleWarning, Job, Pool

MAX_PATTERN = 200  # characters; a user's expression is compiled once per keystroke, not per row
ALIASES = {"ns": "namespace", "user": "owner", "gpu": "gpus", "node": "name", "what": "message",
           "status": "state", "ctx": "cluster", "context": "cluster"}
_TERM = re.compile(r"^(?P<neg>!)?(?:(?P<field>[a-z_]+)(?P<op>>=|<=|[:<>=]))?(?P<value>.*)$", re.S)

Value = str | float | None


@dataclass(frozen=True)
class Term:
    field: str | None  # None: anywhere in the row
    op: str  # ":" (expression), ">", "<", ">=", "<=", "="
    pattern: re.Pattern[str] | None
    number: float | None
    negate: bool

    def holds(self, fields: Mapping[str, Value]) -> bool:
        return self._holds(fields) != self.negate

    def _holds(self, fields: Mapping[str, Value]) -> bool:
        if self.field is None:  # in any one field, so ^ and $ anchor to a field's value
            pattern = self.pattern
            return pattern is not None and any(pattern.search(_text(v)) for v in fields.values())
        value = fields.get(self.field)
        if self.op == ":":
            return self.pattern is not None and self.pattern.search(_text(value)) is not None
        if not isinstance(value, (int, float)) or self.number is None or math.isnan(value):
            return False
        return {">": value > self.number, "<": value < self.number, ">=": value >= self.number,
                "<=": value <= self.number, "=": value == self.number}[self.op]


@dataclass(frozen=True)
class Query:
    text: str
    terms: tuple[Term, ...] = ()
    notes: tuple[str, ...] = ()  # what the user typed that was read differently than written

    def __bool__(self) -> bool:
        return bool(self.terms)

    def matches(self, fields: Mapping[str, Value]) -> bool:
        if not self.terms:
            return True
        return all(term.holds(fields) for term in self.terms)


def parse(text: str, fields: set[str] | frozenset[str] = frozenset()) -> Query:
    """The filter `text` as terms. `fields` are the field names of the panel's rows: a `name:` that
    is not one of them is matched as plain text (and noted), so a URL or `a:b` still finds rows."""
    terms: list[Term] = []
    notes: list[str] = []
    for word in text.split()[:32]:
        match = _TERM.match(word)
        assert match is not None  # the pattern matches every string
        negate, field, op, value = bool(match["neg"]), match["field"], match["op"], match["value"]
        field = ALIASES.get(field, field) if field else None
        if field is not None and fields and field not in fields:
            notes.append(f"no field '{field}' here")
            field, op, value = None, ":", word[1:] if negate else word
        if not value and field is None:
            continue  # a lone "!" while typing
        if op in (":", None):
            pattern, note = _pattern(value)
            notes.extend(note)
            terms.append(Term(field, ":", pattern, None, negate))
        else:
            number = _number(value)
            if number is None:
                notes.append(f"'{value}' is not a number")
                continue
            terms.append(Term(field, op, None, number, negate))
    return Query(text.strip(), tuple(terms), tuple(notes))


def _pattern(value: str) -> tuple[re.Pattern[str], list[str]]:
    if len(value) > MAX_PATTERN:
        return re.compile(re.escape(value[:MAX_PATTERN]), re.I), [f"pattern cut at {MAX_PATTERN} characters"]
    try:
        return re.compile(value, re.I), []
    except re.error:
        return re.compile(re.escape(value), re.I), [f"'{value}' matched as text (not a regular expression)"]


def _number(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return None if math.isnan(number) else number


def _text(value: Value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


# -- the fields of each kind of row ----------------------------------------------------------------

def job_fields(job: Job, now: datetime | None = None) -> dict[str, Value]:
    waited = job.queued_seconds(now) if now else None
    ran = job.run_seconds(now) if now else None
    return {
        "cluster": job.cluster, "id": job.id, "name": job.name,
        "state": f"{job.state.value} {job.native_state}" + (" stop-sent" if job.stop_requested_at else ""),
        "gpus": job.gpus, "time": waited if waited is not None else ran, "owner": job.owner,
        "source": job.source, "namespace": job.namespace, "kind": job.kind,
        "experiment": job.experiment, "pipeline": job.pipeline, "message": job.message,
        "util": job.gpu_utilization,
    }


def node_fields(node: GpuNode, idle_cost: float | None = None) -> dict[str, Value]:
    return {
        "name": node.name, "pool": node.pool, "model": node.gpu_model, "alloc": node.gpus_allocated,
        "free": node.gpus_free, "idle": idle_cost, "cluster": node.cluster,
        "state": ("ready" if node.ready else "notready") + ("" if node.schedulable else " cordoned"),
        "gpus": node.gpus_allocatable, "zone": node.zone, "instance": node.instance_type,
        "capacity": node.capacity_type, "taints": " ".join(node.taints),
    }


def pool_fields(pool: Pool, idle_cost: float | None = None) -> dict[str, Value]:
    return {
        "name": pool.name, "kind": pool.kind, "ready": _float(pool.ready), "range": _float(pool.max),
        "min": _float(pool.min), "max": _float(pool.max), "gpus": pool.gpus_per_replica, "idle": pool.gpus_idle,
        "cost": idle_cost, "scale": "scalable" if pool.scalable else "fixed", "cluster": pool.cluster,
        "namespace": pool.namespace, "model": pool.gpu_model, "replicas": _float(pool.replicas),
    }


def warning_fields(warning: IdleWarning, now: datetime | None = None) -> dict[str, Value]:
    since = None if warning.idle_since is None or now is None else (now - warning.idle_since).total_seconds()
    return {
        "cost": warning.cost_per_hour, "kind": warning.kind, "message": f"{warning.cluster}: {warning.message}",
        "since": since, "key": warning.remedy_action, "cluster": warning.cluster, "name": warning.target_name,
        "gpus": warning.idle_gpus, "wasted": warning.wasted,
    }


def _float(value: int | None) -> float | None:
    return None if value is None else float(value)


def sort_value(value: Value) -> tuple[int, float | str]:
    """A key that sorts numbers as numbers and text without case; unknown always last."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return (2, 0.0)
    if isinstance(value, (int, float)):
        return (0, float(value))
    return (1, str(value).lower())
