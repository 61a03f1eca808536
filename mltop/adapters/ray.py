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
from dataclasses import replace
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import httpx

from mltop.adapters.base import ActionOutcome, JobDetail
from mltop.adapters.http import MiB, Endpoint, decode_json, make_client, request, segment
from mltop.adapters.values import MAX_COUNT, Skips, epoch_ms, integer, mapping, number, sequence, text
from mltop.errors import BadResponse, Conflict
from mltop.model import TERMINAL_STATES as TERMINAL
from mltop.model import GpuDevice, Job, JobState, RayClusterState, RayNode, ResourceDemand, SourceData

KIND = "ray"

STATE_MAP = {
    "PENDING": JobState.PENDING,
    "RUNNING": JobState.RUNNING,
    "STOPPED": JobState.CANCELLED,
    "SUCCEEDED": JobState.SUCCEEDED,
    "FAILED": JobState.FAILED,
}
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

    async def aclose(self) -> None:
        await self._client.aclose()

    # -- reads ---------------------------------------------------------------------------

    async def fetch(self) -> SourceData:
        jobs_raw, alive, nodes_raw, status_raw = await asyncio.gather(
            self._get_json("/api/jobs/", "job list"),
            self._supervisor_requests(alive_only=True),
            self._get_json("/nodes", "node summary", params={"view": "summary"}),
            self._get_json("/api/cluster_status", "cluster status"),
        )
        if not isinstance(jobs_raw, list):
            raise BadResponse(f"{self.name}: job list is not a JSON array")
        skips = Skips()
        readable = []
        for raw in jobs_raw:
            problem = unreadable(raw)
            if problem:
                skips.add(f"job: {problem}")
            else:
                readable.append(raw)
        kept = keep_recent(readable, self.max_finished)
        wanted = {raw["submission_id"] for raw in kept if isinstance(raw.get("submission_id"), str)}
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
        cluster_skips = Skips()
        cluster = parse_cluster(nodes_raw, status_raw, skips=cluster_skips)
        jobs = [self._job(raw) for raw in kept]
        gpu_jobs_per_node: dict[str, int] = {}
        for job, raw in zip(jobs, kept):
            node = text(raw.get("driver_node_id"))
            if job.state is JobState.RUNNING and job.gpus and node:
                gpu_jobs_per_node[node] = gpu_jobs_per_node.get(node, 0) + 1
        jobs = tuple(
            with_utilization(job, raw, cluster, sole=gpu_jobs_per_node.get(text(raw.get("driver_node_id")) or "") == 1)
            for job, raw in zip(jobs, kept)
        )
        if cluster_skips.count:
            skips.count += cluster_skips.count
            skips.reason = skips.reason or cluster_skips.reason
        return SourceData(jobs=jobs, ray_cluster=cluster, skipped=skips.count, skip_reason=skips.reason)

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
        """A readable job (see `unreadable`) as a record; any other field that is junk is unknown."""
        native = raw["status"]
        state = STATE_MAP[native]
        job_type = text(raw.get("type")) or ""
        sid = raw.get("submission_id") if isinstance(raw.get("submission_id"), str) else None
        job_id = sid or str(raw.get("job_id"))
        metadata = mapping(raw.get("metadata"))
        known = bool(sid) and sid in self._requests  # DRIVER jobs ask nothing of Ray themselves
        requested = self._requests.get(sid, {}) if known and sid else {}
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
            gpus=requested.get("GPU", 0.0) if known else None,
            cpus=requested.get("CPU", 0.0) if known else None,
            submitted_at=submitted,
            started_at=None if state is JobState.PENDING else submitted,
            finished_at=epoch_ms(raw.get("end_time")),
            owner=_first(metadata, OWNER_KEYS),
            message=_clip(raw.get("message")),
            kind=job_type,
            entrypoint=entrypoint,
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
        body = await self._get_json("/api/v0/actors", "job supervisors", params=params)
        try:
            rows = body["data"]["result"]["result"]
        except (KeyError, TypeError):
            raise BadResponse(f"{self.name}: unexpected actor list shape") from None
        if not isinstance(rows, list):
            raise BadResponse(f"{self.name}: unexpected actor list shape")
        found: dict[str, dict[str, float | None]] = {}
        for actor in rows:
            name = mapping(actor).get("name")
            if isinstance(name, str) and name.startswith(SUPERVISOR_PREFIX):
                resources = mapping(mapping(actor).get("required_resources"))
                # A junk amount is unknown (None), not zero.
                found[name[len(SUPERVISOR_PREFIX):]] = {str(k): number(v) for k, v in resources.items()}
        return found

    async def _get_json(self, path: str, what: str, params: Any = None) -> Any:
        response = await request(self._client, "GET", path, what=f"{self.name}: {what}", params=params,
                                 limit=LIMITS.get(what, 8 * MiB))
        return decode_json(response, f"{self.name}: {what}")


