"""Ray at 10,000 jobs: an unchanged job list is not read twice, a large one is polled slower.

A fake dashboard on loopback serves the job list as bytes the test sets, next to the real
captured node summary and cluster status (fixtures/ray-2.60); the demo dashboard serves a
simulated cluster where the test needs one.
"""

from __future__ import annotations

import asyncio
import json
import math
from datetime import timedelta
from typing import Any

import httpx
import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st

from mltop.adapters import ray as ray_adapter
from mltop.adapters.http import MiB, Endpoint, decode_json
from mltop.adapters.ray import RaySource
from mltop.adapters.ray_job_list import MAX_POLL_SECONDS, JobListing, entry_heads, pace, read_heads
from mltop.demo.ray_dashboard import make_app
from mltop.demo.ray_sim import RaySim, SimNode
from mltop.demo.server import LoopbackServer
from mltop.errors import BadResponse
from mltop.model import JobState, SourceData
from mltop.refresh import SourceLoop
from mltop.widgets.source_status import source_line
from tests.conftest import FIXED_NOW, FIXTURES, fixed_clock

NODE_ID = "dd9bf81722b7ac25c9664ecacb360e945d5f958a002c639b101e92c0"  # the captured head node


def ray_job(i: int, status: str = "SUCCEEDED", **fields: Any) -> dict[str, Any]:
    """A job entry as Ray 2.60 lists it (fixtures/ray-2.60/jobs_list.json), trimmed."""
    running = status in ("RUNNING", "PENDING")
    return {"type": "SUBMISSION", "job_id": None, "submission_id": f"job-{i}", "driver_info": None,
            "status": status, "entrypoint": f"python train.py --seed {i}", "message": None,
            "start_time": 1795879563676 + i, "end_time": None if running else 1795879573676 + i,
            "metadata": {}, "driver_node_id": NODE_ID if status == "RUNNING" else None, **fields}


def supervisor(sid: str, gpus: float) -> dict[str, Any]:
    return {"class_name": "JobSupervisor", "state": "ALIVE", "name": f"_ray_internal_job_actor_{sid}",
            "required_resources": {"CPU": 1.0, "GPU": gpus}}


class FakeDashboard:
    """The four endpoints a poll reads; what each answers is set by the test."""

    def __init__(self) -> None:
        self.jobs_body = b"[]"
        self.supervisors: list[dict[str, Any]] = []
        self.nodes = json.loads((FIXTURES / "ray-2.60/nodes_summary.json").read_text())
        self.status = json.loads((FIXTURES / "ray-2.60/cluster_status.json").read_text())

    def set_jobs(self, jobs: Any) -> None:
        self.jobs_body = json.dumps(jobs).encode()

    def app(self) -> web.Application:
        async def jobs(_: web.Request) -> web.Response:
            return web.Response(body=self.jobs_body, content_type="application/json")

        async def actors(_: web.Request) -> web.Response:
            result = {"total": len(self.supervisors), "result": self.supervisors}
            return web.json_response({"result": True, "msg": "", "data": {"result": result}})

        async def nodes(_: web.Request) -> web.Response:
            return web.json_response(self.nodes)

        async def cluster_status(_: web.Request) -> web.Response:
            return web.json_response(self.status)

        app = web.Application()
        app.router.add_get("/api/jobs/", jobs)
        app.router.add_get("/api/v0/actors", actors)
        app.router.add_get("/nodes", nodes)
        app.router.add_get("/api/cluster_status", cluster_status)
        return app


@pytest.fixture
def fake():
    dashboard = FakeDashboard()
    server = LoopbackServer()
    url = server.serve(dashboard.app())
    source = RaySource(Endpoint(name="big", url=url))
    yield dashboard, source  # each test closes the source: aclose needs its event loop
    server.stop()


@pytest.fixture
def job_list_decodes(monkeypatch):
    """How many times a job-list body was decoded (every decoding starts with `read_heads`; a body
    it cannot read is then decoded whole)."""
    decodes: list[int] = []

    def counting(body: bytes) -> Any:
        decodes.append(len(body))
        return read_heads(body)

    monkeypatch.setattr(ray_adapter, "read_heads", counting)
    return decodes


async def test_an_unchanged_job_list_is_decoded_once_and_its_records_reused(job_list_decodes):
    sim = RaySim([SimNode("n1", "127.0.0.1", "h", gpus=4, cpus=8)], clock=fixed_clock)
    sim.submit("python done.py", submission_id="done", gpus=1, run_seconds=0)
    sim.submit("python long.py", submission_id="long", gpus=2, run_seconds=3600)
    sim.advance()
    server = LoopbackServer()
    url = server.serve(make_app(sim))
    source = RaySource(Endpoint(name="demo", url=url))
    try:
        first = await source.fetch()
        second = await source.fetch()
        assert len(job_list_decodes) == 1
        assert second.jobs == first.jobs and all(a is b for a, b in zip(first.jobs, second.jobs))
        assert {j.id: j.gpus for j in second.jobs} == {"done": 1.0, "long": 2.0}

        server.call(lambda: sim.submit("python new.py", submission_id="new", gpus=1, run_seconds=3600))
        third = await source.fetch()
        assert len(job_list_decodes) == 2
        assert sorted(j.id for j in third.jobs) == ["done", "long", "new"]

        source.max_finished = 0  # a different cut of the same list: read again
        fourth = await source.fetch()
        assert len(job_list_decodes) == 3
        assert sorted(j.id for j in fourth.jobs) == ["long", "new"]
    finally:
        await source.aclose()
        server.stop()


