"""Following a job's log on a real Ray head (started by conftest), over its own log tail websocket."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from mltop.adapters.http import Endpoint
from mltop.adapters.ray import RaySource
from mltop.logs import LogBuffer, LogFollower

pytestmark = pytest.mark.ray

TICKS = "import time\nfor i in range(6):\n    print(f'tick {i} [red]\\x1b]0;t\\x07', flush=True)\n    time.sleep(1)\n"


def uid(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def ray_source(ray_head):
    source = RaySource(Endpoint(name="local", url=ray_head.url))
    yield source
    await source.aclose()


async def listed(source: RaySource, job_id: str):
    for _ in range(60):
        jobs = [j for j in (await source.fetch()).jobs if j.id == job_id]
        if jobs:
            return jobs[0]
        await asyncio.sleep(0.5)
    raise AssertionError(f"{job_id} not listed")


async def until(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.1)


async def test_follow_delivers_lines_while_the_job_runs_then_ends(ray_head, ray_source):
    sid = ray_head.submit(TICKS, submission_id=uid("follow"))
    job = await listed(ray_source, sid)
    assert ray_source.why_no_log(job) is None
    buffer = LogBuffer()
    follower = LogFollower(ray_source.log_stream(job), buffer, backoff=(0.5,))
    task = asyncio.create_task(follower.run())
    try:
        await until(lambda: any(line.startswith("tick 0") for line in buffer.lines), timeout=90)
        assert follower.state.kind == "following"
        assert ray_head.status(sid) == "RUNNING"  # the first line came while the job still ran
        await asyncio.wait_for(task, 60)  # Ray closes the stream once the job has ended
    finally:
        task.cancel()
    ticks = [line for line in buffer.lines if line.startswith("tick")]
    assert ticks == [f"tick {i} [red]\\x1b]0;t\\x07" for i in range(6)]  # each once, in order, inert
    assert follower.state.kind == "ended" and follower.state.message.startswith("stream ended")
    assert ray_head.status(sid) == "SUCCEEDED"


async def test_a_reconnect_does_not_repeat_what_was_shown(ray_head, ray_source):
    sid = ray_head.submit("for i in range(30): print('line', i)", submission_id=uid("replay"))
    ray_head.wait_for(sid, {"SUCCEEDED"})
    job = await listed(ray_source, sid)
    stream = ray_source.log_stream(job)
    first = ""
    chunks = stream.chunks()
    async for text in chunks:  # a connection that breaks after its first frame
        first += text
        if text:
            break
    await chunks.aclose()
    rest = "".join([text async for text in stream.chunks()])  # Ray replays the log from its start
    whole = first + rest
    assert whole.splitlines()[-30:] == [f"line {i}" for i in range(30)]
    assert whole.count("line 0\n") == 1
    assert whole.rstrip("\n").split("\n")[-30:] == (await ray_source.log_tail(sid)).split("\n")[-30:]


async def test_an_unknown_job_is_refused_with_a_reason(ray_source):
    from dataclasses import replace

    from tests.test_logs import pod_job

    job = replace(pod_job("x", "y"), source="ray", id=uid("nobody"), kind="SUBMISSION")
    buffer = LogBuffer()
    follower = LogFollower(ray_source.log_stream(job), buffer, backoff=(5.0,))
    task = asyncio.create_task(follower.run())
    try:
        await until(lambda: follower.state.kind == "failed", timeout=30)
    finally:
        task.cancel()
    assert follower.state.message == f"local: log of job {job.id}: Ray does not know this job (404)"