def with_utilization(job: Job, raw: dict[str, Any], cluster: RayClusterState, sole: bool = False) -> Job:
    """A running job's measured GPU utilization, from the dashboard's telemetry.

    The GPUs on its driver's node whose process list holds the driver's pid; or, when the job is
    the only running GPU job on that node, the node's GPUs that any process uses. (A plain
    entrypoint that never calls ray.init() has no driver_info: its GPU process is a child of
    the job's supervisor, which the API does not name; seen on a real H200.)
    """
    node_id = raw.get("driver_node_id")
    if job.state is not JobState.RUNNING or not isinstance(node_id, str) or not node_id or not job.gpus:
        return job
    node = next((n for n in cluster.nodes if n.node_id == node_id), None)
    if node is None:
        return job
    pid = integer(mapping(raw.get("driver_info")).get("pid"))
    devices = [d for d in node.devices if pid is not None and pid in d.pids]
    if not devices and sole:
        devices = [d for d in node.devices if d.pids]
    values = [d.utilization for d in devices if d.utilization is not None]
    if not values:
        return job
    return replace(job, gpu_utilization=sum(values) / len(values))


class _Unreadable(ValueError):
    """A node entry that cannot be used; parse_cluster leaves it out and counts it."""


def parse_cluster(nodes_raw: Any, status_raw: Any, skips: Skips | None = None) -> RayClusterState:
    """Nodes with logical GPU use and physical telemetry, plus the demand Ray cannot place.

    BadResponse only when the node summary as a whole has no usable shape. A node entry, GPU
    entry or demand that cannot be read is left out and counted in `skips` (when given); a
    field that cannot be read is unknown (None) where the record allows it.
    """
    skips = skips if skips is not None else Skips()
    data = mapping(nodes_raw).get("data")
    summary = data.get("summary", []) if isinstance(data, dict) else None
    if not isinstance(summary, list):
        raise BadResponse("node summary: unexpected shape")
    logical = mapping(data.get("nodeLogicalResources"))
    # cluster_status is optional (autoscaler v2 leaves it null): junk there is just "not said".
    status = mapping(mapping(mapping(status_raw).get("data")).get("clusterStatus"))
    load = mapping(status.get("loadMetricsReport"))
    usage_by_node = mapping(load.get("usageByNode"))

    nodes = []
    for index, entry in enumerate(summary):
        try:
            nodes.append(_node(entry, usage_by_node, logical, skips))
        except _Unreadable as exc:
            skips.add(f"node summary: node #{index}: {exc}")
    demands = []
    # Lists nested in lists are not camelCased, so resource names keep Ray's spelling here.
    for item in sequence(load.get("resourceDemand")) + sequence(load.get("pgDemand")):
        demand = _demand(item)
        if demand is None:
            skips.add(f"cluster status: a resource demand that cannot be read ({type(item).__name__})")
        else:
            demands.append(demand)
    return RayClusterState(nodes=tuple(nodes), demands=tuple(demands))


def _node(entry: Any, usage_by_node: dict[str, Any], logical: dict[str, Any], skips: Skips) -> RayNode:
    if not isinstance(entry, dict) or not isinstance(entry.get("raylet"), dict):
        raise _Unreadable("not an object with a raylet")
    raylet = entry["raylet"]
    node_id = raylet.get("nodeId")
    if not isinstance(node_id, str) or not node_id:
        raise _Unreadable("no nodeId")
    raw_total = mapping(raylet.get("resourcesTotal")).get("GPU")
    total = 0.0 if raw_total is None else number(raw_total)
    if total is None:  # a GPU total that is junk is not zero GPUs: leave the node out, said so
        shown = raw_total[:20] if isinstance(raw_total, str) else type(raw_total).__name__
        raise _Unreadable(f"{node_id[:12]}: GPU total {shown!r} is not a count")
    devices = []
    for raw in sequence(entry.get("gpus")):
        device = _device(raw)
        if device is None:
            skips.add(f"node summary: node {node_id[:12]}: a GPU entry that cannot be read")
        else:
            devices.append(device)
    return RayNode(
        node_id=node_id,
        address=text(entry.get("ip")) or text(raylet.get("nodeManagerAddress")) or "",
        hostname=text(entry.get("hostname")) or "",
        is_head=raylet.get("isHeadNode") is True,
        alive=raylet.get("state") == "ALIVE",
        gpus_total=total,
        gpus_used=_used_gpus(usage_by_node.get(node_id), logical.get(node_id)),
        devices=tuple(devices),
    )


