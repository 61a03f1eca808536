"""Small builders for records, so pure-logic tests read as the situation they test."""

from __future__ import annotations

from datetime import datetime, timedelta

from mltop.model import Job, JobState
from tests.conftest import FIXED_NOW


def job(
    job_id: str,
    state: JobState = JobState.RUNNING,
    *,
    cluster: str = "prod",
    submitted_min_ago: float = 10,
    finished_min_ago: float | None = None,
    gpus: float | None = 1,
    name: str | None = None,
    owner: str | None = "alice",
    now: datetime = FIXED_NOW,
) -> Job:
    submitted = now - timedelta(minutes=submitted_min_ago)
    finished = now - timedelta(minutes=finished_min_ago) if finished_min_ago is not None else None
    if state.is_terminal and finished is None:
        finished = now
    return Job(
        key=f"ray/{cluster}/{job_id}",
        source="ray",
        cluster=cluster,
        id=job_id,
        name=name or job_id,
        state=state,
        native_state={JobState.CANCELLED: "STOPPED"}.get(state, state.value),
        gpus=gpus,
        submitted_at=submitted,
        started_at=None if state is JobState.PENDING else submitted,
        finished_at=finished,
        owner=owner,
        kind="SUBMISSION",
        cancellable=not state.is_terminal,
    )
