"""One identity chain (mltop/chain.py): a KFP run, the RayJob its step made, that RayJob's RayCluster
and its Ray job are one row, shown as a tree in details; cancel on the top says which layer it acts on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace

from rich.console import Console

from mltop import chain
from mltop.adapters.kfp_runs import step_pods
from mltop.adapters.kuberay_jobs import rayjob_row
from mltop.config import Config
from mltop.dashboard import Dashboard, dashboard_for
from mltop.demo.kfp_scenario import FINETUNE_RUN_ID
from mltop.demo.kube_rayjobs import CHAIN_RAY_CLUSTER, CHAIN_SUBMISSION_ID, kfp_step_rayjob, rayjob
from mltop.jobs import order_jobs
from mltop.model import JobState, SourceData, SourceHealth
from mltop.refresh import SourceUpdate
from mltop.report import to_json
from mltop.tui.app import MltopApp
from mltop.tui.confirm import ConfirmCancel, describe
from mltop.tui.details import JobDetailsScreen
from mltop.widgets.jobs_table import JobsTable
from tests.conftest import FIXED_NOW, fixed_clock
from tests.factories import job

RUN_KEY = f"kfp/demo-kfp/{FINETUNE_RUN_ID}"
RAYJOB_KEY = "kubernetes/demo-k8s/rayjob/team-nlp/finetune-llama-train"
RAY_KEY = f"ray/{CHAIN_RAY_CLUSTER}/{CHAIN_SUBMISSION_ID}"


def kfp_run(run_id: str = FINETUNE_RUN_ID, namespace: str | None = "team-nlp", pod: str = "finetune-llama-train-91x",
            state: JobState = JobState.RUNNING):
    """A KFP run row with its step pods read by the adapter's own reader from a run as KFP sends it."""
    run = {"run_id": run_id, "run_details": {"task_details": [
        {"display_name": "preprocess", "state": "SUCCEEDED", "child_tasks": [{"pod_name": "prep-7d2"}]},
        {"display_name": "train", "state": "RUNNING", "child_tasks": [{"pod_name": pod}]}]}}
    return replace(job(run_id, state, cluster="kfp", name="finetune-llama"), key=f"kfp/kfp/{run_id}", source="kfp",
                   kind="run", namespace=namespace, links=step_pods(run))


def kuberay(obj, cluster: str = "k8s"):
    return rayjob_row(obj, {}, cluster)


def ray_job(submission_id: str, cluster: str = "demo", state: JobState = JobState.RUNNING):
    return job(submission_id, state, cluster=cluster)


def plain(renderable) -> str:
    console = Console(width=250, record=True, file=open(os.devnull, "w"))
    console.print(renderable)
    return " ".join(console.export_text().split())


# -- the links --------------------------------------------------------------------------------------


def test_a_ray_job_is_the_child_of_the_rayjob_that_submitted_it():
    rj = kuberay(rayjob("embed", "serve", created=FIXED_NOW, entrypoint="x", deployment="Running",
                        ray_status="RUNNING", selector="serve-cluster", cluster="serve-cluster", job_id="embed-x8k2p"))
    for source_name in ("serve-cluster-head-svc.serve.svc.cluster.local", "serve-cluster-head-svc", "serve-cluster",
                        "serve/serve-cluster", "demo"):  # names its cluster, or names none and the id is unique
        ray = ray_job("embed-x8k2p", cluster=source_name)
        links = chain.link([rj, ray, ray_job("raysubmit_other", cluster=source_name)])
        assert links.parents == {ray.key: rj.key}, source_name
        assert links.children(rj.key) == (ray,) and links.top(ray.key) == rj.key


def test_no_link_on_a_look_alike_in_another_namespace_or_cluster():
    def train(namespace: str, cluster: str = "rc"):
        return kuberay(rayjob("train", namespace, created=FIXED_NOW, entrypoint="x", deployment="Running",
                              ray_status="RUNNING", selector=cluster, cluster=cluster, job_id="train-abc12"))

    a, b = train("team-a"), train("team-b")
    assert chain.link([a, b, ray_job("train-abc12", "rc-head-svc.team-b.svc")]).parents == {
        "ray/rc-head-svc.team-b.svc/train-abc12": b.key}
    assert chain.link([a, b, ray_job("train-abc12", "prod")]).parents == {}  # two RayJobs with that id: no guess
    assert chain.link([a, ray_job("train-abc12", "other-head-svc.team-a")]).parents == {}  # names another cluster
    assert chain.link([a, ray_job("train-abc12", "rc-head-svc.team-b")]).parents == {}  # ...or another namespace
    assert chain.link([a, ray_job("train-abc1"), ray_job("train"), ray_job("rayjob:team-a/train")]).parents == {}


