"""A simulated Ray cluster: jobs that queue for GPUs, start, finish, fail and stop.

Pure state driven by an injected clock (no I/O, no threads): `ray_dashboard.py` serves it over
HTTP with the dashboard's real paths and payload shapes. Behaviour follows what a real Ray 2.60
head does, including its surprises:
- a job's `start_time` is its submission time, in epoch milliseconds; `end_time` is null until
  the job ends;
- stopping a job that still waits for resources answers `{"stopped": true}` but the job stays
  PENDING until resources free up; it then starts and is stopped right away;
- stopping a finished job answers `{"stopped": false}`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

PENDING_MESSAGE = (
    "Job has not started yet. It may be waiting for resources (CPUs, GPUs, memory, custom resources) "
    "to become available."
)
RUNNING_MESSAGE = "Job is currently running."
SUCCEEDED_MESSAGE = "Job finished successfully."
STOPPED_MESSAGE = "Job was intentionally stopped."
TERMINAL = {"STOPPED", "SUCCEEDED", "FAILED"}
STOP_SECONDS = 1.0  # a running job takes this long to reach STOPPED after a stop request
# Ray fails a job whose supervisor could not start within RAY_JOB_START_TIMEOUT_SECONDS (900 by
# default): a job that waits for resources does not wait forever.
DEFAULT_START_TIMEOUT = 900.0
START_TIMEOUT_MESSAGE = (
    "Job supervisor actor failed to start within {timeout} seconds. This timeout can be configured by setting "
    "the environment variable RAY_JOB_START_TIMEOUT_SECONDS. This may be because the job entrypoint's specified "
    "resources (entrypoint_num_cpus, entrypoint_num_gpus, entrypoint_resources, entrypoint_memory)aren't "
    "available on the cluster. Try checking the cluster's available resources with `ray status` and specifying "
    "fewer resources for the job entrypoint."
)


class SimError(Exception):
    """An error the dashboard answers with: HTTP status and a plain-text body, as Ray does."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


@dataclass
class SimNode:
    node_id: str
    ip: str
    hostname: str
    gpus: float
    cpus: float
    gpu_model: str | None = None  # None: logical GPUs only, no telemetry (like --num-gpus on a CPU box)
    is_head: bool = False
    utilization: dict[int, float] = field(default_factory=dict)  # per GPU index, set by the scenario


