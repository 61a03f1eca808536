"""What a Ray head with many jobs costs mltop: CPU per poll of RaySource.fetch, payload size.

    python bench/ray_jobs.py [JOBS] [POLLS]

A dashboard on loopback (in a thread of this process) serves JOBS jobs shaped like Ray 2.60's
`/api/jobs/` (the captured payloads in ../shared/fixtures/ray-2.60): mostly finished jobs, one in
ten failed with a log excerpt in its message, a few hundred running or waiting. Its node summary
and cluster status change on every request, as a real head's do (telemetry, a timestamp).

Each poll's CPU is this thread's CPU time (`time.thread_time`), so the server's own work is not
counted. Two cases, POLLS polls each after a warm-up poll:
- changed: the job list differs on every poll (one job's message changes);
- unchanged: the job list is byte-identical from poll to poll.
It also times decoding the job list alone: whole with the stdlib `json`, msgspec (what mltop falls
back to) and, when installed, orjson; and as mltop reads it (`ray_job_list.read_heads`: each entry's
few fields that choose the kept jobs, then only the kept entries whole).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from mltop.adapters.http import Endpoint
from mltop.adapters import ray as ray_adapter
from mltop.adapters.ray import RaySource
from mltop.demo.server import LoopbackServer

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "ray-2.60"
NODE_ID = "dd9bf81722b7ac25c9664ecacb360e945d5f958a002c639b101e92c0"
BASE_MS = 1795879563676
LOG = "".join(f"2026-11-28 15:26:{i % 60:02d},627\tINFO trainer.py:{100 + i} -- step {i} loss 0.{i:04d}\n"
              for i in range(12))


def job(i: int) -> dict[str, Any]:
    """Job i as Ray lists it: 1% waiting, 2% running, the rest finished (10% of those failed)."""
    status = "PENDING" if i % 100 == 0 else "RUNNING" if i % 100 in (1, 2) else "FAILED" if i % 10 == 3 \
        else "SUCCEEDED"
    failed = status == "FAILED"
    message = {"PENDING": "Job has not started yet. It may be waiting for resources (CPUs, GPUs, memory, custom "
                          "resources) to become available.",
               "RUNNING": "Job is currently running.",
               "SUCCEEDED": "Job finished successfully.",
               "FAILED": "Job entrypoint command failed with exit code 1, last available logs (truncated to "
                         "20,000 chars):\n" + LOG}[status]
    start = BASE_MS + i * 1000
    return {
        "type": "SUBMISSION", "job_id": f"{i:08x}", "submission_id": f"raysubmit_{i:016d}",
        "driver_info": {"id": f"{i:08x}", "node_ip_address": "10.0.0.2", "pid": str(4000 + i % 30000)},
        "status": status,
        "entrypoint": f"python train.py --config configs/sweep-{i % 50}.yaml --lr 0.{i % 97:03d} --seed {i}",
        "message": message, "error_type": "JOB_ENTRYPOINT_COMMAND_ERROR" if failed else None,
        "start_time": start, "end_time": None if status in ("PENDING", "RUNNING") else start + 600_000,
        "metadata": {"owner": f"user{i % 40}", "job_name": f"sweep-{i % 50}-trial-{i}"},
        "runtime_env": {"working_dir": "gcs://_ray_pkg_3f2a9c1e8b7d6a5f.zip",
                        "pip": {"packages": ["torch==2.5.1", "transformers==4.46.0"], "pip_check": False}},
        "driver_agent_http_address": None if status == "PENDING" else "http://10.0.0.2:52365",
        "driver_node_id": None if status == "PENDING" else NODE_ID,
        "driver_exit_code": None if status in ("PENDING", "RUNNING") else (1 if failed else 0),
    }


class Dashboard:
    """The four endpoints a poll reads, with a switch between a fixed and a changing job list."""

    def __init__(self, jobs: int) -> None:
        self.jobs = [job(i) for i in range(jobs)]
        self.body = json.dumps(self.jobs).encode()
        self.jobs[-1]["message"] = "Job is currently running (changed)."
        # Built once: serialising in the server thread on every request would compete with the
        # client for the interpreter and blur what is measured.
        self.bodies = (self.body, json.dumps(self.jobs).encode())
        self.changing = False
        self.serial = 0
        self.nodes = json.loads((FIXTURES / "nodes_summary.json").read_text())
        self.status = json.loads((FIXTURES / "cluster_status.json").read_text())
        alive = [j for j in self.jobs if j["status"] in ("PENDING", "RUNNING")]
        self.actors_alive = self._actors(alive)
        self.actors_all = self._actors(self.jobs)

    @staticmethod
    def _actors(jobs: list[dict[str, Any]]) -> bytes:
        rows = [{"class_name": "JobSupervisor", "state": "ALIVE" if j["status"] == "RUNNING" else "DEAD",
                 "name": f"_ray_internal_job_actor_{j['submission_id']}",
                 "required_resources": {"CPU": 1.0, "GPU": 1.0 if int(j["job_id"], 16) % 3 else 0.0}}
                for j in jobs]
        result = {"total": len(rows), "num_after_truncation": len(rows), "result": rows}
        return json.dumps({"result": True, "msg": "", "data": {"result": result}}).encode()

    def app(self) -> web.Application:
        async def jobs(_: web.Request) -> web.Response:
            if self.changing:  # one job's message changes: the list is new, nearly all of it the same
                self.serial += 1
            return web.Response(body=self.bodies[self.serial % 2], content_type="application/json")

        async def actors(request: web.Request) -> web.Response:
            alive = "state" in request.query.getall("filter_keys", [])
            return web.Response(body=self.actors_alive if alive else self.actors_all, content_type="application/json")

        async def nodes(_: web.Request) -> web.Response:
            self.nodes["data"]["summary"][0]["now"] = time.time()  # telemetry moves on every request
            return web.json_response(self.nodes)

        async def cluster_status(_: web.Request) -> web.Response:
            self.status["data"]["clusterStatus"]["time"] = time.time()
            return web.json_response(self.status)

        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/api/jobs/", jobs)
        app.router.add_get("/api/v0/actors", actors)
        app.router.add_get("/nodes", nodes)
        app.router.add_get("/api/cluster_status", cluster_status)
        return app


async def _inline(fn, /, *args, **kwargs):
    return fn(*args, **kwargs)


async def cpu_per_poll(source: RaySource, polls: int) -> list[float]:
    """CPU of each poll, wherever it runs: the adapter decodes in a worker thread (asyncio.to_thread),
    which this thread's clock would not see, so here that work runs inline and is counted."""
    real = ray_adapter.asyncio.to_thread
    ray_adapter.asyncio.to_thread = _inline  # type: ignore[assignment]
    try:
        await source.fetch()  # warm-up: the first poll also reads every supervisor once
        spent = []
        for _ in range(polls):
            start = time.thread_time()
            await source.fetch()
            spent.append((time.thread_time() - start) * 1000)
    finally:
        ray_adapter.asyncio.to_thread = real
    return spent


