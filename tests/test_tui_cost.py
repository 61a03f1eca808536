"""The idle-cost line, the warnings panel, going to a warning's target and fixing it with its key."""

from __future__ import annotations

from dataclasses import replace

from mltop.adapters.kube import KubeSource
from mltop.adapters.ray import RaySource
from mltop.config import Config
from mltop.tui.app import MltopApp
from mltop.tui.confirm import ConfirmCancel
from mltop.tui.scale import ScaleDialog
from mltop.tui.warning_view import WarningScreen
from mltop.widgets.infra_tables import NodesTable, PoolsTable, WarningsTable
from mltop.widgets.jobs_table import JobsTable
from tests.conftest import fixed_clock

MD = ("cluster.x-k8s.io/v1beta1", "MachineDeployment")


def make_app(platform, **cost):
    config = Config(endpoints={"ray": platform.ray_endpoints(), "kubernetes": platform.kube_targets()})
    config = replace(config, cost=config.cost.model_copy(update=cost))
    sources = [RaySource(e, clock=fixed_clock) for e in config.of("ray")]
    sources += [KubeSource(t, clock=fixed_clock) for t in config.of("kubernetes")]
    return MltopApp(config, sources, clock=fixed_clock, start_polling=False)


async def loaded(app, pilot):
    await app.refresh_now()
    await pilot.pause()


def warning_keys(app):
    return list(app.query_one(WarningsTable)._order)


async def test_cost_line_and_warnings_ranked_by_cost(frozen_demo):
    app = make_app(frozen_demo)
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(app, pilot)
        summary = str(app.query_one("#summary").render())
        assert "GPU burn $" in summary and "idle $" in summary and "wasted today $" in summary
        table = app.query_one(WarningsTable)
        costs = [w.cost_per_hour or 0 for w in (table.records[k] for k in table._order)]
        assert costs == sorted(costs, reverse=True) and len(costs) >= 4
        kinds = {table.records[k].kind for k in table._order}
        assert {"idle-pool", "idle-while-waiting", "idle-node", "no-capacity-coming"} <= kinds
        nodes = app.query_one(NodesTable)
        h100 = next(k for k, n in nodes.records.items() if n.pool == "h100-ng")
        assert nodes.idle_costs[h100] == 55.04


async def test_w_enter_shows_the_warning_goes_to_the_target_and_s_scales_the_idle_pool_down(frozen_demo):
    app = make_app(frozen_demo)
    store = frozen_demo.kube_store
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(app, pilot)
        await pilot.press("w")
        table = app.query_one(WarningsTable)
        assert app.focused is table
        key = next(k for k in table._order if "gpu-md-0" in k and k.startswith("idle-pool"))
        table.select_key(key)
        await pilot.press("enter")  # the whole warning, then enter again: its target
        assert isinstance(app.screen, WarningScreen) and app.screen.warning.target_name == "gpu-md-0"
        await pilot.press("enter")
        assert isinstance(app.focused, PoolsTable) and app.focused.selected.name == "gpu-md-0"
        await pilot.press("w")
        table.select_key(key)
        await pilot.pause()
        assert app.check_action("scale_pool", ()) is True  # the warning's remedy key
        await pilot.press("s")
        dialog = app.screen
        assert isinstance(dialog, ScaleDialog) and dialog.pool.name == "gpu-md-0"
        dialog.query_one("#target").value = "0"
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        assert frozen_demo.server.call(lambda: store.get(*MD, "gpu-md-0", "capi"))["spec"]["replicas"] == 0
        # The simulated Cluster API removes the machines; the warning clears on the next refresh.
        from mltop.demo.kube_scenario import reconcile

        frozen_demo.server.call(lambda: reconcile(store, fixed_clock()))
        await loaded(app, pilot)
        assert not any("gpu-md-0" in k for k in warning_keys(app))


async def test_a_low_utilization_job_is_stopped_from_its_warning(live_demo):
    from mltop.refresh import utcnow

    config = Config(endpoints={"ray": live_demo.ray_endpoints()})
    config = replace(config, cost=config.cost.model_copy(update={"low_utilization_window_minutes": 0.0}))
    app = MltopApp(config, [RaySource(e) for e in config.of("ray")], clock=utcnow, start_polling=False)
    sim = live_demo.ray_sim
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(app, pilot)
        await loaded(app, pilot)  # the window is 0: the second look makes it a warning
        table = app.query_one(WarningsTable)
        key = next(k for k in table._order if k.startswith("low-utilization"))
        assert "finetune-mistral-7b" in table.records[key].message
        await pilot.press("w")
        table.select_key(key)
        await pilot.press("ctrl+d")
        assert isinstance(app.screen, ConfirmCancel) and app.screen.job.id == "raysubmit_mistral_ft"
        await pilot.press("y")
        await app.workers.wait_for_complete()
        assert live_demo.server.call(lambda: sim.jobs["raysubmit_mistral_ft"].stop_at_ms) is not None
        assert isinstance(app.focused, JobsTable)


async def test_a_fix_key_in_the_warnings_panel_goes_to_the_first_warning_it_fixes(frozen_demo):
    """`w` `s` `enter`: the idle pool is scaled down in three keys. The most expensive warning has no
    FIX; `s` moves the cursor to the first warning that `s` fixes, and its dialog proposes the size
    without the idle replicas, which `enter` confirms."""
    app = make_app(frozen_demo)
    store = frozen_demo.kube_store
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(app, pilot)
        await pilot.press("w")
        table = app.query_one(WarningsTable)
        assert table.selected.remedy_action is None  # the most expensive: nothing mltop can do
        await pilot.press("s")
        assert table.selected.remedy_action == "pools.scale" and table.selected.target_name == "gpu-md-0"
        dialog = app.screen
        assert isinstance(dialog, ScaleDialog) and dialog.pool.name == "gpu-md-0"
        assert dialog.query_one("#target").value == "0"  # 2 machines, all 8 GPUs idle, minimum 0
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        assert frozen_demo.server.call(lambda: store.get(*MD, "gpu-md-0", "capi"))["spec"]["replicas"] == 0
