"""The Ray adapter's parsing and error handling: real captured payloads and the demo dashboard."""

from __future__ import annotations

import json

import httpx
import pytest

from mltop.adapters.http import Endpoint
from mltop.adapters.ray import RaySource
from mltop.adapters.ray_cluster import parse_cluster
from mltop.demo.ray_dashboard import Faults, make_app
from mltop.demo.ray_sim import RaySim, SimNode
from mltop.demo.server import LoopbackServer
from mltop.errors import BadResponse, NotFound, Unauthorized, Unreachable
from mltop.model import JobState
from tests.conftest import FIXTURES


def load(name: str):
    return json.loads((FIXTURES / name).read_text())


def test_cluster_from_real_2_60_capture():
    cluster = parse_cluster(load("ray-2.60/nodes_summary.json"), load("ray-2.60/cluster_status.json"))
    assert len(cluster.nodes) == 1
    node = cluster.nodes[0]
    assert node.is_head and node.alive and node.gpus_total == 4.0 and node.gpus_used == 2.0
    assert node.devices == ()  # logical GPUs only: Ray reports no telemetry
    assert [(d.resources, d.count) for d in cluster.demands] == [((("GPU", 4.0),), 1)]
    assert cluster.gpus_waiting == 4.0


def test_cluster_falls_back_to_logical_text_when_cluster_status_is_empty():
    # Under autoscaler v2 cluster_status carries no load report; /nodes still has the text form.
    cluster = parse_cluster(load("ray-2.60/nodes_summary.json"), {"result": True, "data": {"clusterStatus": None}})
    assert cluster.nodes[0].gpus_used == 2.0
    assert cluster.demands == ()


def test_cluster_from_real_2_49_capture():
    cluster = parse_cluster(load("ray-2.49/nodes_summary.json"), load("ray-2.49/cluster_status.json"))
    assert cluster.gpus_total == 4.0
    assert cluster.gpus_waiting > 0


def test_gpu_telemetry_is_read_in_mib_and_percent():
    nodes = load("ray-2.60/nodes_summary.json")
    nodes["data"]["summary"][0]["gpus"] = [
        {"index": 0, "name": "NVIDIA A100-SXM4-80GB", "uuid": "GPU-1", "utilizationGpu": 87,
         "memoryUsed": 61234, "memoryTotal": 81920, "processesPids": []},
        {"index": 1, "name": "NVIDIA A100-SXM4-80GB", "uuid": "GPU-2", "utilizationGpu": None,
         "memoryUsed": 0, "memoryTotal": 81920, "processesPids": []},
    ]
    cluster = parse_cluster(nodes, None)
    devices = cluster.nodes[0].devices
    assert [(d.index, d.utilization, d.memory_used_mib) for d in devices] == [(0, 87.0, 61234.0), (1, None, 0.0)]


def _source_for(responses: dict[str, httpx.Response]) -> RaySource:
    def handler(request: httpx.Request) -> httpx.Response:
        return responses.get(request.url.path, httpx.Response(404, text="Not Found"))

    return RaySource(Endpoint(name="t", url="http://ray.test"), transport=httpx.MockTransport(handler))


async def test_jobs_list_from_real_capture_maps_every_state():
    actors = {"result": True, "msg": "", "data": {"result": {"total": 0, "result": []}}}
    source = _source_for({
        "/api/jobs/": httpx.Response(200, json=load("ray-2.49/jobs_list.json") + load("ray-2.49/jobs_driver.json")),
        "/api/v0/actors": httpx.Response(200, json=actors),
        "/nodes": httpx.Response(200, json=load("ray-2.49/nodes_summary.json")),
        "/api/cluster_status": httpx.Response(200, json=load("ray-2.49/cluster_status.json")),
    })
    data = await source.fetch()
    await source.aclose()
    by_native = {j.native_state: j for j in data.jobs}
    assert by_native["PENDING"].state is JobState.PENDING and by_native["PENDING"].started_at is None
    assert by_native["FAILED"].state is JobState.FAILED and by_native["FAILED"].finished_at is not None
    assert by_native["RUNNING"].state is JobState.RUNNING and by_native["RUNNING"].cancellable
    assert by_native["SUCCEEDED"].state is JobState.SUCCEEDED  # the DRIVER job
    drivers = [j for j in data.jobs if j.kind == "DRIVER"]
    assert drivers and all(not j.cancellable and j.gpus is None for j in drivers)
    assert len({j.key for j in data.jobs}) == len(data.jobs)


@pytest.fixture
def dashboard():
    sim = RaySim([SimNode("n1", "127.0.0.1", "h", gpus=4, cpus=8)])
    server = LoopbackServer()
    faults = Faults()
    url = server.serve(make_app(sim, token="s3cret", faults=faults))
    yield sim, server, url, faults
    server.stop()


