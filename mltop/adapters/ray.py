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
from mltop.adapters.http import Endpoint, decode_json, make_client, request
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
        self._requests: dict[str, dict[str, float]] = {}
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
        kept = keep_recent([raw for raw in jobs_raw if isinstance(raw, dict)], self.max_finished)
        wanted = {raw["submission_id"] for raw in kept if raw.get("submission_id")}
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
        cluster = parse_cluster(nodes_raw, status_raw)
        jobs = [self._job(raw) for raw in kept]
        gpu_jobs_per_node: dict[str, int] = {}
        for job, raw in zip(jobs, kept):
            if job.state is JobState.RUNNING and job.gpus and raw.get("driver_node_id"):
                gpu_jobs_per_node[raw["driver_node_id"]] = gpu_jobs_per_node.get(raw["driver_node_id"], 0) + 1
        jobs = tuple(
            with_utilization(job, raw, cluster, sole=gpu_jobs_per_node.get(raw.get("driver_node_id") or "") == 1)
            for job, raw in zip(jobs, kept)
        )
        return SourceData(jobs=jobs, ray_cluster=cluster)

    async def job_detail(self, job_id: str) -> JobDetail:
        raw = await self._get_json(f"/api/jobs/{job_id}", f"job {job_id}")
        if not isinstance(raw, dict):
            raise BadResponse(f"job {job_id}: the server did not answer with a job")
        sid = raw.get("submission_id")
        if sid:
            self._requests.update(await self._supervisor_requests(alive_only=False, submission_id=sid))
        job = self._job(raw)
        tail = await self.log_tail(job_id) if raw.get("type") == "SUBMISSION" else ""
        return JobDetail(job=job, sections=((LOG_SECTION, tail or "(no log output yet)"),))

    async def log_tail(self, job_id: str) -> str:
        """The last lines of a submission job's driver log.

        Ray only serves the whole log as one JSON string, so the tail is cut here; only
        LOG_TAIL_BYTES of it are kept.
        """
        response = await request(self._client, "GET", f"/api/jobs/{job_id}/logs", what=f"logs of job {job_id}")
        body = decode_json(response, f"logs of job {job_id}")
        logs = body.get("logs", "") if isinstance(body, dict) else ""
        if not isinstance(logs, str):
            raise BadResponse(f"logs of job {job_id}: unexpected shape")
        logs = logs[-LOG_TAIL_BYTES:]
        return "\n".join(logs.splitlines()[-LOG_TAIL_LINES:])

    # -- actions -------------------------------------------------------------------------

    async def cancel_job(self, job_id: str) -> ActionOutcome:
        """Ask Ray to stop a submission job. Returns what Ray said, not what the job did."""
        response = await request(self._client, "POST", f"/api/jobs/{job_id}/stop", what=f"stop job {job_id}")
        body = decode_json(response, f"stop job {job_id}")
        if not isinstance(body, dict) or "stopped" not in body:
            raise BadResponse(f"stop job {job_id}: unexpected answer")
        if body["stopped"]:
            return ActionOutcome(True, f"Ray accepted the stop request for {job_id}")
        raise Conflict(f"stop job {job_id}: Ray did not stop it; it had already finished")

    # -- parsing -------------------------------------------------------------------------

    def _job(self, raw: dict[str, Any]) -> Job:
        native = str(raw.get("status") or "")
        state = STATE_MAP.get(native)
        if state is None:
            raise BadResponse(f"{self.name}: unknown Ray job status {native!r}")
        job_type = str(raw.get("type") or "")
        sid = raw.get("submission_id")
        job_id = sid or raw.get("job_id")
        if not job_id:
            raise BadResponse(f"{self.name}: a job with neither submission_id nor job_id")
        metadata = raw.get("metadata") or {}
        known = bool(sid) and sid in self._requests  # DRIVER jobs ask nothing of Ray themselves
        requested = self._requests.get(sid, {}) if known else {}
        # Ray reports one start_time, the submission time; a job that is no longer pending is
        # taken to have started then (Ray keeps no separate "started running" time).
        submitted = _from_ms(raw.get("start_time"))
        entrypoint = str(raw.get("entrypoint") or "")
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
            finished_at=_from_ms(raw.get("end_time")),
            owner=_first(metadata, OWNER_KEYS),
            message=_clip(raw.get("message")),
            kind=job_type,
            entrypoint=entrypoint,
            cancellable=job_type == "SUBMISSION" and not state.is_terminal,
        )

    async def _supervisor_requests(
        self, *, alive_only: bool, submission_id: str | None = None
    ) -> dict[str, dict[str, float]]:
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
        found: dict[str, dict[str, float]] = {}
        for actor in rows:
            name = actor.get("name") or ""
            if name.startswith(SUPERVISOR_PREFIX):
                resources = actor.get("required_resources") or {}
                found[name[len(SUPERVISOR_PREFIX):]] = {k: float(v) for k, v in resources.items()}
        return found

    async def _get_json(self, path: str, what: str, params: Any = None) -> Any:
        response = await request(self._client, "GET", path, what=f"{self.name}: {what}", params=params)
        return decode_json(response, f"{self.name}: {what}")