def test_a_rayjob_is_the_child_of_the_kfp_run_by_its_owner_pod_or_run_id_label():
    run = kfp_run()
    both = kuberay(kfp_step_rayjob(FIXED_NOW))
    assert both.links == (f"kfp-run:{FINETUNE_RUN_ID}", "owner-pod:finetune-llama-train-91x")
    links = chain.link([run, both])
    assert links.parents == {both.key: run.key} and links.steps == {both.key: ("train", "finetune-llama-train-91x")}
    by_label = kuberay(kfp_step_rayjob(FIXED_NOW, pod=None))
    assert chain.link([run, by_label]).parents == {by_label.key: run.key}
    assert chain.link([run, by_label]).steps == {}  # no pod names it: the step is not known
    by_owner = kuberay(kfp_step_rayjob(FIXED_NOW, run_id=""))
    assert chain.link([run, by_owner]).steps == {by_owner.key: ("train", "finetune-llama-train-91x")}


def test_no_kfp_link_across_namespaces_or_when_two_runs_fit():
    elsewhere = kuberay(kfp_step_rayjob(FIXED_NOW, namespace="team-vision", run_id=""))  # same pod name, other ns
    assert chain.link([kfp_run(), elsewhere]).parents == {}
    unrelated = kuberay(kfp_step_rayjob(FIXED_NOW, run_id="another-run", pod="finetune-llama-train-9"))
    assert chain.link([kfp_run(), unrelated]).parents == {}
    owner_only = kuberay(kfp_step_rayjob(FIXED_NOW, run_id=""))
    twins = [kfp_run(namespace=None), kfp_run("other-run-id", namespace=None)]  # both name that pod
    assert chain.link([*twins, owner_only]).parents == {}


def test_a_child_still_running_under_an_ended_parent_stays_its_own_row():
    rj = kuberay(kfp_step_rayjob(FIXED_NOW, pod=None))
    assert chain.link([kfp_run(state=JobState.CANCELLED), rj]).parents == {}
    done = replace(rj, state=JobState.SUCCEEDED)
    assert chain.link([kfp_run(state=JobState.FAILED), done]).parents == {done.key: f"kfp/kfp/{FINETUNE_RUN_ID}"}


def test_junk_owner_references_and_labels_link_nothing_and_never_crash():
    obj = kfp_step_rayjob(FIXED_NOW)
    obj["metadata"]["labels"] = {"pipeline/runid": 7, "x": None}
    obj["metadata"]["ownerReferences"] = [None, "Pod", {"kind": "Pod", "name": 3}, {"kind": "Pod"}, {"name": "p"}]
    rj = kuberay(obj)
    assert rj.links == ()
    assert chain.link([kfp_run(), rj, ray_job(CHAIN_SUBMISSION_ID)]).parents == {
        f"ray/demo/{CHAIN_SUBMISSION_ID}": rj.key}


# -- the dashboard, the report, the screen ------------------------------------------------------------


def demo_sources(platform):
    from mltop.adapters.kfp import KfpSource
    from mltop.adapters.kube import KubeSource
    from mltop.adapters.ray import RaySource

    config = Config(endpoints={"ray": platform.ray_endpoints() + platform.chain_ray_endpoints(),
                               "kubernetes": platform.kube_targets(),
                               "kfp": platform.kfp_endpoints()})
    sources = [RaySource(e, clock=fixed_clock) for e in config.of("ray")]
    sources += [KubeSource(t, clock=fixed_clock) for t in config.of("kubernetes")]
    return config, sources + [KfpSource(e) for e in config.of("kfp")]


async def demo_view(platform):
    config, sources = demo_sources(platform)
    board = dashboard_for(sources, config)
    try:
        for source in sources:
            data = await source.fetch()
            health = SourceHealth(source.kind, source.name, True, None, 1.0, FIXED_NOW, FIXED_NOW)
            board.update(SourceUpdate(key=source.key, health=health, data=data))
    finally:
        for source in sources:
            await source.aclose()
    return board.view(FIXED_NOW)


