"""The audit trail: every action sent is one JSON line with its outcome; `c` copies an id."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from textual.widgets import Input

from mltop.audit import MAX_BYTES, AuditEntry, AuditLog
from mltop.refresh import utcnow
from mltop.scaling import plan
from mltop.tui.confirm import ConfirmCancel
from mltop.widgets.infra_tables import PoolsTable
from mltop.widgets.jobs_table import JobsTable
from tests.test_tui import make_app, refreshed, select
from tests.test_tui_kube import cluster, loaded, select_pool  # noqa: F401  (the fake cluster fixture)
from tests.test_tui_kube import make_app as make_kube_app


async def test_a_cancel_is_audited_with_who_what_and_the_answer(live_demo, audit_log_in_tmp):
    app = make_app(live_demo, clock=utcnow)
    async with app.run_test(size=(100, 30)) as pilot:
        await refreshed(app, pilot)
        select(app, "raysubmit_mistral_ft")
        await pilot.press("ctrl+d")
        assert isinstance(app.screen, ConfirmCancel)
        await pilot.press("y")
        await app.workers.wait_for_complete()
    [entry] = [json.loads(line) for line in audit_log_in_tmp.read_text().splitlines()]
    assert entry["action"] == "jobs.cancel" and entry["source"] == "ray/demo"
    assert entry["target"] == "ray/demo/raysubmit_mistral_ft" and entry["change"] == "stop"
    assert entry["outcome"] == "done" and "accepted the stop request" in entry["answer"]
    assert entry["user"] and entry["time"].endswith("Z")


async def test_a_scale_and_a_refused_scale_are_audited(cluster, audit_log_in_tmp):  # noqa: F811
    app = make_kube_app(cluster)
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(app, pilot)
        select_pool(app, "train-cluster/gpu-workers")
        await pilot.press("s")
        app.screen.query_one("#target", Input).value = "3"
        await pilot.pause()
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        cluster.call(lambda: cluster.store.denied_verbs.add(("patch", "rayclusters")))
        await loaded(app, pilot)
        select_pool(app, "train-cluster/gpu-workers")
        table = app.query_one(PoolsTable)
        pool = table.selected
        app.scale(plan(pool, 2))  # as if confirmed in the dialog
        await app.workers.wait_for_complete()
    entries = [json.loads(line) for line in audit_log_in_tmp.read_text().splitlines()]
    assert [(e["action"], e["outcome"]) for e in entries] == [("pools.scale", "done"), ("pools.scale", "refused")]
    assert "replicas: 2 -> 3" in entries[0]["change"] and "accepted by the API server" in entries[0]["answer"]
    assert "forbidden" in entries[1]["answer"].lower() or "403" in entries[1]["answer"]


def test_the_log_is_bounded_and_lines_stay_whole(tmp_path, monkeypatch):
    log = AuditLog(tmp_path / "audit.jsonl")
    entry = AuditEntry(datetime(2026, 11, 30, tzinfo=timezone.utc), "jobs.cancel", "ray/p", "ray/p/x\x1b[2J",
                       "x\x1b]52;c;aGk=\x07", "stop", "done", "ok")
    monkeypatch.setattr("mltop.audit.MAX_BYTES", 2000)
    for _ in range(30):
        log.append(entry)
    current, previous = log.path, log.path.with_name("audit.jsonl.1")
    assert current.stat().st_size <= 2000 and previous.exists()
    for line in current.read_text().splitlines() + previous.read_text().splitlines():
        assert json.loads(line)["target_name"] == "x\x1b]52;c;aGk=\x07"  # data kept, escaped by JSON
        assert "\x1b" not in line
    assert MAX_BYTES == 10 * 1024 * 1024
    assert log.read(5)[-1]["action"] == "jobs.cancel" and len(log.read(5)) == 5


def test_a_log_that_cannot_be_written_is_told_not_fatal(tmp_path):
    (tmp_path / "dir").mkdir()
    log = AuditLog(tmp_path / "dir" / "audit.jsonl")
    (tmp_path / "dir").chmod(0o500)
    try:
        log.append(AuditEntry(datetime(2026, 11, 30, tzinfo=timezone.utc), "jobs.cancel", "s", "t", "t", "stop",
                              "done", "ok"))
    finally:
        (tmp_path / "dir").chmod(0o700)
    if log.error is None:  # running as root: permissions do not stop us; a file where the dir should be does
        blocked = AuditLog(tmp_path / "file" / "audit.jsonl")
        (tmp_path / "file").write_text("")
        blocked.append(AuditEntry(datetime(2026, 11, 30, tzinfo=timezone.utc), "a", "s", "t", "t", "c", "done", "x"))
        log = blocked
    assert log.error and "audit log" in log.error


async def test_c_copies_the_selected_id_to_the_clipboard(frozen_demo):
    app = make_app(frozen_demo)
    async with app.run_test(size=(100, 30)) as pilot:
        await refreshed(app, pilot)
        select(app, "raysubmit_vit_oom")
        await pilot.press("c")
        assert app.clipboard == "raysubmit_vit_oom"
        assert isinstance(app.focused, JobsTable)
        assert any("copied raysubmit_vit_oom" in n.message for n in app._notifications)
