"""The KFP adapter against the fake v2beta1 server on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from mltop.adapters.kfp import KfpSource
from mltop.adapters.kfp_endpoint import KfpEndpoint
from mltop.demo.kfp_api import KfpStore, make_kfp_app
from mltop.demo.server import LoopbackServer
from mltop.errors import BadResponse, NotFound, Unauthorized
from mltop.model import JobState
from tests.conftest import FIXED_NOW
from tests.test_ray_adapter import RecordingTransport


class Clock:
    def __init__(self):
        self.now = FIXED_NOW

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


def serve(store):
    server = LoopbackServer()
    url = server.serve(make_kfp_app(store))
    return server, url


def seed(store, now, namespace="kubeflow"):
    exp = store.add_experiment("exp-a", namespace)
    pipe = store.add_pipeline("pipe-a", namespace)
    running = store.add_run("train", exp["experiment_id"], state="RUNNING", created_at=now - timedelta(minutes=30),
                            scheduled_at=now - timedelta(minutes=30), pipeline_id=pipe["pipeline_id"],
                            parameters={"lr": 0.1},
                            tasks=[{"display_name": "train", "state": "RUNNING", "pod_name": "train-pod-1"}])
    pending = store.add_run("queued", exp["experiment_id"], state="PENDING", created_at=now - timedelta(minutes=5))
    failed = store.add_run("broken", exp["experiment_id"], state="FAILED", created_at=now - timedelta(hours=2),
                           finished_at=now - timedelta(hours=1), error="task 'x' failed: OOMKilled")
    archived = store.add_run("old", exp["experiment_id"], state="SUCCEEDED", created_at=now - timedelta(days=3),
                             finished_at=now - timedelta(days=3), storage_state="ARCHIVED")
    return running, pending, failed, archived


@pytest.fixture
def single(clock):
    store = KfpStore(clock=clock)
    runs = seed(store, FIXED_NOW)
    server, url = serve(store)
    yield store, url, runs
    server.stop()


async def source_for(url, **kwargs):
    return KfpSource(KfpEndpoint(name="kfp", url=url, **kwargs))


async def test_runs_states_times_names_and_archived_hidden(single):
    store, url, (running, pending, failed, archived) = single
    src = await source_for(url)
    jobs = {j.id: j for j in (await src.fetch()).jobs}
    await src.aclose()
    assert archived["run_id"] not in jobs
    run = jobs[running["run_id"]]
    assert run.state is JobState.RUNNING and run.native_state == "RUNNING" and run.cancellable and not run.retryable
    assert run.finished_at is None  # KFP says 1970-01-01: that is not a time
    assert run.experiment == "exp-a" and run.pipeline == "pipe-a" and run.name == "train"
    assert run.key == f"kfp/kfp/{running['run_id']}"
    assert jobs[pending["run_id"]].state is JobState.PENDING and jobs[pending["run_id"]].queued_seconds(FIXED_NOW) == 300
    bad = jobs[failed["run_id"]]
    assert bad.state is JobState.FAILED and bad.retryable and "OOMKilled" in bad.message and bad.finished_at


async def test_never_lists_a_namespace_unfiltered_and_pages_through_active_runs(clock):
    store = KfpStore(clock=clock)
    exp = store.add_experiment("big", "kubeflow")
    for i in range(250):
        store.add_run(f"r{i}", exp["experiment_id"], state="RUNNING", created_at=FIXED_NOW - timedelta(seconds=i))
    for i in range(120):
        store.add_run(f"d{i}", exp["experiment_id"], state="SUCCEEDED", created_at=FIXED_NOW - timedelta(hours=1),
                      finished_at=FIXED_NOW - timedelta(minutes=i))
    server, url = serve(store)
    transport = RecordingTransport()
    src = KfpSource(KfpEndpoint(name="kfp", url=url), transport=transport, finished_limit=50)
    try:
        jobs = (await src.fetch()).jobs
    finally:
        await src.aclose()
        server.stop()
    assert sum(j.state is JobState.RUNNING for j in jobs) == 250  # 3 pages of 100
    assert sum(j.state is JobState.SUCCEEDED for j in jobs) == 50  # one bounded page, newest first
    run_queries = [parse_qs(urlsplit(q).query) for q in transport.seen if q.startswith("/apis/v2beta1/runs?")]
    assert len(run_queries) == 4
    for params in run_queries:
        assert int(params["page_size"][0]) <= 100
        if "page_token" in params:
            assert "filter" not in params  # the token carries it
            continue
        predicates = json.loads(unquote(params["filter"][0]))["predicates"]
        assert {p["key"] for p in predicates} == {"state", "storage_state"}


async def test_multi_user_needs_namespaces_and_reads_each(clock):
    store = KfpStore(clock=clock, multi_user=True)
    a = seed(store, FIXED_NOW, "team-a")
    b = seed(store, FIXED_NOW, "team-b")
    server, url = serve(store)
    try:
        src = await source_for(url)
        with pytest.raises(BadResponse, match="multi-user: name the namespaces"):
            await src.fetch()
        await src.aclose()
        src = await source_for(url, namespaces=("team-a", "team-b"))
        jobs = (await src.fetch()).jobs
        await src.aclose()
    finally:
        server.stop()
    assert {j.namespace for j in jobs} == {"team-a", "team-b"}
    assert {j.owner for j in jobs} == {"team-a", "team-b"}
    assert {a[0]["run_id"], b[0]["run_id"]} <= {j.id for j in jobs}


async def test_a_kfp_1x_server_is_told_clearly(clock):
    store = KfpStore(clock=clock, v1_only=True)
    server, url = serve(store)
    src = await source_for(url)
    try:
        with pytest.raises(BadResponse, match="speaks only the v1beta1 API"):
            await src.fetch()
    finally:
        await src.aclose()
        server.stop()


@pytest.mark.parametrize("version", ["2.5.0", "2.14.0"])
async def test_both_error_formats_give_one_line_and_404_401_403_differ(clock, version):
    store = KfpStore(clock=clock, version=version, token="good")
    server, url = serve(store)
    try:
        src = await source_for(url, token="good")
        with pytest.raises(NotFound) as info:
            await src.job_detail("no-such-run")
        assert "\n" not in str(info.value) and "no-such-run" in str(info.value)
        await src.aclose()
        src = await source_for(url)
        with pytest.raises(Unauthorized, match="401"):
            await src.fetch()
        await src.aclose()
    finally:
        server.stop()


async def test_terminate_shows_canceling_until_canceled_and_a_stuck_one_stays(single, clock):
    store, url, (running, pending, _, _) = single
    src = await source_for(url)
    outcome = await src.cancel_job(running["run_id"])
    assert outcome.accepted
    jobs = {j.id: j for j in (await src.fetch()).jobs}
    assert jobs[running["run_id"]].native_state == "CANCELING"
    assert jobs[running["run_id"]].state is JobState.CANCELLING
    store.stuck_canceling.add(pending["run_id"])
    await src.cancel_job(pending["run_id"])
    clock.now = FIXED_NOW + timedelta(seconds=10)
    jobs = {j.id: j for j in (await src.fetch()).jobs}
    await src.aclose()
    assert jobs[running["run_id"]].native_state == "CANCELED" and jobs[running["run_id"]].state is JobState.CANCELLED
    assert jobs[pending["run_id"]].native_state == "CANCELING"


async def test_retry_and_details(single):
    store, url, (running, _, failed, _) = single
    src = await source_for(url)
    detail = await src.job_detail(running["run_id"])
    assert "train-pod-1" in detail.section("tasks") and "lr = 0.1" in detail.section("runtime parameters")
    assert "RUNNING" in detail.section("state history")
    assert "OOMKilled" in (await src.job_detail(failed["run_id"])).section("error")
    await src.retry_job(failed["run_id"])
    jobs = {j.id: j for j in (await src.fetch()).jobs}
    await src.aclose()
    assert jobs[failed["run_id"]].state is JobState.RUNNING


async def test_token_file_is_reread_when_it_changes(clock, tmp_path):
    store = KfpStore(clock=clock, token="first")
    seed(store, FIXED_NOW)
    server, url = serve(store)
    path = tmp_path / "token"
    path.write_text("first\n")
    src = await source_for(url, token_file=str(path))
    try:
        assert (await src.fetch()).jobs
        store.token = "second"  # the token rotated
        path.write_text("second-and-longer\n")
        store.token = "second-and-longer"
        assert (await src.fetch()).jobs
    finally:
        await src.aclose()
        server.stop()


async def test_cookie_and_named_header_auth(clock):
    store = KfpStore(clock=clock, cookie="oauth2_proxy_kubeflow=abc", header=("kubeflow-userid", "alice@example.com"))
    seed(store, FIXED_NOW)
    server, url = serve(store)
    try:
        src = await source_for(url, cookie="oauth2_proxy_kubeflow=abc", header=("kubeflow-userid", "alice@example.com"))
        assert (await src.fetch()).jobs
        await src.aclose()
        src = await source_for(url, cookie="oauth2_proxy_kubeflow=abc")
        with pytest.raises(Unauthorized):
            await src.fetch()
        await src.aclose()
    finally:
        server.stop()


def test_once_json_lists_runs_from_a_multi_user_server_with_two_namespaces(clock):
    store = KfpStore(multi_user=True)
    seed(store, FIXED_NOW, "team-a")
    seed(store, FIXED_NOW, "team-b")
    server, url = serve(store)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "MLTOP_", "KUBE", "KF_"))}
    env["MLTOP_CONFIG"] = os.devnull
    try:
        out = subprocess.run([sys.executable, "-m", "mltop", "--once", "--json", "--kfp", f"pipelines={url}",
                              "--kfp-namespace", "team-a", "--kfp-namespace", "team-b"],
                             capture_output=True, text=True, timeout=60, env=env)
    finally:
        server.stop()
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    runs = [j for j in report["jobs"] if j["source"] == "kfp"]
    assert {r["namespace"] for r in runs} == {"team-a", "team-b"}
    assert all({"experiment", "pipeline", "namespace"} <= set(r) for r in runs)
    assert {r["state"] for r in runs} == {"RUNNING", "PENDING", "FAILED"}
    assert report["sources"][0] == {**report["sources"][0], "kind": "kfp", "name": "pipelines", "ok": True}


async def test_a_failure_reason_only_in_the_state_history_is_found(single):
    store, url, (_, _, failed, _) = single
    store.runs[failed["run_id"]]["error"] = None  # as KFP 2.14 sends a failed run
    src = await source_for(url)
    jobs = {j.id: j for j in (await src.fetch()).jobs}
    await src.aclose()
    assert "OOMKilled" in (jobs[failed["run_id"]].message or "")


async def test_unchanged_pages_give_the_same_records_and_a_change_is_read(single):
    """A quiet platform's poll reuses the last records (no rebuild), but a run that changes on any
    page is read again: the memo never hides a change."""
    store, url, (running, pending, failed, archived) = single
    src = await source_for(url)
    try:
        first = await src.fetch()
        again = await src.fetch()
        assert again is first  # the same pages byte for byte: the same records
        store.set_state(pending["run_id"], "RUNNING")
        changed = await src.fetch()
        assert changed is not first
        assert {j.id: j.state for j in changed.jobs}[pending["run_id"]] is JobState.RUNNING
        before, after = ({j.id: j for j in d.jobs} for d in (first, changed))
        assert after[running["run_id"]] is before[running["run_id"]]  # a run that did not change: kept
        assert len(changed.jobs) == len(first.jobs)
        store.add_run("late", store.add_experiment("exp-b", "kubeflow")["experiment_id"], state="PENDING",
                      created_at=FIXED_NOW)
        late = {j.name: j for j in (await src.fetch()).jobs}["late"]
        assert late.experiment == "exp-b"  # a new run's experiment name is learned as before
    finally:
        await src.aclose()