async def test_token_auth_401_and_403_are_told_apart(dashboard):
    _, _, url, _ = dashboard
    for token, kind in ((None, "401"), ("wrong", "403")):
        source = RaySource(Endpoint(name="t", url=url, token=token))
        with pytest.raises(Unauthorized, match=kind):
            await source.fetch()
        await source.aclose()
    source = RaySource(Endpoint(name="t", url=url, token="s3cret"))
    assert (await source.fetch()).jobs == ()
    await source.aclose()


async def test_traceback_body_becomes_its_last_line(dashboard):
    _, _, url, faults = dashboard
    faults.status = 500
    faults.body = 'Traceback (most recent call last):\n  File "x.py", line 1\nRuntimeError: GCS is down'
    source = RaySource(Endpoint(name="t", url=url, token="s3cret"))
    with pytest.raises(BadResponse) as info:
        await source.fetch()
    await source.aclose()
    assert str(info.value).endswith("HTTP 500: RuntimeError: GCS is down")
    assert "\n" not in str(info.value)


async def test_not_json_is_a_bad_response(dashboard):
    _, _, url, faults = dashboard
    faults.status = 200
    faults.body = "<html>proxy login</html>"
    source = RaySource(Endpoint(name="t", url=url, token="s3cret"))
    with pytest.raises(BadResponse, match="did not answer with JSON"):
        await source.fetch()
    await source.aclose()


async def test_unreachable_and_unknown_job():
    source = RaySource(Endpoint(name="t", url="http://127.0.0.1:9", timeout=2))
    with pytest.raises(Unreachable, match="cannot connect"):
        await source.fetch()
    await source.aclose()


async def test_unknown_job_is_not_found(dashboard):
    _, _, url, _ = dashboard
    source = RaySource(Endpoint(name="t", url=url, token="s3cret"))
    with pytest.raises(NotFound, match="Job nope does not exist"):
        await source.cancel_job("nope")
    await source.aclose()


class RecordingTransport(httpx.AsyncHTTPTransport):
    """Real HTTP, with a log of what was asked: to check how gentle a poll is."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(f"{request.url.path}?{request.url.query.decode()}")
        return await super().handle_async_request(request)


async def test_memory_follows_the_table_and_polls_ask_only_for_live_supervisors():
    sim = RaySim([SimNode("n1", "127.0.0.1", "h", gpus=4, cpus=8)])
    for i in range(20):
        sim.submit(f"python {i}.py", submission_id=f"done{i:02d}", gpus=1, run_seconds=0)
    sim.advance()
    for i in range(20):
        sim.jobs[f"done{i:02d}"].end_ms += i  # distinct end times: done19 ended last
    sim.submit("python long.py", submission_id="running", gpus=2, run_seconds=3600)
    sim.jobs["done19"].message = "x" * 30_000  # failed jobs carry up to 20,000 chars of log
    server = LoopbackServer()
    url = server.serve(make_app(sim))
    transport = RecordingTransport()
    source = RaySource(Endpoint(name="t", url=url), transport=transport, max_finished=3)
    try:
        data = await source.fetch()
        ids = sorted(j.id for j in data.jobs)
        assert ids == ["done17", "done18", "done19", "running"]
        # The finished jobs were first seen dead: one full supervisor query found their GPUs.
        assert all(j.gpus is not None for j in data.jobs)
        assert len(next(j for j in data.jobs if j.id == "done19").message) <= 1000
        assert sum("actors" in p for p in transport.seen) == 2
        transport.seen.clear()
        await source.fetch()
        actor_queries = [p for p in transport.seen if "actors" in p]
        assert len(actor_queries) == 1 and "DEAD" in actor_queries[0]  # live supervisors only
        assert set(source._requests) == {"done17", "done18", "done19", "running"}
    finally:
        await source.aclose()
        server.stop()


async def test_real_h200_telemetry_and_a_plain_entrypoints_utilization():
    """Captured on a real H200: the job has no driver_info, yet its GPU shows 100% busy."""
    source = _source_for({
        "/api/jobs/": httpx.Response(200, json=load("ray-2.60-h200/jobs_list.json")),
        "/api/v0/actors": httpx.Response(200, json=load("ray-2.60-h200/actors.json")),
        "/nodes": httpx.Response(200, json=load("ray-2.60-h200/nodes_summary_burn.json")),
        "/api/cluster_status": httpx.Response(200, json=load("ray-2.60-h200/cluster_status.json")),
    })
    data = await source.fetch()
    await source.aclose()
    (device,) = data.ray_cluster.nodes[0].devices
    assert (device.name, device.utilization, device.memory_total_mib, device.pids) == ("NVIDIA H200", 100.0, 143771.0, (3632,))
    jobs = {j.id: j for j in data.jobs}
    assert jobs["gpu_burn"].gpus == 1.0 and jobs["gpu_burn"].gpu_utilization == 100.0
    assert jobs["wants_two"].state is JobState.PENDING and jobs["wants_two"].gpus == 2.0
    assert data.ray_cluster.gpus_total == 1.0 and data.ray_cluster.demands
