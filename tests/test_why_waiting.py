"""Why it waits, per backend, against the test servers: the scheduler's FailedScheduling events
(through the official client too), a KFP run's waiting step joined with its pending pod, the
short form in the jobs table's REASON column, and the warning pane that shows a warning in full."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import timedelta

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from mltop import format as fmt
from mltop.adapters.kfp import KfpSource
from mltop.adapters.kube import KubeSource
from mltop.adapters.kube_events import FIELD_SELECTOR, newest_per_pod, scheduling_event
from mltop.adapters.ray import RaySource
from mltop.config import Config
from mltop.dashboard import dashboard_for
from mltop.demo import kube_objects as k
from mltop.demo.kube_scenario import KFP_STEP_POD, seed_kfp_step
from mltop.model import JobState
from mltop.refresh import poll
from mltop.report import render_json, render_text
from mltop.waiting import first_words, most_free, ray_short, scheduler_short
from tests.conftest import FIXED_NOW, fixed_clock
from tests.kube_helpers import TOKEN, start_fake_cluster
from tests.test_cost import gpu_node
from tests.test_kube_api_contract import make_client
from tests.test_snapshots import make_full_app
from tests.test_tui_kube import plain

MIN = timedelta(minutes=1)
SEEDED = {"finetune-70b-0-q8m4t", "sweep-lr-3-b2d9f", KFP_STEP_POD}  # the demo's pending pods


@pytest.fixture
def cluster(tmp_path):
    fake = start_fake_cluster(tmp_path)
    yield fake
    fake.server.stop()


# -- Kubernetes: the events list, as the official client reads it -----------------------------------


def test_failed_scheduling_events_are_listed_filtered_and_paged_as_the_official_client_reads_them(cluster):
    cluster.call(lambda: seed_kfp_step(cluster.store, FIXED_NOW))  # as the demo platform adds it
    api = client.CoreV1Api(make_client(cluster.url, TOKEN))
    found = api.list_event_for_all_namespaces(field_selector=FIELD_SELECTOR)
    by_pod = {e.involved_object.name: e for e in found.items}
    assert set(by_pod) == SEEDED  # the "Scheduled" event of a placed pod is not one of them
    assert all(e.reason == "FailedScheduling" and e.type == "Warning" for e in found.items)
    # Both shapes deserialize: written through events.k8s.io/v1 (eventTime, series) and the older one.
    modern, legacy = by_pod["finetune-70b-0-q8m4t"], by_pod["sweep-lr-3-b2d9f"]
    assert modern.series.count == 18 and modern.event_time is not None and modern.last_timestamp is None
    assert modern.reporting_component == "default-scheduler" and "preemption:" in modern.message
    assert legacy.count == 4 and legacy.last_timestamp is not None and legacy.source.component == "default-scheduler"
    # One pod's events, by name, kind and namespace; paging at one snapshot, like every other list.
    one = api.list_namespaced_event("research", field_selector="involvedObject.kind=Pod,"
                                                               "involvedObject.name=sweep-lr-3-b2d9f")
    assert [e.involved_object.name for e in one.items] == ["sweep-lr-3-b2d9f"]
    assert api.list_event_for_all_namespaces(field_selector="involvedObject.namespace=team-nlp").items[0] \
        .involved_object.name == KFP_STEP_POD
    first = api.list_event_for_all_namespaces(field_selector=FIELD_SELECTOR, limit=2)
    rest = api.list_event_for_all_namespaces(field_selector=FIELD_SELECTOR, limit=2, _continue=first.metadata._continue)
    assert len(first.items) == 2 and len(rest.items) == 1 and not rest.metadata._continue
    assert {e.involved_object.name for e in first.items + rest.items} == SEEDED
    assert len(api.list_event_for_all_namespaces(field_selector="reason!=FailedScheduling").items) == 1
    with pytest.raises(ApiException) as err:
        api.list_event_for_all_namespaces(field_selector="involvedObject.colour=blue")
    assert err.value.status == 400


# -- Kubernetes: the adapter ---------------------------------------------------------------------------


async def test_a_pending_pod_says_what_its_newest_failed_scheduling_event_says(cluster):
    pod = k.pod("eval-0", "ml", gpus=4, created=FIXED_NOW - 10 * MIN, owner=("Job", "eval"))
    pod["status"]["conditions"] = []  # the scheduler has not written its condition yet: only the event speaks
    said = "0/10 nodes are available: 10 node(s) had untolerated taint {dedicated: infer}."
    for event in (
        # About an earlier pod of the same name (older than this one): not this pod's reason.
        k.scheduling_event("eval-0", "ml", "an earlier pod's reason", first=FIXED_NOW - 60 * MIN,
                           last=FIXED_NOW - 50 * MIN),
        k.scheduling_event("eval-0", "ml", "0/10 nodes are available: 10 Insufficient nvidia.com/gpu.",
                           first=FIXED_NOW - 9 * MIN, last=FIXED_NOW - 8 * MIN, count=2),
        k.scheduling_event("eval-0", "ml", said, first=FIXED_NOW - 7 * MIN, last=FIXED_NOW - MIN, count=6,
                           legacy=True),
    ):
        cluster.call(lambda e=event: cluster.store.put(e))
    cluster.call(lambda: cluster.store.put(pod))
    source = cluster.source()
    try:
        jobs = {j.id: j for j in (await source.fetch()).jobs}
        assert jobs["ml/eval-0"].scheduler_message == said and jobs["ml/eval-0"].message is None
        assert jobs["ml/finetune-70b-0-q8m4t"].scheduler_message.endswith("10 Preemption is not helpful for scheduling.")
        assert source.events.lists == 1
        await source.fetch()
        assert source.events.lists == 1  # read gently: not again within min_interval
    finally:
        await source.aclose()


async def test_a_quiet_cluster_hands_back_the_same_records_and_a_change_only_the_changed_rows(cluster):
    # What every memo after the source keys on (the REASON column, Kueue's row keys, the status
    # line's figures): the same objects while nothing changed, so they are not worked out again.
    source = cluster.source()
    try:
        first = await source.fetch()
        said = next(j for j in first.jobs if j.id == "ml/finetune-70b-0-q8m4t")
        assert said.scheduler_message
        assert await source.fetch() is first
        cluster.call(lambda: cluster.store.put(k.pod("late-0", "ml", gpus=2, created=FIXED_NOW, owner=("Job", "late"))))
        for _ in range(50):
            third = await source.fetch()
            if third is not first:
                break
            await asyncio.sleep(0.05)
        assert "ml/late-0" in {j.id for j in third.jobs}
        assert next(j for j in third.jobs if j.id == said.id) is said  # its record and message unchanged
    finally:
        await source.aclose()


async def test_events_the_cluster_forbids_leave_the_reason_to_the_pods_condition(cluster):
    cluster.call(lambda: cluster.store.denied_verbs.add(("list", "events")))
    source = cluster.source()
    try:
        data = await source.fetch()
        job = next(j for j in data.jobs if j.id == "research/sweep-lr-3-b2d9f")
        assert job.scheduler_message is None and job.message.startswith("0/10 nodes are available")
        assert "forbidden (403)" in source.events.error
    finally:
        await source.aclose()


@pytest.mark.parametrize("junk", [
    None, 3, [], "FailedScheduling", {"reason": "FailedScheduling"},
    {"reason": "FailedScheduling", "involvedObject": "pod"},
    {"reason": "FailedScheduling", "involvedObject": {"kind": "Pod", "name": 5, "namespace": "ml"}, "message": "m"},
    {"reason": "FailedScheduling", "involvedObject": {"kind": "Node", "name": "n", "namespace": "ml"}, "message": "m"},
    {"reason": "FailedScheduling", "involvedObject": {"kind": "Pod", "name": "p", "namespace": "ml"}, "message": {}},
])
def test_an_event_that_cannot_be_read_is_left_out(junk):
    assert scheduling_event(junk) is None


def test_an_event_with_junk_times_and_counts_is_kept_with_those_unknown():
    event = scheduling_event({"reason": "FailedScheduling", "message": "x" * 5000 + "\x1b]52;c;AAAA\x07",
                              "involvedObject": {"kind": "Pod", "name": "p", "namespace": "ml"},
                              "series": {"count": "NaN", "lastObservedTime": "yesterday"}, "count": -3,
                              "lastTimestamp": 7, "metadata": "junk"})
    assert event is not None and event.at is None and event.count == 1 and len(event.message) == 600
    assert newest_per_pod([event], {"ml/p": FIXED_NOW}) == {"ml/p": event.message}
    assert newest_per_pod([event], {"ml/other": None}) == {}


# -- the short form ------------------------------------------------------------------------------------


def test_the_short_form_is_what_most_nodes_say_in_a_few_words():
    taint = ("0/12 nodes are available: 4 Insufficient nvidia.com/gpu, 8 node(s) had untolerated taint "
             "{dedicated: infer}. preemption: 0/12 nodes are available: 12 Preemption is not helpful for scheduling.")
    assert scheduler_short(taint) == "taint: dedicated=infer"
    gpus = "0/12 nodes are available: 8 Insufficient nvidia.com/gpu, 4 node(s) had untolerated taint {dedicated: infer}."
    assert scheduler_short(gpus) == "Insufficient nvidia.com/gpu"
    assert scheduler_short(gpus, 8, most_free([gpu_node("a", free=4), gpu_node("b", free=2)])) == "needs 8 GPU, max free 4"
    # 8 free somewhere, yet the scheduler says too few: the free ones are ruled out otherwise; say its words.
    assert scheduler_short(gpus, 2, most_free([gpu_node("a", free=8)])) == "Insufficient nvidia.com/gpu"
    assert scheduler_short("0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims. "
                           "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.") == "unbound PVC"
    assert scheduler_short("0/5 nodes are available: 5 node(s) didn't match Pod's node affinity/selector.") \
        == "node selector/affinity"
    assert scheduler_short("Job has not started yet.") is None and scheduler_short(None) is None
    assert first_words("Job has not started yet. It may be waiting for resources.") == "Job has not started yet"


def test_a_ray_jobs_short_form_is_its_demand_against_the_cluster():
    from mltop.model import RayClusterState, RayNode

    nodes = (RayNode("a", "", "a", False, True, 8, 6), RayNode("b", "", "b", False, True, 8, 8))
    cluster = RayClusterState(nodes, ())
    assert ray_short(12, cluster) == "no node has 12 GPU (max 8)"
    assert ray_short(4, cluster) == "needs 4 GPU, max free 2"
    assert ray_short(2, cluster) is None and ray_short(None, cluster) is None


# -- KFP: the step that waits, joined with its pod ----------------------------------------------------


async def demo_view(platform):
    """One poll of every demo source (Ray, Kubernetes, KFP) and the view the screen and report show."""
    config = Config(endpoints={"ray": platform.ray_endpoints(), "kubernetes": platform.kube_targets(),
                               "kfp": platform.kfp_endpoints()})
    sources = [RaySource(e, clock=fixed_clock) for e in config.of("ray")]
    sources += [KubeSource(t, clock=fixed_clock) for t in config.of("kubernetes")]
    sources += [KfpSource(e, clock=fixed_clock) for e in config.of("kfp")]
    dashboard = dashboard_for(sources, config)
    try:
        for source in sources:
            dashboard.update(await poll(source, clock=fixed_clock))
    finally:
        for source in sources:
            await source.aclose()
    return dashboard.view(FIXED_NOW)


async def test_a_kfp_run_names_the_step_that_waits_and_why_its_pod_does(frozen_demo):
    view = await demo_view(frozen_demo)
    run = next(j for j in view.jobs if j.name == "finetune-mistral-7b" and j.source == "kfp")
    # KFP says RUNNING and gives no error (kubeflow/pipelines #13401); its train step's pod waits.
    assert run.state is JobState.RUNNING and run.message is None
    assert (run.waiting_step, run.waiting_pod) == ("train", KFP_STEP_POD)
    reason = view.waiting_reason(run)
    assert reason.startswith(f"step train waits: its pod demo-k8s/team-nlp/{KFP_STEP_POD} is Pending: ")
    assert "no node has 16 GPUs for one pod (the largest has 8)" in reason  # the idle-cost engine's words
    assert "The scheduler says: 0/10 nodes are available: 2 node(s) didn't match" in reason  # the event's
    assert view.waiting_short(run) == "train: needs 16 GPU, max free 8"
    # A run KFP has not started has no step to blame; a finished one does not wait.
    pending = next(j for j in view.jobs if j.name == "eval-nightly-2026-11-28")
    assert pending.waiting_step is None and view.waiting_reason(pending) == "the backend gives no reason"
    assert all(view.waiting_reason(j) is None for j in view.jobs if j.state.is_terminal)
    # The same words in --once --json and in the --once text.
    runs = {j["id"]: j for j in json.loads(render_json(view))["jobs"]}
    assert runs[run.id]["waiting_reason"] == reason
    assert f"demo-kfp/{run.id}: {reason}" in render_text(view)


async def test_a_step_whose_pod_no_kubernetes_source_sees_says_so(frozen_demo):
    view = await demo_view(frozen_demo)
    run = next(j for j in view.jobs if j.name == "finetune-mistral-7b" and j.source == "kfp")
    alone = replace(view, pending_pods={})  # as with no Kubernetes source for that cluster
    assert "waits for its pod " + KFP_STEP_POD + " to start; no Kubernetes source" in alone.waiting_reason(run)
    assert alone.waiting_short(run) == "train: pod not started"


# -- the REASON column ------------------------------------------------------------------------------


def reason_of(table, key):
    columns = [c for c, _, _ in table.columns_shown]
    return table.get_row(key)[columns.index("reason")].plain


@pytest.mark.parametrize("size", [(80, 24), (100, 30), (160, 48)])
async def test_the_reason_column_shows_where_there_is_room(frozen_demo, size):
    from mltop.widgets.jobs_table import JobsTable

    app = make_full_app(frozen_demo)
    async with app.run_test(size=size) as pilot:
        await app.refresh_now()
        await pilot.pause()
        table = app.query_one(JobsTable)
        shown = [c for c, _, _ in table.columns_shown]
        assert {"state", "gpus", "time"} <= set(shown)  # never pushed off
        assert sum(table._widths.values()) + 2 * len(shown) + 1 <= size[0] - 2
        if size[0] < 112:
            assert "reason" not in shown
            return
        assert "reason" in shown
        assert reason_of(table, "kubernetes/demo-k8s/ml/finetune-70b-0-q8m4t") == "node selector/affinity"
        assert reason_of(table, "ray/demo/raysubmit_pretrain13b") == "no node has 12 GPU (max 8)"
        assert reason_of(table, f"kubernetes/demo-k8s/team-nlp/{KFP_STEP_POD}") == "needs 16 GPU, max free 8"
        assert reason_of(table, "ray/demo/raysubmit_llama70b") == ""  # running: nothing to explain


# -- the warning pane --------------------------------------------------------------------------------


def test_the_warning_pane_shows_everything_inert():
    from mltop.model import IdleWarning
    from mltop.tui.warning_view import warning_view

    warning = IdleWarning(
        kind="idle-while-waiting", target="kubernetes/c/ml/job", target_name="ml/[bold]job\x1b]52;c;AAAA\x07",
        cluster="c", idle_gpus=8, idle_since=FIXED_NOW - 90 * MIN, idle_since_is_lower_bound=True,
        cost_per_hour=55.04, wasted=82.56, remedy="fix the job's placement", remedy_action="jobs.cancel",
        message="8 GPUs idle while job waits for 8: " + "it requires a label that no idle node has; " * 6)
    shown = plain(warning_view(warning, FIXED_NOW, "$", {"jobs.cancel": "ctrl+x"}))
    assert f"at least {fmt.long_duration(90 * 60)}" in shown
    assert "$55.04 an hour" in shown and "$82.56" in shown and "ctrl+x" in shown
    flat = " ".join(shown.split())  # wrapped to the width: compare the words
    assert "fix the job's placement" in flat and flat.count("no idle node has") == 6  # the whole message
    assert "[bold]" in shown and "\\x1b" in shown and "\x1b" not in shown  # shown, never obeyed


async def test_enter_on_a_warning_shows_it_whole_and_enter_again_goes_to_its_target(frozen_demo):
    from mltop.tui.warning_view import WarningScreen
    from mltop.widgets.infra_tables import WarningsTable
    from mltop.widgets.jobs_table import JobsTable

    app = make_full_app(frozen_demo)
    async with app.run_test(size=(100, 30)) as pilot:
        await app.refresh_now()
        await pilot.pause()
        warning = next(w for w in app.query_one(WarningsTable).records.values()
                       if w.target == "kubernetes/demo-k8s/ml/finetune-70b-0-q8m4t")
        app.push_screen(WarningScreen(warning, fixed_clock, go_to=app.main.go_to))
        await pilot.pause()
        body = plain(app.screen.query_one("#body").content)
        assert warning.message in " ".join(body.split()) and warning.remedy in " ".join(body.split())
        await pilot.press("enter")
        await pilot.pause()
        assert not isinstance(app.screen, WarningScreen)
        table = app.query_one(JobsTable)
        assert table.has_focus and table.selected_key == warning.target


def test_a_hostile_scheduler_message_is_shown_in_the_reason_cell_never_obeyed():
    from mltop.widgets.jobs_table import COLUMNS, row_cells
    from tests.factories import job

    said = "0/3 nodes are available: 3 node(s) had untolerated taint {[bold]x\x1b]52;c;AAAA\x07: y\u202e}."
    waiting = replace(job("p", JobState.PENDING), scheduler_message=said)
    short = scheduler_short(waiting.scheduler_message)
    cell = row_cells(waiting, FIXED_NOW, {key: 40 for key, _, _ in COLUMNS}, reason=short)[-1]
    assert cell.plain.startswith("taint: [bold]x\\x1b]52;c;AAAA") and "\x1b" not in cell.plain
    assert "\u202e" not in cell.plain and not cell.spans  # no markup was parsed: one style for the whole cell
