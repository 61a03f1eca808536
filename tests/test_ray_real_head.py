"""The Ray adapter against a real Ray head with 4 logical GPUs (started by conftest).

Each test submits its own jobs (unique ids) and asserts what Ray finally reports.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone

import pytest

from mltop.adapters.http import Endpoint
from mltop.adapters.ray import RaySource
from mltop.errors import Conflict, NotFound
from mltop.model import JobState

pytestmark = pytest.mark.ray

SLEEP = "import time; print('started', flush=True); time.sleep(600)"


def uid(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def ray_source(ray_head):
    source = RaySource(Endpoint(name="local", url=ray_head.url))
    yield source
    await source.aclose()


async def job_by_id(source: RaySource, job_id: str):
    data = await source.fetch()
    matches = [j for j in data.jobs if j.id == job_id]
    assert matches, f"{job_id} not listed"
    return matches[0], data


async def test_running_job_shows_state_gpus_and_owner(ray_head, ray_source):
    sid = ray_head.submit(SLEEP, submission_id=uid("running"), gpus=1, metadata={"owner": "alice", "job_name": "train"})
    ray_head.wait_for(sid, {"RUNNING"})
    job, data = await job_by_id(ray_source, sid)
    assert job.state is JobState.RUNNING and job.native_state == "RUNNING"
    assert job.gpus == 1.0  # from the supervisor actor: /api/jobs/ itself does not say
    assert job.owner == "alice" and job.name == "train"
    assert job.key == f"ray/local/{sid}"
    assert job.cancellable and job.started_at is not None and job.finished_at is None
    cluster = data.ray_cluster
    assert cluster is not None and cluster.gpus_total == 4.0
    # Ray's autoscaler monitor refreshes usage every few seconds: poll as mltop would.
    deadline = time.monotonic() + 30
    while (cluster.gpus_used or 0) < 1.0 and time.monotonic() < deadline:
        await asyncio.sleep(1)
        cluster = (await ray_source.fetch()).ray_cluster
    assert cluster.gpus_used is not None and cluster.gpus_used >= 1.0
    await ray_source.cancel_job(sid)
    ray_head.wait_for(sid, {"STOPPED"})


async def test_failed_job_reports_failed_with_exit_code(ray_head, ray_source):
    sid = ray_head.submit("raise SystemExit(3)", submission_id=uid("failed"))
    ray_head.wait_for(sid, {"FAILED"})
    job, _ = await job_by_id(ray_source, sid)
    assert job.state is JobState.FAILED and job.native_state == "FAILED"
    assert "exit code 3" in (job.message or "")
    assert job.finished_at is not None and not job.cancellable
    assert job.gpus == 0.0


async def test_job_wanting_more_gpus_than_exist_waits_in_the_queue(ray_head, ray_source):
    sid = ray_head.submit(SLEEP, submission_id=uid("toobig"), gpus=8)
    time.sleep(3)
    job, data = await job_by_id(ray_source, sid)
    assert job.state is JobState.PENDING
    assert job.gpus == 8.0
    assert job.started_at is None
    queued = job.queued_seconds(datetime.now(timezone.utc))
    assert queued is not None and queued >= 2
    assert data.ray_cluster is not None
    assert any(d.gpus == 8.0 for d in data.ray_cluster.demands), data.ray_cluster.demands
    # Cleanup is not possible through the API: Ray keeps a stop for a job that never gets its
    # GPUs queued (see the cancel-while-waiting test). The session's head is torn down after.


async def test_cancel_running_job_reaches_stopped(ray_head, ray_source):
    sid = ray_head.submit(SLEEP, submission_id=uid("cancel_running"), gpus=1)
    ray_head.wait_for(sid, {"RUNNING"})
    outcome = await ray_source.cancel_job(sid)
    assert outcome.accepted
    # Ray's answer is only "request accepted": the job is still RUNNING for a moment.
    final = ray_head.wait_for(sid, {"STOPPED", "SUCCEEDED", "FAILED"})
    assert final == "STOPPED"
    job, _ = await job_by_id(ray_source, sid)
    assert job.state is JobState.CANCELLED and job.native_state == "STOPPED"
    assert not job.cancellable
    # A second stop on a finished job is refused by Ray ({"stopped": false}); mltop says so.
    with pytest.raises(Conflict, match="already finished"):
        await ray_source.cancel_job(sid)


async def test_cancel_while_waiting_is_accepted_but_ray_keeps_it_pending(ray_head, ray_source):
    sid = ray_head.submit(SLEEP, submission_id=uid("cancel_waiting"), gpus=16)
    time.sleep(2)
    outcome = await ray_source.cancel_job(sid)
    assert outcome.accepted  # Ray answers {"stopped": true}...
    await asyncio.sleep(8)
    job, _ = await job_by_id(ray_source, sid)
    # ...but a job whose supervisor never got its resources does not leave the queue (Ray 2.60).
    # This is why mltop shows "STOP SENT" and warns instead of claiming the job stopped.
    assert job.state is JobState.PENDING and job.native_state == "PENDING"


async def test_details_and_log_tail(ray_head, ray_source):
    sid = ray_head.submit("print('hello from the job')", submission_id=uid("logs"))
    ray_head.wait_for(sid, {"SUCCEEDED"})
    detail = await ray_source.job_detail(sid)
    assert detail.job.state is JobState.SUCCEEDED
    assert "hello from the job" in detail.section("log tail (last lines)")
    with pytest.raises(NotFound):
        await ray_source.job_detail("no_such_job_here")


def test_once_json_against_real_head(ray_head):
    sid = ray_head.submit(SLEEP, submission_id=uid("once"), gpus=8)
    out = subprocess.run(
        [sys.executable, "-m", "mltop", "--once", "--json", "--ray", f"real={ray_head.url}"],
        capture_output=True, text=True, timeout=60, env={**ray_head.env, "MLTOP_CONFIG": "/nonexistent-ok"},
    )
    # MLTOP_CONFIG names a missing file: that is an error, exit 2, one line.
    assert out.returncode == 2 and "no such config file" in out.stderr and "Traceback" not in out.stderr
    out = subprocess.run(
        [sys.executable, "-m", "mltop", "--once", "--json", "--ray", f"real={ray_head.url}"],
        capture_output=True, text=True, timeout=60, env=ray_head.env,
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    job = next(j for j in report["jobs"] if j["id"] == sid)
    assert job["state"] == "PENDING" and job["gpus"] == 8.0 and job["queued_seconds"] >= 0
    assert job["key"] == f"ray/real/{sid}" and job["cluster"] == "real"
    assert report["sources"][0]["ok"] is True and report["sources"][0]["cluster"]["gpus_total"] == 4.0
