"""Ray dashboard REST adapter: jobs, what each job asked for, nodes, GPU telemetry, pending demand.

Contracts: ../shared/reference/backend-apis.md part A. The traps this module handles:
- `/api/jobs/` drops the entrypoint's resource request; the job's supervisor actor
  (`_ray_internal_job_actor_<submission_id>`) carries it in `required_resources`.
- `/nodes` and `/api/cluster_status` camelCase every key, ids used as keys included.
- errors are text/plain tracebacks, never JSON.
- a stop on a job still waiting for resources answers `{"stopped": true}` yet the job stays
  PENDING (seen on Ray 2.60): the stop is queued on a supervisor that has not started.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import httpx

from mltop.adapters.http import MiB, Endpoint, decode_json, digest, make_client, request, segment
from mltop.adapters.ray_cluster import parse_cluster
from mltop.adapters.ray_job_list import (STATE_MAP, JobListing, Supervisor, asked, entry_heads, pace, read_heads,
                                         read_supervisors, submission_id)
from mltop.adapters import raw_objects
from mltop.adapters.ray_logs import RayJobLog
from mltop.adapters.ray_nodes import ray_gpu_nodes
from mltop.adapters.values import Skips, epoch_ms, gc_paused, mapping, number, text
from mltop.errors import BadResponse, Conflict
from mltop.model import ActionOutcome, JobDetail
from mltop.model import Job, JobState, RawObject, SourceData, ray_node_key

KIND = "ray"

SUPERVISOR_PREFIX = "_ray_internal_job_actor_"
# Ray has no owner or display-name field; these metadata keys are what teams conventionally set
# with `ray job submit --metadata-json`. The first present wins.
OWNER_KEYS = ("owner", "user", "username", "submitted_by", "creator")
NAME_KEYS = ("job_name", "name", "display_name")
LOG_SECTION = "log tail (last lines)"
LOG_TAIL_LINES = 200
LOG_TAIL_BYTES = 256 * 1024
# Ray lists every job it ever ran, forever. mltop keeps every unfinished one and only this many
# of the most recently finished, and cuts messages (a failed job's holds 20,000 chars of log):
# memory follows what the screen can show, not the cluster's history. Details fetch the rest.
MAX_FINISHED_JOBS = 500
MAX_MESSAGE_CHARS = 1000
# Ids the dashboard can act on safely. The head forwards a stop (and a log read) to the job's
# agent with the id put into the agent's URL unencoded (seen on Ray 2.60): `zz/../victim` there
# becomes `/api/job_agent/jobs/victim/stop`, whatever mltop encodes. Only ids made of URL-safe
# characters survive that; others are refused for those calls, with the reason.
UNSAFE_ID = ("Ray's dashboard passes this id on to its job agent unencoded, where characters other than "
             "letters, digits and . _ ~ - could address another job")
AGENT_SAFE_ID = re.compile(r"^(?!\.+$)[A-Za-z0-9._~-]+$")
# The most each answer may weigh (README, "bad data"): 10,000 jobs are about 8 MiB.
LIMITS = {"job list": 32 * MiB, "job supervisors": 32 * MiB, "node summary": 16 * MiB,
          "cluster status": 8 * MiB, "job": 4 * MiB, "logs": 32 * MiB, "stop": 1 * MiB}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class RaySource:
    """One Ray cluster, reached through its dashboard's HTTP API."""

    kind = KIND

    @property
    def key(self) -> str:
        """The source's key ("kind/name"): its records, updates and actions are filed under it."""
        return f"{KIND}/{self.name}"

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], datetime] = utcnow,
        max_finished: int = MAX_FINISHED_JOBS,
    ) -> None:
        self.endpoint = endpoint
        self.name = endpoint.name
        self._client = make_client(endpoint, transport)
        self._clock = clock
        # What each submission asked for. A supervisor actor's request never changes, so it is
        # kept across polls; entries for jobs Ray no longer lists are dropped each poll.
        self._requests: dict[str, dict[str, float | None]] = {}
        self._unfindable: set[str] = set()  # submissions whose supervisor Ray no longer lists
        self.max_finished = max_finished
        self._listing: JobListing | None = None  # the last job list read (ray_job_list.py)

    async def aclose(self) -> None:
        await self._client.aclose()

    # -- reads ---------------------------------------------------------------------------

    async def fetch(self) -> SourceData:
        jobs_response, alive, nodes_raw, status_raw = await asyncio.gather(
            self._get("/api/jobs/", "job list"),
            self._supervisor_requests(alive_only=True),
            self._get_json("/nodes", "node summary", params={"view": "summary"}),
            self._get_json("/api/cluster_status", "cluster status"),
        )
        # Decoding and reading 10,000 jobs (~8 MiB) is ~50-100 ms of CPU: in a thread, so the event
        # loop (the screen's, in the TUI) keeps answering keys meanwhile.
        listing, kept = await asyncio.to_thread(self._read_job_list, jobs_response)
        wanted = listing.wanted
        self._requests.update(alive)
        missing = wanted - self._requests.keys() - self._unfindable
        if missing:
            # Jobs first seen after they ended: their supervisors are dead; ask once for all.
            everything = await self._supervisor_requests(alive_only=False)
            self._requests.update(everything)
            self._unfindable |= missing - everything.keys()
        # Forget what belongs to jobs no longer shown, so memory follows the table, not history.
        self._requests = {sid: r for sid, r in self._requests.items() if sid in wanted}
        self._unfindable &= wanted
        if kept is None:
            listing = listing.asking(self._requests)
        else:
            listing = await asyncio.to_thread(listing.built, kept, self._job, dict(self._requests))
        self._listing = listing
        skips = Skips()
        cluster = parse_cluster(nodes_raw, status_raw, skips=skips)
        return SourceData(jobs=listing.measured(cluster), ray_cluster=cluster,
                          ray_nodes=ray_gpu_nodes(self.name, nodes_raw, cluster),
                          skipped=listing.skipped + skips.count, skip_reason=listing.skip_reason or skips.reason)

    def poll_pace(self, base: float) -> tuple[float, str | None]:
        """Seconds until the next poll and, when slower than `base`, the note that says why
        (see ray_job_list.pace): the refresh loop asks after each poll."""
        return pace(base, self._listing)

    def _read_job_list(self, response: httpx.Response) -> tuple[JobListing, list[dict[str, Any]] | None]:
        """The listing of this job-list body, and its raw entries to build records from; None for
        the entries when the body is the last one again, whose records are reused undecoded."""
        body_digest, last = digest(response.content), self._listing
        if last is not None and last.digest == body_digest and last.max_finished == self.max_finished:
            return last, None
        with gc_paused():  # tens of thousands of new objects: no collection passes while they are made
            read = read_heads(response.content)
            if read is None:
                entries = decode_json(response, f"{self.name}: job list")
                if not isinstance(entries, list):
                    raise BadResponse(f"{self.name}: job list is not a JSON array")
                read = entry_heads(entries)
            return JobListing.read(body_digest, len(response.content), *read, self.max_finished)

    async def job_detail(self, job_id: str) -> JobDetail:
        raw = await self._job_by_id(job_id)
        sid = raw.get("submission_id")
        if isinstance(sid, str) and sid:
            self._requests.update(await self._supervisor_requests(alive_only=False, submission_id=sid))
        job = self._job(raw)
        try:
            tail = await self.log_tail(job_id) if raw.get("type") == "SUBMISSION" else ""
        except (BadResponse, Conflict) as exc:  # a log too big or malformed still leaves the job's facts to show
            tail = f"(log not shown: {exc})"
        return JobDetail(job=job, sections=((LOG_SECTION, tail or "(no log output yet)"),))

    def why_no_log(self, job: Job) -> str | None:
        """Why `l` cannot follow this job's log here, or None (see ray_logs.py)."""
        if job.kind == "DRIVER":
            return ("a driver job (a script that called ray.init itself): Ray serves logs only for submission jobs; "
                    "its output went to that script's terminal")
        if not AGENT_SAFE_ID.match(job.id):
            return f"mltop will not read its log: {UNSAFE_ID}"
        return None

    def log_stream(self, job: Job) -> RayJobLog:
        return RayJobLog(self.endpoint, job.id)

    def raw_refusal(self, record: Any) -> str | None:
        return raw_objects.job_refusal(record, "Ray's dashboard")

    async def raw_object(self, record: Any) -> RawObject:
        """A job as `GET /api/jobs/{id}`, a node as `GET /nodes/{id}` answer, for the raw view (`y`)."""
        if isinstance(record, Job):
            return await raw_objects.ray_job(record, self._job_by_id, self.name, self._clock)
        return await raw_objects.ray_node(record, self._client, self.name, self._clock)

    async def log_tail(self, job_id: str) -> str:
        """The last lines of a submission job's driver log.

        Ray only serves the whole log as one JSON string, so the tail is cut here; only
        LOG_TAIL_BYTES of it are kept.
        """
        what = f"logs of job {job_id}"
        if not AGENT_SAFE_ID.match(job_id):
            raise Conflict(f"{what}: {UNSAFE_ID}")
        response = await request(self._client, "GET", f"/api/jobs/{segment(job_id)}/logs", what=what,
                                 limit=LIMITS["logs"])
        body = decode_json(response, what)
        logs = body.get("logs", "") if isinstance(body, dict) else ""
        if not isinstance(logs, str):
            raise BadResponse(f"{what}: unexpected shape")
        logs = logs[-LOG_TAIL_BYTES:]
        return "\n".join(logs.splitlines()[-LOG_TAIL_LINES:])

    async def _job_by_id(self, job_id: str) -> dict[str, Any]:
        """The job Ray holds under exactly `job_id`, fetched by its encoded id.

        Ray's answer must name the same job: if the id cannot be addressed safely (the server
        decodes or normalises it into another path), the answer is another job or none, and
        nothing may be done to it.
        """
        what = f"{self.name}: job {job_id}"
        response = await request(self._client, "GET", f"/api/jobs/{segment(job_id)}", what=what, limit=LIMITS["job"])
        raw = decode_json(response, what)
        if not isinstance(raw, dict):
            raise BadResponse(f"{what}: the server did not answer with a job")
        answered = raw.get("submission_id") or raw.get("job_id")
        if answered != job_id and raw.get("job_id") != job_id:
            raise Conflict(
                f"{what}: Ray answered for another job ({answered!r}); this id cannot be addressed safely over "
                "the dashboard API, so mltop will not act on it"
            )
        return raw

    # -- actions -------------------------------------------------------------------------

    async def cancel_job(self, job_id: str) -> ActionOutcome:
        """Ask Ray to stop a submission job. Returns what Ray said, not what the job did.

        The job is read back by its encoded id first and must be the one confirmed.
        """
        if not AGENT_SAFE_ID.match(job_id):
            raise Conflict(f"stop job {job_id}: refused, not sent: {UNSAFE_ID}")
        raw = await self._job_by_id(job_id)
        if raw.get("submission_id") != job_id:
            raise Conflict(f"stop job {job_id}: only submission jobs can be stopped through the dashboard")
        what = f"stop job {job_id}"
        response = await request(self._client, "POST", f"/api/jobs/{segment(job_id)}/stop", what=what,
                                 limit=LIMITS["stop"])
        body = decode_json(response, what)
        if not isinstance(body, dict) or not isinstance(body.get("stopped"), bool):
            raise BadResponse(f"{what}: unexpected answer")
        if body["stopped"]:
            return ActionOutcome(True, f"Ray accepted the stop request for {job_id}")
        raise Conflict(f"{what}: Ray did not stop it; it had already finished")

    # -- parsing -------------------------------------------------------------------------

    def _job(self, raw: dict[str, Any]) -> Job:
        """A readable job (see `ray_job_list.unreadable`) as a record; any other field that is junk is unknown."""
        native = raw["status"]
        state = STATE_MAP[native]
        job_type = text(raw.get("type")) or ""
        sid = submission_id(raw)
        job_id = sid or str(raw.get("job_id"))
        metadata = mapping(raw.get("metadata"))
        # Ray reports one start_time, the submission time; a job that is no longer pending is
        # taken to have started then (Ray keeps no separate "started running" time).
        submitted = epoch_ms(raw.get("start_time"))
        entrypoint = _clip(raw.get("entrypoint")) or ""
        return Job(
            key=f"{KIND}/{self.name}/{job_id}",
            source=KIND,
            cluster=self.name,
            id=str(job_id),
            name=_first(metadata, NAME_KEYS) or entrypoint,
            state=state,
            native_state=native,
            **asked(sid, self._requests),
            submitted_at=submitted,
            started_at=None if state is JobState.PENDING else submitted,
            finished_at=epoch_ms(raw.get("end_time")),
            owner=_first(metadata, OWNER_KEYS),
            message=_clip(raw.get("message")),
            kind=job_type,
            entrypoint=entrypoint,
            node_keys=(ray_node_key(self.name, node),) if (node := text(raw.get("driver_node_id"))) else (),
            cancellable=job_type == "SUBMISSION" and not state.is_terminal and bool(AGENT_SAFE_ID.match(job_id)),
            not_cancellable_because=None if AGENT_SAFE_ID.match(job_id) else f"mltop will not stop it: {UNSAFE_ID}",
        )

    async def _supervisor_requests(
        self, *, alive_only: bool, submission_id: str | None = None
    ) -> dict[str, dict[str, float | None]]:
        """What each job's entrypoint asked for, from its JobSupervisor actor.

        Each poll asks only for live supervisors (a dead one's request never changes and was
        read while it lived); all of them only when a job shows up already finished.
        """
        params = [
            ("detail", "1"),
            ("limit", "10000"),
            ("filter_keys", "class_name"), ("filter_predicates", "="), ("filter_values", "JobSupervisor"),
        ]
        if alive_only:
            params += [("filter_keys", "state"), ("filter_predicates", "!="), ("filter_values", "DEAD")]
        if submission_id:
            params += [("filter_keys", "name"), ("filter_predicates", "="),
                       ("filter_values", SUPERVISOR_PREFIX + submission_id)]
        response = await self._get("/api/v0/actors", "job supervisors", params=params)
        actors = read_supervisors(response.content)
        if actors is None:  # not strict JSON of the usual shape: read whole, junk entries skipped
            body = decode_json(response, f"{self.name}: job supervisors")
            try:
                rows = body["data"]["result"]["result"]
            except (KeyError, TypeError):
                raise BadResponse(f"{self.name}: unexpected actor list shape") from None
            if not isinstance(rows, list):
                raise BadResponse(f"{self.name}: unexpected actor list shape")
            actors = [Supervisor(mapping(row).get("name"), mapping(row).get("required_resources")) for row in rows]
        found: dict[str, dict[str, float | None]] = {}
        for actor in actors:
            name = actor.name
            if isinstance(name, str) and name.startswith(SUPERVISOR_PREFIX):
                # A junk amount is unknown (None), not zero.
                resources = mapping(actor.required_resources)
                found[name[len(SUPERVISOR_PREFIX):]] = {str(k): number(v) for k, v in resources.items()}
        return found

    async def _get(self, path: str, what: str, params: Any = None) -> httpx.Response:
        return await request(self._client, "GET", path, what=f"{self.name}: {what}", params=params,
                             limit=LIMITS.get(what, 8 * MiB))

    async def _get_json(self, path: str, what: str, params: Any = None) -> Any:
        return decode_json(await self._get(path, what, params), f"{self.name}: {what}")


def _clip(message: Any) -> str | None:
    if not isinstance(message, str):
        return None
    return message if len(message) <= MAX_MESSAGE_CHARS else message[: MAX_MESSAGE_CHARS - 1] + "…"


def _first(metadata: Any, keys: tuple[str, ...]) -> str | None:
    if not isinstance(metadata, dict):
        return None
    for key in keys:
        value = text(metadata.get(key))
        if value:
            return value[:MAX_MESSAGE_CHARS]
    return None
