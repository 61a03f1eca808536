"""`e`: the incident snapshot as Markdown: what waits and why, idle GPUs and cost, warnings, actions."""

from __future__ import annotations

import os
import re
from pathlib import Path

from mltop import incident
from tests.test_snapshots import make_full_app
from tests.test_tui import make_app, refreshed, select


async def test_e_writes_the_triage_picture_and_says_where(frozen_demo, tmp_path):
    app = make_full_app(frozen_demo)
    async with app.run_test(size=(100, 30)) as pilot:
        await refreshed(app, pilot)
        await pilot.press("e")
        said = [n.message for n in app._notifications if "snapshot written to" in n.message]
        assert said
        path = Path(said[-1].split("snapshot written to ", 1)[1])
        assert path.parent == tmp_path / "snapshots" and path.suffix == ".md"
        assert os.stat(path).st_mode & 0o777 == 0o600
        text = path.read_text()
        assert text.startswith("# mltop snapshot 2026-11-28 12:00:00 UTC")
        waiting = text.split("## Waiting:")[1].split("##")[0]
        assert "raysubmit_pretrain13b" in waiting and "why it waits" in waiting
        view = app.main.view
        pending = next(j for j in view.jobs if j.id == "raysubmit_pretrain13b")
        assert incident.md(view.waiting_reason(pending)) in waiting  # the same words as the screen
        assert "## Idle GPUs:" in text and "demo-k8s" in text.split("## Idle GPUs:")[1]
        assert "## Idle-cost warnings:" in text
        await pilot.press("e")  # a second snapshot in the same second: a new file, not overwritten
        assert len(list(path.parent.iterdir())) == 2


async def test_actions_taken_appear_in_the_snapshot(frozen_demo):
    app = make_app(frozen_demo)
    async with app.run_test(size=(100, 30)) as pilot:
        await refreshed(app, pilot)
        select(app, "raysubmit_mistral_ft")
        await pilot.press("ctrl+d", "y")
        await app.workers.wait_for_complete()
        await pilot.press("e")
        path = Path(next(n.message for n in app._notifications if "snapshot written" in n.message).split(" to ", 1)[1])
        actions = path.read_text().split("## Actions from this machine")[1]
        assert "demo/raysubmit_mistral_ft" in actions and "jobs.cancel" in actions


def test_hostile_text_cannot_break_the_table_or_the_terminal():
    cell = incident.md("a | b `x` \x1b]52;c;ZXZpbA==\x07\nnext")
    assert "\x1b" not in cell and "\x07" not in cell and "\n" not in cell
    assert re.search(r"(?<!\\)\|", cell) is None  # every pipe escaped
    assert "\\`x\\`" in cell


def test_write_never_overwrites(tmp_path):
    from datetime import datetime, timezone

    now = datetime(2026, 11, 30, tzinfo=timezone.utc)
    first, second = incident.write("a", now, tmp_path), incident.write("b", now, tmp_path)
    assert first != second and first.read_text() == "a" and second.read_text() == "b"
