"""The Ray dashboard's HTTP API over a RaySim: real paths, real payload shapes, real error bodies.

Used by `mltop --demo` and by the tests. What it serves is what the adapter reads from a real
head (backend-apis.md part A): JobDetails with epoch-millisecond times, text/plain errors,
camelCased `/nodes` and `/api/cluster_status`, snake_case state API, token auth as Ray 2.52+.
"""

from __future__ import annotations

import asyncio
import json
import zlib
from typing import Any

from aiohttp import web

from mltop.demo.ray_sim import RaySim, SimError, SimJob

RAY_VERSION = "2.60.0"
PUBLIC_PATHS = {"/api/gcs_healthz", "/api/authentication_mode", "/api/healthz"}
JOB_FIELDS_ALLOWED = {
    "entrypoint", "submission_id", "job_id", "runtime_env", "metadata",
    "entrypoint_num_cpus", "entrypoint_num_gpus", "entrypoint_memory", "entrypoint_resources",
}


class Faults:
    """Knobs the tests turn to make the dashboard misbehave like a real one can."""

    def __init__(self) -> None:
        self.status: int | None = None  # answer every request with this status...
        self.body: str = ""  # ...and this text/plain body
        self.delay: float = 0.0  # seconds before answering


def job_details(job: SimJob) -> dict[str, Any]:
    started = job.status != "PENDING"
    return {
        "type": job.job_type,
        "job_id": job.ray_job_id,
        "submission_id": job.submission_id if job.job_type == "SUBMISSION" else None,
        "driver_info": (
            {"id": job.ray_job_id, "node_ip_address": "127.0.0.1", "pid": str(job.pid)} if job.ray_job_id else None
        ),
        "status": job.status,
        "entrypoint": job.entrypoint,
        "message": job.message,
        "error_type": job.error_type,
        "start_time": job.submitted_ms,
        "end_time": job.end_ms,
        "metadata": job.metadata,
        "runtime_env": job.runtime_env,
        "driver_agent_http_address": "http://127.0.0.1:52365" if started else None,
        "driver_node_id": job.node_id,
        "driver_exit_code": job.exit_code if job.status in ("SUCCEEDED", "FAILED") else None,
    }


def _ok(data: Any, msg: str) -> web.Response:
    return web.json_response({"result": True, "msg": msg, "data": data})


def _text(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text, content_type="text/plain")


