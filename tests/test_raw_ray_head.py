"""`y` against a real Ray head: the job as Ray 2.60 serves it, its runtime env's secrets redacted,
and an id that would climb out of its URL segment fetching exactly that job."""

from __future__ import annotations

import sys
import uuid

import httpx
import pytest

from mltop.adapters.http import Endpoint
from mltop.adapters.ray import RaySource
from mltop.raw import render
from tests.conftest import shlex_quote
from tests.test_ray_real_head import SLEEP

pytestmark = pytest.mark.ray
HF_TOKEN = "hf_" + "abcdEFGH1234" * 3


def submit(ray_head, submission_id: str, runtime_env: dict | None = None, gpus: float = 0) -> str:
    body = {"entrypoint": f"{sys.executable} -c {shlex_quote(SLEEP)}", "submission_id": submission_id,
            "entrypoint_num_gpus": gpus, "metadata": {"owner": "alice"}}
    if runtime_env is not None:
        body["runtime_env"] = runtime_env
    response = httpx.post(f"{ray_head.url}/api/jobs/", json=body, timeout=30)
    response.raise_for_status()
    return response.json()["submission_id"]


@pytest.fixture
async def ray_source(ray_head):
    source = RaySource(Endpoint(name="local", url=ray_head.url))
    yield source
    await source.aclose()


async def test_a_real_jobs_runtime_env_secrets_are_redacted(ray_head, ray_source):
    # Waiting for more GPUs than exist: it stays PENDING, and nothing has to run.
    sid = submit(ray_head, f"raw_{uuid.uuid4().hex[:8]}", gpus=8,
                 runtime_env={"env_vars": {"HF_TOKEN": HF_TOKEN, "NCCL_DEBUG": "INFO"}})
    ray_head.wait_for(sid, {"PENDING"})
    job = next(j for j in (await ray_source.fetch()).jobs if j.id == sid)
    raw = await ray_source.raw_object(job)
    assert raw.body["submission_id"] == sid and raw.body["runtime_env"]["env_vars"]["HF_TOKEN"] == HF_TOKEN
    for fmt in ("yaml", "json"):
        shown = render(raw, fmt)
        text = "\n".join(shown.lines)
        assert HF_TOKEN not in text and "<redacted>" in text and "NCCL_DEBUG" in text
        assert "1 secret-like value redacted" in shown.subtitle
    await ray_source.cancel_job(sid)


async def test_a_hostile_id_fetches_exactly_that_job_from_a_real_head(ray_head, ray_source):
    victim = submit(ray_head, f"victim_{uuid.uuid4().hex[:8]}", gpus=8)
    hostile = submit(ray_head, f"zz/../{victim}", gpus=8)
    ray_head.wait_for_id(hostile, {"PENDING"})
    job = next(j for j in (await ray_source.fetch()).jobs if j.id == hostile)
    raw = await ray_source.raw_object(job)
    assert raw.body["submission_id"] == hostile  # its own object, never the victim's
    await ray_source.cancel_job(victim)


async def test_a_real_head_node_is_fetched_by_its_id(ray_source):
    node = next(n for n in (await ray_source.fetch()).ray_nodes)  # the head, with 4 logical GPUs
    raw = await ray_source.raw_object(node)
    node_id = node.key.rsplit("/", 1)[1]
    assert raw.body["data"]["detail"]["raylet"]["nodeId"] == node_id
    assert raw.body["data"]["detail"]["hostname"]
