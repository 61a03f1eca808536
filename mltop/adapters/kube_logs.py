"""Follow a pod's log over the API server's own endpoint, as `kubectl logs -f` does:
`GET /api/v1/namespaces/{ns}/pods/{name}/log?follow=true&timestamps=true&tailLines=N`.

The official client blocks, so each connection is read in a daemon thread that hands chunks to
the event loop through a bounded queue; the caller never waits on that thread (cancelling the
follow closes the response from another daemon thread). What the API server does, and what
this module does about it:
- a pod not yet on a node has no log location: the answer is an empty 200. The pod is read
  first, and such a pod is "not on a node yet" (NotYet: the follower looks again later);
- a container that has not started is a 400 whose Status says `container "main" in pod "x" is
  waiting to start: ContainerCreating`: that sentence is shown, as NotYet;
- a pod with several containers needs `container`: the one kubectl would pick (the
  `kubectl.kubernetes.io/default-container` annotation, else the first);
- a follow ends when the container stops; then the pod is read again: a container still
  running means the connection dropped, and it is reopened from the time of the last line
  received (`sinceTime`, with `timestamps=true`; lines at or before that time are skipped).
Bounded in time: 5 s to connect, 20 s to open, and 120 s of silence ends a connection, which is
then reopened the same way (a quiet container is not a failure).
"""

from __future__ import annotations

import asyncio
import codecs
import json
import re
import threading
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import ReadTimeoutError

from mltop.adapters.blocking import in_thread
from mltop.adapters.kube_cache import MiB, read_bounded
from mltop.adapters.kube_errors import kube_error, status_message
from mltop.adapters.values import mapping, sequence
from mltop.errors import NotFound, NotYet, Unreachable

TAIL_LINES = 1_000  # the first connection asks for this many of the newest lines
IDLE_READ = 120  # seconds without a byte before the connection is reopened
REQUEST_TIMEOUT = (5, 30)
OPEN_DEADLINE = 20.0
CHUNK = 64 * 1024
POD_LIMIT = 4 * MiB  # one pod object
QUEUED_CHUNKS = 64  # the reading thread waits while this many chunks are not yet taken
DEFAULT_CONTAINER = "kubectl.kubernetes.io/default-container"
_STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$")
NOT_STARTED = ("is waiting to start", "PodInitializing", "ContainerCreating")


def line_time(stamp: str) -> tuple[datetime, int] | None:
    """An RFC3339Nano time as (the second, in UTC; nanoseconds), comparable; None if not one."""
    match = _STAMP.match(stamp)
    if not match:
        return None
    zone = "+00:00" if match[3] == "Z" else match[3]
    second = datetime.fromisoformat(match[1] + zone).astimezone(timezone.utc)
    return second, int((match[2] or "0").ljust(9, "0"))


