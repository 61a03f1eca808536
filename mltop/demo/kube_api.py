"""A fake Kubernetes API server over an in-memory store: real paths, real payloads, real errors.

Used by the tests and the demo. It speaks what the official clients and a real apiserver speak:
lists with a global resourceVersion and `limit`/`continue` paging at a consistent snapshot,
label and field selectors, chunked watches (ADDED/MODIFIED/DELETED/BOOKMARK, 410 "too old
resource version" in-stream), PUT with optimistic concurrency, JSON patch and merge patch,
the autoscaling/v1 `scale` subresource, SelfSubjectAccessReview, and `Status` bodies for errors.

Served: core Nodes, Pods and Events (read only), KubeRay RayClusters and Cluster API MachineDeployments
(read, update, patch; scale for MachineDeployments only, as the real CRDs declare), KubeRay RayJobs
(read, update, patch, delete: kube_delete.py), DRA ResourceSlices and ResourceClaims (resource.k8s.io
v1, v1beta2, v1beta1; read only).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import copy
import json
import re
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from aiohttp import web

from mltop.demo.kube_pod_logs import PodLogs, add_log_route
from mltop.demo.kueue_api import add_visibility_routes

VERSION_INFO = {
    "major": "1", "minor": "31", "gitVersion": "v1.31.0",
    "gitCommit": "9edcffcde5595e8a5b1a35f88c421764e575afce", "gitTreeState": "clean",
    "buildDate": "2024-08-13T07:28:49Z", "goVersion": "go1.22.5", "compiler": "gc", "platform": "linux/amd64",
}
DEFAULT_WATCH_TIMEOUT = 300.0
USER = "demo"  # who the 403 messages say we are
EXPIRED_CONTINUE = (
    "The provided continue parameter is too old to display a consistent list result. You can start a new list "
    "without the continue parameter, or use the continue token in this response to retrieve the remainder of the "
    "results. Continuing with the provided token results in an inconsistent list - objects that were created, "
    "modified, or deleted between the time the first chunk was returned and now may show up in the list."
)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Resource:
    """One served resource type, as its discovery document would describe it."""

    group: str  # "" for the core group
    version: str
    kind: str
    plural: str
    namespaced: bool
    fields: frozenset[str]  # supported fieldSelector keys
    writable: bool = False
    scalable: bool = False
    status_subresource: bool = False  # writes to the main resource keep the stored status
    deletable: bool = False  # DELETE on an item (kube_delete.py)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """How error messages name the resource: `pods`, `rayclusters.ray.io`."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


_META_FIELDS = frozenset({"metadata.name", "metadata.namespace"})
RESOURCES = {
    (r.group, r.version, r.plural): r
    for r in (
        Resource("", "v1", "Node", "nodes", False, frozenset({"metadata.name"})),
        Resource("", "v1", "Pod", "pods", True, _META_FIELDS | {"spec.nodeName", "status.phase"}),
        # The field labels a real apiserver indexes for core/v1 Events (pkg/registry/core/event).
        Resource("", "v1", "Event", "events", True, _META_FIELDS | {
            "involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
            "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath",
            "reason", "reportingComponent", "type"}),
        Resource("ray.io", "v1", "RayCluster", "rayclusters", True, _META_FIELDS,
                 writable=True, status_subresource=True),
        Resource("ray.io", "v1", "RayJob", "rayjobs", True, _META_FIELDS,
                 writable=True, status_subresource=True, deletable=True),
        Resource("cluster.x-k8s.io", "v1beta1", "MachineDeployment", "machinedeployments", True, _META_FIELDS,
                 writable=True, scalable=True, status_subresource=True),
        # Kueue: both served versions (a store holds each object in the version it was put in; the
        # real apiserver converts, this one does not: tests pick one version per store).
        *(Resource("kueue.x-k8s.io", version, kind, plural, namespaced, _META_FIELDS if namespaced
                   else frozenset({"metadata.name"}), writable=True, status_subresource=True)
          for version in ("v1beta2", "v1beta1")
          for kind, plural, namespaced in (("Workload", "workloads", True), ("LocalQueue", "localqueues", True),
                                           ("ClusterQueue", "clusterqueues", False),
                                           ("ResourceFlavor", "resourceflavors", False))),
        # DRA (resource.k8s.io): v1 (Kubernetes 1.34+) and the betas older clusters serve; read only.
        *(Resource("resource.k8s.io", version, kind, plural, namespaced,
                   _META_FIELDS if namespaced else frozenset({"metadata.name"}))
          for version in ("v1", "v1beta2", "v1beta1")
          for kind, plural, namespaced in (("ResourceSlice", "resourceslices", False),
                                           ("ResourceClaim", "resourceclaims", True))),
    )
}


