"""The demo's simulated Ray behaves as a real head does, and its story moves."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from mltop.demo.ray_sim import RaySim, SimError, SimNode
from mltop.demo.scenario import MAX_JOBS, RayScenario, new_ray_sim


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def test_jobs_queue_for_gpus_start_finish_and_fail():
    clock = Clock()
    sim = RaySim([SimNode("n", "127.0.0.1", "h", gpus=4, cpus=8)], clock=clock)
    a = sim.submit("a", gpus=3, run_seconds=10)
    b = sim.submit("b", gpus=2, run_seconds=10, exit_code=2)
    assert (a.status, b.status) == ("RUNNING", "PENDING")
    clock.advance(11)
    sim.advance()
    assert a.status == "SUCCEEDED" and b.status == "RUNNING"
    clock.advance(11)
    sim.advance()
    assert b.status == "FAILED" and "exit code 2" in b.message


def test_stop_running_then_terminal_like_ray():
    clock = Clock()
    sim = RaySim([SimNode("n", "127.0.0.1", "h", gpus=4, cpus=8)], clock=clock)
    job = sim.submit("a", gpus=1)
    assert sim.stop(job.submission_id) is True
    assert job.status == "RUNNING"  # accepted is not stopped
    clock.advance(2)
    sim.advance()
    assert job.status == "STOPPED"
    assert sim.stop(job.submission_id) is False
    with pytest.raises(SimError) as info:
        sim.stop("nope")
    assert info.value.status == 404


def test_stop_while_waiting_stays_pending_until_resources_free_like_ray():
    clock = Clock()
    sim = RaySim([SimNode("n", "127.0.0.1", "h", gpus=4, cpus=8)], clock=clock)
    holder = sim.submit("hold", gpus=4, run_seconds=30)
    waiting = sim.submit("wait", gpus=4)
    assert sim.stop(waiting.submission_id) is True
    clock.advance(20)
    sim.advance()
    assert waiting.status == "PENDING"
    clock.advance(11)
    sim.advance()  # the holder finished; the waiting job starts and its queued stop lands
    assert holder.status == "SUCCEEDED" and waiting.status == "RUNNING"
    clock.advance(2)
    sim.advance()
    assert waiting.status == "STOPPED"


def test_duplicate_submission_id_is_a_500_traceback_like_ray():
    sim = RaySim([SimNode("n", "127.0.0.1", "h", gpus=1, cpus=1)])
    sim.submit("a", submission_id="x")
    with pytest.raises(SimError) as info:
        sim.submit("a", submission_id="x")
    assert info.value.status == 500 and info.value.text.startswith("Traceback")


def test_the_scenario_moves_and_memory_stays_bounded():
    clock = Clock()
    sim = new_ray_sim(clock)
    scenario = RayScenario(sim, every_steps=1)
    states_seen = set()
    for _ in range(900):
        clock.advance(5)
        scenario.step()
        states_seen |= {j.status for j in sim.jobs.values()}
        assert len(sim.jobs) <= MAX_JOBS + 1
    assert {"PENDING", "RUNNING", "SUCCEEDED", "FAILED"} <= states_seen


def test_a_job_waiting_past_the_start_timeout_fails_like_ray():
    clock = Clock()
    sim = RaySim([SimNode("n", "127.0.0.1", "h", gpus=4, cpus=8)], clock=clock, start_timeout=900)
    job = sim.submit("big", gpus=8)
    sim.stop(job.submission_id)  # a stop while waiting does not end it...
    clock.advance(899)
    sim.advance()
    assert job.status == "PENDING"
    clock.advance(2)
    sim.advance()  # ...the start timeout does
    assert job.status == "FAILED" and job.error_type == "JOB_SUPERVISOR_ACTOR_START_TIMEOUT"
    assert job.message.startswith("Job supervisor actor failed to start within 900.0 seconds")
    assert job.end_ms - job.submitted_ms == 900_000
