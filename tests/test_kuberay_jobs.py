"""KubeRay RayJobs: served by the fake API server, read by the official client, shown as queue rows
(source "kuberay"), and deleted as their cancel."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from datetime import timedelta

import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes import watch as k8s_watch
from kubernetes.client.exceptions import ApiException

from mltop.adapters.kuberay_jobs import cluster_gpus, job_state, native_state, parse_rayjob_id, rayjob_row
from mltop.config import Config
from mltop.demo.kube_objects import worker_group
from mltop.demo.kube_rayjobs import API, head_group, rayjob, seed_rayjobs
from mltop.errors import Conflict, Unauthorized
from mltop.model import JobState
from mltop.tui.app import MltopApp
from mltop.tui.confirm import ConfirmCancel, describe
from mltop.widgets.jobs_table import JobsTable
from tests.conftest import FIXED_NOW, fixed_clock
from tests.kube_helpers import start_fake_cluster

GROUP, VERSION, PLURAL = "ray.io", "v1", "rayjobs"


@pytest.fixture
def cluster(tmp_path):
    fake = start_fake_cluster(tmp_path)
    fake.call(lambda: seed_rayjobs(fake.store, FIXED_NOW))
    yield fake
    fake.server.stop()


@pytest.fixture
async def source(cluster):
    src = cluster.source()
    yield src
    await src.aclose()


@pytest.fixture
def custom(cluster):
    api = k8s_config.new_client_from_config(config_file=cluster.kubeconfig, context=cluster.context)
    yield k8s.CustomObjectsApi(api)
    api.close()


def plain(renderable) -> str:
    from rich.console import Console

    console = Console(width=200, record=True, file=open(os.devnull, "w"))
    console.print(renderable)
    return console.export_text()


def rows(data):
    return {j.name: j for j in data.jobs if j.source == "kuberay"}


def put(cluster, obj):
    return cluster.call(lambda: cluster.store.put(obj))


def stored(cluster, name, namespace):
    return cluster.call(lambda: cluster.store.get(*API, name, namespace))


# -- the fake server, through the official client ---------------------------------------------------


def test_the_official_client_lists_gets_and_watches_rayjobs(cluster, custom):
    listed = custom.list_cluster_custom_object(GROUP, VERSION, PLURAL, _request_timeout=10)
    assert listed["kind"] == "RayJobList" and [i["metadata"]["name"] for i in listed["items"]] == [
        "llm-finetune-7b", "embed-backfill"]
    one = custom.get_namespaced_custom_object(GROUP, VERSION, "serve", PLURAL, "embed-backfill", _request_timeout=10)
    assert one["status"]["jobDeploymentStatus"] == "Running" and one["metadata"]["uid"]
    start = listed["metadata"]["resourceVersion"]
    cluster.call(lambda: cluster.store.delete(*API, "embed-backfill", "serve"))
    events = [(e["type"], e["object"]["metadata"]["name"]) for e in k8s_watch.Watch().stream(
        custom.list_cluster_custom_object, GROUP, VERSION, PLURAL, resource_version=start, timeout_seconds=1)]
    assert ("DELETED", "embed-backfill") in events


def test_a_cluster_without_the_crd_answers_404_with_a_status(cluster, custom):
    cluster.call(lambda: cluster.store.uninstalled.add("rayjobs.ray.io"))
    with pytest.raises(ApiException) as info:
        custom.list_cluster_custom_object(GROUP, VERSION, PLURAL, _request_timeout=10)
    body = json.loads(info.value.body)
    assert info.value.status == 404 and (body["kind"], body["reason"]) == ("Status", "NotFound")
    custom.list_cluster_custom_object(GROUP, VERSION, "rayclusters", _request_timeout=10)  # KubeRay's other CRD stays


def test_delete_answers_as_the_apiserver_does(cluster, custom):
    uid = stored(cluster, "embed-backfill", "serve")["metadata"]["uid"]
    with pytest.raises(ApiException) as info:
        custom.delete_namespaced_custom_object(GROUP, VERSION, "serve", PLURAL, "embed-backfill",
                                               body={"preconditions": {"uid": "someone-else"}}, _request_timeout=10)
    assert info.value.status == 409 and "Precondition failed: UID in precondition: someone-else" in info.value.body
    with pytest.raises(ApiException) as info:
        custom.delete_namespaced_custom_object(GROUP, VERSION, "serve", PLURAL, "embed-backfill",
                                               propagation_policy="Sideways", _request_timeout=10)
    assert info.value.status == 422
    with pytest.raises(ApiException) as info:  # a RayCluster is not deleted from here: not a route that deletes
        custom.delete_namespaced_custom_object(GROUP, VERSION, "ml", "rayclusters", "train-cluster", _request_timeout=10)
    assert info.value.status == 405
    answer = custom.delete_namespaced_custom_object(GROUP, VERSION, "serve", PLURAL, "embed-backfill",
                                                    body={"propagationPolicy": "Background",
                                                          "preconditions": {"uid": uid}}, _request_timeout=10)
    assert answer["metadata"]["name"] == "embed-backfill" and stored(cluster, "embed-backfill", "serve") is None
    with pytest.raises(ApiException) as info:
        custom.delete_namespaced_custom_object(GROUP, VERSION, "serve", PLURAL, "embed-backfill", _request_timeout=10)
    assert info.value.status == 404


def test_a_rayjob_with_a_finalizer_is_marked_not_removed(cluster, custom):
    put(cluster, rayjob("held", "ml", created=FIXED_NOW, entrypoint="x", deployment="Running", ray_status="RUNNING",
                        finalizers=["ray.io/rayjob-finalizer"]))
    answer = custom.delete_namespaced_custom_object(GROUP, VERSION, "ml", PLURAL, "held", _request_timeout=10)
    assert answer["metadata"]["deletionTimestamp"]
    assert stored(cluster, "held", "ml")["metadata"]["finalizers"] == ["ray.io/rayjob-finalizer"]


# -- state mapping, GPUs ----------------------------------------------------------------------------

P, R, S, F, C = JobState.PENDING, JobState.RUNNING, JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED


@pytest.mark.parametrize("deployment, ray_status, state, native", [
    ("", "", P, "New"),
    ("Initializing", "", P, "Initializing"),
    ("Initializing", "PENDING", P, "Initializing/PENDING"),
    ("Waiting", "", P, "Waiting"),
    ("Running", "", P, "Running"),
    ("Running", "PENDING", P, "Running/PENDING"),
    ("Running", "RUNNING", R, "Running/RUNNING"),
    ("Running", "SUCCEEDED", S, "Running/SUCCEEDED"),
    ("Running", "STOPPED", C, "Running/STOPPED"),
    ("Complete", "SUCCEEDED", S, "Complete/SUCCEEDED"),
    ("Complete", "FAILED", F, "Complete/FAILED"),
    ("Complete", "STOPPED", C, "Complete/STOPPED"),
    ("Failed", "FAILED", F, "Failed/FAILED"),
    ("Failed", "", F, "Failed"),
    ("ValidationFailed", "", F, "ValidationFailed"),
    ("Suspending", "RUNNING", P, "Suspending/RUNNING"),
    ("Suspended", "", P, "Suspended"),
    ("Retrying", "FAILED", P, "Retrying/FAILED"),
    ("Scheduled", "", P, "Scheduled"),
    ("SomethingNew", "RUNNING", R, "SomethingNew/RUNNING"),  # a newer KubeRay word: the Ray job's status says
])
def test_kuberay_states_map_to_mltop_states_keeping_the_native_one(deployment, ray_status, state, native):
    assert job_state(deployment, ray_status, deleting=False) is state
    assert native_state(deployment, ray_status, deleting=False) == native


def test_a_deleting_rayjob_is_cancelling_and_says_so():
    assert job_state("Running", "RUNNING", deleting=True) is JobState.CANCELLING
    assert native_state("Running", "RUNNING", deleting=True) == "Terminating (Running/RUNNING)"
    assert job_state("Complete", "SUCCEEDED", deleting=True) is JobState.SUCCEEDED


def test_gpus_are_the_head_plus_each_worker_groups_replicas_times_its_limits():
    spec = {"headGroupSpec": head_group(gpus=1), "workerGroupSpecs": [
        worker_group("a", replicas=2, min_replicas=0, max_replicas=4, gpus=8),
        {**worker_group("b", replicas=1, min_replicas=3, max_replicas=5, gpus=2), "numOfHosts": 2},  # 3 x 2 hosts
        {**worker_group("c", replicas=4, min_replicas=0, max_replicas=4, gpus=4), "suspend": True},
        {**worker_group("d", replicas=1, min_replicas=0, max_replicas=1, gpus=0), "rayStartParams": {"num-gpus": "2"}},
    ]}
    assert cluster_gpus(spec) == 1 + 16 + 12 + 0 + 2
    spec["workerGroupSpecs"][0]["replicas"] = "many"
    assert cluster_gpus(spec) is None  # unknown, never a smaller number
    assert cluster_gpus({"workerGroupSpecs": "junk"}) is None


def test_a_rayjob_that_cannot_be_read_is_skipped_and_counted_others_show():
    good = rayjob("ok", "ml", created=FIXED_NOW, entrypoint="x", deployment="Running", ray_status="RUNNING")
    assert rayjob_row(good, {}, "c").state is JobState.RUNNING
    for bad in ({"metadata": {"name": "x"}, "status": {"jobDeploymentStatus": 7}},
                {"metadata": {"name": "x"}, "status": {"jobDeploymentStatus": "Bogus", "jobStatus": "MAYBE"}},
                {"metadata": {"name": "x"}, "spec": "junk"}, ["not", "an", "object"]):
        with pytest.raises(ValueError):
            rayjob_row(bad, {}, "c")


# -- the source ----------------------------------------------------------------------------------------


async def test_rayjobs_are_queue_rows_with_cluster_submission_id_gpus_and_wait(source):
    data = await source.fetch()
    found = rows(data)
    running, waiting = found["embed-backfill"], found["llm-finetune-7b"]
    assert (running.state, running.native_state, running.ray_cluster, running.submission_id) == (
        JobState.RUNNING, "Running/RUNNING", "serve-cluster", "embed-backfill-x8k2p")
    assert running.gpus == 1  # serve-cluster as listed: 1 worker x 1 GPU, head none
    assert running.id == "rayjob:serve/embed-backfill" and running.key == "kubernetes/test-ctx/rayjob/serve/embed-backfill"
    assert running.cancellable and "RayCluster serve-cluster is not its own (clusterSelector) and stays" in (
        running.cancel_effect)
    assert (waiting.state, waiting.native_state, waiting.gpus) == (JobState.PENDING, "Initializing", 16)
    assert waiting.queued_seconds(FIXED_NOW) == 6 * 60
    assert waiting.message == "its RayCluster is not created yet (llm-finetune-7b-raycluster-q2x7m)"
    assert "which it owns" in waiting.cancel_effect
    assert {j.id for j in data.jobs if j.source == "kubernetes"} == {"ml/finetune-70b-0-q8m4t",
                                                                     "research/sweep-lr-3-b2d9f"}
    assert data.skipped == 0


async def test_message_and_reason_of_a_failed_rayjob(cluster, source):
    put(cluster, rayjob("oom", "ml", created=FIXED_NOW - timedelta(hours=1), entrypoint="x", deployment="Failed",
                        ray_status="FAILED", reason="AppFailed", message="Job entrypoint command failed with exit code 1",
                        started=FIXED_NOW - timedelta(hours=1), ended=FIXED_NOW - timedelta(minutes=5)))
    job = rows(await source.fetch())["oom"]
    assert (job.state, job.reason, job.message) == (JobState.FAILED, "AppFailed",
                                                    "Job entrypoint command failed with exit code 1")
    assert job.finished_at == FIXED_NOW - timedelta(minutes=5) and not job.cancellable
    assert "nothing to stop" in job.not_cancellable_because


async def test_a_cluster_without_the_crd_shows_exactly_what_it_showed(tmp_path):
    bare = start_fake_cluster(tmp_path, context="bare")  # the cluster as before: no RayJob objects
    without = start_fake_cluster(tmp_path, context="no-crd")
    without.call(lambda: without.store.uninstalled.add("rayjobs.ray.io"))
    try:
        first, second = bare.source(), without.source()
        a, b = await first.fetch(), await second.fetch()
        await first.aclose()
        await second.aclose()
    finally:
        bare.server.stop()
        without.server.stop()
    def same(data):  # the two clusters differ only in their names
        jobs = sorted((replace(j, key=j.key.split("/", 2)[2], cluster="") for j in data.jobs), key=lambda j: j.id)
        return jobs, sorted((p.kind, p.name, p.replicas, p.gpus_per_replica) for p in data.pools), len(data.nodes)

    assert same(b) == same(a) and len(b.jobs) == 2
    assert (b.skipped, b.skip_reason) == (0, None) and not any(j.source == "kuberay" for j in b.jobs)


async def test_rayjobs_that_may_not_be_listed_leave_the_rest_and_say_so(cluster, source):
    cluster.call(lambda: cluster.store.denied_verbs.add(("list", "rayjobs")))
    data = await source.fetch()
    assert not rows(data) and data.nodes and data.pools
    assert data.skipped == 1 and "RayJobs not read" in data.skip_reason and "forbidden" in data.skip_reason


async def test_one_bad_rayjob_is_counted_the_others_show(cluster, source):
    put(cluster, {**rayjob("weird", "ml", created=FIXED_NOW, entrypoint="x"),
                  "status": {"jobDeploymentStatus": "Bogus", "jobStatus": "MAYBE"}})
    data = await source.fetch()
    assert set(rows(data)) == {"embed-backfill", "llm-finetune-7b"}
    assert data.skipped == 1 and "RayJob ml/weird" in data.skip_reason


# -- cancel = delete -----------------------------------------------------------------------------------


async def test_cancel_deletes_exactly_that_rayjob(cluster, source):
    await source.fetch()
    outcome = await source.cancel_job("rayjob:serve/embed-backfill")
    assert outcome.accepted and "deletion requested" in outcome.message and "stopped" not in outcome.message
    assert stored(cluster, "embed-backfill", "serve") is None
    assert stored(cluster, "llm-finetune-7b", "research") is not None
    assert cluster.call(lambda: cluster.store.get("ray.io/v1", "RayCluster", "serve-cluster", "serve")) is not None
    assert "embed-backfill" not in rows(await source.fetch())


@pytest.mark.parametrize("hostile", ["eval?propagationPolicy=Orphan#x", "a b%2F..", "x/../../rayclusters/train-cluster"])
async def test_a_hostile_name_is_one_encoded_path_segment(cluster, source, hostile):
    put(cluster, rayjob(hostile, "ml", created=FIXED_NOW, entrypoint="x", deployment="Running", ray_status="RUNNING"))
    before = {o["metadata"]["name"] for o in cluster.call(lambda: cluster.store.list(*API))}
    assert hostile in {j.name for j in (await source.fetch()).jobs}
    await source.cancel_job(f"rayjob:ml/{hostile}")
    after = {o["metadata"]["name"] for o in cluster.call(lambda: cluster.store.list(*API))}
    assert before - after == {hostile}
    assert cluster.call(lambda: cluster.store.get("ray.io/v1", "RayCluster", "train-cluster", "ml")) is not None


async def test_a_403_is_one_line(cluster, source):
    await source.fetch()
    cluster.call(lambda: cluster.store.denied_verbs.add(("delete", "rayjobs")))
    with pytest.raises(Unauthorized) as info:
        await source.cancel_job("rayjob:serve/embed-backfill")
    assert "forbidden (403)" in str(info.value) and "\n" not in str(info.value)
    assert stored(cluster, "embed-backfill", "serve") is not None


async def test_a_rayjob_your_rbac_may_not_delete_says_why(cluster, source):
    cluster.call(lambda: cluster.store.denied_verbs.add(("delete", "rayjobs")))
    job = rows(await source.fetch())["embed-backfill"]
    assert not job.cancellable and "may not delete rayjobs in namespace serve" in job.not_cancellable_because


async def test_a_rayjob_replaced_under_the_same_name_is_not_deleted_409(cluster, source):
    await source.fetch()
    old = stored(cluster, "embed-backfill", "serve")
    cluster.call(lambda: cluster.store.delete(*API, "embed-backfill", "serve"))
    old["metadata"].pop("uid")
    put(cluster, old)  # someone made a new one with the same name since the row was shown
    with pytest.raises(Conflict) as info:
        await source.cancel_job("rayjob:serve/embed-backfill")
    assert "409" in str(info.value) and "\n" not in str(info.value)
    assert stored(cluster, "embed-backfill", "serve") is not None


async def test_cancel_refuses_ids_that_are_not_rayjobs(source):
    assert parse_rayjob_id("ml/finetune-70b-0-q8m4t") is None
    with pytest.raises(Conflict, match="not a RayJob"):
        await source.cancel_job("ml/finetune-70b-0-q8m4t")  # a pending pod is never deleted from here


async def test_a_rayjob_being_deleted_is_cancelling_and_not_cancellable_again(cluster, source):
    put(cluster, rayjob("held", "ml", created=FIXED_NOW, entrypoint="x", deployment="Running", ray_status="RUNNING",
                        finalizers=["ray.io/rayjob-finalizer"]))
    await source.fetch()
    outcome = await source.cancel_job("rayjob:ml/held")
    assert "KubeRay stops the Ray job before it goes" in outcome.message
    job = rows(await source.fetch())["held"]
    assert job.state is JobState.CANCELLING and not job.cancellable and "already requested" in job.not_cancellable_because


# -- what users see ------------------------------------------------------------------------------------


def test_once_json_carries_the_rayjob_fields(cluster):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "MLTOP_", "KUBE"))}
    env["MLTOP_CONFIG"] = os.devnull
    out = subprocess.run([sys.executable, "-m", "mltop", "--once", "--json", "--kubeconfig", cluster.kubeconfig,
                          "--context", cluster.context], capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    jobs = {j["name"]: j for j in json.loads(out.stdout)["jobs"] if j["source"] == "kuberay"}
    running, waiting = jobs["embed-backfill"], jobs["llm-finetune-7b"]
    assert (running["state"], running["native_state"], running["ray_cluster"], running["submission_id"]) == (
        "RUNNING", "Running/RUNNING", "serve-cluster", "embed-backfill-x8k2p")
    assert (waiting["state"], waiting["gpus"], waiting["kind"]) == ("PENDING", 16.0, "RayJob")
    assert waiting["queued_seconds"] > 0 and "not created yet" in waiting["waiting_reason"]
    assert "reason" in waiting and waiting["id"] == "rayjob:research/llm-finetune-7b"


async def test_the_queue_shows_the_rayjob_and_the_confirmation_names_the_deletion(cluster):
    put(cluster, rayjob("held", "ml", created=FIXED_NOW, entrypoint="x", deployment="Running", ray_status="RUNNING",
                        finalizers=["ray.io/rayjob-finalizer"], selector="train-cluster", cluster="train-cluster"))
    app = MltopApp(Config(), [cluster.source()], clock=fixed_clock, start_polling=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await app.refresh_now()
        await pilot.pause()
        table = app.query_one(JobsTable)
        key = "kubernetes/test-ctx/rayjob/ml/held"
        assert {"kubernetes/test-ctx/rayjob/serve/embed-backfill", key} <= set(table.records)
        table.focus()
        table.select_key(key)
        await pilot.press("ctrl+d")
        dialog = app.screen
        assert isinstance(dialog, ConfirmCancel) and dialog.job.id == "rayjob:ml/held"
        shown = " ".join(str(w.render()) for w in dialog.query("Label, Static"))
        assert "Delete this KubeRay RayJob?" in shown
        assert "deletes RayJob ml/held; RayCluster train-cluster is not its own" in " ".join(
            plain(describe(dialog.job)).split())
        await pilot.press("y")
        await app.workers.wait_for_complete()
        await app.refresh_now()
        await pilot.pause()
        assert stored(cluster, "held", "ml")["metadata"]["deletionTimestamp"]
        assert any("deletion requested" in n.message for n in app._notifications)
        assert table.jobs[key].stop_requested_at is not None
        assert "STOP SENT" in [str(cell) for cell in table.get_row(key)]  # not "stopped": it is still there


# -- with Kueue, and the raw view -----------------------------------------------------------------------


def kueue_rayjob_workload(job: dict, queue: str, created) -> dict:
    """The Workload Kueue's RayJob integration makes: owned by the RayJob, one pod set per group."""
    from mltop.demo.kueue_objects import API as KUEUE_API

    meta = job["metadata"]
    spec = job["spec"]["rayClusterSpec"]
    sets = [{"name": "head", "count": 1, "template": spec["headGroupSpec"]["template"]}] + [
        {"name": g["groupName"], "count": g["replicas"], "template": g["template"]} for g in spec["workerGroupSpecs"]]
    return {"apiVersion": KUEUE_API, "kind": "Workload",
            "metadata": {"name": f"rayjob-{meta['name']}-3f9a1", "namespace": meta["namespace"],
                         "creationTimestamp": meta["creationTimestamp"],
                         "labels": {"kueue.x-k8s.io/job-uid": "uid-rj"},
                         "ownerReferences": [{"apiVersion": "ray.io/v1", "kind": "RayJob", "name": meta["name"],
                                              "uid": "uid-rj", "controller": True, "blockOwnerDeletion": True}]},
            "spec": {"active": True, "queueName": queue, "priority": 0, "podSets": sets},
            "status": {"conditions": [{"type": "QuotaReserved", "status": "False", "reason": "Pending",
                                       "lastTransitionTime": meta["creationTimestamp"], "message":
                                       "couldn't assign flavors to pod set gpu: insufficient unused quota for "
                                       "nvidia.com/gpu in flavor a100-team-a, 8 more needed"}]}}