async def test_four_layers_are_one_row_with_the_chain_as_a_tree(frozen_demo):
    view = await demo_view(frozen_demo)
    keys = [j.key for j in view.jobs]
    assert RUN_KEY in keys and RAYJOB_KEY not in keys and RAY_KEY not in keys
    assert [j.key for j in view.children_of(RUN_KEY)] == [RAYJOB_KEY]
    assert view.parent_of(RAY_KEY) == RAYJOB_KEY and view.parent_of(RUN_KEY) is None
    run = next(j for j in view.jobs if j.key == RUN_KEY)
    assert run.state is JobState.RUNNING and run.source == "kfp"  # the top row's state is its own
    assert view.chain_tree(RUN_KEY) == [
        f"KFP run finetune-llama-3-8b-lora ({FINETUNE_RUN_ID})  [RUNNING]",
        "└─ step train (pod finetune-llama-train-91x)",
        "   └─ RayJob team-nlp/finetune-llama-train  [RUNNING (Running/RUNNING)]  4 GPU",
        "      └─ RayCluster finetune-llama-train-raycluster-h5v2d",
        f"         └─ Ray job {CHAIN_SUBMISSION_ID} on {CHAIN_RAY_CLUSTER}  [RUNNING]  4 GPU",
    ]
    said = view.acts_on(run)
    assert said.startswith(f"terminates KFP run finetune-llama-3-8b-lora ({FINETUNE_RUN_ID}); KFP stops its steps")
    assert ("step train's pod owns RayJob team-nlp/finetune-llama-train: Kubernetes deletes it when that pod is "
            "deleted (Argo's pod GC), not when the step merely stops; KubeRay stops Ray job "
            f"{CHAIN_SUBMISSION_ID} on {CHAIN_RAY_CLUSTER} before the RayJob goes") in said
    report = to_json(view)
    jobs = {j["key"]: j for j in report["jobs"]}
    assert jobs[RUN_KEY]["chain"] == [RUN_KEY, RAYJOB_KEY, RAY_KEY] and jobs[RUN_KEY]["chain_parent"] is None
    assert (jobs[RAYJOB_KEY]["chain_parent"], jobs[RAY_KEY]["chain_parent"]) == (RUN_KEY, RAYJOB_KEY)
    order = [j["key"] for j in report["jobs"]]
    assert order[order.index(RUN_KEY):order.index(RUN_KEY) + 3] == [RUN_KEY, RAYJOB_KEY, RAY_KEY]
    others = [j for j in report["jobs"] if j["key"] not in (RUN_KEY, RAYJOB_KEY, RAY_KEY)]
    assert others and all(j["chain_parent"] is None and j["chain"] == [] for j in others)


def test_once_json_carries_chain_parent_and_chain():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "MLTOP_", "KUBE"))}
    env["MLTOP_CONFIG"] = os.devnull
    out = subprocess.run([sys.executable, "-m", "mltop", "--demo", "--once", "--json"], capture_output=True,
                         text=True, timeout=120, env=env)
    assert out.returncode in (0, 1), out.stderr
    jobs = {j["key"]: j for j in json.loads(out.stdout)["jobs"]}
    assert jobs[RUN_KEY]["chain"] == [RUN_KEY, RAYJOB_KEY, RAY_KEY]
    assert jobs[RAY_KEY]["chain_parent"] == RAYJOB_KEY and jobs[RAY_KEY]["submission_id"] is None
    assert jobs[RAYJOB_KEY]["submission_id"] == CHAIN_SUBMISSION_ID


def test_a_cluster_without_any_of_these_shows_what_it_showed():
    rj = kuberay(rayjob("embed", "serve", created=FIXED_NOW, entrypoint="x", deployment="Running",
                        ray_status="RUNNING", selector="serve-cluster", cluster="serve-cluster", job_id="embed-x8k2p"))
    jobs = (rj, ray_job("raysubmit_a"), ray_job("raysubmit_b", state=JobState.PENDING), kfp_run("run-1"))
    board = Dashboard(["kubernetes/k"], prices=None, policy=None)  # type: ignore[arg-type]
    health = SourceHealth("kubernetes", "k", True, None, 1.0, FIXED_NOW, FIXED_NOW)
    board.update(SourceUpdate("kubernetes/k", health, SourceData(jobs=jobs)))
    view = board.view(FIXED_NOW, with_cost=False)
    assert list(view.jobs) == order_jobs(jobs) and not view.chains.parents and not view.chains.members
    assert all(view.chain_tree(j.key) == [] and view.acts_on(j) is None for j in jobs)
    assert [(j["chain_parent"], j["chain"]) for j in to_json(view)["jobs"]] == [(None, [])] * 4


