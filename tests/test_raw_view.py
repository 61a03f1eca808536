"""Pilot: `y` on a job, a pool, a node and a warning opens the object as its backend holds it;
`f` switches YAML and JSON; esc goes back; a row with no object of its own says why."""

from __future__ import annotations

from mltop.adapters.kfp import KfpSource
from mltop.adapters.kube import KubeSource
from mltop.adapters.ray import RaySource
from mltop.config import Config
from mltop.model import IdleWarning
from mltop.tui.app import MltopApp
from mltop.tui.raw_view import RawScreen
from mltop.widgets.infra_tables import NodesTable, PoolsTable, WarningsTable
from mltop.widgets.jobs_table import JobsTable
from tests.conftest import fixed_clock


def make_app(platform) -> MltopApp:
    config = Config(endpoints={"ray": platform.ray_endpoints(), "kubernetes": platform.kube_targets(),
                               "kfp": platform.kfp_endpoints()})
    sources = [RaySource(e, clock=fixed_clock) for e in config.of("ray")]
    sources += [KubeSource(t, clock=fixed_clock) for t in config.of("kubernetes")]
    sources += [KfpSource(e, clock=fixed_clock) for e in config.of("kfp")]
    return MltopApp(config, sources, clock=fixed_clock, start_polling=False)


async def settle(app, pilot) -> None:
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()


def head(screen: RawScreen) -> str:
    return str(screen.query_one("#raw-head").render())


def said(app) -> list[str]:
    return [n.message for n in app._notifications]


async def test_y_on_a_job_shows_yaml_then_json_then_goes_back(frozen_demo):
    app = make_app(frozen_demo)
    async with app.run_test(size=(160, 48)) as pilot:
        await app.refresh_now()
        await pilot.pause()
        table = app.query_one(JobsTable)
        table.focus()
        assert table.select_key("ray/demo/raysubmit_llama70b")
        await pilot.press("y")
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, RawScreen)
        assert "Ray job raysubmit_llama70b on demo" in head(screen) and "YAML" in head(screen)
        assert "fetched at 2026-11-28 12:00:00 UTC" in head(screen) and "2 secret-like values redacted" in head(screen)
        assert "submission_id: raysubmit_llama70b" in screen.text and "HF_TOKEN: <redacted>" in screen.text
        assert "hf_demo" not in screen.text
        await pilot.press("f")
        await settle(app, pilot)
        assert screen.text.startswith("{") and '"HF_TOKEN": "<redacted>"' in screen.text and "JSON" in head(screen)
        await pilot.press("f")
        await settle(app, pilot)
        assert screen.text.startswith("type: SUBMISSION")
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, RawScreen) and app.screen is app.main


async def test_y_on_a_pool_shows_its_raycluster_and_a_node_pool_says_why(frozen_demo):
    app = make_app(frozen_demo)
    async with app.run_test(size=(160, 48), notifications=True) as pilot:
        await app.refresh_now()
        await pilot.pause()
        pools = app.query_one(PoolsTable)
        pools.focus()
        group = next(p for p in pools.records.values() if p.kind == "raycluster-workergroup")
        assert pools.select_key(group.key)
        await pilot.press("y")
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, RawScreen)
        rc_name, group_name = group.name.split("/", 1)
        assert f"RayCluster {group.namespace}/{rc_name} on demo-k8s" in head(screen)
        assert f"worker group {group_name} is spec.workerGroupSpecs[" in head(screen)
        assert "kind: RayCluster" in screen.text and f"groupName: {group_name}" in screen.text
        await pilot.press("q")
        await pilot.pause()
        nodepool = next(p for p in pools.records.values() if p.kind == "nodepool")
        assert pools.select_key(nodepool.key)
        await pilot.press("y")
        await pilot.pause()
        assert not isinstance(app.screen, RawScreen)
        assert any(f"node pool {nodepool.name} is a label on its nodes" in m for m in said(app))


async def test_y_on_a_node_and_on_a_warning_shows_the_target_object(frozen_demo):
    app = make_app(frozen_demo)
    async with app.run_test(size=(160, 48), notifications=True) as pilot:
        await app.refresh_now()
        await pilot.pause()
        nodes = app.query_one(NodesTable)
        nodes.focus()
        node = nodes.selected
        await pilot.press("y")
        await settle(app, pilot)
        assert isinstance(app.screen, RawScreen) and f"Node {node.name} on demo-k8s" in head(app.screen)
        assert f"name: {node.name}" in app.screen.text
        await pilot.press("escape")
        await pilot.pause()
        warnings = app.query_one(WarningsTable)
        warnings.focus()
        about_node = next(w for w in warnings.records.values() if w.target.startswith("kubernetes/demo-k8s/")
                          and w.target.count("/") == 2)
        assert warnings.select_key(warnings.key_of(about_node))
        await pilot.press("y")
        await settle(app, pilot)
        assert isinstance(app.screen, RawScreen) and "kind: Node" in app.screen.text
        assert f"name: {about_node.target_name}" in app.screen.text
        await pilot.press("escape")
        await pilot.pause()
        about_pool = next(w for w in warnings.records.values() if "/nodepool/" in w.target)
        assert warnings.select_key(warnings.key_of(about_pool))
        await pilot.press("y")
        await pilot.pause()
        assert not isinstance(app.screen, RawScreen)  # its target has no object of its own: said why
        assert any("is a label on its nodes" in m for m in said(app))
        whole = IdleWarning(kind="ray-idle", target="ray/demo", target_name="demo", cluster="demo", idle_gpus=4,
                            idle_since=None, idle_since_is_lower_bound=False, cost_per_hour=None, wasted=None,
                            remedy="", message="")
        record, why = app._warning_target(whole)
        assert record is None and "about demo as a whole, not one object" in why


async def test_a_fetch_that_fails_is_said_on_the_screen_and_in_the_status_line(frozen_demo):
    app = make_app(frozen_demo)
    async with app.run_test(size=(160, 48), notifications=True) as pilot:
        await app.refresh_now()
        await pilot.pause()
        table = app.query_one(JobsTable)
        table.focus()
        assert table.select_key("kubernetes/demo-k8s/ml/finetune-70b-0-q8m4t")
        frozen_demo.server.call(lambda: frozen_demo.kube_store.delete("v1", "Pod", "finetune-70b-0-q8m4t", "ml"))
        await pilot.press("y")
        await settle(app, pilot)
        assert isinstance(app.screen, RawScreen)
        assert "could not fetch job demo-k8s/ml/finetune-70b-0-q8m4t" in head(app.screen)
        assert "not found" in head(app.screen)
        assert any("raw view:" in m and "not found" in m for m in said(app))
