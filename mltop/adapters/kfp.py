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

from mltop.adapters.http import MiB, Endpoint, decode_json, digest, make_client, request, segment
from mltop.adapters.kfp_runs import (EPOCH_PREFIX, STATE_MAP, _short, run_error, run_sections, run_state, unreadable,
                                     step_pods, waiting_step)
from mltop.adapters.values import Skips, mapping, sequence, text
from mltop.adapters.kfp_endpoint import KfpEndpoint
from mltop.adapters import raw_objects
from mltop.errors import BadResponse, Conflict, NotFound, SourceError
from mltop.local_files import check_regular, read_problem, read_regular
from mltop.safe_text import remember_secret
from mltop.model import ActionOutcome, JobDetail, Job, JobState, RawObject, SourceData

KIND = "kfp"
API = "/apis/v2beta1"
ACTIVE_STATES = ("PENDING", "RUNNING", "CANCELING", "PAUSED")
FINISHED_STATES = ("SUCCEEDED", "FAILED", "CANCELED", "SKIPPED")
PAGE_SIZE = 100
MAX_ACTIVE_PAGES = 20  # 2,000 active runs per namespace is already more than a screen can use
PAGE_LIMIT = 16 * MiB  # one page of 100 runs; a run with a big pipeline spec is a few hundred KiB
OBJECT_LIMIT = 8 * MiB  # one run, experiment or pipeline


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class TokenFile:
    """A bearer token read from a file, re-read whenever the file changes."""

    def __init__(self, path: str) -> None:
        self.path = os.path.expanduser(path)
        self._stamp: tuple[float, int] | None = None
        self._token = ""

    def read(self) -> str:
        """The token; SourceError (one line) if the file is gone, not a regular file (a FIFO
        would block the poll), not UTF-8, or not one line of text (it goes into a header)."""
        try:
            stat = check_regular(self.path)
        except OSError as exc:
            raise SourceError(f"token file {self.path}: {exc.strerror or exc}") from None
        stamp = (stat.st_mtime, stat.st_size)
        if stamp != self._stamp:
            try:
                data = read_regular(self.path)
            except OSError as exc:
                raise SourceError(f"token file {self.path}: {read_problem(exc)}") from None
            try:
                token = data.decode("utf-8").strip()
            except UnicodeDecodeError as exc:
                raise SourceError(f"token file {self.path}: not UTF-8 text (byte {exc.start})") from None
            if not token.isprintable():
                raise SourceError(f"token file {self.path}: not one line of printable text")
            self._token = token
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

    @property
    def key(self) -> str:
        """The source's key ("kind/name"): its records, updates and actions are filed under it."""
        return f"{KIND}/{self.name}"

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
        remember_secret(endpoint.cookie)
        if endpoint.header:
            remember_secret(endpoint.header[1])
        self._multi_user: bool | None = None
        self._experiments: dict[str, tuple[str | None, str | None]] = {}  # id -> (name, namespace)
        self._pipelines: dict[str, str | None] = {}
        self._last: tuple[tuple[bytes, ...], SourceData] | None = None  # the last poll's page digests, records
        self._made: dict[tuple[str, str | None], tuple[dict[str, Any], Job]] = {}  # the last poll's runs, records

    async def aclose(self) -> None:
        await self._client.aclose()

    # -- HTTP -----------------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        headers = {}
        if self._token_file is not None:
            token = self._token_file.read()
            remember_secret(token)  # a server that echoes it must not get it shown
            headers["Authorization"] = f"Bearer {token}"
        if self.endpoint.cookie:
            headers["Cookie"] = self.endpoint.cookie
        if self.endpoint.header:
            headers[self.endpoint.header[0]] = self.endpoint.header[1]
        return headers

    async def _call(self, method: str, path: str, what: str, limit: int = OBJECT_LIMIT, **kwargs: Any) -> Any:
        response = await request(self._client, method, path, what=f"{self.name}: {what}",
                                 headers=self._headers(), limit=limit, **kwargs)
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
        listed = await asyncio.gather(*(self._runs_in(ns) for ns in namespaces))
        # Every page byte for byte as last time (a quiet pipeline platform): the same records, not
        # rebuilt. At 200,000 runs that was a sixth of the UI thread's time on an idle screen.
        pages = tuple(d for _, digests in listed for d in digests)
        if self._last is not None and self._last[0] == pages:
            return self._last[1]
        batches = [runs for runs, _ in listed]
        seen: set[str] = set()
        skips = Skips()
        runs: list[tuple[dict[str, Any], str | None]] = []
        for ns, batch in zip(namespaces, batches):
            for run in batch:
                problem = unreadable(run)
                if problem:
                    skips.add(f"run: {problem}")
                elif run["run_id"] not in seen:
                    seen.add(run["run_id"])
                    runs.append((run, ns))
        # Names are learned once each and never change after: the same pages make the same records.
        await self._learn_names(r for r, _ in runs)
        # A run the same as last poll's (most of them, while a few change) keeps its record: turning
        # a run into a record (its times parsed, its steps read) costs more than comparing it.
        made: dict[tuple[str, str | None], tuple[dict[str, Any], Job]] = {}
        for run, ns in runs:
            last = self._made.get((run["run_id"], ns))
            made[(run["run_id"], ns)] = (run, last[1] if last is not None and last[0] == run else self._job(run, ns))
        self._made = made
        data = SourceData(jobs=tuple(job for _, job in made.values()), skipped=skips.count,
                          skip_reason=skips.reason)
        self._last = (pages, data)
        return data

    async def _runs_in(self, namespace: str | None) -> tuple[list[dict[str, Any]], list[bytes]]:
        """The runs a poll shows in one namespace, and a digest of each page they came in."""
        digests: list[bytes] = []
        active = await self._list_runs(namespace, run_filter(ACTIVE_STATES), "created_at desc", PAGE_SIZE,
                                       MAX_ACTIVE_PAGES, digests)
        finished = await self._list_runs(namespace, run_filter(FINISHED_STATES), "finished_at desc",
                                         self.finished_limit, 1, digests)
        return active + finished, digests

    async def _list_runs(
        self, namespace: str | None, filter_json: str, sort_by: str, page_size: int, max_pages: int,
        digests: list[bytes],
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
            what = f"runs in {namespace or 'all namespaces'}"
            response = await request(self._client, "GET", f"{API}/runs", what=f"{self.name}: {what}",
                                     headers=self._headers(), limit=PAGE_LIMIT, params=params)
            digests.append(digest(response.content))
            body = decode_json(response, f"{self.name}: {what}")
            if not isinstance(body, dict):
                raise BadResponse(f"{self.name}: {what}: the run list is not an object")
            page = body.get("runs")
            if page is not None and not isinstance(page, list):  # absent means none: proto3 omits empty lists
                raise BadResponse(f"{self.name}: {what}: 'runs' is not a list")
            runs.extend(page or [])  # a bad entry is skipped and counted by the caller
            token = text(body.get("next_page_token")) or ""
            if not token:
                break
        return runs

    async def _learn_names(self, runs: Any) -> None:
        """Experiment and pipeline names, by id, fetched once each."""
        experiments, pipelines = set(), set()
        for run in runs:
            exp = text(run.get("experiment_id"))
            if exp and exp not in self._experiments:
                experiments.add(exp)
            pipeline = text(mapping(run.get("pipeline_version_reference")).get("pipeline_id"))
            if pipeline and pipeline not in self._pipelines:
                pipelines.add(pipeline)

        async def experiment(exp_id: str) -> None:
            try:
                body = mapping(await self._call("GET", f"{API}/experiments/{segment(exp_id)}", f"experiment {exp_id}"))
                self._experiments[exp_id] = (_short(body.get("display_name")), _short(body.get("namespace")))
            except SourceError:
                self._experiments[exp_id] = (None, None)  # shown by id; not worth failing the poll

        async def pipeline(pipe_id: str) -> None:
            try:
                body = mapping(await self._call("GET", f"{API}/pipelines/{segment(pipe_id)}", f"pipeline {pipe_id}"))
                self._pipelines[pipe_id] = _short(body.get("display_name"))
            except SourceError:
                self._pipelines[pipe_id] = None

        await asyncio.gather(*(experiment(e) for e in experiments), *(pipeline(p) for p in pipelines))

    def _job(self, run: dict[str, Any], namespace: str | None) -> Job:
        """A readable run (see `unreadable`) as a record; other junk fields are unknown."""
        native = run_state(run)
        state = STATE_MAP[native]
        run_id = run["run_id"]
        exp_name, exp_ns = self._experiments.get(text(run.get("experiment_id")) or "", (None, None))
        pipeline_id = text(mapping(run.get("pipeline_version_reference")).get("pipeline_id"))
        history = [h for h in sequence(run.get("state_history")) if isinstance(h, dict)]
        started = next((parse_time(h.get("update_time")) for h in history if h.get("state") == "RUNNING"), None)
        if started is None and state is not JobState.PENDING:
            started = parse_time(run.get("scheduled_at"))
        namespace = namespace or exp_ns
        step = waiting_step(run) if not state.is_terminal else None
        return Job(
            key=f"{KIND}/{self.name}/{run_id}",
            source=KIND,
            cluster=self.name,
            id=run_id,
            name=_short(run.get("display_name")) or run_id,
            state=state,
            native_state=native,
            gpus=None,  # KFP does not say; the pods it starts are seen by the Kubernetes source
            submitted_at=parse_time(run.get("created_at")),
            started_at=started,
            finished_at=parse_time(run.get("finished_at")) if state.is_terminal else None,
            # In multi-user Kubeflow a namespace is a person's or a team's profile: the owner.
            owner=namespace,
            message=_short(run_error(run)),
            kind="recurring run" if run.get("recurring_run_id") else "run",
            cancellable=native in ("PENDING", "RUNNING", "PAUSED"),
            retryable=native in ("FAILED", "CANCELED"),
            namespace=namespace,
            experiment=exp_name or _short(run.get("experiment_id")),
            pipeline=self._pipelines.get(pipeline_id) if pipeline_id else None,
            waiting_step=step[0] if step else None,
            waiting_pod=step[1] if step else None,
            links=step_pods(run),
        )

    def raw_refusal(self, record: Any) -> str | None:
        return raw_objects.job_refusal(record, "KFP")

    async def raw_object(self, record: Any) -> RawObject:
        """The run as `GET /apis/v2beta1/runs/{id}` answers, for the raw view (`y`)."""
        return await raw_objects.kfp_run(record, self._run_by_id, self.name, self.clock)

    async def job_detail(self, job_id: str) -> JobDetail:
        run = await self._run_by_id(job_id)
        await self._learn_names([run])
        job = self._job(run, None)
        return JobDetail(job=job, sections=run_sections(run))

    async def _run_by_id(self, job_id: str) -> dict[str, Any]:
        """The run KFP holds under exactly `job_id`, fetched by its encoded id; it must be that run."""
        run = await self._call("GET", f"{API}/runs/{segment(job_id)}", f"run {job_id}")
        if not isinstance(run, dict):
            raise BadResponse(f"{self.name}: run {job_id} is not an object")
        if run.get("run_id") != job_id:
            raise Conflict(f"{self.name}: run {job_id}: KFP answered for another run ({str(run.get('run_id'))[:80]!r}); "
                           "mltop will not act on it")
        problem = unreadable(run)
        if problem:
            raise BadResponse(f"{self.name}: run {job_id}: {problem}")
        return run

    # -- actions --------------------------------------------------------------------------------

    async def cancel_job(self, job_id: str) -> ActionOutcome:
        await self._run_by_id(job_id)  # the confirmed run, read back by its encoded id
        await self._call("POST", f"{API}/runs/{segment(job_id)}:terminate", f"terminate run {job_id}", json={})
        return ActionOutcome(True, f"KFP accepted the terminate request for run {job_id}")

    async def retry_job(self, job_id: str) -> ActionOutcome:
        await self._run_by_id(job_id)
        await self._call("POST", f"{API}/runs/{segment(job_id)}:retry", f"retry run {job_id}", json={})
        return ActionOutcome(True, f"KFP accepted the retry of run {job_id}")