async def test_requests_and_telemetry_are_read_fresh_while_the_list_is_unchanged(fake, job_list_decodes):
    dashboard, source = fake
    dashboard.set_jobs([ray_job(1, "RUNNING", driver_info={"pid": "4242"})])
    node = dashboard.nodes["data"]["summary"][0]
    try:
        first = await source.fetch()  # its supervisor is not listed yet: what it asked is unknown
        assert first.jobs[0].gpus is None and first.jobs[0].gpu_utilization is None

        dashboard.supervisors = [supervisor("job-1", 2.0)]
        node["gpus"] = [{"index": 0, "name": "NVIDIA H200", "uuid": "GPU-0", "utilizationGpu": 30,
                         "memoryUsed": 1000, "memoryTotal": 143771, "processesPids": [{"pid": 4242}]}]
        second = await source.fetch()
        assert (second.jobs[0].gpus, second.jobs[0].gpu_utilization) == (2.0, 30.0)

        node["gpus"][0]["utilizationGpu"] = 80
        third = await source.fetch()
        assert (third.jobs[0].gpus, third.jobs[0].gpu_utilization) == (2.0, 80.0)
        assert len(job_list_decodes) == 1
    finally:
        await source.aclose()


async def test_a_large_job_list_is_polled_slower_and_its_line_says_so(fake):
    dashboard, source = fake
    dashboard.set_jobs([ray_job(i) for i in range(4999)] + [ray_job(4999, "RUNNING")])
    size = len(dashboard.jobs_body)
    assert size < 2 * MiB  # slowed for its number of jobs, not its size
    updates = []
    loop = SourceLoop(source, 2.0, updates.append, clock=fixed_clock)
    try:
        await loop.run_once()
    finally:
        await source.aclose()
    health = updates[0].health
    assert health.ok and loop.next_delay() == 5.0
    assert health.poll_every == 5.0
    assert health.note == f"polling every 5s (5,000 jobs, {size / MiB:.1f} MiB)"
    # 12 s after its poll: past the usual 10 s but within its own pace, so still live.
    line = source_line(health, None, FIXED_NOW + timedelta(seconds=12), stale_after=10.0).plain
    assert "live" in line and line.endswith(health.note)
    later = source_line(health, None, FIXED_NOW + timedelta(seconds=16), stale_after=10.0).plain
    assert "16s ago" in later


async def test_a_small_job_list_keeps_the_configured_refresh(fake):
    dashboard, source = fake
    dashboard.jobs_body = (FIXTURES / "ray-2.60/jobs_list.json").read_bytes()
    updates = []
    loop = SourceLoop(source, 2.0, updates.append, clock=fixed_clock)
    try:
        await loop.run_once()
    finally:
        await source.aclose()
    health = updates[0].health
    assert health.ok and len(updates[0].data.jobs) == 4
    assert loop.next_delay() == 2.0 and health.note is None and health.poll_every is None
    line = source_line(health, None, FIXED_NOW + timedelta(seconds=12), stale_after=10.0).plain
    assert "12s ago" in line and "polling" not in line


def listing(total: int, size: int) -> JobListing:
    return JobListing(b"", size, total, 500, frozenset())


def test_the_pace_follows_the_size_never_faster_than_the_refresh_and_never_past_the_cap():
    assert pace(2.0, None) == (2.0, None)
    assert pace(2.0, listing(2000, 2 * MiB)) == (2.0, None)
    assert pace(2.0, listing(10, 3 * MiB + 1))[0] == 4.0  # by size: a second per MiB, rounded up
    assert pace(2.0, listing(10_000, 8 * MiB)) == (10.0, "polling every 10s (10,000 jobs, 8.0 MiB)")
    assert pace(2.0, listing(100_000, 80 * MiB))[0] == MAX_POLL_SECONDS
    assert pace(30.0, listing(100_000, 80 * MiB)) == (30.0, None)  # a slower refresh stays as configured
    assert pace(2.0, listing(2500, 0)) == (3.0, "polling every 3s (2,500 jobs, 0.0 MiB)")