def make_app(sim: RaySim, *, token: str | None = None, faults: Faults | None = None) -> web.Application:
    faults = faults or Faults()

    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        if faults.delay:
            await asyncio.sleep(faults.delay)
        if faults.status is not None:
            return _text(faults.status, faults.body)
        if token is not None and request.path not in PUBLIC_PATHS:
            got = request.headers.get("Authorization") or request.headers.get("X-Ray-Authorization") or ""
            if not got:
                return _text(401, "Unauthorized: Missing authentication token")
            if got != f"Bearer {token}":
                return _text(403, "Forbidden: Invalid authentication token")
        try:
            return await handler(request)
        except SimError as exc:
            return _text(exc.status, exc.text)

    app = web.Application(middlewares=[middleware])

    async def version(_: web.Request) -> web.Response:
        return web.json_response(
            {"version": "4", "ray_version": RAY_VERSION, "ray_commit": "demo", "session_name": sim.session_name}
        )

    async def auth_mode(_: web.Request) -> web.Response:
        return web.json_response({"authentication_mode": "token" if token else "disabled"})

    async def list_jobs(_: web.Request) -> web.Response:
        jobs = sim.list_jobs()
        # SUBMISSION jobs first, then DRIVER jobs, as the real endpoint orders them.
        jobs.sort(key=lambda j: j.job_type != "SUBMISSION")
        return web.json_response([job_details(j) for j in jobs])

    async def submit(request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return _text(400, "Traceback (most recent call last):\nJSONDecodeError: invalid JSON body")
        unknown = set(body) - JOB_FIELDS_ALLOWED if isinstance(body, dict) else {"<not an object>"}
        if unknown or "entrypoint" not in body:
            return _text(400, f"Traceback (most recent call last):\nTypeError: bad JobSubmitRequest fields {sorted(unknown)}")
        job = sim.submit(
            body["entrypoint"],
            submission_id=body.get("submission_id") or body.get("job_id"),
            gpus=float(body.get("entrypoint_num_gpus") or 0),
            cpus=float(body.get("entrypoint_num_cpus") or 0),
            metadata=body.get("metadata") or {},
            runtime_env=body.get("runtime_env") or {},
        )
        return web.json_response({"job_id": job.submission_id, "submission_id": job.submission_id})

    async def get_job(request: web.Request) -> web.Response:
        return web.json_response(job_details(sim.get(request.match_info["job_id"])))

    async def stop_job(request: web.Request) -> web.Response:
        return web.json_response({"stopped": sim.stop(request.match_info["job_id"])})

    async def delete_job(request: web.Request) -> web.Response:
        job = sim.get(request.match_info["job_id"])
        if job.job_type != "SUBMISSION":
            return _text(400, "Can only delete submission type jobs")
        if job.status not in ("STOPPED", "SUCCEEDED", "FAILED"):
            return _text(500, "Traceback (most recent call last):\nRuntimeError: Attempted to delete a job that is not in a terminal state.")
        del sim.jobs[job.submission_id]
        return web.json_response({"deleted": True})

    async def job_logs(request: web.Request) -> web.Response:
        return web.json_response({"logs": sim.logs(request.match_info["job_id"])})

    tails: set[web.WebSocketResponse] = set()

    async def tail_job_logs(request: web.Request) -> web.StreamResponse:
        # As Ray's job_head.py: refuse before the upgrade, wait for the job to start, relay the log
        # from its start in frames of up to 10 lines, close (1000) once the job has ended.
        job_id = request.match_info["job_id"]
        if sim.get(job_id).job_type != "SUBMISSION":
            return _text(400, "Can only get logs of submission type jobs")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        tails.add(ws)
        try:
            await _relay_log(sim, job_id, ws, request)
        except (ConnectionResetError, SimError):
            pass  # the client left, or the job was forgotten
        finally:
            tails.discard(ws)
        return ws

    async def close_tails(_: web.Application) -> None:
        for ws in list(tails):  # an open tail would hold the server's shutdown
            await ws.close(code=1001)

    async def actors(request: web.Request) -> web.Response:
        sim.advance()
        keys = request.query.getall("filter_keys", [])
        preds = request.query.getall("filter_predicates", [])
        values = request.query.getall("filter_values", [])
        limit = int(request.query.get("limit", "100"))
        rows = [_supervisor_actor(j) for j in sim.jobs.values() if j.job_type == "SUBMISSION"]
        for key, pred, value in zip(keys, preds, values):
            if pred == "=":
                rows = [r for r in rows if str(r.get(key)) == value]
            elif pred == "!=":
                rows = [r for r in rows if str(r.get(key)) != value]
            else:
                return _text(400, f"Unsupported filter predicate {pred}")
        total = len(rows)
        result = {"total": total, "num_after_truncation": min(total, limit), "num_filtered": total,
                  "result": rows[:limit], "partial_failure_warning": "", "warnings": None}
        return _ok({"result": result}, "")

    async def nodes(request: web.Request) -> web.Response:
        view = request.query.get("view")
        if view != "summary":
            return web.json_response({"result": False, "msg": f"Unknown view {view}", "data": {}})
        sim.advance()
        summary = [_node_summary(sim, n) for n in sim.nodes]
        logical = {
            n.node_id: f"{sim.cpus_used(n.node_id):.1f}/{n.cpus:.1f} CPU\n{sim.gpus_used(n.node_id):.1f}/{n.gpus:.1f} GPU"
            for n in sim.nodes
        }
        return _ok({"summary": summary, "nodeLogicalResources": logical}, "Node summary fetched.")

    async def node(request: web.Request) -> web.Response:
        sim.advance()
        wanted = request.match_info["node_id"]
        found = next((n for n in sim.nodes if n.node_id == wanted), None)
        if found is None:  # Ray 2.60 answers an id it does not know with an empty shell, not a 404
            detail: dict[str, Any] = {"raylet": {"objectStoreUsedMemory": 0, "objectStoreAvailableMemory": 0,
                                                 "stateMessage": None}, "tpus": [], "actors": {}, "workers": []}
        else:  # the summary's fields, plus the node's actors and workers (none simulated in detail)
            detail = {**_node_summary(sim, found), "actors": {}, "workers": []}
        return _ok({"detail": detail}, "Node details fetched.")

    async def cluster_status(_: web.Request) -> web.Response:
        sim.advance()
        usage_by_node = {
            n.node_id: {"CPU": [sim.cpus_used(n.node_id), n.cpus], "GPU": [sim.gpus_used(n.node_id), n.gpus]}
            for n in sim.nodes
        }
        demand: dict[tuple[tuple[str, float], ...], int] = {}
        for job in sim.jobs.values():
            if job.status == "PENDING":
                shape = tuple(sorted(((k, v) for k, v in (("GPU", job.gpus), ("CPU", job.cpus)) if v)))
                demand[shape] = demand.get(shape, 0) + 1
        gpus = [sum(sim.gpus_used(n.node_id) for n in sim.nodes), sum(n.gpus for n in sim.nodes)]
        report = {
            "usage": {"GPU": gpus},
            "resourceDemand": [[dict(shape), count] for shape, count in demand.items()],
            "pgDemand": [],
            "requestDemand": [],
            "usageByNode": usage_by_node,
        }
        return _ok(
            {"autoscalingStatus": "", "autoscalingError": None,
             "clusterStatus": {"time": sim.now_ms() / 1000, "loadMetricsReport": report,
                               "autoscalerReport": {"activeNodes": {}, "pendingNodes": [], "failedNodes": []}}},
            "Got cluster status.",
        )

    async def gcs_healthz(_: web.Request) -> web.Response:
        return _text(200, "success")

    app.router.add_get("/api/version", version)
    app.router.add_get("/api/authentication_mode", auth_mode)
    app.router.add_get("/api/gcs_healthz", gcs_healthz)
    app.router.add_get("/api/jobs/", list_jobs)
    app.router.add_post("/api/jobs/", submit)
    app.router.add_get("/api/jobs/{job_id}", get_job)
    app.router.add_delete("/api/jobs/{job_id}", delete_job)
    app.router.add_post("/api/jobs/{job_id}/stop", stop_job)
    app.router.add_get("/api/jobs/{job_id}/logs", job_logs)
    app.router.add_get("/api/jobs/{job_id}/logs/tail", tail_job_logs)
    app.on_shutdown.append(close_tails)
    app.router.add_get("/api/v0/actors", actors)
    app.router.add_get("/nodes", nodes)
    app.router.add_get("/nodes/{node_id}", node)
    app.router.add_get("/api/cluster_status", cluster_status)
    return app


TAIL_POLL = 0.25  # seconds between looks at the job's log (Ray's agent: LOG_TAIL_SLEEP_S = 1)


async def _relay_log(sim: RaySim, job_id: str, ws: web.WebSocketResponse, request: web.Request) -> None:
    sent = 0
    while not ws.closed and request.transport is not None and not request.transport.is_closing():
        job = sim.get(job_id)
        lines = sim.log_lines(job)
        for start in range(sent, len(lines), 10):
            await ws.send_str("".join(line + "\n" for line in lines[start:start + 10]))
        sent = max(sent, len(lines))
        if job.status in ("STOPPED", "SUCCEEDED", "FAILED"):
            return
        await asyncio.sleep(TAIL_POLL)


def _supervisor_actor(job: SimJob) -> dict[str, Any]:
    if job.status == "PENDING":
        state = "PENDING_CREATION"
    elif job.status == "RUNNING":
        state = "ALIVE"
    else:
        state = "DEAD"
    resources = {k: v for k, v in (("CPU", job.cpus), ("GPU", job.gpus)) if v}
    return {
        "actor_id": f"{zlib.crc32(job.submission_id.encode()):024x}01000000",
        "class_name": "JobSupervisor",
        "state": state,
        "job_id": "01000000",
        "name": f"_ray_internal_job_actor_{job.submission_id}",
        "node_id": job.node_id,
        "pid": 0 if state == "PENDING_CREATION" else 4242,
        "ray_namespace": "SUPERVISOR_ACTOR_RAY_NAMESPACE",
        "required_resources": resources,
        "death_cause": None,
        "is_detached": True,
    }


def _node_summary(sim: RaySim, node: Any) -> dict[str, Any]:
    gpus = []
    if node.gpu_model:
        owners = sim.device_owners(node)
        for index in range(int(node.gpus)):
            owner = owners.get(index)
            util = 0.0 if owner is None else owner.utilization if owner.utilization is not None else \
                node.utilization.get(index, 90.0)
            gpus.append({
                "index": index, "name": node.gpu_model, "uuid": f"GPU-{node.node_id[:8]}-{index}",
                "utilizationGpu": int(util), "memoryUsed": 61234 if owner else 0,
                "memoryTotal": 81920,
                "processesPids": [{"pid": owner.pid, "gpuMemoryUsage": 61000, "gpuUtilization": int(util)}]
                if owner else [],
                "powerMw": 350000 if owner else 60000, "temperatureC": 64 if owner else 35,
            })
    # As a real 2.60 head sends it (tests/fixtures/ray-2.60-h200): camelCased keys, resource names
    # included, int64 times as strings, an `acceleratorType:<model>` resource and label on GPU machines.
    resources: dict[str, float] = {"CPU": node.cpus, "memory": 256e9, "objectStoreMemory": 40e9, f"node:{node.ip}": 1.0}
    labels = {"ray.io/node-id": node.node_id}
    if node.gpus:
        resources["GPU"] = node.gpus
    if node.gpu_model:
        accelerator = node.gpu_model.split()[-1].split("-")[0]  # "NVIDIA A100-SXM4-80GB" -> "A100"
        resources[f"acceleratorType:{accelerator}"] = 1.0
        labels["ray.io/accelerator-type"] = accelerator
    if node.is_head:
        resources["node:InternalHead"] = 1.0
    return {
        "now": sim.now_ms() / 1000,
        "hostname": node.hostname,
        "ip": node.ip,
        "cpu": 12.5,
        "cpus": [int(node.cpus), int(node.cpus)],
        "mem": [274877906944, 206158430208, 25.0, 68719476736],
        "raylet": {
            "nodeId": node.node_id,
            "nodeManagerAddress": node.ip,
            "nodeManagerHostname": node.hostname,
            "nodeName": node.ip,
            "state": "ALIVE",
            "stateMessage": None,
            "isHeadNode": node.is_head,
            "startTimeMs": str(sim.started_ms),
            "endTimeMs": "0",
            "resourcesTotal": resources,
            "labels": labels,
            "stateSnapshot": {"state": "ACTIVE" if sim.gpus_used(node.node_id) else "IDLE", "idleDurationMs": "0",
                              "nodeActivity": []},
            "instanceId": "", "nodeTypeName": "", "instanceTypeName": "",
            "numWorkers": 2,
        },
        "gpus": gpus,
        "tpus": [],
    }
