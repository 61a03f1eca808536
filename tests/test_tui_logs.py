"""Pilot tests of `l`: a Ray job's log and a pod's log followed on screen, searched, closed; the
reasons shown where there is no log; quitting with a stream open."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from textual.widgets import Input

from mltop.adapters.ray import RaySource
from mltop.config import Config
from mltop.tui.app import MltopApp
from mltop.tui.log_view import LogScreen
from mltop.widgets.jobs_table import JobsTable
from mltop.widgets.log_lines import LogLines
from tests.conftest import fixed_clock
from tests.kube_helpers import start_fake_cluster


@pytest.fixture
def cluster(tmp_path):
    fake = start_fake_cluster(tmp_path)
    yield fake
    fake.server.stop()


def ray_app(platform) -> MltopApp:
    sources = [RaySource(e, clock=fixed_clock) for e in platform.ray_endpoints()]
    return MltopApp(replace(Config()), sources, clock=fixed_clock, start_polling=False)


def kube_app(cluster) -> MltopApp:
    return MltopApp(replace(Config()), [cluster.source()], clock=fixed_clock, start_polling=False)


async def select(app: MltopApp, pilot, job_id: str) -> None:
    await app.refresh_now()
    await pilot.pause()
    table = app.query_one(JobsTable)
    table.focus()
    key = next(k for k, job in table.records.items() if job.id == job_id)
    table.select_key(key)
    await pilot.pause()


async def until(pilot, condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        await pilot.pause(0.1)


def drawn(screen: LogScreen) -> list[str]:
    """The log lines as drawn on screen (the Line API's strips), one string per row."""
    lines = screen.query_one(LogLines)
    return ["".join(segment.text for segment in lines.render_line(y)).rstrip() for y in range(lines.size.height)]


def state(screen: LogScreen) -> str:
    return screen.state_text().plain


async def test_l_follows_a_ray_job_searches_and_goes_back(live_demo):
    live_demo.server.call(lambda: setattr(live_demo.ray_sim, "progress_every", 0.2))
    app = ray_app(live_demo)
    async with app.run_test(size=(120, 30)) as pilot:
        await select(app, pilot, "raysubmit_llama70b")
        await pilot.press("l")
        screen = app.screen
        assert isinstance(screen, LogScreen)
        assert "Ray job raysubmit_llama70b on demo" in screen.stream.title
        await until(pilot, lambda: len(screen.buffer) > 100)
        first = len(screen.buffer) + screen.buffer.dropped
        await until(pilot, lambda: len(screen.buffer) + screen.buffer.dropped > first + 3)  # new lines arrive
        await pilot.pause(0.3)
        lines = screen.query_one(LogLines)
        assert lines.follow and lines.is_vertical_scroll_end  # following: the view stays at the bottom
        assert "following" in state(screen)
        assert any(row.startswith("step ") for row in drawn(screen))

        wanted = screen.buffer.lines[len(screen.buffer) // 2].split(":")[0] + ":"  # "step 141230:"
        await pilot.press("slash")
        await pilot.press(*wanted)
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert not lines.follow  # a jump pauses following...
        assert lines.current is not None
        assert screen.buffer.lines[lines.current - screen.buffer.dropped].startswith(wanted)
        assert f'search "{wanted}": line' in state(screen) and "paused" in state(screen)
        assert any(row.startswith(wanted) for row in drawn(screen))  # the match is in view
        top = drawn(screen)[0]
        dropped = screen.buffer.dropped
        await pilot.pause(0.6)
        assert screen.buffer.dropped > dropped  # the buffer is full: old lines go as new ones come...
        assert drawn(screen)[0] == top  # ...and the view stays on the same lines
        await pilot.press("f")
        await pilot.pause(0.3)
        assert lines.follow and lines.is_vertical_scroll_end

        worker = screen.worker
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, LogScreen)
        assert worker is not None and worker.is_cancelled  # closing the screen ends the stream


async def test_search_that_finds_nothing_says_so(live_demo):
    app = ray_app(live_demo)
    async with app.run_test(size=(80, 24)) as pilot:
        await select(app, pilot, "raysubmit_vit_oom")  # failed: its log is complete, then the stream ends
        await pilot.press("l")
        screen = app.screen
        await until(pilot, lambda: screen.follower.state.kind == "ended")
        await pilot.pause(0.3)
        assert "stream ended" in state(screen)
        assert any("CUDA out of memory" in row for row in drawn(screen))
        await pilot.press("slash", *"no such text", "enter")
        await pilot.pause()
        assert 'search "no such text": not in the last' in state(screen)
        await pilot.press("slash")
        assert isinstance(app.focused, Input)
        await pilot.press("escape")  # esc closes the search box first...
        assert isinstance(app.screen, LogScreen)
        await pilot.press("q")  # ...then q (or esc) goes back
        assert not isinstance(app.screen, LogScreen)


async def test_a_pending_pod_waits_for_its_log_and_shows_why(cluster):
    app = kube_app(cluster)
    async with app.run_test(size=(160, 48)) as pilot:
        await select(app, pilot, "research/sweep-lr-3-b2d9f")
        await pilot.press("l")
        screen = app.screen
        assert isinstance(screen, LogScreen)
        await until(pilot, lambda: screen.follower.state.kind == "waiting")
        await pilot.pause(0.3)
        text = state(screen)
        assert text.startswith("waiting: pod research/sweep-lr-3-b2d9f is not on a node yet")
        assert "10 Insufficient nvidia.com/gpu" in text and "next try in" in text


async def test_a_pod_log_with_hostile_text_is_drawn_inert(cluster):
    logs = cluster.store.pod_logs
    logs.append("ml", "llm-pretrain-1-x7k2p", "copy \x1b]52;c;ZXZpbA==\x07 done [red]not red[/red]")
    app = kube_app(cluster)
    async with app.run_test(size=(160, 48)) as pilot:
        # The running pretrain pod is no queue entry: follow it through the source, as `l` would.
        source = next(iter(app.sources.values()))
        job = replace(_pod_job(), id="ml/llm-pretrain-1-x7k2p")
        app.push_screen(LogScreen(source.log_stream(job)))
        await pilot.pause()
        screen = app.screen
        await until(pilot, lambda: len(screen.buffer) >= 1)
        await pilot.pause(0.3)
        row = next(r for r in drawn(screen) if r.startswith("copy"))
        assert row == "copy \\x1b]52;c;ZXZpbA==\\x07 done [red]not red[/red]"
        assert "\x1b" not in "".join(drawn(screen))


def _pod_job():
    from mltop.model import Job, JobState

    return Job(key="kubernetes/test-ctx/ml/x", source="kubernetes", cluster="test-ctx", id="ml/x", name="x",
               state=JobState.RUNNING, native_state="Running", gpus=8, submitted_at=None, started_at=None,
               finished_at=None, kind="Pod", namespace="ml")


async def test_quitting_with_streams_open_exits_promptly(live_demo, cluster):
    cluster.store.pod_logs.append("ml", "llm-pretrain-1-x7k2p", "hello")
    sources = [RaySource(e, clock=fixed_clock) for e in live_demo.ray_endpoints()] + [cluster.source()]
    app = MltopApp(replace(Config()), sources, clock=fixed_clock, start_polling=False)
    async with app.run_test(size=(120, 30)) as pilot:
        await select(app, pilot, "raysubmit_llama70b")
        await pilot.press("l")
        ray_screen = app.screen
        await until(pilot, lambda: ray_screen.follower.state.kind == "following")
        app.push_screen(LogScreen(sources[1].log_stream(replace(_pod_job(), id="ml/llm-pretrain-1-x7k2p"))))
        await pilot.pause()
        pod_screen = app.screen
        await until(pilot, lambda: len(pod_screen.buffer) >= 1)
        started = time.monotonic()
        await pilot.press("ctrl+c")
    assert time.monotonic() - started < 3.0


async def test_l_says_why_there_is_no_log(frozen_demo):
    def make_driver() -> None:  # a script that called ray.init itself: Ray lists it as a DRIVER job
        frozen_demo.ray_sim.jobs["raysubmit_tokenize"].job_type = "DRIVER"

    frozen_demo.server.call(make_driver)
    app = ray_app(frozen_demo)
    async with app.run_test(size=(120, 30)) as pilot:
        await app.refresh_now()
        await pilot.pause()
        table = app.query_one(JobsTable)
        driver = next(job for job in table.records.values() if job.kind == "DRIVER")
        await select(app, pilot, driver.id)
        await pilot.press("l")
        await pilot.pause()
        assert not isinstance(app.screen, LogScreen)
        said = [n.message for n in app._notifications]
        assert any(f"{driver.id}: no log to follow" in m and "only for submission jobs" in m for m in said), said


async def test_l_on_a_kfp_run_follows_the_pod_its_waiting_step_runs_in(frozen_demo):
    from mltop.adapters.kfp import KfpSource
    from mltop.adapters.kube import KubeSource

    config = Config(endpoints={"kubernetes": frozen_demo.kube_targets(), "kfp": frozen_demo.kfp_endpoints()})
    sources = [KubeSource(t, clock=fixed_clock) for t in config.of("kubernetes")]
    sources += [KfpSource(e) for e in config.of("kfp")]
    app = MltopApp(config, sources, clock=fixed_clock, start_polling=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await app.refresh_now()
        await pilot.pause()
        table = app.query_one(JobsTable)
        run = next(j for j in table.records.values() if j.source == "kfp" and j.waiting_pod)
        await select(app, pilot, run.id)
        await pilot.press("l")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, LogScreen)
        assert screen.stream.title == f"pod {run.namespace}/{run.waiting_pod} on {frozen_demo.kube_targets()[0].context}"
        await until(pilot, lambda: screen.follower.state.kind == "waiting")
        assert "is not on a node yet" in screen.follower.state.message
        await pilot.press("escape")
        # A run with no waiting step: no pod to follow, and the reason is said.
        other = next(j for j in table.records.values() if j.source == "kfp" and not j.waiting_pod)
        await select(app, pilot, other.id)
        await pilot.press("l")
        await pilot.pause()
        assert not isinstance(app.screen, LogScreen)
        assert any("log is in the pods of its steps" in n.message for n in app._notifications)