@dataclass(frozen=True)
class _Event:
    rv: int
    type: str  # ADDED, MODIFIED, DELETED
    obj: dict[str, Any]  # the object after the change (for DELETED: its last state, with the delete's RV)
    prev: dict[str, Any] | None  # the object before the change; lets watches and paging see both sides


_Key = tuple[str, str, str, str]  # apiVersion, kind, namespace ("" when cluster-scoped), name


def _key_of(obj: dict[str, Any]) -> _Key:
    meta = obj.get("metadata") or {}
    return obj["apiVersion"], obj["kind"], meta.get("namespace") or "", meta["name"]


def _sort_key(obj: dict[str, Any]) -> tuple[str, str]:
    meta = obj["metadata"]
    return meta.get("namespace") or "", meta["name"]


class KubeStore:
    """In-memory object store with a global resourceVersion and an event history for watches.

    Stored dicts are never mutated in place (every write stores a new dict), so the history can
    share them with the live map; everything handed out is a deep copy. A lock makes the store
    safe to drive from a thread other than the server's.
    """

    def __init__(self, clock: Callable[[], datetime] = utcnow, history_limit: int = 10_000) -> None:
        if history_limit < 1:
            raise ValueError("history_limit must be at least 1")
        self.clock = clock
        self.resource_version = 0
        # Decides SelfSubjectAccessReviews from spec.resourceAttributes. The default agrees with
        # denied_verbs, so it allows everything until a test denies something.
        self.access: Callable[[dict[str, Any]], bool] = self._access_from_denied_verbs
        # (verb, resource) pairs answered 403, e.g. ("patch", "rayclusters"), ("update", "machinedeployments/scale").
        self.denied_verbs: set[tuple[str, str]] = set()
        # (group, version) pairs not served (404), e.g. ("kueue.x-k8s.io", "v1beta2") on a Kueue v0.14
        # cluster, or ("visibility.kueue.x-k8s.io", "v1beta1") where that aggregated API is off.
        self.unserved: set[tuple[str, str]] = set()
        # Resources whose CRD is not installed (404), by qualified name, e.g. "rayjobs.ray.io".
        self.uninstalled: set[str] = set()
        self._objects: dict[_Key, dict[str, Any]] = {}
        self._history: deque[_Event] = deque(maxlen=history_limit)
        self._history_start = 0  # a watch or snapshot can start from any RV >= this one
        self._epoch = 0  # bumped by end_watches(); open watches end when it changes
        self._listeners: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._lock = threading.RLock()
        self.pod_logs = PodLogs(clock)  # containers' log lines, served at .../pods/{name}/log

    # -- reads --------------------------------------------------------------------------------

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict | None:
        with self._lock:
            obj = self._objects.get((api_version, kind, namespace or "", name))
            return copy.deepcopy(obj) if obj is not None else None

    def list(self, api_version: str, kind: str, namespace: str | None = None) -> list[dict]:
        with self._lock:
            found = [copy.deepcopy(o) for (v, k, ns, _), o in self._objects.items()
                     if (v, k) == (api_version, kind) and (namespace is None or ns == namespace)]
        return sorted(found, key=_sort_key)

    # -- writes -------------------------------------------------------------------------------

    def put(self, obj: dict) -> dict:
        """Create or replace; the server owns resourceVersion (always new), uid and creationTimestamp."""
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        key = _key_of(obj)
        with self._lock:
            prev = self._objects.get(key)
            old = prev["metadata"] if prev else {}
            # Replacing keeps the object's identity unless the caller says otherwise.
            meta.setdefault("uid", old.get("uid") or str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", old.get("creationTimestamp") or _rfc3339(self.clock()))
            # generation counts spec changes, as the apiserver does; an explicit new value wins.
            if prev is None:
                meta.setdefault("generation", 1)
            elif meta.get("generation", old.get("generation")) == old.get("generation"):
                bump = obj.get("spec") != prev.get("spec")
                meta["generation"] = (old.get("generation") or 1) + (1 if bump else 0)
            self.resource_version += 1
            meta["resourceVersion"] = str(self.resource_version)
            self._objects[key] = obj
            self._record(_Event(self.resource_version, "MODIFIED" if prev else "ADDED", obj, prev))
            return copy.deepcopy(obj)

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> None:
        with self._lock:
            prev = self._objects.pop((api_version, kind, namespace or "", name), None)
            if prev is None:
                return
            # Like etcd, a delete is a revision of its own; the DELETED event carries it.
            self.resource_version += 1
            final = copy.deepcopy(prev)
            final["metadata"]["resourceVersion"] = str(self.resource_version)
            self._record(_Event(self.resource_version, "DELETED", final, prev))

    def compact(self) -> None:
        """Forget all event history: a watch or continue token from an older RV now gets 410 Gone."""
        with self._lock:
            self._history.clear()
            self._history_start = self.resource_version
        self._notify()

    def end_watches(self) -> None:
        """Fault knob: close every open watch stream at once, as an apiserver restart would."""
        with self._lock:
            self._epoch += 1
        self._notify()

    # -- for the app ----------------------------------------------------------------------------

    def _record(self, event: _Event) -> None:
        if len(self._history) == self._history.maxlen:
            self._history_start = self._history[0].rv  # the oldest event is about to fall off
        self._history.append(event)
        self._notify()

    def _events_after(self, rv: int) -> list[_Event] | None:
        """Events newer than `rv`, oldest first; None when some of them were forgotten."""
        with self._lock:
            if rv < self._history_start:
                return None
            newer = []
            for event in reversed(self._history):
                if event.rv <= rv:
                    break
                newer.append(event)
        return newer[::-1]

    def _objects_at(self, rv: int) -> dict[_Key, dict[str, Any]] | None:
        """All objects as they were at `rv` (the current map with newer events undone); None if forgotten."""
        with self._lock:
            if rv < self._history_start:
                return None
            objects = dict(self._objects)
            for event in reversed(self._history):
                if event.rv <= rv:
                    break
                if event.prev is None:
                    objects.pop(_key_of(event.obj), None)
                else:
                    objects[_key_of(event.prev)] = event.prev
        return objects

    @contextlib.contextmanager
    def _subscribe(self) -> Iterator[asyncio.Event]:
        """An Event set on every change (from any thread), so watches sleep instead of polling."""
        listener = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._listeners.add(listener)
        try:
            yield listener[1]
        finally:
            with self._lock:
                self._listeners.discard(listener)

    def _notify(self) -> None:
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        with self._lock:
            listeners = list(self._listeners)
        for loop, event in listeners:
            if loop is running:
                event.set()
            else:
                with contextlib.suppress(RuntimeError):  # that loop has closed
                    loop.call_soon_threadsafe(event.set)

    def _access_from_denied_verbs(self, attrs: dict[str, Any]) -> bool:
        # Allows everything unless denied_verbs says otherwise, so reviews agree with real requests.
        resource = attrs.get("resource", "")
        if attrs.get("subresource"):
            resource += "/" + attrs["subresource"]
        return (attrs.get("verb", ""), resource) not in self.denied_verbs


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- errors ---------------------------------------------------------------------------------------


class KubeError(Exception):
    """Raised by handlers; the middleware answers it as a `Status` with the matching HTTP code."""

    REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
               409: "Conflict", 410: "Expired", 415: "UnsupportedMediaType", 422: "Invalid"}

    def __init__(self, code: int, message: str, *, res: Resource | None = None, name: str | None = None,
                 extra: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        details: dict[str, Any] = {}
        if name:
            details["name"] = name
        if res is not None:
            if res.group:
                details["group"] = res.group
            details["kind"] = res.plural
        details.update(extra or {})
        self.code = code
        self.status = status_object(code, self.REASONS[code], message, details, metadata)


def status_object(code: int, reason: str, message: str, details: dict[str, Any] | None = None,
                  metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": metadata or {},
                              "status": "Failure", "message": message, "reason": reason}
    if details:
        status["details"] = details
    status["code"] = code
    return status


def _not_found(res: Resource, name: str) -> KubeError:
    return KubeError(404, f'{res.qualified} "{name}" not found', res=res, name=name)


def _conflict(res: Resource, name: str) -> KubeError:
    return KubeError(409, f'Operation cannot be fulfilled on {res.qualified} "{name}": the object has been modified; '
                          "please apply your changes to the latest version and try again", res=res, name=name)


def _invalid(detail: str) -> KubeError:
    # What the apiserver says for a JSON patch that does not apply; the detail goes in a cause.
    return KubeError(422, "the server rejected our request due to an error in our request",
                     extra={"causes": [{"reason": "FieldValueInvalid", "message": detail}]})


# -- selectors ------------------------------------------------------------------------------------

Predicate = Callable[[dict[str, Any]], bool]
_LABEL_KEY = r"[A-Za-z0-9][-A-Za-z0-9_./]*"
_LABEL_TERM = re.compile(rf"^(?:(?P<not>!)\s*(?P<absent>{_LABEL_KEY})|(?P<key>{_LABEL_KEY})\s*"
                         rf"(?:(?P<op>==|=|!=)\s*(?P<value>[-A-Za-z0-9_.]*)|\s+(?P<set>in|notin)\s*\((?P<values>[^)]*)\))?)$")


def parse_label_selector(text: str) -> Predicate:
    """`k=v`, `k==v`, `k!=v`, `k`, `!k`, `k in (a,b)`, `k notin (a,b)`, comma-ANDed."""
    tests: list[Callable[[dict[str, str]], bool]] = []
    for term in re.split(r",(?![^(]*\))", text):  # commas inside (...) belong to a set
        term = term.strip()
        if not term:
            continue
        m = _LABEL_TERM.match(term)
        if not m:
            raise KubeError(400, f"unable to parse requirement: {term!r}")
        if m["absent"]:
            tests.append(lambda labels, k=m["absent"]: k not in labels)
        elif m["op"] in ("=", "=="):
            tests.append(lambda labels, k=m["key"], v=m["value"]: labels.get(k) == v)
        elif m["op"] == "!=":
            tests.append(lambda labels, k=m["key"], v=m["value"]: labels.get(k) != v)  # absent matches too
        elif m["set"]:
            values = {v.strip() for v in m["values"].split(",")}
            if m["set"] == "in":
                tests.append(lambda labels, k=m["key"], vs=values: labels.get(k) in vs)
            else:
                tests.append(lambda labels, k=m["key"], vs=values: labels.get(k) not in vs)
        else:
            tests.append(lambda labels, k=m["key"]: k in labels)
    return lambda obj: all(t((obj.get("metadata") or {}).get("labels") or {}) for t in tests)


def parse_field_selector(text: str, res: Resource) -> Predicate:
    """`path=v`, `path==v`, `path!=v`, comma-ANDed, over the fields the resource indexes."""
    tests: list[Predicate] = []
    for term in filter(None, (t.strip() for t in text.split(","))):
        m = re.match(r"^([A-Za-z.]+)\s*(==|=|!=)\s*(.*)$", term)
        if not m:
            raise KubeError(400, f"invalid selector: '{text}'; can't understand '{term}'")
        path, op, value = m.groups()
        if path not in res.fields:
            raise KubeError(400, f"field label not supported: {path}")
        if op == "!=":
            tests.append(lambda obj, p=path, v=value: _field(obj, p) != v)
        else:
            tests.append(lambda obj, p=path, v=value: _field(obj, p) == v)
    return lambda obj: all(t(obj) for t in tests)


def _field(obj: dict[str, Any], path: str) -> str:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return "" if value is None else str(value)  # an unset field selects as the empty string


# -- patches --------------------------------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge key by key, null deletes, anything else (lists too) replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _pointer(path: Any) -> list[str]:
    if not isinstance(path, str) or (path and not path.startswith("/")):
        raise _invalid(f"invalid JSON pointer: {path!r}")
    # ~1 before ~0, so that "~01" means "~1" and not "/".
    return [t.replace("~1", "/").replace("~0", "~") for t in path.split("/")[1:]]


def _index(container: list[Any], token: str, *, append_ok: bool = False) -> int:
    if append_ok and token == "-":
        return len(container)
    limit = len(container) if append_ok else len(container) - 1
    if not re.fullmatch(r"0|[1-9][0-9]*", token) or int(token) > limit:
        raise _invalid(f"array index {token!r} out of range")
    return int(token)


def _parent(doc: Any, tokens: list[str], path: str) -> Any:
    for token in tokens[:-1]:
        if isinstance(doc, dict) and token in doc:
            doc = doc[token]
        elif isinstance(doc, list):
            doc = doc[_index(doc, token)]
        else:
            raise _invalid(f"doc is missing path: {path}")
    return doc


def _get(doc: Any, path: str) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return doc
    parent, last = _parent(doc, tokens, path), tokens[-1]
    if isinstance(parent, list):
        return parent[_index(parent, last)]
    if isinstance(parent, dict) and last in parent:
        return parent[last]
    raise _invalid(f"doc is missing path: {path}")


def json_patch(doc: Any, ops: list[Any]) -> Any:
    """RFC 6902 add/remove/replace/move/copy/test; a failure aborts the whole patch."""
    doc = copy.deepcopy(doc)

    def add(path: str, value: Any) -> None:
        nonlocal doc
        tokens = _pointer(path)
        if not tokens:
            doc = value
            return
        parent, last = _parent(doc, tokens, path), tokens[-1]
        if isinstance(parent, list):
            parent.insert(_index(parent, last, append_ok=True), value)
        elif isinstance(parent, dict):
            parent[last] = value
        else:
            raise _invalid(f"doc is missing path: {path}")

    def remove(path: str) -> Any:
        tokens = _pointer(path)
        if not tokens:
            raise _invalid("cannot remove the whole document")
        parent, last = _parent(doc, tokens, path), tokens[-1]
        if isinstance(parent, list):
            return parent.pop(_index(parent, last))
        if isinstance(parent, dict) and last in parent:
            return parent.pop(last)
        raise _invalid(f"remove operation does not apply: doc is missing path: {path}")

    for op in ops:
        if not isinstance(op, dict) or not isinstance(op.get("path"), str):
            raise _invalid(f"invalid operation {op!r}")
        kind, path = op.get("op"), op["path"]
        if kind in ("add", "replace", "test") and "value" not in op:
            raise _invalid(f"{kind} operation for path {path!r} has no value")
        if kind == "add":
            add(path, copy.deepcopy(op["value"]))
        elif kind == "remove":
            remove(path)
        elif kind == "replace":
            _get(doc, path)  # must exist
            if _pointer(path):
                remove(path)
            add(path, copy.deepcopy(op["value"]))
        elif kind == "move":
            add(path, remove(op.get("from", "")))
        elif kind == "copy":
            add(path, copy.deepcopy(_get(doc, op.get("from", ""))))
        elif kind == "test":
            if _get(doc, path) != op["value"]:
                raise _invalid(f"test operation for path {path!r} failed: the value is not {op['value']!r}")
        else:
            raise _invalid(f"unknown operation {kind!r}")
    return doc


# -- the app --------------------------------------------------------------------------------------


def make_kube_app(store: KubeStore, *, token: str | None = None, bookmark_seconds: float = 1.0) -> web.Application:
    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            if token is not None and request.headers.get("Authorization") != f"Bearer {token}":
                raise KubeError(401, "Unauthorized")
            return await handler(request)
        except KubeError as exc:
            return web.json_response(exc.status, status=exc.code)
        except web.HTTPNotFound:
            return web.json_response(status_object(404, "NotFound", "the server could not find the requested resource",
                                                   {}), status=404)
        except web.HTTPMethodNotAllowed:
            return web.json_response(status_object(405, "MethodNotAllowed",
                                                   "the server does not allow this method on the requested resource",
                                                   {}), status=405)

    async def end_watches(_: web.Application) -> None:
        store.end_watches()  # open watches would otherwise hold the runner's shutdown for its grace period

    app = web.Application(middlewares=[middleware])
    app.on_shutdown.append(end_watches)

    def resolve(request: web.Request, *, namespaced_path: bool) -> tuple[Resource, str | None]:
        info = request.match_info
        res = RESOURCES.get((info.get("group", ""), info.get("version", "v1"), info["plural"]))
        namespace = info.get("namespace")
        # A namespaced path for a cluster-scoped type (or an item path without a namespace) is not a route.
        if res is None or (namespaced_path and not res.namespaced) or ("name" in info and res.namespaced != namespaced_path):
            raise web.HTTPNotFound()
        if (res.group, res.version) in store.unserved or res.qualified in store.uninstalled:
            raise web.HTTPNotFound()
        return res, namespace

    def authorize(verb: str, res: Resource, namespace: str | None, name: str | None = None,
                  subresource: str = "") -> None:
        resource = res.plural + (f"/{subresource}" if subresource else "")
        if (verb, resource) not in store.denied_verbs:
            return
        who = f'{res.qualified} "{name}"' if name else res.qualified
        where = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
        raise KubeError(403, f'{who} is forbidden: User "{USER}" cannot {verb} resource "{resource}" '
                             f'in API group "{res.group}" {where}', res=res, name=name)

    def stored(res: Resource, name: str, namespace: str | None) -> dict[str, Any]:
        obj = store.get(res.api_version, res.kind, name, namespace)
        if obj is None:
            raise _not_found(res, name)
        return obj

    async def version(_: web.Request) -> web.Response:
        return web.json_response(VERSION_INFO)

    async def collection(request: web.Request) -> web.StreamResponse:
        res, namespace = resolve(request, namespaced_path="namespace" in request.match_info)
        query = request.query
        watching = query.get("watch", "").lower() in ("1", "true")
        authorize("watch" if watching else "list", res, namespace)
        matches = _matcher(res, namespace, query)
        if watching:
            return await _watch(request, store, res, matches, bookmark_seconds)
        return web.json_response(_list(store, res, matches, query))

    async def item(request: web.Request) -> web.Response:
        res, namespace = resolve(request, namespaced_path="namespace" in request.match_info)
        name = request.match_info["name"]
        verb = {"GET": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}[request.method]
        if (verb != "get" and not res.writable) or (verb == "delete" and not res.deletable):
            raise web.HTTPMethodNotAllowed(request.method, ["GET"])
        authorize(verb, res, namespace, name)
        current = stored(res, name, namespace)
        if verb == "get":
            return web.json_response(current)
        if verb == "delete":
            from mltop.demo.kube_delete import delete_object, delete_options  # it imports this module

            options = delete_options(await request.read(), request.query)
            return web.json_response(delete_object(store, res, name, namespace, current, options))
        if verb == "update":
            new = await _json_body(request)
        else:
            new = _patched(current, request.content_type, await _json_body(request))
        return web.json_response(_commit(store, res, name, namespace, current, new))

    async def scale(request: web.Request) -> web.Response:
        res, namespace = resolve(request, namespaced_path=True)
        name = request.match_info["name"]
        if not res.scalable:
            raise web.HTTPNotFound()
        verb = {"GET": "get", "PUT": "update", "PATCH": "patch"}[request.method]
        authorize(verb, res, namespace, name, "scale")
        current = stored(res, name, namespace)
        before = _scale_of(current)
        if verb == "get":
            return web.json_response(before)
        if verb == "update":
            wanted = await _json_body(request)
        else:
            wanted = _patched(before, request.content_type, await _json_body(request))
        rv = (wanted.get("metadata") or {}).get("resourceVersion") if isinstance(wanted, dict) else None
        if rv not in (None, "") and str(rv) != current["metadata"]["resourceVersion"]:
            raise _conflict(res, name)
        replicas = (wanted.get("spec") or {}).get("replicas") if isinstance(wanted, dict) else None
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise KubeError(422, f'Scale.autoscaling "{name}" is invalid: spec.replicas: Invalid value: '
                                 f"{json.dumps(replicas)}: must be greater than or equal to 0", res=res, name=name)
        current.setdefault("spec", {})["replicas"] = replicas
        return web.json_response(_scale_of(store.put(current)))

    async def access_review(request: web.Request) -> web.Response:
        review = await _json_body(request)
        spec = review.get("spec") if isinstance(review, dict) else None
        if not isinstance(spec, dict):
            raise KubeError(400, "SelfSubjectAccessReview must have a spec")
        attrs = spec.get("resourceAttributes")
        allowed = bool(store.access(dict(attrs))) if isinstance(attrs, dict) else True
        reason = (f'RBAC: allowed by ClusterRoleBinding "{USER}" of ClusterRole "{USER}" to User "{USER}"'
                  if allowed else "")
        answer = {**review, "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                  "metadata": {"creationTimestamp": None}, "status": {"allowed": allowed, "reason": reason}}
        if not allowed:
            answer["status"]["denied"] = False  # RBAC never says "denied"; it just has no opinion
        return web.json_response(answer, status=201)

    app.router.add_get("/version", version)
    app.router.add_get("/version/", version)  # what the official client's VersionApi asks for
    app.router.add_post("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", access_review)
    add_log_route(app, store)  # GET /api/v1/namespaces/{namespace}/pods/{name}/log (kube_pod_logs.py)
    add_visibility_routes(app, store)  # Kueue's pending workloads (kueue_api.py)
    for prefix in ("/api/v1", "/apis/{group}/{version}"):
        app.router.add_get(prefix + "/{plural}", collection)
        app.router.add_get(prefix + "/namespaces/{namespace}/{plural}", collection)
        app.router.add_get(prefix + "/{plural}/{name}", item)
        for method in ("GET", "PUT", "PATCH"):
            app.router.add_route(method, prefix + "/namespaces/{namespace}/{plural}/{name}", item)
            app.router.add_route(method, prefix + "/namespaces/{namespace}/{plural}/{name}/scale", scale)
        app.router.add_route("DELETE", prefix + "/namespaces/{namespace}/{plural}/{name}", item)
    return app


async def _json_body(request: web.Request) -> Any:
    try:
        return json.loads(await request.read() or b"null")
    except json.JSONDecodeError as exc:
        raise KubeError(400, f"couldn't get version/kind; json parse error: {exc}") from None


def _matcher(res: Resource, namespace: str | None, query: Any) -> Predicate:
    labels = parse_label_selector(query.get("labelSelector", ""))
    fields = parse_field_selector(query.get("fieldSelector", ""), res)

    def matches(obj: dict[str, Any]) -> bool:
        if (obj.get("apiVersion"), obj.get("kind")) != (res.api_version, res.kind):
            return False
        if namespace is not None and (obj.get("metadata") or {}).get("namespace") != namespace:
            return False
        return labels(obj) and fields(obj)

    return matches


def _list(store: KubeStore, res: Resource, matches: Predicate, query: Any) -> dict[str, Any]:
    limit_text = query.get("limit", "0") or "0"
    if not limit_text.isdigit():
        raise KubeError(400, f"invalid limit: {limit_text}")
    limit = int(limit_text)
    after: tuple[str, str] | None = None
    rv = store.resource_version
    if query.get("continue"):
        rv, after = _decode_continue(query["continue"])
    # Every page of one list is served at the first page's RV, as etcd serves it.
    objects = store._objects_at(rv)
    if objects is None:
        fresh = _encode_continue(store.resource_version, after) if after else ""
        raise KubeError(410, EXPIRED_CONTINUE, metadata={"continue": fresh} if fresh else None)
    items = sorted((o for o in objects.values() if matches(o)), key=_sort_key)
    if after is not None:
        items = [o for o in items if _sort_key(o) > after]
    metadata: dict[str, Any] = {"resourceVersion": str(rv)}
    if limit and len(items) > limit:
        items = items[:limit]
        metadata["continue"] = _encode_continue(rv, _sort_key(items[-1]))
    return {"apiVersion": res.api_version, "kind": f"{res.kind}List", "metadata": metadata, "items": items}


def _encode_continue(rv: int, after: tuple[str, str]) -> str:
    token = {"v": "meta.k8s.io/v1", "rv": rv, "start": list(after)}
    return base64.urlsafe_b64encode(json.dumps(token).encode()).decode()


def _decode_continue(text: str) -> tuple[int, tuple[str, str]]:
    try:
        token = json.loads(base64.urlsafe_b64decode(text.encode()))
        rv, (namespace, name) = token["rv"], token["start"]
        if token.get("v") != "meta.k8s.io/v1" or not isinstance(rv, int) or not all(
                isinstance(s, str) for s in (namespace, name)):
            raise ValueError(text)
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise KubeError(400, f"continue key is not valid: {text!r}") from None
    return rv, (namespace, name)


def _patched(current: dict[str, Any], content_type: str, patch: Any) -> Any:
    if content_type == "application/json-patch+json":
        if not isinstance(patch, list):
            raise KubeError(400, "json: cannot unmarshal object into Go value of type jsonpatch.Patch")
        return json_patch(current, patch)
    if content_type == "application/merge-patch+json":
        if not isinstance(patch, dict):
            # A list here is the classic client slip: a JSON patch sent with the merge-patch type.
            raise KubeError(400, "json: cannot unmarshal array into Go value of type map[string]interface {}; "
                                 "a merge patch must be a JSON object (send JSON patches as application/json-patch+json)")
        return merge_patch(current, patch)
    if content_type == "application/apply-patch+yaml":
        raise KubeError(415, "server-side apply is not supported by this fake server; use a JSON or merge patch")
    # Custom resources have no Go struct to drive a strategic merge, so the apiserver refuses it.
    raise KubeError(415, "the body of the request was in an unknown format - accepted media types include: "
                         "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml")


def _commit(store: KubeStore, res: Resource, name: str, namespace: str | None, current: dict[str, Any],
            new: Any) -> dict[str, Any]:
    """Store the result of a PUT or PATCH, with the checks the apiserver makes first."""
    if not isinstance(new, dict):
        raise KubeError(400, "the object must be a JSON object")
    meta = new.setdefault("metadata", {})
    if not isinstance(meta, dict):
        raise KubeError(400, "metadata must be an object")
    if meta.setdefault("name", name) != name:
        raise KubeError(400, f"the name of the object ({meta['name']}) does not match the name on the URL ({name})")
    if meta.setdefault("namespace", namespace) != namespace:
        raise KubeError(400, "the namespace of the provided object does not match the namespace sent on the request")
    for field, want in (("apiVersion", res.api_version), ("kind", res.kind)):
        if new.setdefault(field, want) != want:
            raise KubeError(400, f"{field} {new[field]!r} does not match the URL's {want!r}")
    rv = meta.get("resourceVersion")
    if rv not in (None, "") and str(rv) != current["metadata"]["resourceVersion"]:
        raise _conflict(res, name)
    for owned in ("uid", "creationTimestamp", "generation"):  # the server's, whatever the body says
        if owned in current["metadata"]:
            meta[owned] = current["metadata"][owned]
    if res.status_subresource:  # status changes go through /status, which the controllers own
        new.pop("status", None)
        if "status" in current:
            new["status"] = current["status"]
    return store.put(new)


def _scale_of(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj["metadata"]
    status = obj.get("status") or {}
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                     if k in meta},
        "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 0)},
        "status": {"replicas": status.get("replicas", 0), "selector": status.get("selector", "")},
    }


async def _watch(request: web.Request, store: KubeStore, res: Resource, matches: Predicate,
                 bookmark_seconds: float) -> web.StreamResponse:
    query = request.query
    start = query.get("resourceVersion", "")
    if start not in ("", "0") and not start.isdigit():
        raise KubeError(400, f"invalid resource version: {start}")
    try:
        timeout = float(query.get("timeoutSeconds") or DEFAULT_WATCH_TIMEOUT)
    except ValueError:
        raise KubeError(400, "invalid timeoutSeconds") from None
    bookmarks = query.get("allowWatchBookmarks", "").lower() in ("1", "true")

    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    await response.prepare(request)

    async def send(kind: str, obj: dict[str, Any]) -> None:
        await response.write(json.dumps({"type": kind, "object": obj}).encode() + b"\n")

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    next_bookmark = loop.time() + bookmark_seconds
    epoch = store._epoch
    try:
        with store._subscribe() as changed:
            if start in ("", "0"):
                # "Any" / "most recent": the current state as ADDED events, then what follows.
                with store._lock:
                    cursor = store.resource_version
                    current = [o for o in store._objects.values() if matches(o)]
                for obj in sorted(current, key=_sort_key):
                    await send("ADDED", obj)
            else:
                cursor = int(start)
            while store._epoch == epoch:
                changed.clear()  # before reading, so a change made while we send wakes us again
                events = store._events_after(cursor)
                if events is None:
                    # Real apiservers answer 200 and then this, mid-stream, and end the watch.
                    message = f"too old resource version: {cursor} ({store._history_start})"
                    await send("ERROR", status_object(410, "Expired", message))
                    break
                for event in events:
                    kind = _as_seen(event, matches)
                    if kind:
                        await send(kind, event.obj)
                    cursor = event.rv
                now = loop.time()
                if now >= deadline:
                    break
                if bookmarks and now >= next_bookmark:
                    # Every RV has an event, so having read them all, the watcher is current as of `cursor`.
                    await send("BOOKMARK", {"kind": res.kind, "apiVersion": res.api_version,
                                            "metadata": {"resourceVersion": str(cursor)}})
                    next_bookmark = now + bookmark_seconds
                if request.transport is None or request.transport.is_closing():
                    break  # the client left; aiohttp would not cancel us
                wake = min(deadline, next_bookmark) if bookmarks else deadline
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(changed.wait(), timeout=min(max(wake - now, 0.0), 1.0))
        await response.write_eof()
    except ConnectionResetError:
        pass  # the client hung up mid-stream
    return response


def _as_seen(event: _Event, matches: Predicate) -> str | None:
    """The event as a filtered watcher sees it: objects entering or leaving the filter are ADDED or DELETED."""
    now = matches(event.obj)
    before = event.prev is not None and matches(event.prev)
    if event.type == "ADDED":
        return "ADDED" if now else None
    if event.type == "DELETED":
        return "DELETED" if before else None
    if now and before:
        return "MODIFIED"
    if now:
        return "ADDED"
    return "DELETED" if before else None
