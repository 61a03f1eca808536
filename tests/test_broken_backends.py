"""Broken and hostile backends, over real HTTP: servers that never answer, answer too much, answer
junk, echo credentials, or answer for another object. Each must cost one field, one item or one
source line, never a crash, a hang or an action on the wrong thing."""

from __future__ import annotations

import asyncio
import gzip
import json
import time

import pytest

from mltop.adapters import ray as ray_adapter
from mltop.adapters.http import Endpoint
from mltop.adapters.kfp import KfpSource
from mltop.adapters.kfp_endpoint import KfpEndpoint
from mltop.adapters.ray import RaySource
from mltop.errors import BadResponse, Conflict, SourceError, Unreachable
from mltop.refresh import poll
from tests.broken_server import BrokenServer, endless, hang, json_body, text_body
from tests.conftest import FIXTURES, free_port

RAY_FIXTURES = FIXTURES / "ray-2.60"


def load(name: str):
    return json.loads((RAY_FIXTURES / name).read_text())


def ray_routes(server: BrokenServer, jobs: object | None = None, actors: object | None = None) -> None:
    """A Ray dashboard answering with real 2.60 payloads, the job list replaceable."""
    server.routes[("GET", "/api/jobs/")] = json_body(load("jobs_list.json") if jobs is None else jobs)
    server.routes[("GET", "/api/v0/actors")] = json_body(
        actors or {"result": True, "msg": "", "data": {"result": {"result": []}}})
    server.routes[("GET", "/nodes")] = json_body(load("nodes_summary.json"))
    server.routes[("GET", "/api/cluster_status")] = json_body(load("cluster_status.json"))


@pytest.fixture
def broken():
    with BrokenServer() as server:
        yield server


# -- a server that never answers ---------------------------------------------------------------


async def test_reads_from_a_server_that_never_answers_fail_within_the_deadline(broken):
    for path in ("/api/jobs/", "/api/v0/actors", "/nodes", "/api/cluster_status"):
        broken.routes[("GET", path)] = hang()
    source = RaySource(Endpoint(name="stuck", url=broken.url, timeout=0.5))
    started = time.monotonic()
    update = await poll(source)
    elapsed = time.monotonic() - started
    await source.aclose()
    assert not update.health.ok and update.data is None
    assert "timed out" in update.health.error or "no complete answer" in update.health.error
    assert elapsed < 3.0  # the 0.5 s read timeout, not the 30 s poll timeout


async def test_a_stop_that_gets_no_answer_is_an_unknown_outcome_not_a_failure(broken):
    job = load("job_pending_gpu.json")
    broken.routes[("GET", f"/api/jobs/{job['submission_id']}")] = json_body(job)
    broken.routes[("POST", f"/api/jobs/{job['submission_id']}/stop")] = hang()
    source = RaySource(Endpoint(name="stuck", url=broken.url, timeout=0.5))
    from mltop.errors import OutcomeUnknown

    with pytest.raises(OutcomeUnknown) as unknown:
        await source.cancel_job(job["submission_id"])
    await source.aclose()
    assert "outcome is unknown" in str(unknown.value)


# -- too much ----------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["chunked", "declared", "gzip-bomb"])
async def test_an_oversized_answer_is_one_line_and_the_last_good_data_stays(broken, monkeypatch, how):
    monkeypatch.setitem(ray_adapter.LIMITS, "job list", 1024 * 1024)
    ray_routes(broken)
    source = RaySource(Endpoint(name="big", url=broken.url))
    good = await poll(source)
    assert good.health.ok and good.data is not None and good.data.jobs
    if how == "gzip-bomb":
        bomb = gzip.compress(b"[" + b" " * (64 * 1024 * 1024) + b"]")  # 64 MiB of spaces in ~64 KiB

        async def handler(_):
            from aiohttp import web

            return web.Response(body=bomb, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})

        broken.routes[("GET", "/api/jobs/")] = handler
    else:
        broken.routes[("GET", "/api/jobs/")] = endless(declare_length=how == "declared")
    bad = await poll(source, good)
    await source.aclose()
    assert not bad.health.ok
    assert "over mltop's 1 MiB limit" in bad.health.error
    assert bad.data is good.data  # the screen keeps what it had, with its age


