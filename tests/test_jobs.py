"""Queue order, the filter, and the truth-keeping around stop requests."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from mltop.jobs import StopTracker, matches, order_jobs
from mltop.model import JobState
from tests.conftest import FIXED_NOW
from tests.factories import job

P, R, S, F, C = JobState.PENDING, JobState.RUNNING, JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED


def ids(jobs):
    return [j.id for j in jobs]


def test_queue_first_longest_wait_first_then_running_then_recent_finished():
    jobs = [
        job("done-old", S, finished_min_ago=50),
        job("run-new", R, submitted_min_ago=5),
        job("wait-short", P, submitted_min_ago=2),
        job("done-new", F, finished_min_ago=1),
        job("wait-long", P, submitted_min_ago=30),
        job("run-old", R, submitted_min_ago=60),
    ]
    assert ids(order_jobs(jobs)) == ["wait-long", "wait-short", "run-old", "run-new", "done-new", "done-old"]


def test_finished_jobs_are_capped_but_never_the_queue():
    jobs = [job(f"w{i}", P, submitted_min_ago=i) for i in range(5)]
    jobs += [job(f"d{i}", S, finished_min_ago=i) for i in range(5)]
    ordered = order_jobs(jobs, finished_limit=2)
    assert ids(ordered) == ["w4", "w3", "w2", "w1", "w0", "d0", "d1"]


def test_order_is_stable_for_equal_times():
    a, b = job("a", P, submitted_min_ago=3), job("b", P, submitted_min_ago=3)
    assert ids(order_jobs([b, a])) == ids(order_jobs([a, b])) == ["a", "b"]


def test_filter_matches_every_word_anywhere_case_insensitively():
    j = job("raysubmit_42", R, name="finetune-llama", owner="Alice", cluster="east")
    assert matches(j, "")
    assert matches(j, "LLAMA alice")
    assert matches(j, "east running")
    assert not matches(j, "llama bob")
    assert matches(job("x", P, name="sweep[/lr=0.1]"), "[/lr")


def test_stop_is_shown_until_the_backend_reports_a_terminal_state():
    tracker = StopTracker(patience_seconds=30)
    running = job("j1", R)
    tracker.requested(running, FIXED_NOW, "ray/prod")
    shown, events = tracker.apply([running], FIXED_NOW + timedelta(seconds=5), sources={"ray/prod"})
    assert shown[0].state is R  # the backend's state, never a made-up one
    assert shown[0].stop_requested_at == FIXED_NOW
    assert events == []
    stopped = replace(running, state=C, native_state="STOPPED", cancellable=False)
    shown, events = tracker.apply([stopped], FIXED_NOW + timedelta(seconds=8), sources={"ray/prod"})
    assert shown[0].stop_requested_at is None
    assert [(e.severity, e.message) for e in events] == [("information", "prod/j1: ray reports STOPPED")]
    assert "ray/prod/j1" not in tracker


def test_a_stop_that_ends_in_success_or_failure_is_a_warning():
    tracker = StopTracker()
    running = job("j1", R)
    tracker.requested(running, FIXED_NOW, "ray/prod")
    _, events = tracker.apply([replace(running, state=S, native_state="SUCCEEDED")], FIXED_NOW, sources=set())
    assert events[0].severity == "warning" and "SUCCEEDED" in events[0].message


def test_a_stop_that_does_not_take_is_told_once():
    tracker = StopTracker(patience_seconds=30)
    waiting = job("j2", P)
    tracker.requested(waiting, FIXED_NOW, "ray/prod")
    _, events = tracker.apply([waiting], FIXED_NOW + timedelta(seconds=29), sources={"ray/prod"})
    assert events == []
    shown, events = tracker.apply([waiting], FIXED_NOW + timedelta(seconds=31), sources={"ray/prod"})
    assert len(events) == 1 and events[0].severity == "warning"
    assert "still reports PENDING" in events[0].message and "stops only once it gets its resources" in events[0].message
    assert tracker.is_overdue(shown[0], FIXED_NOW + timedelta(seconds=31))
    _, events = tracker.apply([waiting], FIXED_NOW + timedelta(seconds=60), sources={"ray/prod"})
    assert events == []


def test_a_job_that_vanishes_is_unknown_not_stopped_and_only_its_source_decides():
    tracker = StopTracker()
    running = job("j3", R)
    tracker.requested(running, FIXED_NOW, "ray/prod")
    # Another source's refresh says nothing about this job.
    _, events = tracker.apply([], FIXED_NOW, sources={"ray/other"})
    assert events == [] and "ray/prod/j3" in tracker
    _, events = tracker.apply([], FIXED_NOW, sources={"ray/prod"})
    assert "final state is unknown" in events[0].message
