"""Pilot tests of KFP runs in the jobs panel: terminate and retry, one queue with Ray and pods."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from mltop.adapters.kfp import KfpSource
from mltop.adapters.kfp_endpoint import KfpEndpoint
from mltop.config import Config
from mltop.demo.kfp_api import KfpStore, make_kfp_app
from mltop.demo.server import LoopbackServer
from mltop.model import JobState
from mltop.tui.app import MltopApp
from mltop.tui.confirm import ConfirmCancel
from mltop.widgets.jobs_table import JobsTable
from tests.conftest import FIXED_NOW
from tests.test_kfp_adapter import Clock, seed


@pytest.fixture
def kfp():
    clock = Clock()
    store = KfpStore(clock=clock)
    runs = seed(store, FIXED_NOW)
    server = LoopbackServer()
    url = server.serve(make_kfp_app(store))
    yield store, url, runs, clock
    server.stop()


def make_app(url, clock, **config):
    source = KfpSource(KfpEndpoint(name="kfp", url=url))
    return MltopApp(replace(Config(), **config), [source], clock=clock, start_polling=False)


async def loaded(app, pilot):
    await app.refresh_now()
    await pilot.pause()


async def test_terminate_shows_the_servers_canceling_then_canceled(kfp):
    store, url, (running, *_), clock = kfp
    app = make_app(url, clock)
    async with app.run_test(size=(120, 30)) as pilot:
        await loaded(app, pilot)
        table = app.query_one(JobsTable)
        table.select_key(f"kfp/kfp/{running['run_id']}")
        await pilot.press("ctrl+d")
        assert isinstance(app.screen, ConfirmCancel) and "Kubeflow Pipelines run" in str(
            app.screen.query_one("Label").render())
        await pilot.press("y")
        await app.workers.wait_for_complete()
        await loaded(app, pilot)
        job = table.records[f"kfp/kfp/{running['run_id']}"]
        assert job.native_state == "CANCELING" and job.stop_requested_at is not None
        clock.now = FIXED_NOW + timedelta(seconds=10)
        await loaded(app, pilot)
        job = table.records[f"kfp/kfp/{running['run_id']}"]
        assert job.state is JobState.CANCELLED
        assert any("kfp reports CANCELED" in n.message for n in app._notifications)


async def test_retry_a_failed_run_after_confirmation(kfp):
    store, url, (_, _, failed, _), clock = kfp
    app = make_app(url, clock)
    async with app.run_test(size=(120, 30)) as pilot:
        await loaded(app, pilot)
        app.query_one(JobsTable).select_key(f"kfp/kfp/{failed['run_id']}")
        await pilot.pause()
        assert app.check_action("retry_job", ()) is True
        await pilot.press("R")
        assert isinstance(app.screen, ConfirmCancel) and app.screen.retry
        await pilot.press("y")
        await app.workers.wait_for_complete()
        assert store.get_run(failed["run_id"])["state"] == "RUNNING"


async def test_read_only_removes_terminate_and_retry(kfp):
    store, url, (_, _, failed, _), clock = kfp
    app = make_app(url, clock, read_only=True)
    async with app.run_test(size=(120, 30)) as pilot:
        await loaded(app, pilot)
        app.query_one(JobsTable).select_key(f"kfp/kfp/{failed['run_id']}")
        await pilot.press("R")
        assert not isinstance(app.screen, ConfirmCancel)
        actions = {b.binding.action for b in app.screen.active_bindings.values()}
        assert not actions & {"retry_job", "cancel_job"}
        assert store.get_run(failed["run_id"])["state"] == "FAILED"


async def test_ray_jobs_pending_pods_and_kfp_runs_form_one_queue(frozen_demo):
    from mltop.adapters.kube import KubeSource
    from mltop.adapters.ray import RaySource
    from tests.conftest import fixed_clock

    config = Config(endpoints={"ray": frozen_demo.ray_endpoints(), "kubernetes": frozen_demo.kube_targets(),
                               "kfp": frozen_demo.kfp_endpoints()})
    sources = [RaySource(e, clock=fixed_clock) for e in config.of("ray")]
    sources += [KubeSource(t, clock=fixed_clock) for t in config.of("kubernetes")]
    sources += [KfpSource(e) for e in config.of("kfp")]
    app = MltopApp(config, sources, clock=fixed_clock, start_polling=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(app, pilot)
        jobs = [app.query_one(JobsTable).records[k] for k in app.query_one(JobsTable)._order]
        waiting = [j for j in jobs if j.state is JobState.PENDING]
        assert {j.source for j in waiting} == {"ray", "kubernetes", "kfp", "kuberay"}  # a KubeRay RayJob waits too
        waits = [j.queued_seconds(fixed_clock()) for j in waiting]
        assert waits == sorted(waits, reverse=True)  # one queue, longest wait first
        first_active = jobs.index(next(j for j in jobs if j.state is not JobState.PENDING))
        assert all(j.state is JobState.PENDING for j in jobs[:first_active])
