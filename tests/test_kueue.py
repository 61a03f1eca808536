"""Kueue: Workloads, LocalQueues and ClusterQueues on the fake API server (both versions, read through the
official client), positions from the visibility API or estimated, reasons in KEP-10852's words,
stop / resume, `--once --json`, and the queues view."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from datetime import timedelta

import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from textual.app import App
from textual.widgets import DataTable

from mltop.adapters.kueue_parse import reason_words, workload_facts
from mltop.dashboard import Dashboard
from mltop.demo import kueue_objects as q
from mltop.errors import Conflict, Unauthorized
from mltop.model import QueueUse
from mltop.tui.queues_view import QueuesScreen
from tests.conftest import FIXED_NOW
from tests.kube_helpers import start_fake_cluster

V1B1 = "kueue.x-k8s.io/v1beta1"
HELD = ("couldn't assign flavors to pod set main: insufficient unused quota for nvidia.com/gpu in flavor "
        "a100-team-a, 2 more needed")


@pytest.fixture
def cluster(tmp_path):
    fake = start_fake_cluster(tmp_path)
    fake.call(lambda: q.seed_team_a(fake.store, FIXED_NOW))
    yield fake
    fake.server.stop()


@pytest.fixture
async def source(cluster):
    src = cluster.source()
    yield src
    await src.aclose()


def by_id(data):
    return {j.id: j for j in data.jobs}


def official(cluster) -> k8s.CustomObjectsApi:
    return k8s.CustomObjectsApi(k8s_config.new_client_from_config(cluster.kubeconfig, context=cluster.context))


def seed_v1beta1(store) -> None:
    """A Kueue v0.14 cluster: v1beta1 only, LocalQueue usage under `flavorUsage`."""
    store.unserved.add(("kueue.x-k8s.io", "v1beta2"))
    store.put(q.cluster_queue("cq-old", "default-flavor", gpus=4, used=4, pending=1, admitted=1, api=V1B1,
                              cohort="research"))
    store.put(q.local_queue("lq-old", "lab", "cq-old", pending=1, admitted=1, api=V1B1))
    pod = q.queued_pod("probe-0", "lab", "lq-old", gpus=2, created=FIXED_NOW - timedelta(minutes=3))
    store.put(pod)
    store.put(q.workload(pod, "lq-old", created=FIXED_NOW - timedelta(minutes=3), api=V1B1,
                         message="couldn't assign flavors to pod set main: borrowing limit for nvidia.com/gpu in "
                                 "flavor default-flavor exceeded"))


def test_the_fake_servers_objects_read_through_the_official_client(cluster):
    api = official(cluster)
    cqs = api.list_cluster_custom_object("kueue.x-k8s.io", "v1beta2", "clusterqueues")["items"]
    assert [c["metadata"]["name"] for c in cqs] == ["team-a-cq"]
    assert cqs[0]["status"]["flavorsUsage"][0]["resources"][0] == {"name": "nvidia.com/gpu", "total": "6", "borrowed": "0"}
    wls = api.list_namespaced_custom_object("kueue.x-k8s.io", "v1beta2", "team-a", "workloads")["items"]
    assert len(wls) == 3 and all(w["metadata"]["ownerReferences"][0]["kind"] == "Pod" for w in wls)
    lq = api.get_namespaced_custom_object("kueue.x-k8s.io", "v1beta2", "team-a", "localqueues", "team-a-queue")
    assert lq["spec"]["clusterQueue"] == "team-a-cq" and "flavorsUsage" in lq["status"]
    assert api.get_cluster_custom_object("kueue.x-k8s.io", "v1beta2", "resourceflavors", "a100-team-a")["spec"]
    pending = api.api_client.call_api(
        "/apis/visibility.kueue.x-k8s.io/v1beta1/clusterqueues/{name}/pendingworkloads", "GET",
        path_params={"name": "team-a-cq"}, auth_settings=["BearerToken"], response_type="object",
        _return_http_data_only=True)
    assert pending["kind"] == "PendingWorkloadsSummary"
    assert [(i["metadata"]["name"].split("-")[1], i["positionInClusterQueue"], i["localQueueName"])
            for i in pending["items"]] == [("eval", 0, "team-a-queue"), ("sweep", 1, "team-a-queue")]
    by_lq = api.api_client.call_api(
        "/apis/visibility.kueue.x-k8s.io/v1beta2/namespaces/{namespace}/localqueues/{name}/pendingworkloads", "GET",
        path_params={"namespace": "team-a", "name": "team-a-queue"}, query_params=[("offset", "1")],
        auth_settings=["BearerToken"], response_type="object", _return_http_data_only=True)
    assert by_lq["apiVersion"] == "visibility.kueue.x-k8s.io/v1beta2"
    assert [(i["positionInClusterQueue"], i["positionInLocalQueue"]) for i in by_lq["items"]] == [(1, 1)]
    cluster.call(lambda: seed_v1beta1(cluster.store))
    with pytest.raises(k8s.ApiException) as gone:
        api.list_cluster_custom_object("kueue.x-k8s.io", "v1beta2", "clusterqueues")
    assert gone.value.status == 404
    old = api.list_namespaced_custom_object("kueue.x-k8s.io", "v1beta1", "lab", "localqueues")["items"][0]
    assert "flavorUsage" in old["status"] and old["spec"]["clusterQueue"] == "cq-old"


async def test_queued_pods_carry_queue_facts_and_positions_from_the_visibility_api(source):
    data = await source.fetch()
    jobs = by_id(data)
    first, second = jobs["team-a/eval-llama-0"], jobs["team-a/sweep-bs-0"]
    assert (first.queue, first.cluster_queue, first.queue_position, first.position_estimated) == \
        ("team-a/team-a-queue", "team-a-cq", 1, False)
    assert (second.queue_position, second.admission, second.queue_reason) == (2, "pending", "waiting for quota")
    assert first.held_by == "ClusterQueue team-a-cq has used 6 of its 8 nvidia.com/gpu"
    assert first.workload == f"team-a/{q.workload_name('eval-llama-0')}" and first.queue_message == HELD
    assert jobs["ml/finetune-70b-0-q8m4t"].queue is None  # not Kueue's: untouched
    assert "team-a/train-bert-0" not in jobs  # admitted and running: not in the queue
    assert data.queues == (QueueUse("test-ctx", "team-a-cq", "a100-team-a", "nvidia.com/gpu", 8.0, 6.0, 0.0, None,
                                    2, 1),)
    assert data.skipped == 0


async def test_without_the_visibility_api_positions_are_estimated_and_marked(cluster):
    # An older workload evicted 5 minutes ago goes to the back of Kueue's queue; mltop's estimate
    # (priority, then creation) cannot know that: the visibility API's answer must win when served.
    def evict():
        pod = q.queued_pod("old-run-0", "team-a", q.LOCAL_QUEUE, gpus=4, created=FIXED_NOW - timedelta(hours=1))
        wl = q.workload(pod, q.LOCAL_QUEUE, created=FIXED_NOW - timedelta(hours=1), message=HELD)
        wl["status"]["conditions"].append({"type": "Evicted", "status": "True", "reason": "Preempted",
                                           "message": "Preempted to accommodate a workload (UID: x) due to "
                                                      "prioritization in the ClusterQueue",
                                           "lastTransitionTime": q.k.rfc3339(FIXED_NOW - timedelta(minutes=5))})
        cluster.store.put(pod)
        cluster.store.put(wl)

    cluster.call(evict)
    src = cluster.source()
    try:
        served = by_id(await src.fetch())
    finally:
        await src.aclose()
    assert [served[i].queue_position for i in ("team-a/eval-llama-0", "team-a/sweep-bs-0", "team-a/old-run-0")] == [1, 2, 3]
    assert served["team-a/old-run-0"].admission == "evicted" and not served["team-a/old-run-0"].position_estimated
    cluster.store.unserved.add(("visibility.kueue.x-k8s.io", "v1beta1"))
    cluster.store.unserved.add(("visibility.kueue.x-k8s.io", "v1beta2"))
    src = cluster.source()
    try:
        guessed = by_id(await src.fetch())
    finally:
        await src.aclose()
    assert [guessed[i].queue_position for i in ("team-a/old-run-0", "team-a/eval-llama-0", "team-a/sweep-bs-0")] == [1, 2, 3]
    assert all(guessed[i].position_estimated for i in ("team-a/old-run-0", "team-a/eval-llama-0"))


async def test_a_v1beta1_only_kueue_is_read(tmp_path):
    fake = start_fake_cluster(tmp_path, seed=False)
    fake.call(lambda: seed_v1beta1(fake.store))
    src = fake.source()
    try:
        data = await src.fetch()
    finally:
        await src.aclose()
        fake.server.stop()
    job = by_id(data)["lab/probe-0"]
    assert (job.cluster_queue, job.queue_reason, job.queue_position) == ("cq-old", "borrowing limit", 1)
    assert data.queues[0].cohort == "research" and data.queues[0].used == 4


@pytest.mark.parametrize("reason, message, words", [
    ("Pending", HELD, "waiting for quota"),
    ("Pending", "couldn't assign flavors to pod set main: insufficient quota for nvidia.com/gpu in flavor a100, "
                "request > maximum capacity (16 > 8)", "exceeds max quota"),
    ("Pending", "couldn't assign flavors to pod set main: borrowing limit for nvidia.com/gpu in flavor a100 exceeded",
     "borrowing limit"),
    ("Pending", "couldn't assign flavors to pod set main: flavor a100 doesn't match node affinity",
     "no matching flavor"),
    ("Pending", "couldn't assign flavors to pod set main: resource nvidia.com/gpu unavailable in ClusterQueue",
     "no matching flavor"),
    ("Pending", "Pending the preemption of 2 workload(s)", "waiting for preemption"),
    ("Inadmissible", "ClusterQueue team-a-cq is inactive", "misconfigured"),
    ("WaitingForQuota", "anything", "waiting for quota"),  # KEP-10852's own reason, once Kueue ships it
    ("NoMatchingFlavor", "", "no matching flavor"),
    ("Pending", "something Kueue has not said before", None),
])
def test_reasons_in_kep_words(reason, message, words):
    assert reason_words(reason, message) == words


def test_a_workloads_state_from_its_conditions():
    pod = q.queued_pod("p", "ns", "lq", gpus=2, created=FIXED_NOW)
    wl = q.workload(pod, "lq", created=FIXED_NOW, message=HELD)
    assert (workload_facts(wl).state, workload_facts(wl).gpus) == ("pending", 2.0)
    wl["spec"]["active"] = False
    assert workload_facts(wl).state == "stopped"
    admitted = workload_facts(q.workload(pod, "lq", created=FIXED_NOW, admitted_to="cq"))
    assert (admitted.state, admitted.admitted_to, admitted.reason) == ("admitted", "cq", None)
    wl["spec"] = {"priority": "high", "podSets": [{"count": "x", "template": {"spec": {"containers": "junk"}}}]}
    facts = workload_facts(wl)  # junk fields are unknown, not a crash
    assert facts.priority is None and facts.state == "pending"


async def test_a_batch_job_held_suspended_is_a_row_of_its_own_and_junk_is_skipped(cluster, source):
    def add():
        pod = q.queued_pod("unused", "team-a", q.LOCAL_QUEUE, gpus=8, created=FIXED_NOW - timedelta(minutes=2))
        wl = q.workload(pod, q.LOCAL_QUEUE, created=FIXED_NOW - timedelta(minutes=2), priority=100,
                        message="couldn't assign flavors to pod set main: insufficient quota for nvidia.com/gpu in "
                                "flavor a100-team-a, request > maximum capacity (8 > 2)")
        wl["metadata"]["name"] = "job-big-train-3f2a1"
        wl["metadata"]["ownerReferences"] = [{"apiVersion": "batch/v1", "kind": "Job", "name": "big-train",
                                              "uid": "u1", "controller": True}]
        cluster.store.put(wl)
        cluster.store.put({"apiVersion": q.API, "kind": "Workload", "metadata": {"name": "junk", "namespace": "team-a"},
                           "spec": "not an object"})

    cluster.call(add)
    data = await source.fetch()
    own = by_id(data)["team-a/job-big-train-3f2a1"]
    assert own.key == "kubernetes/test-ctx/kueue/team-a/job-big-train-3f2a1" and own.kind == "kueue"
    assert (own.name, own.gpus, own.queue_position, own.queue_reason) == ("big-train", 8.0, 1, "exceeds max quota")
    assert by_id(data)["team-a/eval-llama-0"].queue_position == 2  # the higher priority goes first
    assert data.skipped == 1 and "junk" in data.skip_reason


def test_a_workload_owned_by_a_rayjob_or_a_job_annotates_that_row_only():
    from mltop.adapters.kube_kueue import attach
    from mltop.model import Job, JobState

    def row(key, kind, name, owner=None, pod_id=None):
        return Job(key=key, source="kubernetes", cluster="c", id=pod_id or f"research/{name}", name=name,
                   state=JobState.PENDING, native_state="", gpus=4, submitted_at=None, started_at=None,
                   finished_at=None, owner=owner, kind=kind, namespace="research")

    rows = (row("rayjob", "RayJob", "llm"), row("other-ns", "RayJob", "llm2"),
            row("pod-of-job", "Pod", "train", owner="Job/train", pod_id="research/train-0-abc"),
            row("pod-named-like-owner", "Pod", "llm", owner="Job/llm", pod_id="research/llm-0-x"))
    pod = q.queued_pod("x", "research", "lq", gpus=4, created=FIXED_NOW)
    facts = []
    for kind, name in (("RayJob", "llm"), ("Job", "train")):
        wl = q.workload(pod, "lq", created=FIXED_NOW, message=HELD)
        wl["metadata"]["name"] = f"{kind.lower()}-{name}"
        wl["metadata"]["ownerReferences"] = [{"apiVersion": "v1", "kind": kind, "name": name, "uid": "u",
                                              "controller": True}]
        facts.append(workload_facts(wl))
    memo: dict = {}
    for _ in range(2):  # the second time from the keys kept for the same rows: the same answer
        out = {j.key: j for j in attach(rows, facts, {}, {}, {}, False, "c", memo)}
        assert out["rayjob"].workload == "research/rayjob-llm" and out["rayjob"].queue_reason == "waiting for quota"
        assert out["pod-of-job"].workload == "research/job-train"
        assert out["other-ns"].workload is None and out["pod-named-like-owner"].workload is None
        assert len(out) == 4  # every workload found its row: none of its own
    assert {id(r) for r in rows} == set(memo)
    # A row that changed is a new object: its own keys are worked out, never the old row's.
    moved = (replace(rows[0], name="elsewhere"), *rows[1:])
    out = {j.key: j for j in attach(moved, facts, {}, {}, {}, False, "c", memo)}
    assert out["rayjob"].workload is None and len(out) == 5  # the Workload now has a row of its own
    assert {id(r) for r in moved} == set(memo)  # only this call's rows are kept


async def test_a_cluster_without_kueue_shows_what_it_showed_before(tmp_path):
    fake = start_fake_cluster(tmp_path)
    fake.store.unserved.update({("kueue.x-k8s.io", "v1beta2"), ("kueue.x-k8s.io", "v1beta1")})
    src = fake.source()
    try:
        data = await src.fetch()
    finally:
        await src.aclose()
        fake.server.stop()
    assert sorted(by_id(data)) == ["ml/finetune-70b-0-q8m4t", "research/sweep-lr-3-b2d9f"]
    assert data.queues == () and data.skipped == 0 and data.skip_reason is None
    assert all(j.queue is None and j.admission is None for j in data.jobs)


async def test_kueue_that_cannot_be_read_leaves_the_rest_of_the_cluster(cluster):
    cluster.store.denied_verbs.add(("list", "workloads"))  # RBAC lets us see queues, not workloads
    src = cluster.source(sync_timeout=10)
    try:
        started = time.monotonic()
        data = await src.fetch()
        assert time.monotonic() - started < 5  # a failing watch ends the wait; it does not hold the poll
    finally:
        await src.aclose()
    jobs = by_id(data)
    assert "ml/finetune-70b-0-q8m4t" in jobs and jobs["team-a/eval-llama-0"].queue is None
    assert data.skipped == 1 and "Kueue not read" in data.skip_reason and "forbidden" in data.skip_reason
    assert data.queues == () and len(data.nodes) == 11


def stored_workload(cluster, pod: str, namespace: str = "team-a"):
    return cluster.store.get(q.API, "Workload", q.workload_name(pod), namespace)


async def test_stop_and_resume_patch_exactly_that_workload(cluster, source):
    hostile = "eval-llama-0?dryRun=All#x"

    def add():
        pod = q.queued_pod(hostile, "team-a", q.LOCAL_QUEUE, gpus=4, created=FIXED_NOW)
        cluster.store.put(pod)
        cluster.store.put(q.workload(pod, q.LOCAL_QUEUE, created=FIXED_NOW, message=HELD))

    cluster.call(add)
    job = by_id(await source.fetch())[f"team-a/{hostile}"]
    outcome = await source.set_workload_active(job, False)
    assert outcome.accepted and "stopped" in outcome.message
    assert stored_workload(cluster, hostile)["spec"]["active"] is False
    assert stored_workload(cluster, "eval-llama-0")["spec"]["active"] is True  # its look-alike untouched
    # The Workload's watch delivers the change a moment after the PATCH is answered (later still on
    # a busy machine): the source shows it at a refresh after that, as it would on a real cluster.
    deadline = time.monotonic() + 10
    while (stopped := by_id(await source.fetch())[f"team-a/{hostile}"]).admission != "stopped" \
            and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert (stopped.admission, stopped.queue_reason) == ("stopped", "stopped (spec.active is false)")
    with pytest.raises(Conflict, match="already stopped"):
        await source.set_workload_active(stopped, False)
    assert (await source.set_workload_active(stopped, True)).accepted
    assert stored_workload(cluster, hostile)["spec"]["active"] is True


async def test_stop_refused_by_rbac_or_a_403_or_a_conflict_is_one_line(cluster, source):
    job = by_id(await source.fetch())["team-a/eval-llama-0"]
    cluster.store.denied_verbs.add(("patch", "workloads"))
    with pytest.raises(Unauthorized, match=r"may not patch workloads.kueue.x-k8s.io in namespace team-a \(RBAC\)"):
        await source.set_workload_active(job, False)
    source._access.clear()
    cluster.store.access = lambda attrs: True  # the review says yes; the API server still says no
    with pytest.raises(Unauthorized, match="forbidden") as refused:
        await source.set_workload_active(job, False)
    assert "\n" not in str(refused.value)
    cluster.store.denied_verbs.clear()
    custom = source.kueue._custom
    real_get = custom.get_namespaced_custom_object

    def get_then_someone_changes_it(*args, **kwargs):
        obj = real_get(*args, **kwargs)
        current = stored_workload(cluster, "eval-llama-0")
        current["spec"]["priority"] = 5
        cluster.call(lambda: cluster.store.put(current))
        return obj

    custom.get_namespaced_custom_object = get_then_someone_changes_it
    with pytest.raises(Conflict, match="changed while mltop read it") as conflict:
        await source.set_workload_active(job, False)
    assert "\n" not in str(conflict.value)
    assert stored_workload(cluster, "eval-llama-0")["spec"]["active"] is True


def test_once_json_carries_queue_position_reason_and_the_held_by_quota_warning(cluster):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "MLTOP_", "KUBE"))}
    env["MLTOP_CONFIG"] = os.devnull
    out = subprocess.run([sys.executable, "-m", "mltop", "--once", "--json", "--kubeconfig", cluster.kubeconfig,
                          "--context", cluster.context], capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode in (0, 1), out.stderr
    report = json.loads(out.stdout)
    jobs = {j["id"]: j for j in report["jobs"]}
    first = jobs["team-a/eval-llama-0"]
    assert (first["queue"], first["cluster_queue"], first["queue_position"], first["position_estimated"],
            first["queue_reason"], first["admission"]) == ("team-a/team-a-queue", "team-a-cq", 1, False,
                                                           "waiting for quota", "pending")
    assert "held by quota: ClusterQueue team-a-cq has used 6 of its 8 nvidia.com/gpu" in first["waiting_reason"]
    assert "position 1 in ClusterQueue team-a-cq" in first["waiting_reason"]
    assert jobs["ml/finetune-70b-0-q8m4t"]["queue"] is None
    held = [w for w in report["warnings"] if w["kind"] == "idle-while-waiting" and "held by quota" in w["message"]]
    assert {w["target_name"] for w in held} == {"eval-llama-0", "sweep-bs-0"}
    assert report["queues"] == [{"cluster": "test-ctx", "cluster_queue": "team-a-cq", "cohort": None,
                                 "flavor": "a100-team-a", "resource": "nvidia.com/gpu", "nominal_quota": 8.0,
                                 "used": 6.0, "borrowed": 0.0, "borrowing_limit": None, "pending_workloads": 2,
                                 "admitted_workloads": 1}]


async def test_the_reason_cell_says_position_and_kep_words(source):
    from mltop.config import Config
    from mltop.dashboard import dashboard_for
    from mltop.model import SourceHealth
    from mltop.refresh import SourceUpdate

    data = await source.fetch()
    board: Dashboard = dashboard_for([source], Config())
    health = SourceHealth("kubernetes", source.name, True, None, 1.0, FIXED_NOW, FIXED_NOW)
    board.update(SourceUpdate(key=source.key, health=health, data=data))
    view = board.view(FIXED_NOW)
    job = next(j for j in view.jobs if j.id == "team-a/sweep-bs-0")
    assert view.waiting_short(job) == "#2 waiting for quota"
    assert view.queues == data.queues
    why = view.waiting_reason(job)  # the warning's words, then Kueue's, the quota said once
    assert why.startswith("18.7 GPUs idle while sweep-bs-0 waits for 4: held by quota: ClusterQueue team-a-cq has used "
                          "6 of its 8 nvidia.com/gpu; raise the ClusterQueue's nominal quota")
    assert why.count("held by quota") == 1 and "position 2 in ClusterQueue team-a-cq" in why and HELD in why
    finetune = next(j for j in view.jobs if j.id == "ml/finetune-70b-0-q8m4t")
    assert "Kueue" not in (view.waiting_reason(finetune) or "") and view.waiting_short(finetune) == "node selector/affinity"


async def test_the_queues_screen_shows_quota_and_the_held_jobs_inert(source):
    data = await source.fetch()
    hostile = QueueUse("c", "cq[/b]\x1b", "f", "nvidia.com/gpu", 4.0, None, None, 2.0, None, 0)

    class Host(App):
        async def on_mount(self) -> None:
            await self.push_screen(QueuesScreen((*data.queues, hostile), data.jobs))

    app = Host()
    async with app.run_test(size=(160, 30)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, QueuesScreen)
        table = screen.query_one("#cluster-queues", DataTable)
        rows = [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
        assert rows[0][:2] == ["c", "cq[/b]\\x1b"] and rows[0][5] == "?" and rows[0][6] == "?/2"
        assert rows[1][1:] == ["team-a-cq", "a100-team-a", "nvidia.com/gpu", "8", "6", "0", "2", "1"]
        held = screen.query_one("#held-jobs", DataTable)
        assert [str(held.get_row_at(i)[1]) for i in range(held.row_count)] == ["#1", "#2"]
        await pilot.press("escape")
        assert not isinstance(app.screen, QueuesScreen)
