"""The fake API server's pod log endpoint, `GET /api/v1/namespaces/{ns}/pods/{name}/log`, answered
as the apiserver and the kubelet answer it:

- the pod must exist (404 `pods "x" not found`); `container` must name one of its containers, and
  may be left out only when it has one (400 "a container name must be specified for pod x,
  choose one of: [a b]"; 400 "container c is not valid for pod x") (pod/strategy.go LogLocation);
- a pod not yet bound to a node has no log location: 200 and an empty body (LogLocation returns
  no URL, and the streamer sends nothing);
- a container that has not started: 400 with the kubelet's sentence, `container "main" in pod
  "x" is waiting to start: ContainerCreating` (kubelet validateContainerLogStatus), in a Status;
- otherwise `text/plain`, chunked: the lines selected by `sinceSeconds`/`sinceTime` and
  `tailLines`, each prefixed with its RFC3339Nano time when `timestamps=true`; with
  `follow=true` the stream stays open, sending lines as they are written, and ends when the
  container stops running or the pod goes away.
Not served: `previous`, `limitBytes`. The lines are what the scenario (or a test) writes with
`PodLogs.append`.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

from aiohttp import web

LINES_PER_CONTAINER = 2_000  # a kubelet rotates container logs; so does the fake
FOLLOW_POLL = 1.0  # seconds: a follow looks at the pod at least this often (to end when it stops)
_Key = tuple[str, str, str]  # namespace, pod, container


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def rfc3339nano(moment: datetime) -> str:
    """As Go's time.RFC3339Nano writes a UTC time: trailing zeros of the fraction trimmed."""
    moment = moment.astimezone(timezone.utc)
    fraction = f"{moment.microsecond * 1000:09d}".rstrip("0")
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if fraction else "") + "Z"


class PodLogs:
    """Each container's log lines with their times (bounded, as rotated logs are), and a wake-up
    for the streams that follow them. Safe to write from any thread."""

    def __init__(self, clock: Callable[[], datetime] = utcnow, limit: int = LINES_PER_CONTAINER) -> None:
        self.clock = clock
        self.limit = limit
        self._lines: dict[_Key, deque[tuple[datetime, str]]] = {}
        self._written: dict[_Key, int] = {}  # lines ever written, rotated ones included
        self._lock = threading.Lock()
        self._listeners: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self.closing = False

    def append(self, namespace: str, pod: str, text: str, *, container: str = "main",
               at: datetime | None = None) -> None:
        key = (namespace, pod, container)
        with self._lock:
            lines = self._lines.setdefault(key, deque(maxlen=self.limit))
            lines.append((at or self.clock(), text))
            self._written[key] = self._written.get(key, 0) + 1
        self.wake()

    def forget(self, keep: Callable[[str, str], bool]) -> None:
        """Drop the logs of pods that `keep(namespace, pod)` says are gone."""
        with self._lock:
            for key in [k for k in self._lines if not keep(k[0], k[1])]:
                del self._lines[key]
                del self._written[key]

    def since(self, key: _Key, written: int) -> tuple[list[tuple[datetime, str]], int]:
        """The lines written after the first `written` ones (those still kept), and the new count."""
        with self._lock:
            lines = self._lines.get(key, deque())
            total = self._written.get(key, 0)
            new = max(0, min(total - written, len(lines)))
            return list(lines)[len(lines) - new:], total

    @contextlib.contextmanager
    def subscribe(self) -> Iterator[asyncio.Event]:
        listener = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._listeners.add(listener)
        try:
            yield listener[1]
        finally:
            with self._lock:
                self._listeners.discard(listener)

    def wake(self) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for loop, event in listeners:
            with contextlib.suppress(RuntimeError):  # that loop has closed
                loop.call_soon_threadsafe(event.set)


def _status(code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> web.Response:
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                            "message": message, "reason": reason}
    if details:
        body["details"] = details
    body["code"] = code
    return web.json_response(body, status=code)


def _container(pod: dict[str, Any], wanted: str) -> tuple[str | None, web.Response | None]:
    name = pod["metadata"]["name"]
    spec = pod.get("spec") or {}
    names = [c.get("name") for c in spec.get("containers") or []]
    init = [c.get("name") for c in spec.get("initContainers") or []]
    if not wanted:
        if len(names) == 1:
            return names[0], None
        message = f"a container name must be specified for pod {name}, choose one of: [{' '.join(names)}]"
        if init:
            message += f" or one of the init containers: [{' '.join(init)}]"
        return None, _status(400, "BadRequest", message)
    if wanted not in names + init:
        return None, _status(400, "BadRequest", f"container {wanted} is not valid for pod {name}")
    return wanted, None


def container_state(pod: dict[str, Any], container: str) -> tuple[str, str]:
    """("running" | "waiting" | "terminated", reason) of a container, from the pod's status."""
    status = pod.get("status") or {}
    for entry in (status.get("containerStatuses") or []) + (status.get("initContainerStatuses") or []):
        if entry.get("name") == container:
            state = entry.get("state") or {}
            if "running" in state:
                return "running", ""
            if "terminated" in state:
                return "terminated", (state["terminated"] or {}).get("reason") or "Completed"
            return "waiting", ((state.get("waiting") or {}).get("reason") or "ContainerCreating")
    phase = status.get("phase")
    if phase == "Running":
        return "running", ""
    if phase in ("Succeeded", "Failed"):
        return "terminated", phase
    return "waiting", "ContainerCreating"


