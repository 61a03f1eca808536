"""A watch-based cache of one Kubernetes resource, kept by a background thread.

List (in pages), then watch from the list's resourceVersion with bookmarks; on 410 Gone
(compacted history) re-list; when the server ends a watch, reconnect from the last version seen
(a bookmark's included). Only a compact record of each object is kept (`to_record`; None drops
the object), so 50,000 pods cost 50,000 small tuples at most, and usually far fewer.

Blocking (the official client is synchronous): it runs in its own daemon thread, never on the
UI thread. Readers take `snapshot()`, a copy made under a lock.

One object that cannot be read never stops the cache: `to_record` may raise (the parsers raise
`kube_parse.Unreadable`), and that object is left out and counted per key (`skips()`), so a later
good MODIFIED or a DELETED clears it. A watch line that is not a JSON object is skipped and
counted too, until the next list (which object it was about cannot be known).

With `watch=False` (`mltop --once`) it lists, in the same pages, and stops: no watch is opened
and a failed list is not retried (`finished` is set either way, so a reader stops waiting at once).
Importing this module does not import the `kubernetes` client: `read_bounded` serves the Ray and
KFP raw views too, and a Ray-only `--once` must not pay a third of a second for the client.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from mltop.errors import BadResponse, SourceError, first_line
from mltop.adapters import fast_json
from mltop.adapters.kube_errors import kube_error
from mltop.adapters.kube_parse import Unreadable, brief
from mltop.adapters.record_groups import RecordGroups
from mltop.adapters.values import Skips, integer, mapping

log = logging.getLogger(__name__)
R = TypeVar("R")

PAGE_SIZE = 500
MiB = 1024 * 1024
# Largest answers read (README, "bad data"): 500 pods with big specs are a few MiB; a single
# object over 16 MiB is beyond what etcd stores (1.5 MiB by default) many times over.
PAGE_LIMIT = 64 * MiB
EVENT_LIMIT = 16 * MiB
WATCH_SECONDS = 300
CONNECT_TIMEOUT = 5.0
MAX_BACKOFF = 30.0


BAD_EVENT = "\0watch-event"  # the skip key of unreadable watch lines (no object name can clash with it)


class Expired(Exception):
    """The watch's resourceVersion is gone from the server's history: re-list."""


def _version(obj: Any) -> str | None:
    version = mapping(mapping(obj).get("metadata")).get("resourceVersion")
    return version if isinstance(version, str) and version else None


def object_key(obj: Any) -> str:
    """"namespace/name"; total, so that even an object without a name can be counted as skipped."""
    meta = mapping(mapping(obj).get("metadata"))
    namespace, name = meta.get("namespace"), meta.get("name")
    return f"{namespace if isinstance(namespace, str) else ''}/{name if isinstance(name, str) else ''}"


class WatchCache(Generic[R]):
    def __init__(
        self,
        what: str,
        list_call: Callable[..., Any],
        to_record: Callable[[dict[str, Any]], R | None],
        *,
        page_size: int = PAGE_SIZE,
        watch_seconds: int = WATCH_SECONDS,
        watch: bool = True,
        group_of: Callable[[R], str] | None = None,
    ) -> None:
        self.what = what
        self._list_call = list_call
        self._to_record = to_record
        self.page_size = page_size
        self.watch_seconds = watch_seconds
        self.watch = watch
        self._records: dict[str, R] = {}
        self._unreadable: dict[str, str] = {}  # key -> why, for objects left out right now
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._response: Any = None
        self.synced = threading.Event()
        self.finished = threading.Event()  # the one list of a cache without a watch is over, done or failed
        self.resource_version: str | None = None
        self.error: SourceError | None = None  # the last failure; None while healthy
        self.lists = 0  # how many times the resource was (re-)listed
        self.version = 0  # goes up whenever the records may have changed: readers skip work when it did not
        self.watches = 0  # how many watch requests were made
        self._groups = RecordGroups(group_of) if group_of is not None else None  # pods by node (record_groups.py)

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

    def group_versions(self) -> dict[str, int]:
        """Each group's change count (see `group_of`); a group with no records is absent."""
        with self._lock:
            return dict(self._groups.versions) if self._groups is not None else {}

    def groups_changed_since(self, version: int) -> dict[str, int] | None:
        """The groups changed after the cache's count was `version`, each with its change count now
        (-1: it has no records any more); None when that is too long ago to say (a fresh list, or
        too many changes since): the reader then looks at every group."""
        with self._lock:
            return self._groups.changed_since(version) if self._groups is not None else None

    def group(self, name: str) -> list[R]:
        """The records of one group, as the cache holds them now."""
        return self.group_and_version(name)[0]

    def group_and_version(self, name: str) -> tuple[list[R], int]:
        """`group` and its change count (-1: no records), read together: a count remembered with
        records read a moment later could name records that were not yet, or no longer, there."""
        with self._lock:
            if self._groups is None:
                return [], -1
            return list(self._groups.members.get(name, {}).values()), self._groups.versions.get(name, -1)

    def __len__(self) -> int:
        return len(self._records)

    def skips(self) -> Skips:
        """How many objects are left out right now because they could not be read, and the first reason."""
        with self._lock:
            return Skips(len(self._unreadable), next(iter(self._unreadable.values()), None))

    def _read(self, obj: Any) -> tuple[R | None, str | None]:
        """(record, None), or (None, why) when the object cannot be read."""
        try:
            return self._to_record(obj), None
        except Exception as exc:  # the parser's skip signal, or a parser bug: one object, not the cache
            if not isinstance(exc, Unreadable):
                log.warning("%s: cannot read %s", self.what, object_key(obj), exc_info=True)
            return None, first_line(f"{self.what}: {str(exc) or type(exc).__name__}", 120)

    # -- the thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        if not self.watch:
            self._list_once()
            return
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

    def _list_once(self) -> None:
        try:
            self._list()
        except Exception as exc:  # the reader sees it: one snapshot has no later list to wait for
            self.error = kube_error(exc, self.what)
        finally:
            self.finished.set()

    def _list(self) -> None:
        fresh: dict[str, R] = {}
        unreadable: dict[str, str] = {}
        token = None
        version = None
        while True:
            kwargs: dict[str, Any] = {"limit": self.page_size, "_preload_content": False,
                                      "_request_timeout": (CONNECT_TIMEOUT, 60)}
            if token:
                kwargs["_continue"] = token
            response = self._list_call(**kwargs)
            body = fast_json.loads(read_bounded(response, PAGE_LIMIT, self.what))
            items = body.get("items") if isinstance(body, dict) else None
            if not isinstance(items, list):  # not a list answer at all: the whole list failed
                raise BadResponse(f"{self.what}: the list answer has no items array")
            for obj in items:
                key = object_key(obj)
                record, why = self._read(obj)
                if why is not None:
                    unreadable[key] = why
                elif record is not None:
                    fresh[key] = record
            meta = mapping(body.get("metadata"))
            version = version or _version(body)
            token = meta.get("continue") if isinstance(meta.get("continue"), str) else None
            if not token:
                break
        with self._lock:
            self._records = fresh
            self._unreadable = unreadable
            self.version += 1
            if self._groups is not None:  # a fresh list: every group counts as changed
                self._groups.reset(fresh, self.version)
        self.resource_version = _version(body) or version
        self.lists += 1
        self.error = None
        self.synced.set()

    def _watch(self) -> None:
        from kubernetes.client.exceptions import ApiException  # loaded already: this cache lists through it

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
            for line in bounded_lines(response, EVENT_LIMIT, self.what):
                if self._stop.is_set():
                    return
                self._apply_line(line)
        except ApiException as exc:
            if exc.status == 410:
                raise Expired() from None
            raise
        finally:
            self._response = None
            response.release_conn()
        self.error = None  # the server ended the watch normally; reconnect from where we are

    def _apply_line(self, line: str | bytes) -> None:
        try:
            event = fast_json.loads(line)
        except (ValueError, RecursionError):  # not JSON, bad UTF-8, a 5,000-digit integer, nesting too deep
            event = None
        if not isinstance(event, dict):
            self._bad_event(f"a watch event that is not a JSON object: {first_line(str(line), 40)!r}")
            return
        self._apply(event)

    def _bad_event(self, why: str) -> None:
        with self._lock:
            self._unreadable[BAD_EVENT] = first_line(f"{self.what}: {why}", 120)

    def _apply(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        obj = event.get("object")
        if kind == "ERROR":
            status = mapping(obj)
            code = integer(status.get("code"), minimum=100, maximum=599)
            if code == 410:
                raise Expired()
            message = status.get("message")
            if not isinstance(message, str) or not message:
                message = "watch error"
            from kubernetes.client.exceptions import ApiException

            raise ApiException(status=code or 500, reason=message)
        if kind not in ("ADDED", "MODIFIED", "DELETED", "BOOKMARK") or not isinstance(obj, dict):
            # Not a change we can place: applying it as a delete (as any unknown type once was) would lose an object.
            self._bad_event(f"a watch event that cannot be applied (type {brief(kind)})")
            return
        version = _version(obj)
        if kind == "BOOKMARK":
            if version:
                self.resource_version = version
            return
        key = object_key(obj)
        record, why = self._read(obj) if kind != "DELETED" else (None, None)
        with self._lock:
            if why is not None:
                self._unreadable[key] = why
            else:
                self._unreadable.pop(key, None)  # deleted, or readable again
            self.version += 1
            if record is None:
                old = self._records.pop(key, None)  # deleted, unreadable, or no longer worth keeping
            else:
                old, self._records[key] = self._records.get(key), record
            if self._groups is not None:
                self._groups.move(key, old, record, self.version)
        if version:
            self.resource_version = version
        self.error = None


def size_text(limit: int) -> str:
    return f"{limit // MiB} MiB" if limit >= MiB else f"{limit // 1024} KiB"


def read_bounded(response: Any, limit: int, what: str) -> bytes:
    """The body of a urllib3 response, refused past `limit` bytes instead of held in memory."""
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.stream(256 * 1024, decode_content=True):
            size += len(chunk)
            if size > limit:
                raise BadResponse(f"{what}: answer over mltop's {size_text(limit)} limit; not read")
            chunks.append(chunk)
    finally:
        response.release_conn()
    return b"".join(chunks)


def bounded_lines(response: Any, limit: int, what: str) -> Iterator[bytes]:
    """The lines of a watch stream; a line (one event) over `limit` bytes ends the watch with an
    error instead of growing a buffer without end."""
    buffer = bytearray()
    for chunk in response.stream(amt=None, decode_content=False):
        buffer.extend(chunk if isinstance(chunk, bytes) else str(chunk).encode("utf-8"))
        start = 0
        while (end := buffer.find(b"\n", start)) != -1:
            if end - start > limit:
                break
            if end > start:
                yield bytes(buffer[start:end])
            start = end + 1
        del buffer[:start]
        if len(buffer) > limit:
            raise BadResponse(f"{what}: a watch event over mltop's {size_text(limit)} limit")
    if buffer.strip():
        yield bytes(buffer)


def wait_synced(caches: list[WatchCache[Any]], timeout: float) -> None:
    """Block until every cache has listed once, or raise the first cache's error."""
    deadline = time.monotonic() + timeout
    for cache in caches:
        while not cache.synced.wait(0.05):
            if cache.finished.is_set() and cache.error is not None:  # listed once, without a watch, and failed
                raise cache.error
            if time.monotonic() > deadline:
                if cache.error is not None:
                    raise cache.error
                raise SourceError(f"{cache.what}: no answer from the API server yet")