def decode_ms(body: bytes, rounds: int = 15) -> dict[str, float]:
    """Median CPU ms to decode `body` with each decoder, taking turns so load falls on both alike."""
    import msgspec

    from mltop.adapters.ray_job_list import JobListing, read_heads

    decoders: dict[str, Any] = {"stdlib json": json.loads, "msgspec": msgspec.json.decode}
    try:
        import orjson
    except ImportError:
        pass
    else:
        decoders["orjson"] = orjson.loads
    decoders["mltop's read (heads, then the kept entries)"] = (
        lambda body: JobListing.read(b"", len(body), *read_heads(body), ray_adapter.MAX_FINISHED_JOBS))
    spent: dict[str, list[float]] = {name: [] for name in decoders}
    for _ in range(rounds):
        for name, loads in decoders.items():
            start = time.thread_time()
            loads(body)
            spent[name].append((time.thread_time() - start) * 1000)
    return {name: statistics.median(values) for name, values in spent.items()}


async def main(jobs: int, polls: int) -> None:
    dashboard = Dashboard(jobs)
    with LoopbackServer() as server:
        url = server.serve(dashboard.app())
        source = RaySource(Endpoint(name="bench", url=url, timeout=60))
        try:
            dashboard.changing = True
            changed = await cpu_per_poll(source, polls)
            dashboard.changing = False
            unchanged = await cpu_per_poll(source, polls)
            data = await source.fetch()
        finally:
            await source.aclose()
    print(f"{jobs:,} jobs, job list {len(dashboard.body) / 1e6:.1f} MB, {len(data.jobs):,} job records kept")
    print(f"CPU per poll, changed job list:   median {statistics.median(changed):6.1f} ms  "
          f"(min {min(changed):.1f}, max {max(changed):.1f})")
    print(f"CPU per poll, unchanged job list: median {statistics.median(unchanged):6.1f} ms  "
          f"(min {min(unchanged):.1f}, max {max(unchanged):.1f})")
    decoded = ", ".join(f"{name} {ms:.1f} ms" for name, ms in decode_ms(dashboard.body).items())
    print(f"decode the job list alone (median): {decoded}")

if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000, int(sys.argv[2]) if len(sys.argv) > 2 else 10))