# -- junk --------------------------------------------------------------------------------------


async def test_one_bad_job_among_good_ones_is_skipped_and_counted(broken):
    jobs = load("jobs_list.json")
    good_ids = {j["submission_id"] or j["job_id"] for j in jobs}
    jobs += [{"status": "WEIRD", "submission_id": "w1"}, "not a job", {"status": "RUNNING"}, None]
    ray_routes(broken, jobs)
    source = RaySource(Endpoint(name="junk", url=broken.url))
    update = await poll(source)
    await source.aclose()
    assert update.health.ok and update.data is not None
    assert {j.id for j in update.data.jobs} == good_ids
    assert update.health.skipped == 4 and "unknown status 'WEIRD'" in update.health.skip_reason


@pytest.mark.parametrize("amount, shown", [("NaN", None), ("Infinity", None), ("-2", None), ("2", 2.0),
                                           (float("nan"), None), ("1e309", None), ([1], None)])
async def test_a_gpu_request_that_is_not_a_count_is_unknown(broken, amount, shown):
    jobs = load("jobs_list.json")
    sid = next(j["submission_id"] for j in jobs if j["submission_id"])
    actors = {"result": True, "msg": "", "data": {"result": {"result": [
        {"name": f"_ray_internal_job_actor_{sid}", "class_name": "JobSupervisor", "state": "ALIVE",
         "required_resources": {"GPU": amount, "CPU": "x"}}]}}}
    ray_routes(broken, jobs, actors)
    source = RaySource(Endpoint(name="nan", url=broken.url))
    update = await poll(source)
    await source.aclose()
    job = next(j for j in update.data.jobs if j.id == sid)
    assert job.gpus == shown and job.cpus is None


@pytest.mark.parametrize("rows, shown", [
    ([7, "x", None], 3.0),  # entries that are not actors are skipped (the list is then read whole)
    ([{"name": 5, "required_resources": []}, {"name": None}], 3.0),  # a name or resources of the wrong type
])
async def test_junk_among_the_job_supervisors_is_skipped_and_the_rest_read(broken, rows, shown):
    jobs = load("jobs_list.json")
    sid = next(j["submission_id"] for j in jobs if j["submission_id"])
    good = {"name": f"_ray_internal_job_actor_{sid}", "class_name": "JobSupervisor", "state": "ALIVE",
            "required_resources": {"GPU": 3, "CPU": 1}}
    ray_routes(broken, jobs, {"result": True, "msg": "", "data": {"result": {"result": [*rows, good]}}})
    source = RaySource(Endpoint(name="junk-actors", url=broken.url))
    update = await poll(source)
    await source.aclose()
    assert update.health.ok
    assert next(j for j in update.data.jobs if j.id == sid).gpus == shown


@pytest.mark.parametrize("actors", [{"data": {"result": {"result": "none"}}}, {"data": []}, ["x"], {"msg": "oops"}])
async def test_a_supervisor_list_of_the_wrong_shape_is_an_error(broken, actors):
    ray_routes(broken, load("jobs_list.json"), actors)
    source = RaySource(Endpoint(name="shape", url=broken.url))
    update = await poll(source)
    await source.aclose()
    assert not update.health.ok and "unexpected actor list shape" in update.health.error


async def test_times_and_names_of_the_wrong_type_are_unknown_not_fatal(broken):
    job = dict(load("jobs_list.json")[0])
    job.update(start_time="yesterday", end_time=float("inf"), metadata=["not", "a", "dict"], entrypoint=12,
               message={"nested": True}, type=None)
    ray_routes(broken, [job])
    source = RaySource(Endpoint(name="types", url=broken.url))
    update = await poll(source)
    await source.aclose()
    assert update.health.ok and len(update.data.jobs) == 1
    parsed = update.data.jobs[0]
    assert parsed.submitted_at is None and parsed.finished_at is None and parsed.message is None


