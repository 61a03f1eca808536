"""Kubeflow Pipelines adapter (REST API v2beta1): runs in the queue, details, terminate, retry.

Contracts: ../shared/reference/backend-apis.md part B. The traps handled here:
- never list all runs of a namespace (it may hold 200,000): active runs come through a
  server-side state filter, paged; finished ones are one bounded page, newest first;
- an unfinished run's `finished_at` is "1970-01-01T00:00:00Z", not null;
- the server URL-decodes `filter` twice, so it is encoded once more before httpx encodes it;
- a page token is only valid with the same filter and sort it was made for, and the real
  server compares them after a JSON round trip that a list-valued filter never survives: later
  pages are asked for with the token alone;
- error bodies are `{error, code, message}` up to 2.5 and `{code, message}` from 2.14;
- healthz's `multi_user` decides whether a namespace is required; a 1.x server (v1beta1 only)
  is told apart and refused with a clear line.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

import httpx

from mltop.adapters.base import ActionOutcome, JobDetail
from mltop.adapters.http import Endpoint, decode_json, make_client, request
from mltop.adapters.kfp_endpoint import KfpEndpoint
from mltop.errors import BadResponse, NotFound, SourceError
from mltop.model import Job, JobState, SourceData

KIND = "kfp"
API = "/apis/v2beta1"
ACTIVE_STATES = ("PENDING", "RUNNING", "CANCELING", "PAUSED")
FINISHED_STATES = ("SUCCEEDED", "FAILED", "CANCELED", "SKIPPED")
STATE_MAP = {
    "PENDING": JobState.PENDING,
    "RUNTIME_STATE_UNSPECIFIED": JobState.PENDING,
    "RUNNING": JobState.RUNNING,
    "PAUSED": JobState.RUNNING,  # still holding what it started with
    "CANCELING": JobState.CANCELLING,
    "SUCCEEDED": JobState.SUCCEEDED,
    "SKIPPED": JobState.SUCCEEDED,
    "FAILED": JobState.FAILED,
    "CANCELED": JobState.CANCELLED,
}
PAGE_SIZE = 100
MAX_ACTIVE_PAGES = 20  # 2,000 active runs per namespace is already more than a screen can use
EPOCH_PREFIX = "1970-01-01T00:00:00"


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class TokenFile:
    """A bearer token read from a file, re-read whenever the file changes."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._stamp: tuple[float, int] | None = None
        self._token = ""

    def read(self) -> str:
        try:
            stat = os.stat(self.path)
        except OSError as exc:
            raise SourceError(f"token file {self.path}: {exc.strerror or exc}") from None
        stamp = (stat.st_mtime, stat.st_size)
        if stamp != self._stamp:
            with open(self.path, encoding="utf-8") as handle:
                self._token = handle.read().strip()
            self._stamp = stamp
        return self._token


def run_filter(states: tuple[str, ...]) -> str:
    """A Filter proto as JSON: these states, archived runs hidden (as the KFP UI does)."""
    return json.dumps(
        {
            "predicates": [
                {"key": "state", "operation": "IN", "string_values": {"values": list(states)}},
                {"key": "storage_state", "operation": "NOT_EQUALS", "string_value": "ARCHIVED"},
            ]
        },
        separators=(",", ":"),
    )


def parse_time(value: Any) -> datetime | None:
    """RFC3339 from KFP; the 1970 epoch it sends for 'not yet' is not a time."""
    if not isinstance(value, str) or not value or value.startswith(EPOCH_PREFIX):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


