"""The scheduler's own words on why a pod waits: its FailedScheduling events, read gently.

"0/12 nodes are available: 4 Insufficient nvidia.com/gpu, 8 node(s) had untolerated taint
{dedicated: infer}. preemption: ..." is the most precise reason Kubernetes gives. It is read with
one list call per refresh for the whole cluster (core/v1 Events, which also shows the events the
scheduler writes through events.k8s.io/v1), filtered by the API server
(`involvedObject.kind=Pod,reason=FailedScheduling`), in pages of 500 and at most 4 pages, no more
often than every `min_interval` seconds, and only while some GPU pod is pending. Of those events,
the newest per pod is kept, for pods pending now, and only if it is not older than the pod (a pod
re-created under the same name is not explained by its predecessor's events).

Reading events is a help, never a requirement: a cluster that forbids listing them (RBAC), or
answers junk, leaves the scheduler message unknown (the pod's PodScheduled condition still
speaks) and the source up; the last failure is kept in `error`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from mltop.adapters import fast_json
from mltop.adapters.kube_cache import MiB, read_bounded
from mltop.adapters.kube_errors import kube_error
from mltop.adapters.values import integer, mapping, rfc3339
from mltop.model import Job

log = logging.getLogger(__name__)

FIELD_SELECTOR = "involvedObject.kind=Pod,reason=FailedScheduling"
PAGE_SIZE = 500
MAX_PAGES = 4  # 2,000 events a read; a cluster with more keeps the first 2,000 (by namespace and name)
PAGE_LIMIT = 16 * MiB
MAX_MESSAGE = 600  # the scheduler's message for 5,000 nodes is a few hundred characters
MIN_INTERVAL = 10.0  # seconds: the scheduler itself retries an unschedulable pod no faster
REQUEST_TIMEOUT = (5, 10)  # a help, not the poll: a slow events list must not hold the nodes and pods back


@dataclass(frozen=True)
class SchedulingEvent:
    """A FailedScheduling event, as much of it as explains a pod's wait."""

    namespace: str
    pod: str
    message: str
    at: datetime | None  # when it was last observed
    count: int

    @property
    def pod_id(self) -> str:
        return f"{self.namespace}/{self.pod}"


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def event_time(obj: Mapping[str, Any]) -> datetime | None:
    """When an event was last observed, whichever API wrote it: core/v1 (`lastTimestamp`), or
    events.k8s.io/v1 (`series.lastObservedTime`, else `eventTime`); the object's creation last."""
    series = mapping(obj.get("series"))
    for value in (series.get("lastObservedTime"), obj.get("lastTimestamp"), obj.get("eventTime"),
                  obj.get("firstTimestamp"), mapping(obj.get("metadata")).get("creationTimestamp")):
        moment = rfc3339(value)
        if moment is not None:
            return moment
    return None


def scheduling_event(obj: Any) -> SchedulingEvent | None:
    """A FailedScheduling event about a pod, or None (another event, or one too broken to use).
    Total on any JSON value; the message is clipped, never interpreted."""
    if not isinstance(obj, dict) or obj.get("reason") != "FailedScheduling":
        return None
    regarding = mapping(obj.get("involvedObject"))
    if regarding.get("kind") != "Pod":
        return None
    namespace = _text(regarding.get("namespace")) or _text(mapping(obj.get("metadata")).get("namespace"))
    pod, message = _text(regarding.get("name")), _text(obj.get("message"))
    if namespace is None or pod is None or message is None:
        return None
    message = message.strip()
    if len(message) > MAX_MESSAGE:
        message = message[: MAX_MESSAGE - 1] + "…"
    count = integer(mapping(obj.get("series")).get("count"), minimum=1) or integer(obj.get("count"), minimum=1) or 1
    return SchedulingEvent(namespace, pod, message, event_time(obj), count)


def newest_per_pod(events: Iterable[SchedulingEvent], pending: Mapping[str, datetime | None]) -> dict[str, str]:
    """pod id ("namespace/name") -> the message of its newest event, for the pods in `pending`
    (pod id -> when it was created). An event older than its pod was about another pod."""
    best: dict[str, SchedulingEvent] = {}
    for event in events:
        if event.pod_id not in pending:
            continue
        created = pending[event.pod_id]
        if created is not None and event.at is not None and event.at < created:
            continue
        held = best.get(event.pod_id)
        if held is None or (event.at is not None and (held.at is None or event.at >= held.at)):
            best[event.pod_id] = event
    return {pod: event.message for pod, event in best.items()}


class SchedulerEvents:
    """The FailedScheduling events of one cluster, listed at most every `min_interval` seconds."""

    def __init__(self, list_call: Callable[..., Any], what: str, *, min_interval: float = MIN_INTERVAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._list_call = list_call  # CoreV1Api.list_event_for_all_namespaces
        self.what = what
        self.min_interval = min_interval
        self._clock = clock
        self._events: list[SchedulingEvent] = []
        self._read_at: float | None = None
        self.error: str | None = None  # the last read's failure, one line; None when it worked
        self.lists = 0  # list calls made (pages count once each)

    def messages(self, pending: Mapping[str, datetime | None]) -> dict[str, str]:
        """The scheduler's newest message for each pending pod (id -> created) that has one."""
        if not pending:
            return {}
        now = self._clock()
        if self._read_at is None or now - self._read_at >= self.min_interval:
            self._read_at = now
            try:
                self._events = self._read()
                self.error = None
            except Exception as exc:  # a help, not a requirement: the message stays unknown
                self.error = str(kube_error(exc, self.what))
                log.info("%s", self.error)
                self._events = []
        return newest_per_pod(self._events, pending)

    def _read(self) -> list[SchedulingEvent]:
        events: list[SchedulingEvent] = []
        token: str | None = None
        for _ in range(MAX_PAGES):
            kwargs: dict[str, Any] = {"field_selector": FIELD_SELECTOR, "limit": PAGE_SIZE,
                                      "_preload_content": False, "_request_timeout": REQUEST_TIMEOUT}
            if token:
                kwargs["_continue"] = token
            self.lists += 1
            response = self._list_call(**kwargs)
            try:
                body = fast_json.loads(read_bounded(response, PAGE_LIMIT, self.what))
            except (ValueError, RecursionError):
                raise ValueError(f"{self.what}: the API server did not answer with JSON") from None
            items = body.get("items") if isinstance(body, dict) else None
            if not isinstance(items, list):
                raise ValueError(f"{self.what}: the list answer has no items array")
            events.extend(e for e in map(scheduling_event, items) if e is not None)
            token = _text(mapping(body.get("metadata")).get("continue"))
            if not token:
                break
        return events


class SaidRows:
    """Pending pods' rows with the scheduler's message, each the same row object as the last poll's
    while its record and message are the same. A new copy of ~1,000 pending pods on every poll
    defeated every identity memo after it (the REASON column's, Kueue's row keys, the source's own
    "nothing changed"): 10-25 ms a poll at 5,000 nodes."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[Job, str, Job]] = {}  # row key -> (record, message, row)

    def rows(self, jobs: tuple[Job, ...], said: Mapping[str, str]) -> tuple[Job, ...]:
        kept: dict[str, tuple[Job, str, Job]] = {}
        out = []
        for job in jobs:
            message = said.get(job.id)
            if message is None:
                out.append(job)
                continue
            seen = self._last.get(job.key)
            row = seen[2] if seen is not None and seen[0] is job and seen[1] == message \
                else replace(job, scheduler_message=message)
            kept[job.key] = (job, message, row)
            out.append(row)
        self._last = kept  # this poll's rows only: never more than the pods pending now
        return tuple(out)
