"""A watch-based cache of one Kubernetes resource, kept by a background thread.

List (in pages), then watch from the list's resourceVersion with bookmarks; on 410 Gone
(compacted history) re-list; when the server ends a watch, reconnect from the last version seen
(a bookmark's included). Only a compact record of each object is kept (`to_record`; None drops
the object), so 50,000 pods cost 50,000 small tuples at most, and usually far fewer.

Blocking (the official client is synchronous): it runs in its own daemon thread, never on the
UI thread. Readers take `snapshot()`, a copy made under a lock.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

from mltop.errors import SourceError
from mltop.adapters.kube_errors import kube_error

log = logging.getLogger(__name__)
R = TypeVar("R")

PAGE_SIZE = 500
WATCH_SECONDS = 300
CONNECT_TIMEOUT = 5.0
MAX_BACKOFF = 30.0


class Expired(Exception):
    """The watch's resourceVersion is gone from the server's history: re-list."""


def object_key(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace') or ''}/{meta.get('name') or ''}"


class WatchCache(Generic[R]):
    def __init__(
        self,
        what: str,
        list_call: Callable[..., Any],
        to_record: Callable[[dict[str, Any]], R | None],
        *,
        page_size: int = PAGE_SIZE,
        watch_seconds: int = WATCH_SECONDS,
    ) -> None:
        self.what = what
        self._list_call = list_call
        self._to_record = to_record
        self.page_size = page_size
        self.watch_seconds = watch_seconds
        self._records: dict[str, R] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._response: Any = None
        self.synced = threading.Event()
        self.resource_version: str | None = None
        self.error: SourceError | None = None  # the last failure; None while healthy
        self.lists = 0  # how many times the resource was (re-)listed
        self.watches = 0  # how many watch requests were made

    # -- reader side ------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"mltop-watch-{self.what}", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        response = self._response
        if response is not None:
            # Closing the response alone waits for the reader thread's current read (up to the
            # next event or bookmark, a minute on a quiet cluster); shutting the socket ends it now.
            sock = getattr(getattr(response, "connection", None), "sock", None)
            for end in (lambda: sock.shutdown(socket.SHUT_RDWR) if sock else None, response.close):
                try:
                    end()
                except Exception:  # a half-dead socket may refuse; the thread ends anyway
                    pass

    def snapshot(self) -> list[R]:
        with self._lock:
            return list(self._records.values())

    def __len__(self) -> int:
        return len(self._records)

    # -- the thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        failures = 0
        need_list = True
        while not self._stop.is_set():
            try:
                if need_list:
                    self._list()
                    need_list = False
                self._watch()
                failures = 0
            except Expired:
                need_list = True
            except Exception as exc:  # keep the thread alive; the reader sees the error
                if self._stop.is_set():
                    return
                self.error = kube_error(exc, self.what)
                failures += 1
                need_list = True
                self._stop.wait(min(MAX_BACKOFF, 0.5 * 2 ** min(failures, 6)))

    def _list(self) -> None:
        fresh: dict[str, R] = {}
        token = None
        version = None
        while True:
            kwargs: dict[str, Any] = {"limit": self.page_size, "_preload_content": False,
                                      "_request_timeout": (CONNECT_TIMEOUT, 60)}
            if token:
                kwargs["_continue"] = token
            response = self._list_call(**kwargs)
            body = json.loads(response.data)
            for obj in body.get("items") or []:
                record = self._to_record(obj)
                if record is not None:
                    fresh[object_key(obj)] = record
            meta = body.get("metadata") or {}
            version = version or meta.get("resourceVersion")
            token = meta.get("continue")
            if not token:
                break
        with self._lock:
            self._records = fresh
        self.resource_version = meta.get("resourceVersion") or version
        self.lists += 1
        self.error = None
        self.synced.set()

    def _watch(self) -> None:
        self.watches += 1
        response = self._list_call(
            watch=True,
            resource_version=self.resource_version,
            allow_watch_bookmarks=True,
            timeout_seconds=self.watch_seconds,
            _preload_content=False,
            _request_timeout=(CONNECT_TIMEOUT, self.watch_seconds + 30),
        )
        self._response = response
        try:
            for line in iter_resp_lines(response):
                if self._stop.is_set():
                    return
                event = json.loads(line)
                self._apply(event)
        except ApiException as exc:
            if exc.status == 410:
                raise Expired() from None
            raise
        finally:
            self._response = None
            response.release_conn()
        self.error = None  # the server ended the watch normally; reconnect from where we are

    def _apply(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        obj = event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise Expired()
            raise ApiException(status=obj.get("code") or 500, reason=obj.get("message") or "watch error")
        version = (obj.get("metadata") or {}).get("resourceVersion")
        if kind == "BOOKMARK":
            if version:
                self.resource_version = version
            return
        key = object_key(obj)
        record = self._to_record(obj) if kind in ("ADDED", "MODIFIED") else None
        with self._lock:
            if record is None:
                self._records.pop(key, None)  # deleted, or no longer worth keeping
            else:
                self._records[key] = record
        if version:
            self.resource_version = version
        self.error = None


def wait_synced(caches: list[WatchCache[Any]], timeout: float) -> None:
    """Block until every cache has listed once, or raise the first cache's error."""
    deadline = time.monotonic() + timeout
    for cache in caches:
        while not cache.synced.wait(0.05):
            if time.monotonic() > deadline:
                if cache.error is not None:
                    raise cache.error
                raise SourceError(f"{cache.what}: no answer from the API server yet")
