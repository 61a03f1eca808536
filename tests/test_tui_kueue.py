"""Pilot tests: Kueue in the screen: `a` stops (and resumes) a job's Workload after a confirmation,
`:queues` shows the ClusterQueues."""

from __future__ import annotations

from mltop.tui.confirm import ConfirmWorkload
from mltop.tui.queues_view import QueuesScreen
from mltop.widgets.jobs_table import JobsTable
from tests.test_snapshots import make_full_app

WORKLOAD = ("kueue.x-k8s.io", "Workload")


def workload_active(platform, job) -> bool:
    namespace, name = job.workload.split("/", 1)
    store = platform.kube_store
    found = platform.server.call(lambda: [o for o in store._objects.values()
                                          if o.get("kind") == "Workload" and o["metadata"]["name"] == name
                                          and o["metadata"]["namespace"] == namespace])
    return found[0]["spec"].get("active", True)


async def loaded(app, pilot) -> None:
    await app.refresh_now()
    await pilot.pause()


async def test_a_stops_the_selected_jobs_workload_after_a_confirmation(frozen_demo):
    app = make_full_app(frozen_demo)
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(app, pilot)
        table = app.query_one(JobsTable)
        key = next(k for k, j in table.records.items() if j.workload and j.admission != "stopped")
        job = table.records[key]
        table.select_key(key)
        await pilot.press("a")
        dialog = app.screen
        assert isinstance(dialog, ConfirmWorkload) and dialog.job.key == key and not dialog.resume
        await pilot.press("n")
        assert workload_active(frozen_demo, job)  # no: nothing sent
        await pilot.press("a", "y")
        await app.workers.wait_for_complete()
        assert not workload_active(frozen_demo, job)
        entries = app.runner.audit.read()
        assert entries[0]["action"] == "jobs.workload" and entries[0]["outcome"] == "done"
        await loaded(app, pilot)
        assert table.records[key].admission == "stopped"
        await pilot.press("a")  # on a stopped workload: resume
        assert isinstance(app.screen, ConfirmWorkload) and app.screen.resume


async def test_a_on_a_job_kueue_does_not_queue_says_why(frozen_demo):
    app = make_full_app(frozen_demo)
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(app, pilot)
        table = app.query_one(JobsTable)
        table.select_key(next(k for k, j in table.records.items() if not j.workload))
        await pilot.press("a")
        assert not isinstance(app.screen, ConfirmWorkload)
        assert any("not queued by Kueue" in n.message for n in app._notifications)


async def test_queues_command_shows_the_cluster_queues(frozen_demo):
    app = make_full_app(frozen_demo)
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(app, pilot)
        await pilot.press("colon", *"queues", "enter")
        await pilot.pause()
        assert isinstance(app.screen, QueuesScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, QueuesScreen)


async def test_teams_command_shows_cost_by_team(frozen_demo):
    from mltop.tui.teams_view import TeamsScreen

    app = make_full_app(frozen_demo)
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(app, pilot)
        await pilot.press("colon", *"teams", "enter")
        await pilot.pause()
        assert isinstance(app.screen, TeamsScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, TeamsScreen)


async def test_the_demo_shows_a_rayjob_held_by_kueue_quota_and_why(frozen_demo):
    """What a user sees for a RayJob waiting on Kueue quota: its row, its place in the queue, and why."""
    app = make_full_app(frozen_demo)
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(app, pilot)
        table = app.query_one(JobsTable)
        job = next(j for j in table.records.values() if j.id == "rayjob:team-a/rl-policy-sweep")
        assert (job.source, job.native_state, job.gpus, job.queue_position) == ("kuberay", "Suspended", 8, 3)
        reason = app.main.view.waiting_reason(job)
        assert "waiting for quota" in reason and "position 3 in ClusterQueue team-a-cq" in reason
        assert table.reasons[job.key].startswith("#3 waiting for quota")
