"""Kueue in mltop's words, for every screen and the report: why a queued job is not admitted, its
position, the JSON fields, and the rows of the queues view (`:queues`). Standard library only.

The adapter (mltop/adapters/kube_kueue.py) puts the facts on `Job` (queue, cluster_queue,
queue_position, position_estimated, priority, admission, queue_reason, held_by, workload) and the
ClusterQueues on `SourceData.queues`; this module only says them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from mltop import format as fmt
from mltop.model import Job, QueueUse

HOLDING = ("pending", "evicted", "stopped", "quota reserved")  # a Workload state that keeps the job waiting
QUEUE_COLUMNS = (("CLUSTER", 12), ("CLUSTERQUEUE", 16), ("FLAVOR", 14), ("RESOURCE", 15), ("QUOTA", 6),
                 ("USED", 6), ("BORROWED", 9), ("PENDING", 8), ("ADMITTED", 8))


def held(job: Job) -> bool:
    """Kueue holds this job: its Workload is not admitted."""
    return job.admission in HOLDING


def position_text(job: Job) -> str | None:
    """"#2", or "~#2" when mltop estimated it (no visibility API)."""
    if job.queue_position is None:
        return None
    return f"{'~' if job.position_estimated else ''}#{job.queue_position}"


def short(job: Job) -> str | None:
    """The REASON cell of a job Kueue holds: "#1 waiting for quota"; None when Kueue does not hold it."""
    if not held(job):
        return None
    why = job.queue_reason or ("stopped" if job.admission == "stopped" else f"Workload {job.admission}")
    position = position_text(job)
    return fmt.clip(f"{position} {why}" if position else why, 40)


def sentence(job: Job, *, quota: bool = True) -> str | None:
    """Why Kueue does not admit it, in full: the reason, the quota that holds it (unless `quota` is
    False: an idle-cost warning said it already), where it stands, and Kueue's own words. None when
    Kueue does not hold it."""
    if not held(job):
        return None
    why = job.queue_reason or f"its Workload is {job.admission}"
    parts = [f"Kueue: {why}"]
    if job.held_by and quota:
        parts.append(f"held by quota: {job.held_by}")
    if job.queue_position is not None:
        where = f"position {job.queue_position} in ClusterQueue {job.cluster_queue or '?'}"
        parts.append(where + (" (estimated by mltop: the visibility API did not answer)"
                              if job.position_estimated else ""))
    if job.queue:
        parts.append(f"LocalQueue {job.queue}" + (f", priority {job.priority}" if job.priority is not None else ""))
    said = f". Kueue says: {job.queue_message}" if job.queue_message else ""
    return "; ".join(parts) + said


def job_fields(job: Job) -> dict[str, Any]:
    """The queue fields of a job in the --once --json report (all null when Kueue does not queue it)."""
    return {
        "queue": job.queue,
        "cluster_queue": job.cluster_queue,
        "queue_position": job.queue_position,
        "position_estimated": job.position_estimated if job.queue_position is not None else None,
        "priority": job.priority,
        "admission": job.admission,
        "queue_reason": job.queue_reason,
        "held_by": job.held_by,
        "workload": job.workload,
    }


def queue_json(q: QueueUse) -> dict[str, Any]:
    return {"cluster": q.cluster, "cluster_queue": q.cluster_queue, "cohort": q.cohort, "flavor": q.flavor,
            "resource": q.resource, "nominal_quota": q.nominal, "used": q.used, "borrowed": q.borrowed,
            "borrowing_limit": q.borrowing_limit, "pending_workloads": q.pending, "admitted_workloads": q.admitted}


def _amount(value: float | None) -> str:
    return "?" if value is None else fmt.gpus(value)


def queue_rows(queues: Iterable[QueueUse]) -> list[tuple[str, ...]]:
    """The queues view's cells (plain text; the screen makes them inert), sorted by cluster and queue."""
    rows = []
    for q in sorted(queues, key=lambda q: (q.cluster, q.cluster_queue, q.flavor, q.resource)):
        limit = "" if q.borrowing_limit is None else f"/{_amount(q.borrowing_limit)}"
        rows.append((q.cluster, q.cluster_queue, q.flavor, q.resource, _amount(q.nominal), _amount(q.used),
                     _amount(q.borrowed) + limit, fmt.count(q.pending, "?"), fmt.count(q.admitted, "?")))
    return rows