def _demand(item: Any) -> ResourceDemand | None:
    """`[{resource: amount}, count]`, or None when any part of it cannot be read."""
    if not isinstance(item, list) or len(item) != 2 or not isinstance(item[0], dict):
        return None
    amounts = {str(k): number(v) for k, v in item[0].items()}
    count = integer(item[1])
    if count is None or any(v is None for v in amounts.values()):
        return None
    return ResourceDemand(resources=tuple(sorted((k, v) for k, v in amounts.items() if v is not None)), count=count)


# ASCII digits and same-line blanks only: `\s` spans lines, and `^\s*...\s+` on a long run of
# blank lines backtracks quadratically.
_LOGICAL_GPU = re.compile(r"^[ \t]*([0-9.]+)/([0-9.]+)[ \t]+GPU[ \t\r]*$", re.MULTILINE)


def _used_gpus(usage: Any, logical_text: Any) -> float | None:
    """Logical GPUs in use on a node; None when Ray did not say or said junk."""
    if isinstance(usage, dict) and isinstance(usage.get("GPU"), list) and usage["GPU"]:
        return number(usage["GPU"][0])
    # Autoscaler v2 leaves cluster_status empty; the node summary's text form still has it.
    if isinstance(logical_text, str):
        match = _LOGICAL_GPU.search(logical_text)
        if match:
            return number(match.group(1))  # "1.2.3" matches the pattern but is no number
        return 0.0
    return None


def _device(raw: Any) -> GpuDevice | None:
    """One GPU's telemetry; None when the entry cannot be read (not an object, a junk index)."""
    if not isinstance(raw, dict):
        return None
    index = integer(raw.get("index", 0))
    if index is None:
        return None
    return GpuDevice(
        index=index,
        name=text(raw.get("name")) or "",
        utilization=_num(raw.get("utilizationGpu"), maximum=100.0),
        memory_used_mib=_num(raw.get("memoryUsed")),
        memory_total_mib=_num(raw.get("memoryTotal")),
        pids=tuple(pid for p in sequence(raw.get("processesPids"))
                   if (pid := integer(mapping(p).get("pid"))) is not None),
    )


def _num(value: Any, maximum: float = MAX_COUNT) -> float | None:
    """A finite, non-negative measurement within `maximum`; anything else is unknown (None)."""
    return number(value, maximum=maximum)


def _from_ms(value: Any) -> datetime | None:
    if value in (None, 0, "0", ""):
        return None
    try:
        return datetime.fromtimestamp(int(value) / 1000, tz=timezone.utc)
    except (TypeError, ValueError, OverflowError):
        return None


def unreadable(raw: Any) -> str | None:
    """Why a job entry cannot be shown at all (it is then skipped and counted), or None."""
    if not isinstance(raw, dict):
        return "not an object"
    status = raw.get("status")
    if not isinstance(status, str) or status not in STATE_MAP:
        return f"unknown status {str(status)[:40]!r}"
    sid, job_id = raw.get("submission_id"), raw.get("job_id")
    if not (isinstance(sid, str) and sid) and not (isinstance(job_id, str) and job_id):
        return "neither submission_id nor job_id"
    return None


def epoch_key(value: Any) -> float:
    """A time in ms to sort by; junk sorts as the oldest."""
    return number(value, maximum=4102444800000) or 0.0


def keep_recent(jobs: list[dict[str, Any]], max_finished: int) -> list[dict[str, Any]]:
    """Every unfinished job, and the `max_finished` most recently finished."""
    finished = [j for j in jobs if STATE_MAP.get(str(j.get("status"))) in TERMINAL]
    if len(finished) <= max_finished:
        return jobs
    finished.sort(key=lambda j: epoch_key(j.get("end_time")) or epoch_key(j.get("start_time")), reverse=True)
    keep = {id(j) for j in finished[:max_finished]}
    return [j for j in jobs if id(j) in keep or STATE_MAP.get(str(j.get("status"))) not in TERMINAL]


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