async def test_a_kueue_suspended_rayjob_is_one_row_with_its_queue_facts(cluster, source):
    from mltop.demo.kueue_objects import CLUSTER_QUEUE, FLAVOR, LOCAL_QUEUE, NAMESPACE, cluster_queue, local_queue

    spec = {"rayVersion": "2.60.0", "headGroupSpec": head_group(),
            "workerGroupSpecs": [worker_group("gpu", replicas=1, min_replicas=1, max_replicas=1, gpus=8)]}
    job = rayjob("tune-7b", NAMESPACE, created=FIXED_NOW - timedelta(minutes=9), cluster_spec=spec, suspend=True,
                 entrypoint="python tune.py", deployment="Suspended", labels={"kueue.x-k8s.io/queue-name": LOCAL_QUEUE})
    for obj in (cluster_queue(CLUSTER_QUEUE, FLAVOR, gpus=8, used=8, pending=1, admitted=1),
                local_queue(LOCAL_QUEUE, NAMESPACE, CLUSTER_QUEUE, pending=1, admitted=1), job,
                kueue_rayjob_workload(job, LOCAL_QUEUE, FIXED_NOW)):
        put(cluster, obj)
    data = await source.fetch()
    mine = [j for j in data.jobs if j.name == "tune-7b"]
    assert len(mine) == 1  # the RayJob's row carries its Workload: no second row for the Workload
    row = mine[0]
    assert (row.source, row.state, row.native_state, row.gpus) == ("kuberay", JobState.PENDING, "Suspended", 8)
    assert row.queue == f"{NAMESPACE}/{LOCAL_QUEUE}" and row.workload == f"{NAMESPACE}/rayjob-tune-7b-3f9a1"
    assert row.message is None  # Suspended by Kueue: the queue facts say why, not a made-up cluster note
    # Suspend / resume under Kueue is its Workload's spec.active (kueuectl stop / resume), which the row carries.
    outcome = await source.set_workload_active(row, False)
    assert outcome.accepted
    stopped = cluster.call(lambda: cluster.store.get(kueue_rayjob_workload(job, LOCAL_QUEUE, FIXED_NOW)["apiVersion"],
                                                     "Workload", "rayjob-tune-7b-3f9a1", NAMESPACE))
    assert stopped["spec"]["active"] is False and stored(cluster, "tune-7b", NAMESPACE)["spec"]["suspend"] is True


async def test_y_shows_the_rayjob_as_the_api_server_holds_it(source):
    data = await source.fetch()
    job = rows(data)["embed-backfill"]
    assert source.raw_refusal(job) is None
    raw = await source.raw_object(job)
    assert raw.kind == "RayJob" and raw.name == "serve/embed-backfill"
    assert raw.api == "GET /apis/ray.io/v1/namespaces/serve/rayjobs/embed-backfill"
    assert raw.body["status"]["jobId"] == "embed-backfill-x8k2p"