async def test_details_draw_the_tree_and_cancel_names_the_layer(frozen_demo):
    config, sources = demo_sources(frozen_demo)
    app = MltopApp(config, sources, clock=fixed_clock, start_polling=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await app.refresh_now()
        await pilot.pause()
        table = app.query_one(JobsTable)
        assert RUN_KEY in table.records and RAYJOB_KEY not in table.records and RAY_KEY not in table.records
        table.focus()
        table.select_key(RUN_KEY)
        await pilot.press("enter")
        screen = app.screen
        assert isinstance(screen, JobDetailsScreen) and screen.job.key == RUN_KEY
        await screen.workers.wait_for_complete()
        await pilot.pause()
        tree = plain(screen.query_one("#chain").content)
        assert tree.startswith("chain (one item: each layer and its own state):")
        assert ("└─ RayJob team-nlp/finetune-llama-train [RUNNING (Running/RUNNING)] 4 GPU └─ RayCluster "
                f"{CHAIN_RAY_CLUSTER} └─ Ray job {CHAIN_SUBMISSION_ID} on {CHAIN_RAY_CLUSTER} [RUNNING] 4 GPU") in tree
        await pilot.press("escape")
        await pilot.pause()
        table.select_key(RUN_KEY)
        await pilot.press("ctrl+d")
        dialog = app.screen
        assert isinstance(dialog, ConfirmCancel) and dialog.job.key == RUN_KEY
        shown = " ".join(plain(w.content) for w in dialog.query("Label, Static"))
        assert "Stop this Kubeflow Pipelines run?" in shown
        assert (f"acts on terminates KFP run finetune-llama-3-8b-lora ({FINETUNE_RUN_ID}); KFP stops its steps; step "
                "train's pod owns RayJob team-nlp/finetune-llama-train: Kubernetes deletes it when that pod is "
                "deleted") in shown
        assert "acts on" not in plain(describe(dialog.job))  # without the view, no chain is claimed
        await pilot.press("n")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmCancel)


def test_the_tree_carries_kueue_and_cancel_says_what_stays():
    run = kfp_run()
    rj = replace(kuberay(kfp_step_rayjob(FIXED_NOW, pod=None)), workload="team-nlp/rayjob-finetune-llama-train-3c1f",
                 admission="pending", queue_reason="waiting for quota", queue_position=2, state=JobState.PENDING)
    ray = ray_job(CHAIN_SUBMISSION_ID, cluster=f"{CHAIN_RAY_CLUSTER}-head-svc.team-nlp.svc")
    links = chain.link([run, rj, ray])
    assert links.chain(ray.key) == (run, rj, ray)
    assert chain.tree_lines(links, run.key)[1] == (
        "└─ RayJob team-nlp/finetune-llama-train  [PENDING (Running/RUNNING)]  4 GPU  "
        "(Kueue workload team-nlp/rayjob-finetune-llama-train-3c1f: #2 waiting for quota)")
    said = chain.acts_on(links, run)
    assert "RayJob team-nlp/finetune-llama-train carries the run's id but no step pod owns it: it is not deleted" in said
    assert chain.acts_on(links, rj) == (
        "deletes RayJob team-nlp/finetune-llama-train and its Kueue workload team-nlp/rayjob-finetune-llama-train-3c1f "
        f"(Kubernetes); KubeRay stops Ray job {CHAIN_SUBMISSION_ID} on {ray.cluster} before it goes")
    assert chain.acts_on(links, ray) is None  # a leaf acts on itself only


def test_backend_text_in_the_tree_is_shown_inert():
    from mltop.tui.details import chain_text

    hostile = replace(kfp_run(), name="[red]boom[/red]\x1b[2J\x07")
    rj = kuberay(kfp_step_rayjob(FIXED_NOW))
    text = chain_text(chain.tree_lines(chain.link([hostile, rj]), hostile.key))
    assert "[red]boom[/red]" in text.plain and "\x1b" not in text.plain and "\x07" not in text.plain
    assert not text.spans or all(span.style == "bold" for span in text.spans)


def test_a_running_run_whose_rayjob_kueue_holds_waits_and_says_why():
    run = kfp_run()
    rj = replace(kuberay(kfp_step_rayjob(FIXED_NOW)), state=JobState.PENDING, admission="pending",
                 queue_reason="waiting for quota", queue_position=2, workload="team-nlp/wl-1", cluster_queue="team-cq")
    board = Dashboard(["kubernetes/k"], prices=None, policy=None)  # type: ignore[arg-type]
    health = SourceHealth("kubernetes", "k", True, None, 1.0, FIXED_NOW, FIXED_NOW)
    board.update(SourceUpdate("kubernetes/k", health, SourceData(jobs=(run, rj))))
    view = board.view(FIXED_NOW, with_cost=False)
    assert [j.key for j in view.jobs] == [run.key]
    top = view.jobs[0]
    assert top.state is JobState.RUNNING and view.waits(top)  # its own state; it waits on the layer under it
    assert view.waiting_short(top) == "RayJob: #2 waiting for quota"
    assert view.waiting_reason(top).startswith("RayJob team-nlp/finetune-llama-train waits: Kueue: waiting for quota")
    done = replace(run, state=JobState.SUCCEEDED)
    assert not view.waits(done) and view.waiting_reason(done) is None