@dataclass
class SimJob:
    submission_id: str
    entrypoint: str
    gpus: float
    cpus: float
    submitted_ms: int
    metadata: dict[str, str]
    run_seconds: float = 60.0  # how long it runs once started
    exit_code: int = 0
    job_type: str = "SUBMISSION"
    status: str = "PENDING"
    ray_job_id: str | None = None
    started_ms: int | None = None
    end_ms: int | None = None
    message: str = PENDING_MESSAGE
    node_id: str | None = None
    stop_at_ms: int | None = None  # a stop was accepted and will take effect at this time
    stop_on_start: bool = False  # a stop was accepted while the job was still waiting
    error_type: str | None = None
    pid: int = 0  # the driver's process id, once running
    utilization: float | None = None  # GPU utilization while running; None: busy as usual
    logs: list[str] = field(default_factory=list)
    runtime_env: dict[str, Any] = field(default_factory=dict)  # as submitted; Ray serves it back as is


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class RaySim:
    def __init__(
        self,
        nodes: list[SimNode],
        clock: Callable[[], datetime] = utcnow,
        start_timeout: float = DEFAULT_START_TIMEOUT,
    ) -> None:
        self.nodes = nodes
        self.clock = clock
        self.start_timeout = start_timeout
        self.jobs: dict[str, SimJob] = {}
        self._ids = itertools.count(1)
        self.session_name = "session_demo"
        self.started_ms = self.now_ms() - 4 * 3600 * 1000  # the nodes came up well before the oldest job
        # Seconds between the progress lines a running job writes to its log (0: none). The live
        # demo sets it, so `l` has a log to follow; frozen tests keep the opening logs short.
        self.progress_every = 0.0

    # -- time ---------------------------------------------------------------------------

    def now_ms(self) -> int:
        return int(self.clock().timestamp() * 1000)

    def advance(self) -> None:
        """Bring every job up to the clock: finish, stop, then start what now fits."""
        now = self.now_ms()
        for job in self.jobs.values():
            if job.status == "RUNNING":
                if job.stop_at_ms is not None and now >= job.stop_at_ms:
                    self._end(job, "STOPPED", job.stop_at_ms, STOPPED_MESSAGE)
                elif job.started_ms is not None and now >= job.started_ms + job.run_seconds * 1000:
                    end = job.started_ms + int(job.run_seconds * 1000)
                    if job.exit_code == 0:
                        self._end(job, "SUCCEEDED", end, SUCCEEDED_MESSAGE)
                    else:
                        logs = "".join(line + "\n" for line in job.logs[-5:])
                        job.error_type = "JOB_ENTRYPOINT_COMMAND_ERROR"
                        self._end(
                            job,
                            "FAILED",
                            end,
                            f"Job entrypoint command failed with exit code {job.exit_code}, last available logs "
                            f"(truncated to 20,000 chars):\n{logs}",
                        )
        deadline_ms = int(self.start_timeout * 1000)
        for job in sorted(self.jobs.values(), key=lambda j: j.submitted_ms):
            if job.status == "PENDING" and now - job.submitted_ms >= deadline_ms:
                job.error_type = "JOB_SUPERVISOR_ACTOR_START_TIMEOUT"
                self._end(job, "FAILED", job.submitted_ms + deadline_ms,
                          START_TIMEOUT_MESSAGE.format(timeout=float(self.start_timeout)))
            elif job.status == "PENDING":
                node = self._node_with_room(job)
                if node is not None:
                    self._start(job, node, now)

    def _start(self, job: SimJob, node: SimNode, now: int) -> None:
        job.status = "RUNNING"
        job.message = RUNNING_MESSAGE
        job.started_ms = now
        job.node_id = node.node_id
        job.ray_job_id = f"{next(self._ids):02x}000000"
        job.pid = 20000 + len(self.jobs) * 7 + int(job.submitted_ms % 7)
        job.logs.append(f"Running entrypoint for job {job.submission_id}: {job.entrypoint}")
        if job.stop_on_start:
            job.stop_at_ms = now + int(STOP_SECONDS * 1000)

    def _end(self, job: SimJob, status: str, at_ms: int, message: str) -> None:
        job.status = status
        job.end_ms = at_ms
        job.message = message
        job.logs.append(message.splitlines()[0])

    def device_owners(self, node: SimNode) -> dict[int, SimJob]:
        """Which running job uses which GPU of a node, in the order they started."""
        owners: dict[int, SimJob] = {}
        index = 0
        running = sorted((j for j in self.jobs.values() if j.status == "RUNNING" and j.node_id == node.node_id),
                         key=lambda j: (j.started_ms or 0, j.submission_id))
        for job in running:
            for _ in range(int(job.gpus)):
                if index < int(node.gpus):
                    owners[index] = job
                    index += 1
        return owners

    def gpus_used(self, node_id: str) -> float:
        return sum(j.gpus for j in self.jobs.values() if j.status == "RUNNING" and j.node_id == node_id)

    def cpus_used(self, node_id: str) -> float:
        return sum(j.cpus for j in self.jobs.values() if j.status == "RUNNING" and j.node_id == node_id)

    def _node_with_room(self, job: SimJob) -> SimNode | None:
        for node in self.nodes:
            if (
                node.gpus - self.gpus_used(node.node_id) >= job.gpus
                and node.cpus - self.cpus_used(node.node_id) >= job.cpus
            ):
                return node
        return None

    # -- the job API ----------------------------------------------------------------------

    def submit(
        self,
        entrypoint: str,
        *,
        submission_id: str | None = None,
        gpus: float = 0.0,
        cpus: float = 0.0,
        metadata: dict[str, str] | None = None,
        run_seconds: float = 60.0,
        exit_code: int = 0,
        submitted_ms: int | None = None,
        runtime_env: dict[str, Any] | None = None,
    ) -> SimJob:
        sid = submission_id or f"raysubmit_{next(self._ids):06d}"
        if sid in self.jobs:
            # Real Ray answers a duplicate id with a 500 and a traceback, not a 409.
            raise SimError(
                500,
                "Traceback (most recent call last):\n  File \"job_head.py\", line 370, in submit_job\n"
                f"ValueError: Job with submission_id {sid} already exists. Please use a different submission_id.",
            )
        job = SimJob(
            submission_id=sid,
            entrypoint=entrypoint,
            gpus=gpus,
            cpus=cpus,
            submitted_ms=self.now_ms() if submitted_ms is None else submitted_ms,
            metadata=dict(metadata or {}),
            run_seconds=run_seconds,
            exit_code=exit_code,
            runtime_env=dict(runtime_env or {}),
        )
        job.logs.append("Runtime env is setting up.")
        self.jobs[sid] = job
        self.advance()
        return job

    def get(self, job_id: str) -> SimJob:
        self.advance()
        job = self.jobs.get(job_id) or next((j for j in self.jobs.values() if j.ray_job_id == job_id), None)
        if job is None:
            raise SimError(404, f"Job {job_id} does not exist")
        return job

    def stop(self, job_id: str) -> bool:
        job = self.get(job_id)
        if job.job_type != "SUBMISSION":
            raise SimError(400, "Can only stop submission type jobs")
        if job.status in TERMINAL:
            return False
        if job.status == "PENDING":
            job.stop_on_start = True  # Ray queues the stop on a supervisor that has not started
        elif job.stop_at_ms is None:
            job.stop_at_ms = self.now_ms() + int(STOP_SECONDS * 1000)
        return True

    def logs(self, job_id: str) -> str:
        job = self.get(job_id)
        if job.job_type != "SUBMISSION":
            raise SimError(400, "Can only get logs of submission type jobs")
        return "".join(f"{line}\n" for line in self.log_lines(job))

    def log_lines(self, job: SimJob) -> list[str]:
        """What the job's driver has written so far: its own lines, with progress lines (one per
        `progress_every` seconds it ran) before the line it ended with."""
        if job.status == "PENDING":
            return []
        if not self.progress_every or job.started_ms is None:
            return list(job.logs)
        until = job.end_ms if job.end_ms is not None else self.now_ms()
        count = max(0, int((until - job.started_ms) / 1000 / self.progress_every))
        seed = sum(job.submission_id.encode()) % 97
        progress = [f"step {i * 10}: loss {2.0 * 0.997 ** i + seed / 1000:.4f}, {900 + (i * 37 + seed) % 200} samples/s"
                    for i in range(count)]
        cut = len(job.logs) - (1 if job.end_ms is not None else 0)
        return job.logs[:cut] + progress + job.logs[cut:]

    def list_jobs(self) -> list[SimJob]:
        self.advance()
        return list(self.jobs.values())