class PodLog:
    """One pod's log (one container), followed; `chunks()` may be called again after a failure."""

    def __init__(self, api: k8s.ApiClient, cluster: str, namespace: str, pod: str, *,
                 tail_lines: int = TAIL_LINES, idle_read: float = IDLE_READ) -> None:
        self._api = api
        self._core = k8s.CoreV1Api(api)
        self.namespace, self.pod = namespace, pod
        self.title = f"pod {namespace}/{pod} on {cluster}"
        self.what = f"{cluster}: log of pod {namespace}/{pod}"
        self.end_reason = "the container stopped"
        self.tail_lines = tail_lines
        self.idle_read = idle_read
        self.container: str | None = None
        self._last: tuple[datetime, int] | None = None  # time of the newest line received
        self._skip_until: tuple[datetime, int] | None = None  # a reopened stream repeats lines up to here
        self._streamed = False

    async def chunks(self) -> AsyncIterator[str]:
        first = True
        while True:
            state = await self._look()
            if state is None or (not first and state != "running"):
                self.end_reason = (f"the pod {self.namespace}/{self.pod} is gone" if state is None
                                   else f"container {self.container} is {state}")
                return
            response = await self._open()
            yield ""
            self._streamed = True
            decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
            partial = ""
            async for data in _pumped(response, self.what):
                text = partial + decoder.decode(data)
                *lines, partial = text.split("\n")
                shown = self._new_lines(lines)
                if shown:
                    yield shown
            shown = self._new_lines([partial + decoder.decode(b"", final=True)] if partial else [])
            if shown:
                yield shown
            self._skip_until = self._last  # reopened from the last line's second: skip what was shown
            first = False
            await asyncio.sleep(1.0)  # a stream that keeps closing is not reopened in a tight loop

    def _new_lines(self, lines: list[str]) -> str:
        kept = []
        for line in lines:
            stamp, _, text = line.partition(" ")
            at = line_time(stamp)
            if at is None:
                kept.append(line)
                continue
            if self._skip_until is not None and at <= self._skip_until:
                continue
            self._skip_until = None
            self._last = at
            kept.append(text)
        return "".join(f"{line}\n" for line in kept)

    async def _look(self) -> str | None:
        """The followed container's state ("running", "terminated (...)", "waiting"; None: the pod
        is gone after its log was shown); picks the container on the first look."""
        def read() -> dict[str, Any]:
            response = self._core.read_namespaced_pod(self.pod, self.namespace, _preload_content=False,
                                                      _request_timeout=REQUEST_TIMEOUT)
            body = json.loads(read_bounded(response, POD_LIMIT, f"{self.what}: pod"))
            return body if isinstance(body, dict) else {}

        try:
            pod = await in_thread(read, timeout=OPEN_DEADLINE, name="mltop-kube-log-pod")
        except asyncio.TimeoutError:
            raise Unreachable(f"{self.what}: the API server did not answer within {OPEN_DEADLINE:.0f}s") from None
        except Exception as exc:
            error = kube_error(exc, f"{self.what}: pod")
            if isinstance(error, NotFound) and self._streamed:
                return None
            raise error from None
        spec, status = mapping(pod.get("spec")), mapping(pod.get("status"))
        if not spec.get("nodeName"):
            raise NotYet(f"pod {self.namespace}/{self.pod} is not on a node yet ({_why_unscheduled(status)}): "
                         "it has no log until it runs; looking again shortly")
        if self.container is None:
            names = [c.get("name") for c in sequence(spec.get("containers")) if isinstance(c, dict)]
            chosen = mapping(mapping(pod.get("metadata")).get("annotations")).get(DEFAULT_CONTAINER)
            self.container = chosen if chosen in names else (names[0] if names else None)
            if len(names) > 1:
                self.title += f", container {self.container}"
        return _state(status, self.container)

    async def _open(self) -> Any:
        query: list[tuple[str, str]] = [("follow", "true"), ("timestamps", "true")]
        if self.container:
            query.append(("container", self.container))
        if self._last is not None:
            query.append(("sinceTime", self._last[0].strftime("%Y-%m-%dT%H:%M:%SZ")))
        else:
            query.append(("tailLines", str(self.tail_lines)))

        def call() -> Any:
            return self._api.call_api(
                "/api/v1/namespaces/{namespace}/pods/{name}/log", "GET",
                path_params={"namespace": self.namespace, "name": self.pod},  # encoded by the client
                query_params=query, header_params={"Accept": "*/*"}, auth_settings=["BearerToken"],
                _preload_content=False, _return_http_data_only=True, _request_timeout=(5, self.idle_read))

        try:
            return await in_thread(call, timeout=OPEN_DEADLINE, name="mltop-kube-log-open")
        except asyncio.TimeoutError:
            raise Unreachable(f"{self.what}: no answer within {OPEN_DEADLINE:.0f}s") from None
        except ApiException as exc:
            message = status_message(exc)
            if exc.status == 400 and any(words in message for words in NOT_STARTED):
                raise NotYet(message) from None
            raise kube_error(exc, self.what) from None
        except Exception as exc:
            raise kube_error(exc, self.what) from None


def _why_unscheduled(status: dict[str, Any]) -> str:
    for condition in sequence(status.get("conditions")):
        condition = mapping(condition)
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            return str(condition.get("message") or condition.get("reason") or "not scheduled")
    return f"phase {status.get('phase') or 'unknown'}"


def _state(status: dict[str, Any], container: str | None) -> str:
    entries = sequence(status.get("containerStatuses")) + sequence(status.get("initContainerStatuses"))
    for entry in map(mapping, entries):
        state = mapping(entry.get("state"))
        if entry.get("name") == container and state:
            if "running" in state:
                return "running"
            if "terminated" in state:
                ended = mapping(state["terminated"])
                return f"terminated ({ended.get('reason') or 'exit code ' + str(ended.get('exitCode'))})"
            return "waiting"
    phase = status.get("phase")
    return {"Running": "running", "Succeeded": "terminated (Succeeded)", "Failed": "terminated (Failed)"}.get(
        phase if isinstance(phase, str) else "", "waiting")


async def _pumped(response: Any, what: str) -> AsyncIterator[bytes]:
    """The response's body as it arrives, read in a daemon thread. Ends at the end of the body or
    after `idle_read` seconds of silence; raises the typed error when the connection breaks."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    room = threading.Semaphore(QUEUED_CHUNKS)
    stop = threading.Event()

    def put(item: tuple[str, Any]) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:
            stop.set()  # the loop is closed: nobody reads any more

    def pump() -> None:
        try:
            for data in response.stream(CHUNK, decode_content=True):
                while not room.acquire(timeout=1.0):
                    if stop.is_set():
                        return
                if stop.is_set():
                    return
                put(("data", data))
            put(("end", None))
        except ReadTimeoutError:
            put(("end", None))  # quiet for idle_read seconds: reopened by the caller
        except Exception as exc:
            if not stop.is_set():
                put(("error", exc))

    threading.Thread(target=pump, name="mltop-kube-log-read", daemon=True).start()
    try:
        while True:
            kind, value = await queue.get()
            if kind == "data":
                room.release()
                yield value
            elif kind == "error":
                raise kube_error(value, what)
            else:
                return
    finally:
        stop.set()
        threading.Thread(target=_close, args=(response,), name="mltop-kube-log-close", daemon=True).start()


def _close(response: Any) -> None:
    try:
        shutdown = getattr(response, "shutdown", None)  # urllib3 2.3+: unblocks a read in another thread
        if shutdown is not None:
            shutdown()
        response.close()
    except Exception:
        pass  # closing a broken connection may fail; it is being dropped anyway
