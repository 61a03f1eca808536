"""The demo's idle-cost story: warnings appear and clear as the scenario moves (issue 5's demo)."""

from __future__ import annotations

from datetime import timedelta

from mltop.registry import wait_models
from mltop.cost import CostPolicy, IdleHistory, evaluate
from mltop.demo.kube_scenario import KubeScenario
from mltop.prices import price_book
from mltop.refresh import poll_all, snapshot_of
from tests.conftest import FIXED_NOW
from tests.kube_helpers import start_fake_cluster

POLICY = CostPolicy(idle_threshold=timedelta(minutes=1), low_utilization_window=timedelta(minutes=1),
                    waits_on=wait_models())


class Clock:
    def __init__(self):
        self.now = FIXED_NOW

    def __call__(self):
        return self.now


async def test_warnings_appear_and_clear_as_the_story_moves(tmp_path):
    fake = start_fake_cluster(tmp_path)
    clock = Clock()
    fake.store.clock = clock
    scenario = KubeScenario(fake.store, clock)
    history = IdleHistory()

    async def look():
        source = fake.source()
        try:
            updates = await poll_all([source], clock=clock)
        finally:
            await source.aclose()
        report = evaluate(snapshot_of(updates, clock.now), price_book(), POLICY, history, clock.now)
        return {(w.kind, w.target_name) for w in report.warnings}

    async def run_to(step):
        while scenario.steps < step:
            clock.now += timedelta(seconds=1)
            fake.call(scenario.step)

    try:
        first = await look()
        assert ("idle-pool", "h100-ng") in first and ("idle-pool", "gpu-md-0") in first
        assert ("idle-while-waiting", "finetune-70b") in first
        assert ("idle-pool", "l4-spot") not in first
        await run_to(KubeScenario.TRAINING_ENDS + 1)
        assert ("idle-pool", "l4-spot") not in await look()  # idle, but not yet for a minute
        await run_to(KubeScenario.TRAINING_ENDS + 70)
        assert ("idle-pool", "l4-spot") in await look()  # a pool went idle
        await run_to(KubeScenario.TRAINING_RESUMES + 1)
        assert ("idle-pool", "l4-spot") not in await look()  # work came back
        await run_to(KubeScenario.FINETUNE_GIVES_UP + 1)
        assert ("idle-while-waiting", "finetune-70b") not in await look()
    finally:
        fake.server.stop()
