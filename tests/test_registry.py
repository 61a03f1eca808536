"""The backend registry and the one dashboard: a new backend is one `register()` call, and the
screen, the text report and the JSON report show the same figures."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import timedelta

import pytest

from mltop.adapters.ray import RaySource
from mltop.cli import main, make_sources
from mltop.config import Config, load
from mltop.model import ActionOutcome, Job, JobState, SourceData
from mltop.registry import Backend, SourceFlag, backends, register, unregister
from mltop.report import render_json, render_text
from mltop.tui.app import MltopApp
from mltop.tui.confirm import ConfirmCancel
from mltop.widgets.infra_tables import WarningsTable
from mltop.widgets.jobs_table import JobsTable
from tests.conftest import FIXED_NOW, fixed_clock

# -- a fourth backend, defined here and nowhere else -----------------------------------------------


class ToyQueue:
    """A backend with one running job that can be cancelled: all a source needs to be."""

    kind = "toy"

    def __init__(self, name: str) -> None:
        self.name = name
        self.cancelled: list[str] = []

    @property
    def key(self) -> str:
        return f"toy/{self.name}"

    async def fetch(self) -> SourceData:
        state = JobState.CANCELLED if self.cancelled else JobState.RUNNING
        job = Job(key=f"toy/{self.name}/t-1", source="toy", cluster=self.name, id="t-1", name="toy training",
                  state=state, native_state=state.value, gpus=2, submitted_at=FIXED_NOW - timedelta(minutes=5),
                  started_at=FIXED_NOW - timedelta(minutes=5), finished_at=FIXED_NOW if self.cancelled else None,
                  owner="tess", cancellable=not self.cancelled)
        return SourceData(jobs=(job,))

    async def cancel_job(self, job_id: str) -> ActionOutcome:
        self.cancelled.append(job_id)
        return ActionOutcome(True, f"the toy queue accepted the stop of {job_id}")

    async def aclose(self) -> None:
        pass


@pytest.fixture
def toy():
    backend = register(Backend(
        kind="toy", display_name="Toy Queue", job_noun="task",
        resolve=lambda inputs: tuple(inputs.flags.get("toy") or ()),
        build=lambda name, config: ToyQueue(name),
        flags=(SourceFlag("--toy", "toy", "a toy queue, by name"),),
        actions=frozenset({"jobs.cancel"}),
    ))
    yield backend
    unregister("toy")


def test_a_registered_backend_is_configured_and_reported_by_the_cli(toy, capsys, monkeypatch):
    monkeypatch.setenv("MLTOP_CONFIG", "/dev/null")
    assert toy in backends()
    assert main(["--once", "--json", "--toy", "lab"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [s["kind"] + "/" + s["name"] for s in report["sources"]] == ["toy/lab"]
    assert [(j["source"], j["id"], j["state"], j["owner"]) for j in report["jobs"]] == [
        ("toy", "t-1", "RUNNING", "tess")]
    assert main(["--once", "--toy", "lab"]) == 0
    assert "toy training" in capsys.readouterr().out


async def test_a_registered_backend_is_in_the_queue_and_its_jobs_are_cancelled(toy):
    config = load({"toy": ["lab"]}, environ={"MLTOP_CONFIG": "/dev/null"})
    sources = make_sources(config)
    app = MltopApp(config, sources, clock=fixed_clock, start_polling=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await app.refresh_now()
        await pilot.pause()
        table = app.query_one(JobsTable)
        assert list(table.records) == ["toy/lab/t-1"]
        await pilot.press("ctrl+d")
        dialog = app.screen
        assert isinstance(dialog, ConfirmCancel) and dialog.job.id == "t-1"
        assert "Stop this Toy Queue task?" in str(dialog.query_one("Label").render())
        await pilot.press("y")
        await app.workers.wait_for_complete()
        await app.refresh_now()
        await pilot.pause()
        assert sources[0].cancelled == ["t-1"]
        assert any("accepted the stop of t-1" in n.message for n in app._notifications)
        assert table.records["toy/lab/t-1"].state is JobState.CANCELLED


# -- one dashboard: the screen and both reports agree ----------------------------------------------

MONEY = r"\$([\d,]+\.\d\d)"


def figures(text: str) -> tuple[str, str, str]:
    burn = re.search(rf"GPU burn {MONEY}/h", text)
    idle = re.search(rf"idle {MONEY}/h", text)
    wasted = re.search(rf"wasted today {MONEY}", text)
    assert burn and idle and wasted, text
    return burn.group(1), idle.group(1), wasted.group(1)


async def test_screen_text_and_json_show_the_same_burn_idle_and_waste(frozen_demo):
    from mltop.adapters.kube import KubeSource

    config = Config(endpoints={"ray": frozen_demo.ray_endpoints(), "kubernetes": frozen_demo.kube_targets()})
    sources = [RaySource(e, clock=fixed_clock) for e in config.of("ray")]
    sources += [KubeSource(t, clock=fixed_clock) for t in config.of("kubernetes")]
    app = MltopApp(config, sources, clock=fixed_clock, start_polling=False)
    async with app.run_test(size=(200, 50)) as pilot:
        await app.refresh_now()
        await pilot.pause()
        screen = figures(str(app.query_one("#summary").render()))
        view = app.dashboard.view(FIXED_NOW, with_cost=False)  # the view the screen drew
        text = figures(render_text(view))
        cost = json.loads(render_json(view))["cost"]
    as_json = tuple(f"{cost[k]:,.2f}" for k in ("burn_rate_per_hour", "idle_per_hour", "wasted_today"))
    assert screen == text == as_json
    assert float(screen[0].replace(",", "")) > 0 and float(screen[1].replace(",", "")) > 0


async def test_a_remapped_cancel_key_is_the_one_the_fix_column_shows(live_demo):
    from mltop.refresh import utcnow

    config = Config(endpoints={"ray": live_demo.ray_endpoints()}, keymap={"jobs.cancel": "ctrl+k"})
    config = replace(config, cost=config.cost.model_copy(update={"low_utilization_window_minutes": 0.0}))
    app = MltopApp(config, [RaySource(e) for e in config.of("ray")], clock=utcnow, start_polling=False)
    async with app.run_test(size=(160, 48)) as pilot:
        for _ in range(2):  # the window is 0: the second look makes it a warning
            await app.refresh_now()
            await pilot.pause()
        table = app.query_one(WarningsTable)
        key = next(k for k in table._order if k.startswith("low-utilization"))
        row = table.get_row_index(key)
        assert str(table.get_row_at(row)[-1]) == "ctrl+k"
        view = app.dashboard.view(utcnow(), with_cost=False)
        assert "(ctrl+k in mltop)" in render_text(view, config.keymap)
        warning = next(w for w in json.loads(render_json(view, config.keymap))["warnings"]
                       if w["kind"] == "low-utilization")
        assert (warning["remedy_action"], warning["remedy_key"]) == ("jobs.cancel", "ctrl+k")
        table.focus()
        table.select_key(key)
        await pilot.press("ctrl+k")
        assert isinstance(app.screen, ConfirmCancel) and app.screen.job.id == "raysubmit_mistral_ft"
