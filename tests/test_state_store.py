"""History that survives (mltop/state_store.py): a real SQLite file, real processes, the real CLI."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone

import pytest

from mltop import state_store
from mltop.cli import main
from mltop.config import load
from mltop.cost.history import IdleHistory
from mltop.state_store import StateStore, open_store, stamp

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=timezone.utc)
NODE, GROUP = "kubernetes/prod/gpu-1", "unallocated/kubernetes/prod/gpu-1"


def look(history: IdleHistory, store: StateStore, now: datetime, rate: float | None, estimate=None):
    """One evaluation as mltop.cost.evaluate makes it, for one node: idle at `rate` $/h, or busy (None)."""
    store.load(history, now)
    since = history.observe(NODE, rate is not None, now, estimate)
    before = [(NODE, since[0], rate)] if since[1] else []
    history.add_waste(now, rate or 0.0, before, groups={GROUP: rate} if rate is not None else {})
    return since, store.sync(history, now)


def test_a_restart_keeps_idle_since_exact_and_todays_waste(tmp_path):
    path = tmp_path / "state.sqlite3"
    store, history = StateStore(path), IdleHistory(persistent=True)
    look(history, store, T0, None)  # seen busy: the idle start that follows is exact
    assert look(history, store, T0 + timedelta(minutes=1), 60.0)[0] == (T0 + timedelta(minutes=1), False)
    _, wasted = look(history, store, T0 + timedelta(minutes=61), 60.0)
    assert wasted == pytest.approx(60.0)
    store.close()

    # A new process: the cluster only offers an old estimate, the store knows the start exactly.
    store, history = StateStore(path), IdleHistory(persistent=True)
    since, wasted = look(history, store, T0 + timedelta(minutes=63), 60.0, estimate=T0 - timedelta(hours=5))
    assert since == (T0 + timedelta(minutes=1), False)
    assert wasted == pytest.approx(62.0)  # one idle hour and two minutes at $60/h, counted once
    store.close()

    # Without the store the same look is a lower bound from the estimate, as before.
    plain = IdleHistory()
    assert plain.observe(NODE, True, T0 + timedelta(minutes=63), T0 - timedelta(hours=5)) == (T0 - timedelta(hours=5), True)


def test_a_stale_row_is_not_taken_and_yesterday_is_not_today(tmp_path):
    path = tmp_path / "state.sqlite3"
    store, history = StateStore(path), IdleHistory(persistent=True)
    look(history, store, T0, None)
    look(history, store, T0 + timedelta(minutes=1), 60.0)
    look(history, store, T0 + timedelta(minutes=31), 60.0)
    store.close()
    # An hour later nobody watched in between: the node may have worked; the estimate is used.
    store, history = StateStore(path), IdleHistory(persistent=True)
    since, _ = look(history, store, T0 + timedelta(minutes=100), 60.0, estimate=T0 + timedelta(minutes=90))
    assert since == (T0 + timedelta(minutes=90), True)
    # The next day starts at zero (UTC): yesterday's rows stay for the bound, not in the sum.
    _, wasted = look(history, store, T0 + timedelta(days=1), 60.0)
    assert wasted == pytest.approx(10 * 60.0)  # 00:00 to 10:00 of the new day


WRITER = textwrap.dedent("""
    import json, sys, time
    from datetime import datetime, timedelta, timezone
    from mltop.cost.history import IdleHistory
    from mltop.state_store import StateStore
    path, phase, go = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    t0 = datetime(2026, 11, 28, 10, 0, tzinfo=timezone.utc)
    store, history = StateStore(__import__("pathlib").Path(path), busy_timeout_ms=5000), IdleHistory(persistent=True)
    while not __import__("os").path.exists(go):
        time.sleep(0.01)
    problems, since = [], None
    for step in range(120):
        now = t0 + timedelta(seconds=phase + 10 * step)  # idle from t0+10s, each process on its own beat
        idle = now >= t0 + timedelta(seconds=10)
        store.load(history, now)
        since = history.observe("node", idle, now)
        history.add_waste(now, 36.0 if idle else 0.0, (), groups={"group": 36.0} if idle else {})
        store.sync(history, now)
        if step % 3 == 0:
            store.append_audit({"time": now.isoformat(), "action": "jobs.cancel", "target": f"p{phase}/{step}"})
        problems.append(store.take_problem())
    print(json.dumps({"problems": [p for p in problems if p], "since": history.idle_now()["node"][0].isoformat()}))
