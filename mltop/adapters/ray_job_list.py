"""Ray's job list at size: read only when it changed, polled less often when it is large.

`GET /api/jobs/` lists every job the head ever ran, in one array with no paging and no filter
(backend-apis.md part A): 10,000 jobs are about 8 MiB, and decoding that and building records
every 2 s cost a tenth of a core. So:
- a body byte-identical to the last one is not decoded again: its records are reused. Nothing
  built from the list depends on when it was read (times are absolute; ages are worked out when
  shown), so the same bytes give the same records. What may change between two such polls is
  read fresh: what each job asked for (the supervisor actors) and GPU telemetry (the nodes).
- a changed body is read in two cheap passes instead of one costly one: the five fields that
  choose which jobs are kept (`Head`), and each entry's bytes (`msgspec.Raw`); only the kept
  entries, a few hundred of 10,000, become Python dicts (bench/ray_jobs.py). A body that is not
  strict JSON (Ray writes NaN) or whose entries are not all objects is read whole, as before.
- a large list is polled less often (`pace`), and the source's line says so.
Only the last body's digest and records are kept: memory does not grow with polls.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import msgspec

from mltop.adapters.http import MiB
from mltop.adapters.ray_cluster import with_utilization
from mltop.adapters.values import Skips, number, text
from mltop.model import TERMINAL_STATES as TERMINAL
from mltop.model import Job, JobState, RayClusterState

STATE_MAP = {
    "PENDING": JobState.PENDING,
    "RUNNING": JobState.RUNNING,
    "STOPPED": JobState.CANCELLED,
    "SUCCEEDED": JobState.SUCCEEDED,
    "FAILED": JobState.FAILED,
}
# Above either size the list is polled less often: about a second per 1,000 jobs or per MiB,
# never more often than the configured refresh and never less often than MAX_POLL_SECONDS
# (a job that ends still shows within that).
LARGE_LIST_BYTES = 2 * MiB
LARGE_LIST_JOBS = 2000
MAX_POLL_SECONDS = 15.0

Requests = Mapping[str, Mapping[str, float | None]]  # submission id -> what its supervisor asked for


def asked(sid: str | None, requests: Requests) -> dict[str, float | None]:
    """A job's GPUs and CPUs as its supervisor asked; unknown (None) without one (a DRIVER job
    asks nothing of Ray itself; a supervisor Ray no longer lists cannot say)."""
    request = requests.get(sid) if sid else None
    if request is None:
        return {"gpus": None, "cpus": None}
    return {"gpus": request.get("GPU", 0.0), "cpus": request.get("CPU", 0.0)}


def submission_id(raw: dict[str, Any]) -> str | None:
    sid = raw.get("submission_id")
    return sid if isinstance(sid, str) else None


class Head(msgspec.Struct):
    """What `unreadable` and `keep_recent` read of a job entry; any JSON value in each."""

    status: Any = None
    submission_id: Any = None
    job_id: Any = None
    start_time: Any = None
    end_time: Any = None

    @classmethod
    def of(cls, raw: Any) -> Head | None:
        """A decoded entry's head; None when the entry is not an object."""
        if not isinstance(raw, dict):
            return None
        return cls(raw.get("status"), raw.get("submission_id"), raw.get("job_id"), raw.get("start_time"),
                   raw.get("end_time"))


HEADS = msgspec.json.Decoder(list[Head])
RAWS = msgspec.json.Decoder(list[msgspec.Raw])
ENTRY = msgspec.json.Decoder()


def read_heads(body: bytes) -> tuple[list[Head], Callable[[int], Any]] | None:
    """Each entry's `Head`, and the whole entry `i` decoded when asked; None when the body is not
    strict JSON or an entry is not an object (the caller then decodes it whole, `entry_heads`)."""
    try:
        heads, raws = HEADS.decode(body), RAWS.decode(body)
    except (msgspec.DecodeError, RecursionError):
        return None
    return heads, lambda i: ENTRY.decode(raws[i])


def entry_heads(entries: list[Any]) -> tuple[list[Head | None], Callable[[int], Any]]:
    """`read_heads` for a body already decoded whole."""
    return [Head.of(raw) for raw in entries], entries.__getitem__


class Supervisor(msgspec.Struct):
    """What mltop reads of a JobSupervisor actor; Ray's detailed actor (~1.3 KB) is skipped unread."""

    name: Any = None
    required_resources: Any = None


class _Page(msgspec.Struct):
    result: list[Supervisor]


class _Data(msgspec.Struct):
    result: _Page


class _ActorList(msgspec.Struct):  # {"data": {"result": {"result": [actor, ...]}}}
    data: _Data


ACTORS = msgspec.json.Decoder(_ActorList)


def read_supervisors(body: bytes) -> list[Supervisor] | None:
    """The actors of a `/api/v0/actors` answer, two fields each (10,000 actors: 4 ms where decoding
    them whole takes 11); None when the body is not strict JSON of that shape (decode it whole)."""
    try:
        return ACTORS.decode(body).data.result.result
    except (msgspec.DecodeError, RecursionError):
        return None


