"""Pilot tests of the nodes and pools panels and the scale flow, against the fake API server."""

from __future__ import annotations

from dataclasses import replace

import pytest
from textual.widgets import Input

from mltop.adapters.ray import RaySource
from mltop.config import Config
from mltop.tui.app import MltopApp
from mltop.tui.infra_details import InfraDetailsScreen, node_view, pool_view
from mltop.tui.scale import ScaleDialog
from mltop.widgets.infra_tables import NodesTable, PoolsTable, WarningsTable
from mltop.widgets.jobs_table import JobsTable
from tests.conftest import fixed_clock
from tests.kube_helpers import start_fake_cluster

RAY = ("ray.io/v1", "RayCluster")


def plain(renderable) -> str:
    from rich.console import Console

    console = Console(width=160, record=True, file=open("/dev/null", "w"))
    console.print(renderable)
    return console.export_text()


@pytest.fixture
def cluster(tmp_path):
    fake = start_fake_cluster(tmp_path)
    yield fake
    fake.server.stop()


def make_app(cluster, ray_platform=None, **config) -> MltopApp:
    sources = [cluster.source()]
    if ray_platform is not None:
        sources += [RaySource(e, clock=fixed_clock) for e in ray_platform.ray_endpoints()]
    return MltopApp(replace(Config(), **config), sources, clock=fixed_clock, start_polling=False)


async def loaded(app, pilot):
    await app.refresh_now()
    await pilot.pause()


def select_pool(app, name):
    table = app.query_one(PoolsTable)
    table.focus()
    key = next(k for k, p in table.records.items() if p.name == name)
    table.select_key(key)


async def test_panels_show_nodes_pools_and_the_pending_pods_in_the_queue(cluster):
    app = make_app(cluster)
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(app, pilot)
        nodes = app.query_one(NodesTable)
        first = nodes.records[nodes.selected_key]
        assert first.name == "ip-10-0-41-17.ec2.internal"  # the node with the most free GPUs comes first
        assert len(nodes.records) == 10 and len(app.query_one(PoolsTable).records) == 9
        assert len(app.query_one(JobsTable).records) == 2  # the two unbound GPU pods
        summary = str(app.query_one("#summary").render())
        assert "K8s GPUs" in summary and "H100-80GB-HBM3 0/8" in summary


async def test_arrows_and_tab_move_between_panels_and_enter_opens_details(cluster):
    app = make_app(cluster)
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(app, pilot)
        assert isinstance(app.focused, JobsTable)
        await pilot.press("down", "down")  # past the last of the two jobs: the warnings panel below
        assert isinstance(app.focused, WarningsTable)
        await pilot.press("tab")
        assert isinstance(app.focused, NodesTable)
        await pilot.press("right")
        assert isinstance(app.focused, PoolsTable)
        await pilot.press("left", "enter")
        screen = app.screen
        assert isinstance(screen, InfraDetailsScreen) and screen.record.name == "ip-10-0-41-17.ec2.internal"
        body = plain(node_view(screen.record, fixed_clock()))
        assert "(none: every GPU on this node is idle)" in body and "p5.48xlarge in us-east-1a, on-demand" in body
        await pilot.press("escape", "tab")
        assert isinstance(app.focused, PoolsTable)
        select_pool(app, "train-cluster/gpu-workers")
        await pilot.press("enter")
        assert "train-cluster-gpu-workers-worker" in plain(pool_view(app.screen.record))


async def test_scale_a_worker_group_and_see_the_server_value(cluster):
    app = make_app(cluster)
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(app, pilot)
        select_pool(app, "train-cluster/gpu-workers")
        await pilot.press("s")
        dialog = app.screen
        assert isinstance(dialog, ScaleDialog)
        box = dialog.query_one("#target", Input)
        box.value = "9"
        await pilot.pause()
        assert "above the group's maxReplicas (4)" in str(dialog.query_one("#plan").render())
        box.value = "3"
        await pilot.pause()
        text = str(dialog.query_one("#plan").render())
        assert "RayCluster ml/train-cluster" in text and "replicas: 2 -> 3" in text
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await loaded(app, pilot)
        rc = cluster.call(lambda: cluster.store.get(*RAY, "train-cluster", "ml"))
        assert rc["spec"]["workerGroupSpecs"][0]["replicas"] == 3
        pools = app.query_one(PoolsTable)
        pool = next(p for p in pools.records.values() if p.name == "train-cluster/gpu-workers")
        assert pool.replicas == 3
        assert any("accepted by the API server" in n.message for n in app._notifications)


async def test_a_change_made_while_the_dialog_is_open_is_not_overwritten(cluster):
    app = make_app(cluster)
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(app, pilot)
        select_pool(app, "train-cluster/gpu-workers")
        await pilot.press("s")
        app.screen.query_one("#target", Input).value = "4"

        def someone_else():
            rc = cluster.store.get(*RAY, "train-cluster", "ml")
            rc["spec"]["workerGroupSpecs"][0]["replicas"] = 1
            cluster.store.put(rc)

        cluster.call(someone_else)
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        rc = cluster.call(lambda: cluster.store.get(*RAY, "train-cluster", "ml"))
        assert rc["spec"]["workerGroupSpecs"][0]["replicas"] == 1
        errors = [n.message for n in app._notifications if n.severity == "error"]
        assert errors and "someone changed it" in errors[0]


async def test_scale_is_not_offered_where_it_cannot_work(cluster):
    cluster.call(lambda: cluster.store.denied_verbs.add(("patch", "rayclusters")))
    app = make_app(cluster)
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(app, pilot)
        select_pool(app, "h100-ng")
        await pilot.pause()
        assert app.check_action("scale_pool", ()) is True  # live: pressing it says why (EKS resizes it)
        await pilot.press("s")
        assert not isinstance(app.screen, ScaleDialog)
        assert "eksctl" in app.query_one("#pools-panel").border_subtitle  # the panel says why
        assert any("eksctl" in n.message for n in app._notifications)  # and so does the key
        select_pool(app, "train-cluster/gpu-workers")
        await pilot.pause()
        await pilot.press("s")
        assert not isinstance(app.screen, ScaleDialog)
        assert "may not patch rayclusters" in app.query_one("#pools-panel").border_subtitle
        app.query_one(JobsTable).focus()
        await pilot.pause()
        assert app.check_action("scale_pool", ()) is False  # hidden outside the pools panel


async def test_read_only_removes_scale(cluster):
    app = make_app(cluster, read_only=True)
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(app, pilot)
        select_pool(app, "train-cluster/gpu-workers")
        await pilot.press("s")
        assert not isinstance(app.screen, ScaleDialog)
        assert "scale_pool" not in {b.binding.action for b in app.screen.active_bindings.values()}


async def test_a_pending_pods_details_show_the_schedulers_reason(cluster):
    from mltop.tui.details import JobDetailsScreen, facts

    app = make_app(cluster)
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(app, pilot)
        jobs = app.query_one(JobsTable)
        jobs.focus()
        jobs.select_key("kubernetes/test-ctx/ml/finetune-70b-0-q8m4t")
        await pilot.press("enter")
        screen = app.screen
        assert isinstance(screen, JobDetailsScreen) and screen.source is None
        assert "untolerated taint" in screen.job.message
        text = plain(facts(screen.job, fixed_clock()))
        assert "PyTorchJob/finetune-70b" in text and "namespace    ml" in text and "18 minutes" in text