""")


def test_two_processes_at_once_write_without_errors_and_count_once(tmp_path):
    path, go = tmp_path / "state.sqlite3", tmp_path / "go"
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(phase), str(go)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for phase in (0, 7)]
    time.sleep(1.0)  # both have imported and opened the store: start them together
    go.touch()
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        results.append(json.loads(out))
    assert all(r["problems"] == [] for r in results)
    db = sqlite3.connect(path)
    # Whichever wrote first, the store keeps the earliest start either saw (t0+10s, by phase 0); the
    # other takes it as soon as it reads it (or at its next start), so both then show the same.
    assert db.execute("SELECT since_utc FROM idle_since WHERE target_key = 'node'").fetchone() == (
        stamp(T0 + timedelta(seconds=10)),)
    assert {r["since"] for r in results} <= {(T0 + timedelta(seconds=s)).isoformat() for s in (10, 17)}
    rows = db.execute("SELECT target_key, episode_start, amount FROM waste").fetchall()
    # One episode row; its amount is one process's count (10s .. 1197s idle at $36/h), not the two added.
    assert [(k, s) for k, s, _ in rows] == [("group", stamp(T0 + timedelta(seconds=10)))]
    assert rows[0][2] == pytest.approx(36.0 * (1197 - 10) / 3600, abs=0.11)
    assert db.execute("SELECT count(*), count(DISTINCT target) FROM audit").fetchone() == (80, 80)


def test_two_first_sightings_of_one_episode_merge_into_one_row(tmp_path):
    """The race the processes above may or may not hit, made certain: both see the node go idle
    before either writes, the later one writes first."""
    path = tmp_path / "state.sqlite3"
    (a, ha), (b, hb) = [(StateStore(path), IdleHistory(persistent=True)) for _ in range(2)]
    look(ha, a, T0, None)
    look(hb, b, T0 + timedelta(seconds=5), None)
    ha.observe(NODE, True, T0 + timedelta(seconds=10))  # a saw it first, b writes first
    ha.add_waste(T0 + timedelta(seconds=10), 36.0, (), groups={GROUP: 36.0})
    look(hb, b, T0 + timedelta(seconds=15), 36.0)
    look(hb, b, T0 + timedelta(seconds=3615), 36.0)  # b counted one hour: $36
    _, wasted = look(ha, a, T0 + timedelta(seconds=3610), 36.0)  # a counted 3600s too, from 10s
    assert wasted == pytest.approx(36.0)
    look(hb, b, T0 + timedelta(seconds=3625), 36.0)
    assert hb.idle_now()[NODE] == (T0 + timedelta(seconds=10), False)  # b now shows a's earlier start
    rows = sqlite3.connect(path).execute("SELECT target_key, episode_start FROM waste").fetchall()
    assert rows == [(GROUP, stamp(T0 + timedelta(seconds=10)))]


def test_a_locked_store_skips_the_write_says_it_once_and_never_hangs(tmp_path):
    path = tmp_path / "state.sqlite3"
    store, history = StateStore(path, busy_timeout_ms=100), IdleHistory(persistent=True)
    look(history, store, T0, 60.0)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another mltop in the middle of a long write
    started = time.monotonic()
    assert look(history, store, T0 + timedelta(minutes=1), 60.0)[1] is None
    assert time.monotonic() - started < 2
    assert "locked by another mltop" in store.take_problem()
    assert look(history, store, T0 + timedelta(minutes=2), 60.0)[1] is None
    assert store.take_problem() is None  # said once
    other.execute("ROLLBACK")
    assert look(history, store, T0 + timedelta(minutes=3), 60.0)[1] == pytest.approx(3.0)


@pytest.mark.parametrize("make", ["garbage", "newer", "foreign", "fifo"])
def test_a_store_mltop_cannot_use_is_left_as_it_is_and_history_is_off(tmp_path, make):
    path = tmp_path / "state.sqlite3"
    if make == "fifo":
        os.mkfifo(path)
        store, line = open_store(path)
        assert store is None and "FIFO" in line and line.endswith("running without history")
        return
    if make == "garbage":
        path.write_bytes(b"this is not a database, but the user's bytes" * 200)
    else:
        db = sqlite3.connect(path)
        db.execute("CREATE TABLE notes (text TEXT)")
        db.execute("INSERT INTO notes VALUES ('keep me')")
        if make == "newer":
            db.execute("PRAGMA user_version = 99")
        db.commit()
        db.close()
    before = path.read_bytes()
    store, line = open_store(path)
    assert store is None and "\n" not in line and line.endswith("running without history")
    assert path.read_bytes() == before


def test_pruning_keeps_the_store_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(state_store, "MAX_AUDIT_ROWS", 10)
    path = tmp_path / "state.sqlite3"
    store = StateStore(path)
    db = sqlite3.connect(path)
    old, recent = (T0 - timedelta(days=36)).strftime("%Y-%m-%d"), (T0 - timedelta(days=30)).strftime("%Y-%m-%d")
    db.executemany("INSERT INTO waste VALUES (?, 'g', 'x', 1.0)", [(old,), (recent,)])
    db.executemany("INSERT INTO idle_since VALUES (?, '', ?, 0, ?)",
                   [("gone", stamp(T0), stamp(T0 - timedelta(days=8))), ("kept", stamp(T0), stamp(T0 - timedelta(days=6)))])
    db.commit()
    for n in range(25):
        store.append_audit({"time": stamp(T0), "target": str(n)})
    store.sync(IdleHistory(persistent=True), T0)
    assert db.execute("SELECT day FROM waste").fetchall() == [(recent,)]
    assert db.execute("SELECT target_key FROM idle_since").fetchall() == [("kept",)]
    assert [e["target"] for e in store.read_audit(100)] == [str(n) for n in range(15, 25)]


def test_the_file_is_the_users_alone(tmp_path):
    path = tmp_path / "state" / "state.sqlite3"
    store = StateStore(path)
    look(IdleHistory(persistent=True), store, T0, 1.0)
    for name in (path, path.with_name(path.name + "-wal")):
        assert os.stat(name).st_mode & 0o777 == 0o600, name
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def _once(capsys, *flags: str) -> dict:
    assert main(["--demo", "--once", "--json", *flags]) in (0, 3)
    return json.loads(capsys.readouterr().out)


def _idle_since(report: dict) -> dict[str, str]:
    return {w["target"]: w["idle_since"] for w in report["warnings"] if w["kind"] in ("idle-node", "idle-pool", "ray-idle")}


def test_once_reads_and_writes_the_demo_store_and_wasted_today_comes_from_it(tmp_path, capsys, monkeypatch, state_db_in_tmp):
    monkeypatch.setenv("MLTOP_CONFIG", os.devnull)
    demo_db = tmp_path / "demo-state.sqlite3"
    first = _once(capsys)
    assert demo_db.exists() and not state_db_in_tmp.exists()  # the demo never writes the user's store
    # Another process's waste today is in the sum (the store's, not this process's count).
    with sqlite3.connect(demo_db) as db:
        db.execute("INSERT INTO waste VALUES (?, 'elsewhere', 'x', 1e7)", (datetime.now(timezone.utc).strftime("%Y-%m-%d"),))
    time.sleep(1.1)  # without history, the estimates of a second look would move by a second
    second = _once(capsys)
    assert _idle_since(first) and _idle_since(second) == _idle_since(first)
    assert second["cost"]["wasted_today"] >= first["cost"]["wasted_today"] + 1e7
    time.sleep(1.1)
    monkeypatch.setattr(state_store, "_settings", {"off": False, "demo": False})
    third = _once(capsys, "--no-history")  # as before: nothing read, nothing written
    assert _idle_since(third) != _idle_since(first)
    assert third["cost"]["wasted_today"] < 1e6  # this process's own count only


def test_no_history_from_flag_env_and_config(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("[state]\nhistory = false\n")
    assert load(environ={"MLTOP_CONFIG": os.devnull}).history is True
    assert load({"no_history": True}, environ={"MLTOP_CONFIG": os.devnull}).history is False
    assert load(environ={"MLTOP_CONFIG": os.devnull, "MLTOP_NO_HISTORY": "1"}).history is False
    assert load(environ={"MLTOP_CONFIG": str(config)}).history is False


def test_a_damaged_store_is_one_line_on_stderr_and_the_report_still_comes(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MLTOP_CONFIG", os.devnull)
    (tmp_path / "demo-state.sqlite3").write_bytes(b"\x00garbage" * 500)
    report = _once(capsys)
    assert report["cost"] is not None
    assert main(["--demo", "--once"]) in (0, 3)
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if "history store" in line][0].endswith("running without history")


def test_each_audited_action_is_also_in_the_store_unless_history_is_off(tmp_path, state_db_in_tmp, audit_log_in_tmp):
    from mltop.audit import AuditEntry, AuditLog

    log = AuditLog()
    entry = AuditEntry(T0, "jobs.cancel", "ray/prod", "ray/prod/raysubmit_1", "train", "stop", "done", "ok")
    log.append(entry)
    store = StateStore(state_db_in_tmp)
    assert [(e["action"], e["target"], e["outcome"]) for e in store.read_audit()] == [
        ("jobs.cancel", "ray/prod/raysubmit_1", "done")]
    state_store.disable()
    log.append(entry)
    assert len(store.read_audit()) == 1 and len(log.read()) == 2  # the JSON-lines trail is written either way
