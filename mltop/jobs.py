"""The job queue as users read it, and the truth-keeping around stop requests. No Textual here.

Order: the queue first (pending, longest wait first), then what is running (or being stopped),
then the most recent finished jobs. A stop request is tracked until the backend reports a
terminal state; until then the job keeps the backend's state with the request shown beside it,
never a made-up "stopped".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime

from mltop.model import Job, JobState
from mltop.query import job_fields, parse

DEFAULT_FINISHED_LIMIT = 50
DEFAULT_STOP_PATIENCE_SECONDS = 30.0

def _ts(value: datetime | None) -> float:
    return value.timestamp() if value is not None else 0.0


def order_jobs(jobs: Iterable[Job], finished_limit: int = DEFAULT_FINISHED_LIMIT) -> list[Job]:
    """Queue, then active, then the `finished_limit` most recently finished jobs."""
    waiting, active, finished = [], [], []
    for job in jobs:
        if job.state is JobState.PENDING:
            waiting.append(job)
        elif job.state.is_terminal:
            finished.append(job)
        else:
            active.append(job)
    # Ties broken by key so the order never flickers between refreshes.
    waiting.sort(key=lambda j: (_ts(j.submitted_at), j.key))  # submitted earliest = waited longest
    active.sort(key=lambda j: (_ts(j.started_at), j.key))
    finished.sort(key=lambda j: (-_ts(j.finished_at or j.submitted_at), j.key))
    return waiting + active + finished[: max(0, finished_limit)]


def matches(job: Job, text: str) -> bool:
    """Does `job` pass the `/` filter `text` (mltop.query: words and expressions, field:value,
    gpus>4, !negation), case-insensitive, every term must hold."""
    return parse(text).matches(job_fields(job))


@dataclass(frozen=True)
class StopRequest:
    key: str
    source_key: str  # "ray/prod": the source whose refresh settles this request
    job_id: str
    cluster: str
    requested_at: datetime
    overdue_told: bool = False
    deletes: bool = False  # the stop was a deletion (a KubeRay RayJob): gone from the list is its success


@dataclass(frozen=True)
class StopEvent:
    """Something the user must be told about a stop they asked for."""

    key: str
    severity: str  # "information" | "warning"
    message: str


class StopTracker:
    """Remembers the stops the backend accepted and tells the truth about what followed."""

    def __init__(self, patience_seconds: float = DEFAULT_STOP_PATIENCE_SECONDS) -> None:
        self.patience_seconds = patience_seconds
        self._requests: dict[str, StopRequest] = {}

    def __contains__(self, key: str) -> bool:
        return key in self._requests

    def requested(self, job: Job, at: datetime, source_key: str) -> None:
        """The backend accepted a stop of `job`, which came from the source `source_key`."""
        deletes = (job.cancel_effect or "").startswith("deletes")
        self._requests[job.key] = StopRequest(job.key, source_key, job.id, job.cluster, at, deletes=deletes)

    def apply(self, jobs: Iterable[Job], now: datetime, sources: set[str] | None = None) -> tuple[list[Job], list[StopEvent]]:
        """Overlay pending stop requests on fresh jobs, and report how each request ended.

        `sources` names the cluster keys ("ray/prod") this batch of jobs covers; requests on
        other sources are left alone so one source's refresh does not settle another's stops.
        """
        if not self._requests:  # nearly always: nothing to overlay (a view at 5,000 nodes walked every job)
            return list(jobs), []
        out: list[Job] = []
        events: list[StopEvent] = []
        seen: set[str] = set()
        for job in jobs:
            req = self._requests.get(job.key)
            if req is None:
                out.append(job)
                continue
            seen.add(job.key)
            if job.state.is_terminal:
                del self._requests[job.key]
                severity = "information" if job.state is JobState.CANCELLED else "warning"
                events.append(
                    StopEvent(job.key, severity, f"{job.cluster}/{job.id}: {job.source} reports {job.native_state}")
                )
                out.append(job)
                continue
            waited = (now - req.requested_at).total_seconds()
            if waited >= self.patience_seconds and not req.overdue_told:
                self._requests[job.key] = replace(req, overdue_told=True)
                hint = " (a job still waiting stops only once it gets its resources, or fails at its start timeout)" if (
                    job.state is JobState.PENDING
                ) else ""
                events.append(
                    StopEvent(
                        job.key,
                        "warning",
                        f"{job.cluster}/{job.id}: stop requested {int(waited)}s ago, "
                        f"but {job.source} still reports {job.native_state}{hint}",
                    )
                )
            # The state stays what the backend says; the request is shown beside it.
            out.append(replace(job, stop_requested_at=req.requested_at))
        for key, req in list(self._requests.items()):
            if key not in seen and (sources is None or req.source_key in sources):
                del self._requests[key]
                events.append(
                    StopEvent(key, "information", f"{req.cluster}/{req.job_id}: deleted (the cluster no longer lists it)")
                    if req.deletes else
                    StopEvent(key, "warning", f"{req.cluster}/{req.job_id}: no longer listed; its final state is unknown")
                )
        return out, events

    def overdue(self, jobs: Iterable[Job], now: datetime) -> frozenset[str]:
        """Keys of the `jobs` whose stop did not take within the patience."""
        if not self._requests:
            return frozenset()
        return frozenset(j.key for j in jobs if self.is_overdue(j, now))

    def is_overdue(self, job: Job, now: datetime) -> bool:
        req = self._requests.get(job.key)
        return req is not None and (now - req.requested_at).total_seconds() >= self.patience_seconds


def pending_pods(jobs: Iterable[Job]) -> dict[str, tuple[Job, ...]]:
    """Pending pods by pod name (a KFP step names its pod without a namespace or cluster)."""
    out: dict[str, tuple[Job, ...]] = {}
    for job in jobs:
        if job.kind == "Pod" and job.state is JobState.PENDING:
            name = job.id.rsplit("/", 1)[-1]
            out[name] = (*out.get(name, ()), job)
    return out