class KfpSource:
    kind = KIND

    def __init__(
        self,
        endpoint: KfpEndpoint,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], datetime] = utcnow,
        finished_limit: int = 50,
    ) -> None:
        self.endpoint = endpoint
        self.name = endpoint.name
        self.clock = clock
        self.finished_limit = max(1, min(200, finished_limit))
        self._client = make_client(
            Endpoint(endpoint.name, endpoint.url, endpoint.token, endpoint.ca_file, endpoint.verify_tls, endpoint.timeout),
            transport,
        )
        self._token_file = TokenFile(endpoint.token_file) if endpoint.token_file else None
        self._multi_user: bool | None = None
        self._experiments: dict[str, tuple[str | None, str | None]] = {}  # id -> (name, namespace)
        self._pipelines: dict[str, str | None] = {}

    async def aclose(self) -> None:
        await self._client.aclose()

    # -- HTTP -----------------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        headers = {}
        if self._token_file is not None:
            headers["Authorization"] = f"Bearer {self._token_file.read()}"
        if self.endpoint.cookie:
            headers["Cookie"] = self.endpoint.cookie
        if self.endpoint.header:
            headers[self.endpoint.header[0]] = self.endpoint.header[1]
        return headers

    async def _call(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        response = await request(self._client, method, path, what=f"{self.name}: {what}",
                                 headers=self._headers(), **kwargs)
        return decode_json(response, f"{self.name}: {what}")

    async def _probe(self) -> bool:
        """Is the server multi-user? Also refuses a KFP 1.x server with a clear line."""
        if self._multi_user is None:
            try:
                health = await self._call("GET", f"{API}/healthz", "healthz")
            except NotFound:
                try:
                    await self._call("GET", "/apis/v1beta1/healthz", "healthz")
                except SourceError:
                    raise BadResponse(f"{self.name}: no KFP API at {self.endpoint.url} (healthz not found)") from None
                raise BadResponse(
                    f"{self.name}: this KFP speaks only the v1beta1 API (KFP 1.x); mltop needs KFP 2.x (v2beta1)"
                ) from None
            self._multi_user = bool(health.get("multi_user")) if isinstance(health, dict) else False
        if self._multi_user and not self.endpoint.namespaces:
            raise BadResponse(
                f"{self.name}: this KFP is multi-user: name the namespaces to watch "
                "(--kfp-namespace NS, or namespaces = [...] under [[kfp]] in the config)"
            )
        return self._multi_user

    # -- reading --------------------------------------------------------------------------------

    async def fetch(self) -> SourceData:
        multi_user = await self._probe()
        namespaces: tuple[str | None, ...] = self.endpoint.namespaces if multi_user else (None,)
        batches = await asyncio.gather(*(self._runs_in(ns) for ns in namespaces))
        seen: set[str] = set()
        runs: list[tuple[dict[str, Any], str | None]] = []
        for ns, batch in zip(namespaces, batches):
            for run in batch:
                if run.get("run_id") not in seen:
                    seen.add(run.get("run_id"))
                    runs.append((run, ns))
        await self._learn_names(r for r, _ in runs)
        return SourceData(jobs=tuple(self._job(run, ns) for run, ns in runs))

    async def _runs_in(self, namespace: str | None) -> list[dict[str, Any]]:
        active = await self._list_runs(namespace, run_filter(ACTIVE_STATES), "created_at desc", PAGE_SIZE,
                                       MAX_ACTIVE_PAGES)
        finished = await self._list_runs(namespace, run_filter(FINISHED_STATES), "finished_at desc",
                                         self.finished_limit, 1)
        return active + finished

    async def _list_runs(
        self, namespace: str | None, filter_json: str, sort_by: str, page_size: int, max_pages: int
    ) -> list[dict[str, Any]]:
        runs: list[dict[str, Any]] = []
        token = ""
        for _ in range(max_pages):
            params = {"page_size": str(page_size)}
            if token:
                # The token carries its filter and sort. Sending them again is allowed only if
                # they compare equal after the token's JSON round trip, which a list-valued
                # filter (IN) never does on the real server: so leave them out.
                params["page_token"] = token
            else:
                # The server unescapes `filter` once more after the query is decoded: escape it
                # once more here, as the KFP UI does, so '+' and '%' in a filter survive.
                params.update(sort_by=sort_by, filter=quote(filter_json, safe=""))
            if namespace:
                params["namespace"] = namespace
            body = await self._call("GET", f"{API}/runs", f"runs in {namespace or 'all namespaces'}", params=params)
            if not isinstance(body, dict):
                raise BadResponse(f"{self.name}: run list is not an object")
            runs.extend(r for r in body.get("runs") or [] if isinstance(r, dict))
            token = body.get("next_page_token") or ""
            if not token:
                break
        return runs

    async def _learn_names(self, runs: Any) -> None:
        """Experiment and pipeline names, by id, fetched once each."""
        experiments, pipelines = set(), set()
        for run in runs:
            if run.get("experiment_id") and run["experiment_id"] not in self._experiments:
                experiments.add(run["experiment_id"])
            pipeline = (run.get("pipeline_version_reference") or {}).get("pipeline_id")
            if pipeline and pipeline not in self._pipelines:
                pipelines.add(pipeline)

        async def experiment(exp_id: str) -> None:
            try:
                body = await self._call("GET", f"{API}/experiments/{exp_id}", f"experiment {exp_id}")
                self._experiments[exp_id] = (body.get("display_name"), body.get("namespace") or None)
            except SourceError:
                self._experiments[exp_id] = (None, None)  # shown by id; not worth failing the poll

        async def pipeline(pipe_id: str) -> None:
            try:
                body = await self._call("GET", f"{API}/pipelines/{pipe_id}", f"pipeline {pipe_id}")
                self._pipelines[pipe_id] = body.get("display_name")
            except SourceError:
                self._pipelines[pipe_id] = None

        await asyncio.gather(*(experiment(e) for e in experiments), *(pipeline(p) for p in pipelines))

    def _job(self, run: dict[str, Any], namespace: str | None) -> Job:
        native = str(run.get("state") or "RUNTIME_STATE_UNSPECIFIED")
        state = STATE_MAP.get(native, JobState.PENDING)
        run_id = str(run.get("run_id") or "")
        exp_name, exp_ns = self._experiments.get(run.get("experiment_id") or "", (None, None))
        pipeline_id = (run.get("pipeline_version_reference") or {}).get("pipeline_id")
        history = run.get("state_history") or []
        started = next((parse_time(h.get("update_time")) for h in history if h.get("state") == "RUNNING"), None)
        if started is None and state is not JobState.PENDING:
            started = parse_time(run.get("scheduled_at"))
        namespace = namespace or exp_ns
        return Job(
            key=f"{KIND}/{self.name}/{run_id}",
            source=KIND,
            cluster=self.name,
            id=run_id,
            name=str(run.get("display_name") or run_id),
            state=state,
            native_state=native,
            gpus=None,  # KFP does not say; the pods it starts are seen by the Kubernetes source
            submitted_at=parse_time(run.get("created_at")),
            started_at=started,
            finished_at=parse_time(run.get("finished_at")) if state.is_terminal else None,
            # In multi-user Kubeflow a namespace is a person's or a team's profile: the owner.
            owner=namespace,
            message=run_error(run),
            kind="recurring run" if run.get("recurring_run_id") else "run",
            cancellable=native in ("PENDING", "RUNNING", "PAUSED"),
            retryable=native in ("FAILED", "CANCELED"),
            namespace=namespace,
            experiment=exp_name or run.get("experiment_id"),
            pipeline=self._pipelines.get(pipeline_id) if pipeline_id else None,
        )

    async def job_detail(self, job_id: str) -> JobDetail:
        run = await self._call("GET", f"{API}/runs/{job_id}", f"run {job_id}")
        if not isinstance(run, dict):
            raise BadResponse(f"{self.name}: run {job_id} is not an object")
        await self._learn_names([run])
        job = self._job(run, None)
        return JobDetail(job=job, sections=run_sections(run))

    # -- actions --------------------------------------------------------------------------------

    async def cancel_job(self, job_id: str) -> ActionOutcome:
        await self._call("POST", f"{API}/runs/{job_id}:terminate", f"terminate run {job_id}", json={})
        return ActionOutcome(True, f"KFP accepted the terminate request for run {job_id}")

    async def retry_job(self, job_id: str) -> ActionOutcome:
        await self._call("POST", f"{API}/runs/{job_id}:retry", f"retry run {job_id}", json={})
        return ActionOutcome(True, f"KFP accepted the retry of run {job_id}")


def run_error(run: dict[str, Any]) -> str | None:
    """Why a run failed: the run's `error`, else the latest state-history entry's (KFP 2.14
    fills only the latter)."""
    for error in [run.get("error"), *(h.get("error") for h in reversed(run.get("state_history") or []))]:
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
    return None


def run_sections(run: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """What the details view shows under a run's facts: history, tasks, parameters, error."""
    sections = []
    error = run_error(run)
    if error:
        sections.append(("error", error))
    reference = run.get("pipeline_version_reference") or {}
    finished = run.get("finished_at") or ""
    sections.append(("run", "\n".join([
        f"created    {run.get('created_at', '-')}",
        f"scheduled  {run.get('scheduled_at', '-')}",
        f"finished   {'-' if finished.startswith(EPOCH_PREFIX) else finished or '-'}",
        f"pipeline   {reference.get('pipeline_id', '-')}  version {reference.get('pipeline_version_id', '-')}",
        f"experiment {run.get('experiment_id', '-')}",
        *([f"recurring  {run['recurring_run_id']}"] if run.get("recurring_run_id") else []),
    ])))
    history = [f"{h.get('update_time', '?')}  {h.get('state', '?')}" for h in run.get("state_history") or []]
    sections.append(("state history", "\n".join(history) or "(none reported)"))
    tasks = []
    for task in (run.get("run_details") or {}).get("task_details") or []:
        pods = [c.get("pod_name") for c in task.get("child_tasks") or [] if c.get("pod_name")]
        line = f"{task.get('state', '?'):<10} {task.get('display_name') or task.get('task_id')}"
        if pods:
            line += f"  (pod {', '.join(pods)})"
        if (task.get("error") or {}).get("message"):
            line += f"  error: {task['error']['message']}"
        tasks.append(line)
    sections.append(("tasks", "\n".join(tasks) or "(none yet)"))
    parameters = (run.get("runtime_config") or {}).get("parameters") or {}
    if parameters:
        sections.append(("runtime parameters", "\n".join(f"{k} = {json.dumps(v)}" for k, v in sorted(parameters.items()))))
    return tuple(sections)