async def test_a_job_list_that_is_not_a_list_is_an_error_not_an_empty_queue(broken):
    ray_routes(broken, {"jobs": []})
    source = RaySource(Endpoint(name="shape", url=broken.url))
    update = await poll(source)
    await source.aclose()
    assert not update.health.ok and "not a JSON array" in update.health.error


# -- credentials -------------------------------------------------------------------------------


async def test_a_password_in_the_url_never_shows():
    source = RaySource(Endpoint(name="creds", url=f"http://alice:Pa55-w0rd-xyz@127.0.0.1:{free_port()}"))
    update = await poll(source)
    await source.aclose()
    assert not update.health.ok
    assert "Pa55-w0rd-xyz" not in update.health.error and "alice" not in update.health.error


async def test_an_error_body_that_echoes_the_token_is_redacted(broken):
    token = "tok-2f1c9a7e55b04d2e"
    broken.routes[("GET", "/api/jobs/")] = text_body(f"Unauthorized: token {token} is not valid", status=401)
    source = RaySource(Endpoint(name="echo", url=broken.url, token=token))
    update = await poll(source)
    await source.aclose()
    assert not update.health.ok and "unauthorized" in update.health.error
    assert token not in update.health.error and "***" in update.health.error


# -- KFP: ids in URLs, the answer must be the confirmed run -------------------------------------


def kfp_routes(server: BrokenServer, run: dict) -> None:
    server.routes[("GET", "/apis/v2beta1/healthz")] = json_body({"multi_user": False})


async def test_kfp_ids_are_encoded_and_an_answer_for_another_run_is_refused(broken):
    hostile = "r1/../r2:terminate"
    # aiohttp decodes %2F in request.path: the route is the decoded path, the wire path is recorded.
    broken.routes[("GET", f"/apis/v2beta1/runs/{hostile}")] = json_body({"run_id": "r2", "state": "RUNNING"})
    source = KfpSource(KfpEndpoint(name="kfp", url=broken.url))
    with pytest.raises(Conflict) as refused:
        await source.cancel_job(hostile)
    await source.aclose()
    assert "answered for another run" in str(refused.value)
    assert ("GET", "/apis/v2beta1/runs/r1%2F..%2Fr2%3Aterminate") in broken.seen
    assert not [seen for seen in broken.seen if seen[0] == "POST"]  # nothing was sent to act


async def test_kfp_run_list_of_the_wrong_shape_is_an_error_and_bad_runs_are_counted(broken):
    broken.routes[("GET", "/apis/v2beta1/healthz")] = json_body({"multi_user": False})
    broken.routes[("GET", "/apis/v2beta1/runs")] = json_body({"runs": "notalist"})
    source = KfpSource(KfpEndpoint(name="kfp", url=broken.url))
    update = await poll(source)
    assert not update.health.ok and "'runs' is not a list" in update.health.error
    good = {"run_id": "ok1", "display_name": "fine", "state": "RUNNING", "created_at": "2026-11-28T10:00:00Z"}
    broken.routes[("GET", "/apis/v2beta1/runs")] = json_body(
        {"runs": [good, {"run_id": "x", "state": "EXPLODED"}, 7, {"state": "RUNNING"}]})
    update = await poll(source)
    await source.aclose()
    assert update.health.ok and [j.id for j in update.data.jobs] == ["ok1"]
    # Both queries (active, finished) got the same page: 3 bad entries each.
    assert update.health.skipped == 6 and "unknown state 'EXPLODED'" in update.health.skip_reason


async def test_unknown_errors_never_escape_as_tracebacks(broken):
    broken.routes[("GET", "/apis/v2beta1/healthz")] = text_body("<html>\x1b[2Jgateway</html>", status=502)
    source = KfpSource(KfpEndpoint(name="kfp", url=broken.url))
    update = await poll(source)
    await source.aclose()
    assert not update.health.ok and "HTTP 502" in update.health.error


