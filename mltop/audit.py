"""The audit trail: every action mltop carries out (cancel, terminate, retry, scale) is appended
to a local JSON-lines file, whatever its outcome. No Textual here.

One line per action: when, who (the local user), the action's binding id, the source and the
target (by key and by name), what was asked to change, the outcome (done, refused, unknown) and
the backend's answer. JSON escapes every control character, and the answer is an error line that
was already redacted. The file stays bounded: past MAX_BYTES it is moved to `<name>.1` (one
generation kept) and a new one begun. One write per line with O_APPEND, so two mltop processes
appending at once do not interleave their lines.

Each entry is also copied into the state store's `audit` table (mltop/state_store.py), unless
history is turned off; the JSON-lines file stays the trail `:audit` reads.
"""

from __future__ import annotations

import getpass
import json
import os
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

MAX_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class AuditEntry:
    time: datetime
    action: str  # binding id: "jobs.cancel", "jobs.retry", "pools.scale"
    source: str  # the source's key: "ray/prod"
    target: str  # the target's key
    target_name: str
    change: str  # what was asked: "stop", "retry", "replicas 2 -> 3"
    outcome: str  # "done" (the backend accepted), "refused", "unknown" (sent, no answer)
    answer: str  # the backend's answer, or the error line


def default_path() -> Path:
    """MLTOP_AUDIT_LOG, else audit.jsonl in the user's state directory (~/.local/state/mltop)."""
    explicit = os.environ.get("MLTOP_AUDIT_LOG")
    if explicit:
        return Path(explicit).expanduser()
    from platformdirs import user_state_path

    return user_state_path("mltop", appauthor=False) / "audit.jsonl"


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name (a container without one): say so rather than fail
        return "unknown"


class AuditLog:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_path()
        self.user = _user()
        self.error: str | None = None  # the last failure to write, for the screen to say
        self.store_problem: str | None = None  # the last failure to copy it into the state store

    def append(self, entry: AuditEntry) -> None:
        """Write one line. A failure to write never stops the action; it is kept in `error`."""
        record = {"time": entry.time.isoformat().replace("+00:00", "Z"), "user": self.user,
                  **{k: v for k, v in asdict(entry).items() if k != "time"}}
        line = (json.dumps(record, ensure_ascii=True) + "\n").encode("ascii")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.path.exists() and self.path.stat().st_size + len(line) > MAX_BYTES:
                os.replace(self.path, self.path.with_name(self.path.name + ".1"))
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
            self.error = None
        except OSError as exc:
            self.error = f"audit log {self.path}: {exc.strerror or exc}"
        from mltop import state_store

        self.store_problem = state_store.append_audit(record)

    def read(self, limit: int = 200) -> list[dict[str, object]]:
        """The most recent entries, newest last, from both generations (unreadable lines left out)."""
        lines: list[str] = []
        for path in (self.path.with_name(self.path.name + ".1"), self.path):
            try:
                lines += path.read_text(encoding="utf-8", errors="replace").splitlines()
            except OSError:
                continue
        lines = lines[-limit:]
        out = []
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict):
                out.append(entry)
        return out