def with_utilization(job: Job, raw: dict[str, Any], cluster: RayClusterState, sole: bool = False) -> Job:
    """A running job's measured GPU utilization, from the dashboard's telemetry.

    The GPUs on its driver's node whose process list holds the driver's pid; or, when the job is
    the only running GPU job on that node, the node's GPUs that any process uses. (A plain
    entrypoint that never calls ray.init() has no driver_info: its GPU process is a child of
    the job's supervisor, which the API does not name; seen on a real H200.)
    """
    node_id = raw.get("driver_node_id")
    if job.state is not JobState.RUNNING or not node_id or not job.gpus:
        return job
    node = next((n for n in cluster.nodes if n.node_id == node_id), None)
    if node is None:
        return job
    pid = str((raw.get("driver_info") or {}).get("pid") or "")
    devices = [d for d in node.devices if pid.isdigit() and int(pid) in d.pids]
    if not devices and sole:
        devices = [d for d in node.devices if d.pids]
    values = [d.utilization for d in devices if d.utilization is not None]
    if not values:
        return job
    return replace(job, gpu_utilization=sum(values) / len(values))


def parse_cluster(nodes_raw: Any, status_raw: Any) -> RayClusterState:
    """Nodes with logical GPU use and physical telemetry, plus the demand Ray cannot place."""
    try:
        data = nodes_raw["data"]
        summary = data.get("summary") or []
        logical = data.get("nodeLogicalResources") or {}
    except (KeyError, TypeError, AttributeError):
        raise BadResponse("node summary: unexpected shape") from None
    status = ((status_raw or {}).get("data") or {}).get("clusterStatus") if isinstance(status_raw, dict) else None
    load = (status or {}).get("loadMetricsReport") or {}
    usage_by_node = load.get("usageByNode") or {}

    nodes = []
    for entry in summary:
        raylet = entry.get("raylet") or {}
        node_id = raylet.get("nodeId") or ""
        total = float((raylet.get("resourcesTotal") or {}).get("GPU", 0.0))
        used = _used_gpus(usage_by_node.get(node_id), logical.get(node_id))
        nodes.append(
            RayNode(
                node_id=node_id,
                address=str(entry.get("ip") or raylet.get("nodeManagerAddress") or ""),
                hostname=str(entry.get("hostname") or ""),
                is_head=bool(raylet.get("isHeadNode")),
                alive=raylet.get("state") == "ALIVE",
                gpus_total=total,
                gpus_used=used,
                devices=tuple(_device(g) for g in entry.get("gpus") or []),
            )
        )
    demands = []
    # Lists nested in lists are not camelCased, so resource names keep Ray's spelling here.
    for item in (load.get("resourceDemand") or []) + (load.get("pgDemand") or []):
        if isinstance(item, list) and len(item) == 2 and isinstance(item[0], dict):
            resources = tuple(sorted((str(k), float(v)) for k, v in item[0].items()))
            demands.append(ResourceDemand(resources=resources, count=int(item[1])))
    return RayClusterState(nodes=tuple(nodes), demands=tuple(demands))


_LOGICAL_GPU = re.compile(r"^\s*([\d.]+)/([\d.]+)\s+GPU\s*$", re.MULTILINE)


def _used_gpus(usage: Any, logical_text: Any) -> float | None:
    if isinstance(usage, dict) and isinstance(usage.get("GPU"), list) and usage["GPU"]:
        return float(usage["GPU"][0])
    # Autoscaler v2 leaves cluster_status empty; the node summary's text form still has it.
    if isinstance(logical_text, str):
        match = _LOGICAL_GPU.search(logical_text)
        if match:
            return float(match.group(1))
        return 0.0
    return None


def _device(raw: dict[str, Any]) -> GpuDevice:
    return GpuDevice(
        index=int(raw.get("index", 0)),
        name=str(raw.get("name") or ""),
        utilization=_num(raw.get("utilizationGpu")),
        memory_used_mib=_num(raw.get("memoryUsed")),
        memory_total_mib=_num(raw.get("memoryTotal")),
        pids=tuple(int(p["pid"]) for p in raw.get("processesPids") or [] if isinstance(p, dict)
                   and str(p.get("pid", "")).isdigit()),
    )


def _num(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _from_ms(value: Any) -> datetime | None:
    if value in (None, 0, "0", ""):
        return None
    try:
        return datetime.fromtimestamp(int(value) / 1000, tz=timezone.utc)
    except (TypeError, ValueError, OverflowError):
        return None


def keep_recent(jobs: list[dict[str, Any]], max_finished: int) -> list[dict[str, Any]]:
    """Every unfinished job, and the `max_finished` most recently finished."""
    finished = [j for j in jobs if STATE_MAP.get(str(j.get("status"))) in TERMINAL]
    if len(finished) <= max_finished:
        return jobs
    finished.sort(key=lambda j: j.get("end_time") or j.get("start_time") or 0, reverse=True)
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
        value = metadata.get(key)
        if value:
            return str(value)
    return None