def test_segment_is_used_for_every_id_in_a_path():
    """No adapter builds a path from an id without `segment()` (a cheap guard for new code)."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "mltop" / "adapters"
    for path in root.glob("*.py"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r'f"/[^"]*(?<!\{)\{(job_id|run_id|exp_id|pipe_id|sid|name|namespace|rc_name)\}', line):
                raise AssertionError(f"{path.name}:{number}: an id put into a path unencoded: {line.strip()}")


@pytest.mark.parametrize("error", [SourceError, BadResponse, Unreachable])
def test_errors_redact_known_credentials(error):
    from mltop.safe_text import remember_secret

    remember_secret("sekrit-value-123")
    assert "sekrit-value-123" not in str(error("401: bad token sekrit-value-123"))


def test_once_never_prints_a_url_password_or_echoed_token(tmp_path, capsys, monkeypatch):
    """stdout, stderr, the JSON and every MLTOP_LOG line."""
    from mltop.cli import main

    log = tmp_path / "mltop.log"
    monkeypatch.setenv("MLTOP_LOG", str(log))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    with BrokenServer() as server:
        server.routes[("GET", "/api/jobs/")] = text_body("bad token tok-5e6f7a8b9c0d1e2f3a4b \x1b]0;pwned\x07", 401)
        password_url = server.url.replace("http://", "http://bob:Hunter2-secret@")
        monkeypatch.setenv("RAY_AUTH_TOKEN", "tok-5e6f7a8b9c0d1e2f3a4b")
        for extra in ([], ["--json"]):
            status = main(["--once", *extra, "--ray", f"a={password_url}", "--ray", f"b=http://bob:Hunter2-secret@127.0.0.1:{free_port()}"])
            out, err = capsys.readouterr()
            assert status == 2
            for text in (out, err, log.read_text()):
                assert "Hunter2-secret" not in text and "tok-5e6f7a8b9c0d1e2f3a4b" not in text
                assert "\x1b" not in text and "\x07" not in text
            assert "unauthorized" in out + err


# -- Kubernetes: bounded reads ------------------------------------------------------------------


@pytest.fixture
def kube_cluster(tmp_path):
    from tests.kube_helpers import start_fake_cluster

    fake = start_fake_cluster(tmp_path)
    yield fake
    fake.server.stop()


async def test_a_kubernetes_list_page_over_the_limit_is_one_line(kube_cluster, monkeypatch):
    from mltop.adapters import kube_cache

    monkeypatch.setattr(kube_cache, "PAGE_LIMIT", 4 * 1024)
    source = kube_cluster.source(sync_timeout=5)
    with pytest.raises(SourceError) as over:
        await source.fetch()
    await source.aclose()
    assert "over mltop's 4 KiB limit" in str(over.value)


async def test_a_watch_event_over_the_limit_ends_the_watch_with_an_error(kube_cluster, monkeypatch):
    from mltop.adapters import kube_cache

    monkeypatch.setattr(kube_cache, "EVENT_LIMIT", 2 * 1024)  # read when a watch starts
    source = kube_cluster.source()
    data = await source.fetch()
    assert data.nodes

    def bloat():
        node = kube_cluster.store.get("v1", "Node", data.nodes[0].name, None)
        node["metadata"].setdefault("annotations", {})["big"] = "y" * 8192
        kube_cluster.store.put(node)

    kube_cluster.call(bloat)
    deadline = time.monotonic() + 10
    while source.nodes.error is None and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    await source.aclose()
    assert source.nodes.error is not None and "watch event over mltop's 2 KiB limit" in str(source.nodes.error)
    # ...after which the cache lists again (a page holds it: pages have their own, larger limit).


def test_a_short_credential_does_not_redact_ordinary_words():
    """A token like "good" or a header value like "alice" would blank every owner named alice."""
    from mltop.safe_text import inert, remember_secret

    remember_secret("alice")
    remember_secret("a-real-token-0123")
    assert inert("owner alice, token a-real-token-0123") == "owner alice, token ***"