async def test_a_poke_polls_at_once_even_when_the_source_asked_for_a_slow_pace():
    class Slow:
        kind, name, key = "ray", "slow", "ray/slow"
        calls = 0

        async def fetch(self) -> SourceData:
            self.calls += 1
            return SourceData()

        def poll_pace(self, base: float) -> tuple[float, str | None]:
            return 3600.0, "polling every 3600s"

    source = Slow()
    updates = []
    loop = SourceLoop(source, 2.0, updates.append)
    task = asyncio.create_task(loop.run())
    try:
        await until(lambda: source.calls == 1)
        assert loop.next_delay() == 3600.0 and updates[0].health.note == "polling every 3600s"
        loop.poke()  # `r`, or an action just taken
        await until(lambda: source.calls == 2)
    finally:
        task.cancel()


async def until(condition: Any, guard: float = 10.0) -> None:
    """Wait for `condition`; `guard` only ends a hung test, it asserts nothing about time."""
    for _ in range(int(guard / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never became true")


async def test_hostile_job_lists_are_read_like_the_stdlib_or_fail_with_one_line(fake, job_list_decodes):
    dashboard, source = fake
    # NaN and Infinity are not JSON, but Python's json module writes them and Ray's dashboard is
    # Python: each such value is one unknown field, the job is still shown.
    dashboard.jobs_body = json.dumps([ray_job(1, start_time=math.nan, end_time=math.inf)]).encode()
    try:
        data = await source.fetch()
        (job,) = data.jobs
        assert job.state is JobState.SUCCEEDED and job.submitted_at is None and job.finished_at is None
        for body, error in ((b"<html>busy</html>", "did not answer with JSON"), (b"NaN", "not a JSON array"),
                            (b'{"jobs": []}', "not a JSON array"),
                            (b"[" * 100_000 + b"]" * 100_000, "nested too deeply")):
            dashboard.jobs_body = body
            with pytest.raises(BadResponse, match=error):
                await source.fetch()
        dashboard.jobs_body = json.dumps([ray_job(1, start_time=math.nan, end_time=math.inf)]).encode()
        decodes = len(job_list_decodes)
        assert (await source.fetch()).jobs == data.jobs  # the last good list again: not decoded again
        assert len(job_list_decodes) == decodes
    finally:
        await source.aclose()


def test_decode_json_reads_what_the_stdlib_reads():
    def decode(body: bytes) -> Any:
        return decode_json(httpx.Response(200, content=body), "thing")

    assert decode(b'{"a": [1, 2.5, "\\u00e9", null, true]}') == {"a": [1, 2.5, "é", None, True]}
    nan, inf, big = decode(b"[NaN, Infinity, 1e400]")
    assert math.isnan(nan) and inf == big == math.inf
    assert decode('{"a": "\\ud800"}'.encode()) == {"a": "\ud800"}  # a lone surrogate, as the stdlib keeps it
    assert decode('[1, "é"]'.encode("utf-16")) == [1, "é"]
    for junk in (b"", b"\xff\xfe\xfa", b"{", b"[1,]"):
        with pytest.raises(BadResponse, match="thing: the server did not answer with JSON"):
            decode(junk)


JUNK = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=False, allow_infinity=False),
                 st.text(max_size=4), st.lists(st.integers(), max_size=2),
                 st.dictionaries(st.text(max_size=2), st.integers(), max_size=2))
ENTRY = st.fixed_dictionaries({}, optional={
    "status": st.one_of(st.sampled_from(["PENDING", "RUNNING", "STOPPED", "SUCCEEDED", "FAILED"]), JUNK),
    "submission_id": st.one_of(st.text(max_size=3), JUNK), "job_id": st.one_of(st.text(max_size=3), JUNK),
    "start_time": st.one_of(st.integers(0, 4102444800000), JUNK), "end_time": st.one_of(st.integers(-5, 2**43), JUNK),
    "message": st.text(max_size=5)})


@settings(max_examples=300, deadline=None)
@given(entries=st.lists(ENTRY, max_size=12), max_finished=st.integers(0, 4))
def test_reading_only_the_kept_entries_keeps_what_decoding_the_whole_list_keeps(entries, max_finished):
    """The two-pass read (each entry's head, then only the kept entries whole) skips, counts and
    keeps exactly what decoding the whole body and reading every entry does, junk included."""
    body = json.dumps(entries).encode()
    fast = read_heads(body)
    assert fast is not None
    whole = entry_heads(json.loads(body))
    assert JobListing.read(b"d", len(body), *fast, max_finished) == JobListing.read(b"d", len(body), *whole, max_finished)


def test_a_list_that_is_not_strict_json_or_has_an_entry_that_is_not_an_object_is_read_whole():
    for body, sids, skipped in ((json.dumps([ray_job(1), 7, "x", None]).encode(), ["job-1"], 3),
                                (json.dumps([ray_job(1, start_time=math.nan), ray_job(2)]).encode(), ["job-1", "job-2"], 0)):
        assert read_heads(body) is None
        listing, kept = JobListing.read(b"d", len(body), *entry_heads(json.loads(body)), 10)
        assert [raw["submission_id"] for raw in kept] == sids and listing.skipped == skipped
