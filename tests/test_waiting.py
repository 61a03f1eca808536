"""Why a job waits: one sentence per waiting job, the same on screen, in --once text and in JSON."""

from __future__ import annotations

import json

from mltop.report import render_json, render_text
from mltop.tui.details import JobDetailsScreen, facts
from mltop.widgets.jobs_table import JobsTable
from tests.conftest import FIXED_NOW
from tests.test_snapshots import make_full_app
from tests.test_tui_kube import plain


async def test_each_waiting_job_says_why_everywhere(frozen_demo):
    app = make_full_app(frozen_demo)
    async with app.run_test(size=(160, 48)) as pilot:
        await app.refresh_now()
        await pilot.pause()
        view = app.dashboard.view(FIXED_NOW, with_cost=False)
        reasons = {j.id: view.waiting_reason(j) for j in view.jobs if view.waiting_reason(j)}
        # Kubernetes: the idle GPUs that do not take the pod, and why (a label it requires).
        assert "requires cloud.google.com/gke-accelerator" in reasons["ml/finetune-70b-0-q8m4t"]
        # Ray: a job bigger than any node, with nothing coming.
        assert "12" in reasons["raysubmit_pretrain13b"] and "node" in reasons["raysubmit_pretrain13b"]
        assert all(j.state.value == "PENDING" for j in view.jobs if j.id in reasons)
        jobs = {j["id"]: j for j in json.loads(render_json(view))["jobs"]}
        assert jobs["ml/finetune-70b-0-q8m4t"]["waiting_reason"] == reasons["ml/finetune-70b-0-q8m4t"]
        assert jobs["raysubmit_llama70b"]["waiting_reason"] is None  # running: not waiting
        text = render_text(view)
        assert "WHY THEY WAIT" in text and f"demo-k8s/ml/finetune-70b-0-q8m4t: {reasons['ml/finetune-70b-0-q8m4t']}" in text
        table = app.query_one(JobsTable)
        table.select_key("kubernetes/demo-k8s/ml/finetune-70b-0-q8m4t")
        await pilot.press("enter")
        screen = app.screen
        assert isinstance(screen, JobDetailsScreen)
        shown = plain(facts(screen.job, FIXED_NOW, screen.waiting_reason))
        assert "why it waits" in shown and "requires" in shown