@dataclass(frozen=True)
class JobListing:
    """One job-list body, read: the jobs kept (`keep_recent`), built with `asked_with`."""

    digest: bytes
    size: int  # bytes of the body
    total: int  # entries Ray listed, readable or not
    max_finished: int
    wanted: frozenset[str]  # submission ids of the jobs kept: whose requests to keep
    skipped: int = 0
    skip_reason: str | None = None
    jobs: tuple[Job, ...] = ()
    sids: tuple[str | None, ...] = ()  # each job's submission id
    asked_with: Requests | None = None
    # (index, driver node, the entry's driver fields) of each running job: what with_utilization reads
    drivers: tuple[tuple[int, str, dict[str, Any]], ...] = ()

    @classmethod
    def read(cls, body_digest: bytes, size: int, heads: list[Head] | list[Head | None],
             whole: Callable[[int], Any], max_finished: int) -> tuple[JobListing, list[dict[str, Any]]]:
        """The listing of a body (its entries' `heads`), and the entries it keeps, `whole(i)`."""
        skips = Skips()
        readable = []
        for i, head in enumerate(heads):
            problem = unreadable(head)
            if problem:
                skips.add(f"job: {problem}")
            else:
                readable.append(i)
        kept = [whole(i) for i in keep_recent(heads, readable, max_finished)]
        wanted = frozenset(sid for raw in kept if (sid := submission_id(raw)) is not None)
        listing = cls(body_digest, size, len(heads), max_finished, wanted, skips.count, skips.reason)
        return listing, kept

    def built(self, kept: list[dict[str, Any]], job_of: Callable[[dict[str, Any]], Job],
              requests: Requests) -> JobListing:
        """The listing with its records, `job_of` each kept entry, as asked in `requests`."""
        jobs = tuple(job_of(raw) for raw in kept)
        drivers = tuple(
            (i, node, {"driver_node_id": raw.get("driver_node_id"), "driver_info": raw.get("driver_info")})
            for i, (job, raw) in enumerate(zip(jobs, kept))
            if job.state is JobState.RUNNING and (node := text(raw.get("driver_node_id")))
        )
        return replace(self, jobs=jobs, sids=tuple(submission_id(raw) for raw in kept), asked_with=dict(requests),
                       drivers=drivers)

    def asking(self, requests: Requests) -> JobListing:
        """The same records with what each job asked for as `requests` says now (a supervisor
        found since, one forgotten); only the jobs whose request changed are rebuilt."""
        before = self.asked_with or {}
        if requests == before:
            return self
        jobs = tuple(
            replace(job, **asked(sid, requests)) if sid and requests.get(sid) != before.get(sid) else job
            for job, sid in zip(self.jobs, self.sids)
        )
        return replace(self, jobs=jobs, asked_with=dict(requests))

    def measured(self, cluster: RayClusterState) -> tuple[Job, ...]:
        """The jobs with their GPUs' measured utilization, from this poll's telemetry."""
        if not self.drivers:
            return self.jobs
        gpu_jobs_per_node = Counter(node for i, node, _ in self.drivers if self.jobs[i].gpus)
        jobs = list(self.jobs)
        for i, node, raw in self.drivers:
            jobs[i] = with_utilization(jobs[i], raw, cluster, sole=gpu_jobs_per_node[node] == 1)
        return tuple(jobs)


def pace(base: float, listing: JobListing | None) -> tuple[float, str | None]:
    """Seconds to wait before the next poll, and the note that says so when it is over `base`."""
    if listing is None or (listing.size <= LARGE_LIST_BYTES and listing.total <= LARGE_LIST_JOBS):
        return base, None
    seconds = max(base, min(MAX_POLL_SECONDS, math.ceil(max(listing.total / 1000, listing.size / MiB))))
    if seconds <= base:
        return base, None
    return seconds, f"polling every {seconds:.0f}s ({listing.total:,} jobs, {listing.size / MiB:.1f} MiB)"


def unreadable(head: Head | None) -> str | None:
    """Why a job entry cannot be shown at all (it is then skipped and counted), or None."""
    if head is None:
        return "not an object"
    status = head.status
    if not isinstance(status, str) or status not in STATE_MAP:
        return f"unknown status {str(status)[:40]!r}"
    sid, job_id = head.submission_id, head.job_id
    if not (isinstance(sid, str) and sid) and not (isinstance(job_id, str) and job_id):
        return "neither submission_id nor job_id"
    return None


MAX_EPOCH_MS = 4102444800000  # 2100-01-01: later is junk


def epoch_key(value: Any) -> float:
    """A time in ms to sort by; junk sorts as the oldest."""
    if type(value) is int and 0 <= value <= MAX_EPOCH_MS:  # what Ray sends: no float() and range checks
        return value
    return number(value, maximum=MAX_EPOCH_MS) or 0.0


def keep_recent(heads: Sequence[Head | None], readable: list[int], max_finished: int) -> list[int]:
    """Of the `readable` entries, every unfinished job and the `max_finished` most recently
    finished, in the list's order."""
    finished = [i for i in readable if STATE_MAP[heads[i].status] in TERMINAL]  # type: ignore[union-attr]
    if len(finished) <= max_finished:
        return readable
    finished.sort(key=lambda i: epoch_key(heads[i].end_time) or epoch_key(heads[i].start_time),  # type: ignore[union-attr]
                  reverse=True)
    dropped = set(finished[max_finished:])
    return [i for i in readable if i not in dropped]
