"""Kueue on a Kubernetes source: Workloads, LocalQueues and ClusterQueues read through watch caches,
positions from the visibility API (estimated when it is not served), and stop / resume.

A cluster without Kueue costs one probe every few minutes and shows exactly what it showed before:
a 404 for both versions is "not installed", never an error. Kueue being unreadable (a failing
watch, a slow first list) leaves the rest of the cluster as it is; only the Kueue facts go missing.

How Workloads meet the queue's rows: a Workload's owner (ownerReferences: a Pod under Kueue's pod
integration, a batch Job, a RayJob...) that is already a row gets the queue facts on that row
(every pending pod of that owner, or the row of that kind and name). A Workload with no such row that
is not admitted (Kueue holds batch Jobs and RayJobs suspended: no pods at all) is a row of its own,
key "kubernetes/<cluster>/kueue/<namespace>/<workload>", kind "kueue".
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from kubernetes.client.exceptions import ApiException

from mltop.adapters.kube_cache import WatchCache, read_bounded
from mltop.adapters.kube_errors import kube_error
from mltop.adapters.kube_parse import is_accelerator
from mltop.adapters.kueue_parse import (
    GROUP,
    VERSIONS,
    VISIBILITY_GROUP,
    VISIBILITY_VERSIONS,
    ClusterQueueFacts,
    LocalQueueFacts,
    WorkloadFacts,
    cluster_queue_facts,
    estimated_positions,
    local_queue_facts,
    positions_from_visibility,
    workload_facts,
)
from mltop.adapters.values import Skips
from mltop.errors import Conflict, SourceError, Unauthorized
from mltop.model import ActionOutcome, Job, JobState, QueueUse

REPROBE_SECONDS = 300.0  # how often a cluster without Kueue (or its visibility API) is asked again
PROBE_TIMEOUT = (5, 10)
VISIBILITY_TIMEOUT = (5, 10)
VISIBILITY_BUDGET = 10.0  # seconds of one poll spent on positions; the rest are estimated
VISIBILITY_LIMIT = 4 * 1024 * 1024
QUOTA_REASONS = ("waiting for quota", "borrowing limit", "exceeds max quota", "waiting for preemption")


class KueueReader:
    """The Kueue part of one KubeSource: what `collect` adds to its jobs, and the queues."""

    def __init__(self, api: Any, custom: Any, cluster: str, allowed: Callable[..., bool],
                 clock: Callable[[], float] = time.monotonic, *, watch: bool = True) -> None:
        self._api, self._custom, self.cluster, self._allowed, self._clock = api, custom, cluster, allowed, clock
        self.watch = watch  # False: each cache lists once and opens no watch (one snapshot)
        self.version: str | None = None  # the served kueue.x-k8s.io version; None: not installed
        self._probed_at: float | None = None
        self._visibility: str | None = None
        self._visibility_probed_at: float | None = None
        self.caches: list[WatchCache[Any]] = []
        self._keys: KeyMemo = {}  # each row's owner keys, for the next poll (see attach)
        self._attached: tuple[tuple[Any, ...], tuple[Job, ...]] | None = None  # last attach's inputs, rows

    def stop(self) -> None:
        for cache in self.caches:
            cache.stop()
        self.caches = []
        self._keys.clear()
        self._attached = None

    # -- discovery ------------------------------------------------------------------------------

    def _served(self) -> str | None:
        now = self._clock()
        if self.version is not None or (self._probed_at is not None and now - self._probed_at < REPROBE_SECONDS):
            return self.version
        self._probed_at = now
        for version in VERSIONS:
            try:
                read_bounded(self._custom.list_cluster_custom_object(
                    GROUP, version, "clusterqueues", limit=1, _preload_content=False, _request_timeout=PROBE_TIMEOUT),
                    VISIBILITY_LIMIT, f"{self.cluster}: {GROUP}/{version}")  # read, so the connection is reused
            except ApiException as exc:
                if exc.status in (403, 404):  # not installed, or not ours to read: as before Kueue
                    continue
                self._probed_at = None  # a failing server: ask again next poll, not in five minutes
                raise kube_error(exc, f"{self.cluster}: {GROUP}/{version}") from None
            except Exception as exc:
                self._probed_at = None
                raise kube_error(exc, f"{self.cluster}: {GROUP}/{version}") from None
            self.version = version
            self._start(version)
            return version
        return None

    def _start(self, version: str) -> None:
        def cache(plural: str, parse: Callable[[Any], Any]) -> WatchCache[Any]:
            call = functools.partial(self._custom.list_cluster_custom_object, GROUP, version, plural)
            return WatchCache(f"{self.cluster}: {plural}.{GROUP}", call, parse, watch=self.watch)

        self.caches = [cache("workloads", workload_facts), cache("localqueues", local_queue_facts),
                       cache("clusterqueues", cluster_queue_facts)]
        for c in self.caches:
            c.start()

    # -- reading --------------------------------------------------------------------------------

    def collect(self, jobs: tuple[Job, ...], sync_timeout: float) -> tuple[tuple[Job, ...], tuple[QueueUse, ...], Skips]:
        """The jobs with their queue facts (and Workloads of their own), the ClusterQueues, what was skipped."""
        try:
            if self._served() is None:
                return jobs, (), Skips()
            _wait_synced(self.caches, sync_timeout)
        except SourceError as exc:
            return jobs, (), Skips(1, f"Kueue not read: {exc}")
        failing = next((c.error for c in self.caches if c.error is not None), None)
        if failing is not None:
            if "not found" in str(failing):  # Kueue was uninstalled: back to probing
                self.stop()
                self.version = None
            return jobs, (), Skips(1, f"Kueue not read: {failing}")
        workloads: list[WorkloadFacts] = self.caches[0].snapshot()
        local: list[LocalQueueFacts] = self.caches[1].snapshot()
        cqs: dict[str, ClusterQueueFacts] = {cq.name: cq for cq in self.caches[2].snapshot()}
        lq_cq = {(q.namespace, q.name): q.cluster_queue for q in local}
        cq_of = {(w.namespace, w.name): w.admitted_to or lq_cq.get((w.namespace, w.queue or "")) for w in workloads}
        cq_of = {k: v for k, v in cq_of.items() if v}
        positions, estimated = self._positions(workloads, cq_of, cqs)
        # The same rows and queue facts as the last poll (a quiet cluster; tuples and lists compare
        # their items with `is` first): the same answer, without indexing 7,000 rows again (5-8 ms).
        inputs = (jobs, workloads, cq_of, cqs, positions, estimated)
        if self._attached is not None and self._attached[0] == inputs:
            jobs = self._attached[1]
        else:
            attached = attach(jobs, workloads, cq_of, cqs, positions, estimated, self.cluster, self._keys)
            self._attached, jobs = (inputs, attached), attached
        skips = [c.skips() for c in self.caches]
        return jobs, queue_uses(cqs.values(), self.cluster), Skips(sum(s.count for s in skips),
                                                                   next((s.reason for s in skips if s.reason), None))

    def _positions(self, workloads: list[WorkloadFacts], cq_of: dict[tuple[str, str], str],
                   cqs: dict[str, ClusterQueueFacts]) -> tuple[dict[tuple[str, str], int], bool]:
        """Positions from the visibility API when it answers for every queue, else estimated."""
        waiting = sorted({cq_of[(w.namespace, w.name)] for w in workloads
                          if (w.namespace, w.name) in cq_of and w.state in ("pending", "evicted")})
        if not waiting:
            return {}, False
        found: dict[tuple[str, str], int] = {}
        started = time.monotonic()
        for cq in waiting:
            if time.monotonic() - started > VISIBILITY_BUDGET:
                return estimated_positions(workloads, cq_of), True
            body = self._pending_workloads(cq)
            if body is None:
                return estimated_positions(workloads, cq_of), True
            found.update(positions_from_visibility(body))
        return found, False

    def _pending_workloads(self, cq: str) -> Any:
        """A ClusterQueue's PendingWorkloadsSummary; None when the visibility API does not answer."""
        now = self._clock()
        if self._visibility is None and self._visibility_probed_at is not None \
                and now - self._visibility_probed_at < REPROBE_SECONDS:
            return None
        versions = [self._visibility] if self._visibility else list(VISIBILITY_VERSIONS)
        self._visibility_probed_at = now
        for version in versions:
            try:
                response = self._api.call_api(
                    f"/apis/{VISIBILITY_GROUP}/{version}/clusterqueues/{{name}}/pendingworkloads", "GET",
                    path_params={"name": cq}, query_params=[("limit", 1000)], header_params={"Accept": "application/json"},
                    auth_settings=["BearerToken"], _preload_content=False, _return_http_data_only=True,
                    _request_timeout=VISIBILITY_TIMEOUT)
                body = json.loads(read_bounded(response, VISIBILITY_LIMIT, f"{self.cluster}: pending workloads of {cq}"))
            except Exception:  # not served (404), not aggregated (503), not allowed (403), junk: estimate
                continue
            if isinstance(body, dict) and body.get("kind") == "PendingWorkloadsSummary":
                self._visibility = version
                return body
        self._visibility = None
        return None

    # -- stop / resume --------------------------------------------------------------------------

    def set_active(self, workload: str, active: bool) -> ActionOutcome:
        """Stop (spec.active=false) or resume a Workload: a merge patch guarded by the
        resourceVersion just read, after asking the API server whether we may."""
        namespace, _, name = workload.partition("/")
        what = f"{self.cluster}: Workload {workload}"
        verb = "resume" if active else "stop"
        version = self.version or VERSIONS[0]
        if not self._allowed("patch", GROUP, "workloads", "", namespace):
            raise Unauthorized(f"{what}: your credentials may not patch workloads.{GROUP} in namespace {namespace} "
                               "(RBAC); nothing was changed")
        try:
            current = self._custom.get_namespaced_custom_object(GROUP, version, namespace, "workloads", name,
                                                                _request_timeout=(5, 30))
            meta = current.get("metadata") or {} if isinstance(current, dict) else {}
            if meta.get("name") != name:
                raise Conflict(f"{what}: the API server answered for another object; not changed")
            if ((current.get("spec") or {}).get("active") is not False) == active:
                raise Conflict(f"{what} is already {'active' if active else 'stopped'}; nothing to {verb}")
            body = {"metadata": {"resourceVersion": meta.get("resourceVersion")}, "spec": {"active": active}}
            self._api.call_api(  # path parameters are encoded by the client, one segment each
                f"/apis/{GROUP}/{version}/namespaces/{{namespace}}/workloads/{{name}}", "PATCH",
                path_params={"namespace": namespace, "name": name}, body=body,
                header_params={"Content-Type": "application/merge-patch+json", "Accept": "application/json"},
                auth_settings=["BearerToken"], _preload_content=False, _return_http_data_only=True,
                _request_timeout=(5, 30))
        except SourceError:
            raise
        except ApiException as exc:
            if exc.status == 409:
                raise Conflict(f"{what} changed while mltop read it; not {'resumed' if active else 'stopped'}. "
                               "Refreshed: look again") from None
            raise kube_error(exc, what) from None
        except Exception as exc:
            raise kube_error(exc, what) from None
        said = "resumed: Kueue may admit it again" if active else "stopped: Kueue releases its quota and suspends its job"
        return ActionOutcome(True, f"{what} {said} (spec.active={str(active).lower()} accepted by the API server)")


