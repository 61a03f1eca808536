"""Servers that never answer: reads and actions give up on time, and quitting never waits on them."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import replace

import pytest
from aiohttp import web
from textual.widgets import Input

from mltop.adapters.kube import KubeSource
from mltop.adapters.kube_target import KubeTarget
from mltop.config import Config
from mltop.demo.kube_api import KubeStore, make_kube_app
from mltop.demo.kube_scenario import kubeconfig, seed_kube
from mltop.demo.server import LoopbackServer
from mltop.errors import OutcomeUnknown, Unreachable
from mltop.scaling import plan
from mltop.tui.app import MltopApp
from mltop.widgets.infra_tables import PoolsTable
from tests.broken_server import BrokenServer, hang
from tests.conftest import FIXED_NOW, fixed_clock
from tests.pty_app import PtyApp

TOKEN = "t0ken"
RAY = ("ray.io/v1", "RayCluster")


class HangingCluster:
    """The fake Kubernetes API server, whose answers to writes (or to every GET of one object
    kind) can be held back forever, as a dead or overloaded API server's are."""

    def __init__(self, tmp_path) -> None:
        self.store = KubeStore(clock=fixed_clock)
        self.server = LoopbackServer()
        self.server.start()
        self.server.call(lambda: seed_kube(self.store, FIXED_NOW))
        self.hang_writes = False
        self.hang_reads_of = ""  # a path fragment: GETs containing it hang
        self.release = threading.Event()
        self.writes_seen: list[str] = []

        @web.middleware
        async def hold(request: web.Request, handler):
            if request.method in ("PATCH", "PUT"):
                self.writes_seen.append(request.path)
            held = (self.hang_writes and request.method in ("PATCH", "PUT")) or (
                self.hang_reads_of and request.method == "GET" and self.hang_reads_of in request.path
                and "watch" not in request.query)
            if held:
                while not self.release.is_set():
                    await asyncio.sleep(0.05)
            return await handler(request)

        app = make_kube_app(self.store, token=TOKEN)
        app.middlewares.append(hold)
        self.url = self.server.serve(app)
        self.kubeconfig = tmp_path / "kubeconfig"
        self.kubeconfig.write_text(json.dumps(kubeconfig(self.url, TOKEN, "hung")))

    def source(self) -> KubeSource:
        return KubeSource(KubeTarget(context="hung", kubeconfig=str(self.kubeconfig)), clock=fixed_clock)

    def stop(self) -> None:
        self.release.set()
        self.server.stop()


@pytest.fixture
def hanging(tmp_path):
    cluster = HangingCluster(tmp_path)
    yield cluster
    cluster.stop()


async def worker_group(source: KubeSource):
    data = await source.fetch()
    return next(p for p in data.pools if p.name == "train-cluster/gpu-workers")


async def test_a_scale_whose_write_gets_no_answer_is_an_unknown_outcome(hanging):
    source = hanging.source()
    pool = await worker_group(source)
    hanging.hang_writes = True
    source.action_deadline = 1.0
    started = time.monotonic()
    with pytest.raises(OutcomeUnknown) as unknown:
        await source.scale(plan(pool, 3))
    assert time.monotonic() - started < 3.0
    assert "outcome is unknown" in str(unknown.value) and hanging.writes_seen
    await source.aclose()


async def test_a_scale_whose_read_gets_no_answer_changed_nothing(hanging):
    source = hanging.source()
    pool = await worker_group(source)
    hanging.hang_reads_of = "/rayclusters/train-cluster"
    source.action_deadline = 1.0
    with pytest.raises(Unreachable) as unreachable:
        await source.scale(plan(pool, 3))
    assert "nothing was changed" in str(unreachable.value) and not hanging.writes_seen
    await source.aclose()


async def test_the_screen_says_outcome_unknown_and_quits_at_once(hanging):
    source = hanging.source()
    source.action_deadline = 1.0
    app = MltopApp(replace(Config()), [source], clock=fixed_clock, start_polling=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await app.refresh_now()
        await pilot.pause()
        table = app.query_one(PoolsTable)
        table.focus()
        table.select_key(next(k for k, p in table.records.items() if p.name == "train-cluster/gpu-workers"))
        hanging.hang_writes = True
        await pilot.press("s")
        app.screen.query_one("#target", Input).value = "3"
        await pilot.pause()
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        warnings = [n.message for n in app._notifications if n.severity == "warning"]
        assert any("outcome is unknown" in m for m in warnings), warnings
        assert not [n for n in app._notifications if "accepted" in n.message]  # never claimed
        hanging.hang_reads_of = "/api/v1"  # and now every read hangs too
        started = time.monotonic()
    assert time.monotonic() - started < 3.0


@pytest.fixture
def dead_platform(tmp_path):
    """A Ray dashboard, a KFP and a Kubernetes API server that accept connections and never answer."""
    with BrokenServer() as server:
        for path in ("/api/jobs/", "/api/v0/actors", "/nodes", "/api/cluster_status", "/apis/v2beta1/healthz",
                     "/api/v1/nodes", "/api/v1/pods", "/apis/ray.io/v1/rayclusters",
                     "/apis/cluster.x-k8s.io/v1beta1/machinedeployments"):
            server.routes[("GET", path)] = hang()
        config = tmp_path / "kubeconfig"
        config.write_text(json.dumps(kubeconfig(server.url, TOKEN, "dead")))
        yield server, config


@pytest.mark.timeout(60)
def test_q_quits_within_a_second_while_every_backend_hangs(dead_platform, tmp_path):
    server, config = dead_platform
    app = PtyApp(["--ray", server.url, "--kfp", server.url, "--kubeconfig", str(config), "--context", "dead"],
                 env={"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)})
    try:
        assert app.wait_for(b"connecting", 20), app.output[-2000:]
        app.read(3.0)  # every poll is now in flight, waiting on a server that will not answer
        assert app.proc.poll() is None
        app.type("q")
        elapsed = app.exited_within(10.0)
        assert elapsed is not None, "mltop did not exit"
        assert elapsed < 1.5, f"q took {elapsed:.1f}s"
        assert app.proc.returncode == 0
    finally:
        app.close()
