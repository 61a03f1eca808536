"""`e`: the triage picture as Markdown, for an incident channel or ticket. No Textual here.

What waits and why, what idles and what it costs, the warnings, and the actions taken from this
machine (the audit log). Every value from a backend is made inert and escaped for Markdown tables,
so a job named `a | b` or holding a terminal escape cannot break the document or the terminal
that later `cat`s it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path

from mltop import format as fmt
from mltop.dashboard import View
from mltop.model import JobState
from mltop.report import cost_line

MAX_ROWS = 200  # per section: a snapshot is read by people


def md(value: object) -> str:
    """One table cell: inert, one line, `|` and backticks escaped."""
    text = fmt.clip(str(value if value is not None else "-"), 300)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("`", "\\`") or "-"


def _table(header: tuple[str, ...], rows: Iterable[tuple[object, ...]]) -> list[str]:
    rows = list(rows)
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(md(c) for c in row) + " |" for row in rows[:MAX_ROWS]]
    if len(rows) > MAX_ROWS:
        out.append(f"\n... and {len(rows) - MAX_ROWS} more")
    return out


def render(view: View, audit: list[Mapping[str, object]], user: str = "") -> str:
    """The snapshot of `view` (and the recent `audit` entries) as Markdown."""
    now = view.now
    lines = [f"# mltop snapshot {now:%Y-%m-%d %H:%M:%S} UTC", ""]
    if user:
        lines.append(f"Taken by {md(user)}.")
    if view.cost is not None:
        lines.append(cost_line(view.cost) + ".")
    lines += ["", "## Sources", ""]
    lines += _table(("source", "state", "data age"), (
        (line.key, "ok" if line.health.ok else f"ERROR: {line.health.error}" if line.health.error else "connecting",
         "no data yet" if line.health.age_seconds(now) is None else fmt.short_duration(line.health.age_seconds(now)))
        for line in view.sources))
    waiting = [j for j in view.jobs if j.state is JobState.PENDING]
    lines += ["", f"## Waiting: {len(waiting)} jobs (longest wait first)", ""]
    lines += _table(("cluster", "id", "name", "GPUs", "waited", "owner", "why it waits"), (
        (j.cluster, j.id, j.name, fmt.gpus(j.gpus), fmt.short_duration(j.queued_seconds(now)), j.owner,
         view.waiting_reason(j)) for j in waiting))
    running = [j for j in view.jobs if j.state in (JobState.RUNNING, JobState.CANCELLING)]
    lines += ["", f"## Running: {len(running)} jobs", ""]
    lines += _table(("cluster", "id", "name", "state", "GPUs", "ran", "owner"), (
        (j.cluster, j.id, j.name, "STOP SENT" if j.stop_requested_at else j.native_state, fmt.gpus(j.gpus),
         fmt.short_duration(j.run_seconds(now)), j.owner) for j in running))
    idle = [n for n in view.nodes if n.gpus_free > 0]
    lines += ["", f"## Idle GPUs: {fmt.gpus(sum(n.gpus_free for n in idle))} on {len(idle)} nodes", ""]
    currency = view.cost.currency if view.cost else "$"
    lines += _table(("cluster", "node", "pool", "model", "idle GPUs", f"idle {currency}/h"), (
        (n.cluster, n.name, n.pool, n.gpu_model, fmt.gpus(n.gpus_free), _money(view.node_idle_cost(n)))
        for n in idle))
    warnings = view.cost.warnings if view.cost else ()
    lines += ["", f"## Idle-cost warnings: {len(warnings)}", ""]
    lines += _table(("kind", "cluster", "what", f"{currency}/h", "idle since", "fix"), (
        (w.kind, w.cluster, w.message, _money(w.cost_per_hour),
         fmt.timestamp(w.idle_since) if w.idle_since else "-", w.remedy) for w in warnings))
    lines += ["", f"## Actions from this machine (last {len(audit)})", ""]
    lines += _table(("time", "user", "action", "target", "change", "outcome", "answer"), (
        tuple(entry.get(k) for k in ("time", "user", "action", "target_name", "change", "outcome", "answer"))
        for entry in audit))
    return "\n".join(lines) + "\n"


def _money(value: float | None) -> str:
    return "unknown" if value is None else f"{value:,.2f}"


def default_directory() -> Path:
    """MLTOP_SNAPSHOT_DIR, else snapshots/ in the user's state directory (~/.local/state/mltop)."""
    explicit = os.environ.get("MLTOP_SNAPSHOT_DIR")
    if explicit:
        return Path(explicit).expanduser()
    from platformdirs import user_state_path

    return user_state_path("mltop", appauthor=False) / "snapshots"


def write(text: str, now: datetime, directory: Path | None = None) -> Path:
    """Write the snapshot to a new file (never over an older one); readable by the user only."""
    directory = directory or default_directory()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    stem = f"mltop-{now:%Y%m%d-%H%M%S}"
    for n in range(100):
        path = directory / (f"{stem}.md" if n == 0 else f"{stem}-{n}.md")
        try:
            with open(path, "x", encoding="utf-8") as out:
                os.chmod(path, 0o600)
                out.write(text)
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"{directory}: 100 snapshots in the same second")
