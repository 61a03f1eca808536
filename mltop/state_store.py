"""History that survives: idle-since, the day's waste and the audit trail in one SQLite file in
the user's state directory (~/.local/state/mltop/state.sqlite3, or MLTOP_STATE_DB). No Textual.

Two mltop processes may use the file at once: WAL mode, a short busy timeout, and every write one
short transaction. A write the other process keeps locked past the timeout is skipped (and said
once); nothing here raises into the UI, and nothing here deletes a file the user has: a file that
is not ours, from a newer mltop or damaged is left as it is, and mltop runs without history.

No double counting across processes: waste is stored per (day, idle group, episode start), and a
writer stores max(what is there, its own count of that episode today), never a sum. Two processes
agree on an episode's start because the earliest start a fresh row holds wins (`idle_since`), and a
row for the same group starting inside that episode is merged into it. Their sums are then the
same whoever writes; "wasted today" is the sum over today's rows (UTC).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path

from mltop.cost.history import IdleHistory
from mltop.local_files import check_regular

SCHEMA_VERSION = 1
FRESH = timedelta(minutes=15)  # a row seen this recently describes an episode still going on
KEEP_WASTE_DAYS, KEEP_IDLE_DAYS, MAX_AUDIT_ROWS = 35, 7, 100_000
MAX_BYTES = 64 * 1024 * 1024
BUSY_TIMEOUT_MS = 250  # the UI thread waits at most this long for another process's write
PRUNE_EVERY = timedelta(hours=6)
TRUTHY = ("1", "true", "yes", "on")

SCHEMA = """
CREATE TABLE IF NOT EXISTS idle_since (target_key TEXT PRIMARY KEY, cluster TEXT NOT NULL,
    since_utc TEXT NOT NULL, lower_bound INTEGER NOT NULL, seen_utc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS waste (day TEXT NOT NULL, target_key TEXT NOT NULL, episode_start TEXT NOT NULL,
    amount REAL NOT NULL, PRIMARY KEY (day, target_key, episode_start));
CREATE TABLE IF NOT EXISTS audit (id INTEGER PRIMARY KEY AUTOINCREMENT, time_utc TEXT NOT NULL,
    action TEXT, target TEXT, outcome TEXT, record TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS audit_time ON audit (time_utc);
"""
UPSERT_SINCE = """INSERT INTO idle_since VALUES (?, ?, ?, ?, ?) ON CONFLICT (target_key) DO UPDATE SET
    since_utc = CASE WHEN seen_utc >= ?6 AND since_utc < excluded.since_utc THEN since_utc ELSE excluded.since_utc END,
    lower_bound = CASE WHEN seen_utc >= ?6 AND since_utc < excluded.since_utc THEN lower_bound ELSE excluded.lower_bound END,
    seen_utc = MAX(seen_utc, excluded.seen_utc)"""
UPSERT_WASTE = """INSERT INTO waste VALUES (?, ?, ?, ?) ON CONFLICT (day, target_key, episode_start)
    DO UPDATE SET amount = MAX(amount, excluded.amount)"""

_settings = {"off": False, "demo": False}


def disable() -> None:
    """--no-history or `[state] history = false`: this process neither reads nor writes the store."""
    _settings["off"] = True


def use_demo() -> None:
    """The demo keeps its own file beside the real one (demo-state.sqlite3): never mixed with it."""
    _settings["demo"] = True


def enabled() -> bool:
    return not _settings["off"] and os.environ.get("MLTOP_NO_HISTORY", "").lower() not in TRUTHY


def default_path() -> Path:
    explicit = os.environ.get("MLTOP_STATE_DB")
    if explicit:
        path = Path(explicit).expanduser()
    else:
        from platformdirs import user_state_path

        path = user_state_path("mltop", appauthor=False) / "state.sqlite3"
    return path.with_name("demo-" + path.name) if _settings["demo"] else path


def stamp(when: datetime) -> str:
    """Fixed-width UTC text: compares in time order as text."""
    return when.astimezone(timezone.utc).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text.removesuffix("Z")).replace(tzinfo=timezone.utc)


class StoreUnusable(Exception):
    """The store cannot be used; the message is one line for the user."""


class StateStore:
    def __init__(self, path: Path | None = None, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> None:
        self.path = path or default_path()
        self.problem: str | None = None  # a line not yet said
        self._said: set[str] = set()
        self._lock = threading.Lock()
        self._loaded = False
        self._pruned: datetime | None = None
        try:
            self.conn = self._connect(busy_timeout_ms)
        except sqlite3.Error as exc:
            raise StoreUnusable(f"history store {self.path}: {_why(exc)}; running without history") from None
        except OSError as exc:
            raise StoreUnusable(f"history store {self.path}: {exc.strerror or exc}; running without history") from None

    def _connect(self, busy_timeout_ms: int) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if os.path.lexists(self.path):
            check_regular(self.path)  # a FIFO or a directory named by mistake: refused, never waited on
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))  # 0600 from the start: sqlite would use 0644
        conn = sqlite3.connect(self.path, timeout=busy_timeout_ms / 1000, isolation_level=None,
                               check_same_thread=False)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreUnusable(f"history store {self.path}: written by a newer mltop (schema {version}); "
                                    "left as it is, running without history")
            if version == 0 and conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                raise StoreUnusable(f"history store {self.path}: not an mltop state file; left as it is, "
                                    "running without history")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")  # WAL stays consistent; a power cut may lose the last write
            if version == 0:
                conn.execute("PRAGMA auto_vacuum = INCREMENTAL")  # before the first table: freed pages go back
                conn.executescript(f"BEGIN IMMEDIATE; {SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;")
        except BaseException:
            conn.close()
            raise
        return conn

    def close(self) -> None:
        with self._lock:
            self.conn.close()

    def take_problem(self) -> str | None:
        """The line to say about the store, once; None when there is nothing new."""
        problem, self.problem = self.problem, None
        return problem

    def _say(self, line: str) -> None:
        if line not in self._said:
            self._said.add(line)
            self.problem = line

    def _transaction(self, work, *args):
        """`work(*args)` in one short write transaction; None (and the reason said once) when the
        store is locked past the busy timeout or fails: history is never worth a crash."""
        with self._lock:
            try:
                self.conn.execute("BEGIN IMMEDIATE")
                try:
                    result = work(*args)
                    self.conn.execute("COMMIT")
                except BaseException:
                    if self.conn.in_transaction:
                        self.conn.execute("ROLLBACK")
                    raise
                return result
            except sqlite3.Error as exc:
                self._say(f"history store {self.path}: {_why(exc)}; that write was skipped")
                return None

    # -- idle history ------------------------------------------------------------------------------

    def load(self, history: IdleHistory, now: datetime) -> None:
        """Once, before the first evaluation: what the store says is idle now."""
        if self._loaded:
            return
        self._loaded = True
        history.persistent = True
        with self._lock:
            try:
                history.known = self._fresh(now)
            except sqlite3.Error as exc:
                self._say(f"history store {self.path}: {_why(exc)}; idle times start from now")

    def _fresh(self, now: datetime) -> dict[str, tuple[datetime, bool]]:
        rows = self.conn.execute("SELECT target_key, since_utc, lower_bound FROM idle_since WHERE seen_utc >= ?",
                                 (stamp(now - FRESH),))
        return {key: (parse(since), bool(lower)) for key, since, lower in rows}

    def sync(self, history: IdleHistory, now: datetime) -> float | None:
        """Write what `history` learned at this evaluation and read back what every process knows.
        Returns today's waste (all processes, all targets), or None when the write was skipped."""
        if self._pruned is None or now - self._pruned >= PRUNE_EVERY:
            self._pruned = now
            self._transaction(self._prune, now)
            self.vacuum_if_large()
        result = self._transaction(self._write, history, now)
        if result is None:
            return None
        known, total = result
        history.known = known
        history.merge(known)
        history.ended.clear()
        return total

    def _write(self, history: IdleHistory, now: datetime) -> tuple[dict[str, tuple[datetime, bool]], float]:
        day, cutoff = now.strftime("%Y-%m-%d"), stamp(now - FRESH)
        self.conn.executemany("DELETE FROM idle_since WHERE target_key = ? AND since_utc = ?",
                              [(key, stamp(start)) for key, start in history.ended.items()])
        idle = history.idle_now() | {key: (e[0], False) for key, e in history.episodes.items()}
        self.conn.executemany(UPSERT_SINCE, [(key, key.rpartition("/")[0], stamp(since), int(lower), stamp(now),
                                              cutoff) for key, (since, lower) in idle.items()])
        known = self._fresh(now)
        today: dict[str, list[tuple[str, float]]] = {}
        for key, start, amount in self.conn.execute("SELECT target_key, episode_start, amount FROM waste WHERE day = ?",
                                                    (day,)):
            today.setdefault(key, []).append((start, amount))
        for key, (start, amount, _rate) in history.episodes.items():
            self._add_episode(day, key, stamp(min(start, known.get(key, (start,))[0])), amount, today.get(key, ()))
        self.conn.executemany(UPSERT_WASTE, [(day, "before/" + key, stamp(since), amount)
                                             for key, (since, amount) in history.pre_start.items()])
        total = self.conn.execute("SELECT COALESCE(SUM(amount), 0) FROM waste WHERE day = ?", (day,)).fetchone()[0]
        return known, float(total)

    def _add_episode(self, day: str, key: str, start: str, amount: float, rows) -> None:
        """Store max(stored, mine) for this episode; a row of the same group that starts inside the
        episode is another process's view of it (it saw the start later): merged, not added."""
        inside = [a for s, a in rows if s > start]
        if inside:
            self.conn.execute("DELETE FROM waste WHERE day = ? AND target_key = ? AND episode_start > ?", (day, key, start))
            amount = max(amount, *inside)
        if any(s == start and a >= amount for s, a in rows):
            return  # nothing new to say
        self.conn.execute(UPSERT_WASTE, (day, key, start, amount))

    def _prune(self, now: datetime) -> None:
        """Bounded: waste for 35 days, idle rows seen in the last 7, the newest 100,000 actions."""
        self.conn.execute("DELETE FROM waste WHERE day < ?", ((now - timedelta(days=KEEP_WASTE_DAYS)).strftime("%Y-%m-%d"),))
        self.conn.execute("DELETE FROM idle_since WHERE seen_utc < ?", (stamp(now - timedelta(days=KEEP_IDLE_DAYS)),))
        self.conn.execute("DELETE FROM audit WHERE id <= (SELECT MAX(id) FROM audit) - ?", (MAX_AUDIT_ROWS,))

    def vacuum_if_large(self) -> None:
        """Give freed pages back to the file system; say so if the file stays over MAX_BYTES."""
        with self._lock:
            try:
                self.conn.execute("PRAGMA incremental_vacuum")
                pages, size = (self.conn.execute(f"PRAGMA {p}").fetchone()[0] for p in ("page_count", "page_size"))
            except sqlite3.Error as exc:
                self._say(f"history store {self.path}: {_why(exc)}")
                return
        if pages * size > MAX_BYTES:
            self._say(f"history store {self.path}: {pages * size // 2**20} MiB, over {MAX_BYTES // 2**20} MiB")

    # -- the audit trail ---------------------------------------------------------------------------

    def append_audit(self, record: Mapping[str, object]) -> bool:
        row = (str(record.get("time", "")), record.get("action"), record.get("target"), record.get("outcome"),
               json.dumps(record, ensure_ascii=True))
        return self._transaction(self._insert_audit, row) is not None

    def _insert_audit(self, row: tuple) -> int:
        return self.conn.execute("INSERT INTO audit (time_utc, action, target, outcome, record) VALUES (?, ?, ?, ?, ?)",
                                 row).lastrowid or 0

    def read_audit(self, limit: int = 200) -> list[dict[str, object]]:
        """The most recent actions, newest last."""
        with self._lock:
            rows = self.conn.execute("SELECT record FROM audit ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [json.loads(r) for (r,) in reversed(rows)]


def _why(exc: BaseException) -> str:
    if isinstance(exc, StoreUnusable):
        return str(exc)
    text = " ".join(str(exc).split()) or type(exc).__name__
    return "locked by another mltop for too long" if "locked" in text or "busy" in text else text


def open_store(path: Path | None = None) -> tuple[StateStore | None, str | None]:
    """The store, or None and one line saying why history is off. None, None when it is turned off."""
    if not enabled():
        return None, None
    try:
        return StateStore(path), None
    except StoreUnusable as exc:
        return None, str(exc)


def append_audit(record: Mapping[str, object]) -> str | None:
    """Mirror one audit record into the store (opened and closed for it); the problem, if any."""
    store, problem = open_store()
    if store is None:
        return problem
    try:
        store.append_audit(record)
        return store.take_problem()
    finally:
        store.close()