def _wait_synced(caches: list[WatchCache[Any]], timeout: float) -> None:
    """Until every cache has listed once; a failing cache ends the wait at once (a 403 on Workloads
    must not hold each poll of the whole cluster for the sync timeout)."""
    deadline = time.monotonic() + timeout
    while not all(c.synced.is_set() for c in caches):
        failing = next((c.error for c in caches if c.error is not None and not c.synced.is_set()), None)
        if failing is not None:
            raise failing
        if time.monotonic() > deadline:
            raise SourceError(f"{caches[0].what}: no answer from the API server yet")
        time.sleep(0.05)


def _facts(job: Job, wl: WorkloadFacts, cq: str | None, cqs: dict[str, ClusterQueueFacts],
           position: int | None, estimated: bool) -> Job:
    held = held_by(cqs.get(cq or ""), wl) if wl.reason in QUOTA_REASONS else None
    return replace(job, queue=f"{wl.namespace}/{wl.queue}" if wl.queue else None, cluster_queue=cq,
                   queue_position=position, position_estimated=estimated and position is not None,
                   priority=wl.priority, admission=wl.state, queue_reason=wl.reason, queue_message=wl.message,
                   held_by=held, workload=f"{wl.namespace}/{wl.name}")


def _owner_keys(job: Job) -> tuple[tuple[str, str, str], ...]:
    """The (namespace, owner kind, owner name) keys a Workload may name this row by."""
    if job.namespace is None or job.state.is_terminal:
        return ()
    # A pod row is named after its owner: only its own name (from its id) says which pod it is.
    keys = {(job.namespace, "pod", job.id.split("/", 1)[-1]) if job.kind == "Pod"
            else (job.namespace, job.kind.lower(), job.name)}
    if job.owner and "/" in job.owner:
        kind, name = job.owner.split("/", 1)
        keys.add((job.namespace, kind.lower(), name))
    return tuple(keys)