def _waiting_message(container: str, pod: str, reason: str) -> str:
    what = {"ErrImagePull": "image can't be pulled",
            "ImagePullBackOff": "trying and failing to pull image"}.get(reason, reason)
    return f'container "{container}" in pod "{pod}" is waiting to start: {what}'


def _bool(value: str | None) -> bool:
    """A boolean query parameter as Go's strconv.ParseBool reads it (the Python client sends "True")."""
    if value is None or value == "":
        return False
    if value in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if value in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ValueError(f"strconv.ParseBool: parsing {value!r}: invalid syntax")


def _options(query: Any, now: datetime) -> tuple[dict[str, Any] | None, web.Response | None]:
    try:
        options: dict[str, Any] = {"follow": _bool(query.get("follow")), "timestamps": _bool(query.get("timestamps")),
                                   "tail": None, "since": None}
        if "tailLines" in query:
            options["tail"] = int(query["tailLines"])
        if "sinceSeconds" in query:
            options["since"] = now - timedelta(seconds=int(query["sinceSeconds"]))
        if "sinceTime" in query:
            options["since"] = datetime.fromisoformat(query["sinceTime"].replace("Z", "+00:00"))
    except ValueError as exc:
        return None, _status(400, "BadRequest", f"invalid log options: {exc}")
    return options, None


def _render(lines: list[tuple[datetime, str]], timestamps: bool) -> bytes:
    if timestamps:
        return "".join(f"{rfc3339nano(at)} {text}\n" for at, text in lines).encode()
    return "".join(f"{text}\n" for _, text in lines).encode()


def add_log_route(app: web.Application, store: Any) -> None:
    """Serve pods' logs from `store.pod_logs` (a PodLogs), pods from the store itself."""
    logs: PodLogs = store.pod_logs

    async def pod_log(request: web.Request) -> web.StreamResponse:
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        if ("get", "pods/log") in store.denied_verbs:
            return _status(403, "Forbidden", f'pods "{name}" is forbidden: User "demo" cannot get resource '
                                             f'"pods/log" in API group "" in the namespace "{namespace}"',
                           {"name": name, "kind": "pods"})
        pod = store.get("v1", "Pod", name, namespace)
        if pod is None:
            return _status(404, "NotFound", f'pods "{name}" not found', {"name": name, "kind": "pods"})
        container, refusal = _container(pod, request.query.get("container", ""))
        options, bad = _options(request.query, logs.clock())
        if refusal is not None or bad is not None or container is None or options is None:
            return refusal or bad or _status(400, "BadRequest", "bad request")
        if not (pod.get("spec") or {}).get("nodeName"):
            return web.Response(status=200, body=b"", content_type="text/plain")
        state, reason = container_state(pod, container)
        if state == "waiting":
            return _status(400, "BadRequest", _waiting_message(container, name, reason))
        return await _stream(request, store, logs, (namespace, name, container), options)

    async def stop_follows(_: web.Application) -> None:
        logs.closing = True  # an open follow would hold the server's shutdown
        logs.wake()

    app.router.add_get("/api/v1/namespaces/{namespace}/pods/{name}/log", pod_log)
    app.on_shutdown.append(stop_follows)


async def _stream(request: web.Request, store: Any, logs: PodLogs, key: _Key,
                  options: dict[str, Any]) -> web.StreamResponse:
    response = web.StreamResponse(status=200, headers={"Content-Type": "text/plain"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    lines, written = logs.since(key, 0)
    if options["since"] is not None:
        lines = [(at, text) for at, text in lines if at >= options["since"]]
    if options["tail"] is not None:
        lines = lines[-options["tail"]:] if options["tail"] > 0 else []
    try:
        with logs.subscribe() as changed:
            await response.write(_render(lines, options["timestamps"]))
            while options["follow"] and not logs.closing:
                changed.clear()
                lines, written = logs.since(key, written)
                if lines:
                    await response.write(_render(lines, options["timestamps"]))
                pod = store.get("v1", "Pod", key[1], key[0])
                if pod is None or container_state(pod, key[2])[0] != "running":
                    break  # the container stopped: its log is complete
                if request.transport is None or request.transport.is_closing():
                    break  # the client left
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(changed.wait(), timeout=FOLLOW_POLL)
        await response.write_eof()
    except ConnectionResetError:
        pass
    return response


def write_demo_logs(store: Any, step: int) -> None:
    """The live demo's pods write a line each step while they run; logs of deleted pods go."""
    logs: PodLogs = store.pod_logs
    pods = store.list("v1", "Pod")
    names = {(p["metadata"]["namespace"], p["metadata"]["name"]) for p in pods}
    logs.forget(lambda namespace, pod: (namespace, pod) in names)
    for pod in pods:
        meta = pod["metadata"]
        if pod["spec"].get("nodeName") and (pod.get("status") or {}).get("phase") == "Running":
            seed = sum(meta["name"].encode()) % 50
            logs.append(meta["namespace"], meta["name"], f"[{meta['name']}] step {step * 5 + seed}: loss "
                        f"{1.5 * 0.995 ** step + seed / 500:.4f}, gpu mem {60 + seed % 20} GiB")