KeyMemo = dict[int, tuple[Job, tuple[tuple[str, str, str], ...]]]


def attach(jobs: tuple[Job, ...], workloads: list[WorkloadFacts], cq_of: dict[tuple[str, str], str],
           cqs: dict[str, ClusterQueueFacts], positions: dict[tuple[str, str], int], estimated: bool,
           cluster: str, memo: KeyMemo | None = None) -> tuple[Job, ...]:
    """Queue facts onto the rows their Workloads stand for; a row of its own for a waiting one without.

    `memo` (id -> (row, its keys)) keeps each row's keys for the next call: the Kubernetes source
    hands back the very same pod rows while they do not change, and working out the keys of
    7,000 rows on every poll was half of a quiet large cluster's poll. Refilled with this call's
    rows only, holding them, so an id in it is always its own row's."""
    out = list(jobs)
    index: dict[tuple[str, str, str], list[int]] = {}  # (namespace, owner kind, owner name) -> rows
    last = memo if memo is not None else {}
    kept: KeyMemo = {}
    for i, job in enumerate(out):
        seen = last.get(id(job))
        keys = seen[1] if seen is not None and seen[0] is job else _owner_keys(job)
        kept[id(job)] = (job, keys)
        for key in keys:
            index.setdefault(key, []).append(i)
    if memo is not None:
        memo.clear()
        memo.update(kept)
    extra = []
    for wl in sorted(workloads, key=lambda w: (w.namespace, w.name)):
        key = (wl.namespace, wl.name)
        cq, position = cq_of.get(key), positions.get(key)
        hits = index.get((wl.namespace, wl.owner[0].lower(), wl.owner[1]), []) if wl.owner else []
        for i in hits:
            out[i] = _facts(out[i], wl, cq, cqs, position, estimated)
        if not hits and wl.state in ("pending", "evicted", "stopped", "quota reserved"):
            extra.append(_facts(own_row(wl, cluster), wl, cq, cqs, position, estimated))
    return (*out, *extra)


def own_row(wl: WorkloadFacts, cluster: str) -> Job:
    owner = f"{wl.owner[0]}/{wl.owner[1]}" if wl.owner else None
    return Job(
        key=f"kubernetes/{cluster}/kueue/{wl.namespace}/{wl.name}", source="kubernetes", cluster=cluster,
        id=f"{wl.namespace}/{wl.name}", name=wl.owner[1] if wl.owner else wl.name, state=JobState.PENDING,
        native_state=f"Workload {wl.state}", gpus=wl.gpus, submitted_at=wl.created, started_at=None,
        finished_at=None, owner=owner, message=wl.message, kind="kueue", namespace=wl.namespace)


def held_by(cq: ClusterQueueFacts | None, wl: WorkloadFacts) -> str | None:
    """"ClusterQueue team-a-cq has used 6 of its 8 nvidia.com/gpu"; None when it cannot be said."""
    if cq is None:
        return None
    resource = wl.gpu_resource or "nvidia.com/gpu"
    quotas = [q for q in cq.quotas if q.resource == resource]
    if not quotas or any(q.nominal is None for q in quotas):
        return None
    nominal = sum(q.nominal or 0.0 for q in quotas)
    used = sum(cq.used(q.flavor, resource)[0] or 0.0 for q in quotas)
    return f"ClusterQueue {cq.name} has used {_n(used)} of its {_n(nominal)} {resource}"


def _n(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:g}"


def queue_uses(cqs: Any, cluster: str) -> tuple[QueueUse, ...]:
    rows = []
    for cq in sorted(cqs, key=lambda c: c.name):
        for q in cq.quotas:
            if not is_accelerator(q.resource):  # the queues view is about GPUs
                continue
            used, borrowed = cq.used(q.flavor, q.resource)
            rows.append(QueueUse(cluster=cluster, cluster_queue=cq.name, flavor=q.flavor, resource=q.resource,
                                 nominal=q.nominal, used=used, borrowed=borrowed, borrowing_limit=q.borrowing_limit,
                                 pending=cq.pending, admitted=cq.admitted, cohort=cq.cohort))
    return tuple(rows)
