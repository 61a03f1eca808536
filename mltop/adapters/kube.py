"""Kubernetes adapter: GPU nodes, pending GPU pods, node pools, KubeRay worker groups, Cluster API
MachineDeployments, and scaling the last two. Uses the official `kubernetes` client, configured
as kubectl is (kubeconfig, contexts, exec plugins, in-cluster). Its calls block, so they run in
threads: the watch caches in their own, everything else in a daemon thread per call (`blocking.in_thread`)
with a total deadline, so a server that never answers can neither hang a poll nor delay quitting.
With `watch=False` (`mltop --once`, one snapshot) every cache lists in pages and opens no watch.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import ProtocolError, ReadTimeoutError

from mltop.adapters import fast_json
from mltop.adapters.blocking import in_thread
from mltop.adapters.kube_config import api_client_for, target_name
from mltop.adapters.kube_cache import MiB, WatchCache, read_bounded, wait_synced
from mltop.adapters.kube_errors import kube_error
from mltop.adapters.kube_logs import PodLog
from mltop.adapters.kube_events import SaidRows, SchedulerEvents
from mltop.adapters.kube_kueue import KueueReader
from mltop.adapters.kube_rayjobs import RayJobs
from mltop.adapters.kube_dra_source import DraReader
from mltop.adapters.kube_target import KubeTarget
from mltop.adapters.values import Skips
from mltop.adapters.kube_pools import machine_deployment, worker_groups
from mltop.adapters.kube_records import ClusterRecords, pods_by_node
from mltop.adapters.kube_parse import (
    KIND,
    NO_MAX,
    Unreadable,
    pod_facts,
)
from mltop.errors import BadResponse, Conflict, OutcomeUnknown, SourceError, Unreachable
from mltop.model import ActionOutcome, Job, Pool, RawObject, SourceData
from mltop.scaling import ScalePlan

RAY_GROUP, RAY_VERSION, RAY_PLURAL = "ray.io", "v1", "rayclusters"
CAPI_GROUP, CAPI_VERSION, CAPI_PLURAL = "cluster.x-k8s.io", "v1beta1", "machinedeployments"
SYNC_TIMEOUT = 15.0
ACCESS_TTL = 300.0  # seconds an access review answer is trusted
# (connect, read) seconds for every request the client makes outside the watches, and the total
# deadline of a poll's or an action's work in its thread.
REQUEST_TIMEOUT = (5, 30)
POLL_DEADLINE = 45.0
# The live screen says "no answer yet" after SYNC_TIMEOUT and keeps listing; one snapshot (`--once`)
# has no next poll, so it waits for the whole paged list as kubectl does (50,000 pods are 100 pages),
# up to its poll's deadline. A dead server still fails at its connect or read timeout.
ONCE_SYNC_TIMEOUT = POLL_DEADLINE - 5.0
ACTION_DEADLINE = 40.0
CLOSE_DEADLINE = 1.0
CUSTOM_LIST_LIMIT = 32 * MiB  # all RayClusters or MachineDeployments of a cluster


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class KubeSource:
    kind = KIND

    @property
    def key(self) -> str:
        """The source's key ("kind/name"): its records, updates and actions are filed under it."""
        return f"{KIND}/{self.name}"

    def __init__(
        self,
        target: KubeTarget,
        *,
        api_client: k8s.ApiClient | None = None,
        clock: Callable[[], datetime] = utcnow,
        sync_timeout: float | None = None,  # default: SYNC_TIMEOUT, ONCE_SYNC_TIMEOUT without watch
        watch: bool = True,
    ) -> None:
        self.target = target
        self.name = target_name(target)
        self.clock = clock
        self.sync_timeout = sync_timeout if sync_timeout is not None else SYNC_TIMEOUT if watch else ONCE_SYNC_TIMEOUT
        self.action_deadline = ACTION_DEADLINE
        self._api = api_client or api_client_for(target)
        core = k8s.CoreV1Api(self._api)
        self._custom = k8s.CustomObjectsApi(self._api)
        self._auth = k8s.AuthorizationV1Api(self._api)
        self.watch = watch
        self.dra = DraReader(self._custom, self.name, watch=watch)  # DRA GPUs: kube_dra.py, kube_dra_source.py
        self.nodes = WatchCache(f"{self.name}: nodes", core.list_node, self.dra.node_record, watch=watch)
        self.pods = WatchCache(f"{self.name}: pods", core.list_pod_for_all_namespaces, pod_facts, watch=watch,
                               group_of=pods_by_node)
        self.events = SchedulerEvents(core.list_event_for_all_namespaces, f"{self.name}: events")
        self._access: dict[tuple[str, ...], tuple[bool, float]] = {}
        self._records = ClusterRecords(self.name)  # rebuilt only when a watch cache changed (kube_records.py)
        self._said = SaidRows()  # pending pods with the scheduler's words, the same rows while unchanged
        self._last_data: SourceData | None = None  # the last poll's records (_collect)
        self.kueue = KueueReader(self._api, self._custom, self.name, self.allowed, watch=watch)  # kube_kueue.py
        self.rayjobs = RayJobs(self._custom, self.name, self._list_custom, self.allowed)  # kube_rayjobs.py

    async def aclose(self) -> None:
        self.nodes.stop()
        self.pods.stop()
        self.kueue.stop()
        self.dra.stop()
        try:  # quitting never waits on a connection pool that will not close
            await in_thread(self._api.close, timeout=CLOSE_DEADLINE, name="mltop-kube-close")
        except asyncio.TimeoutError:
            pass

    async def fetch(self) -> SourceData:
        try:
            return await in_thread(self._collect, timeout=POLL_DEADLINE, name=f"mltop-kube-poll-{self.name}")
        except asyncio.TimeoutError:
            raise SourceError(f"{self.name}: the API server did not answer within {POLL_DEADLINE:.0f}s") from None

    # -- reading ------------------------------------------------------------------------------

    def _collect(self) -> SourceData:
        if self.dra.probe() and self.nodes.lists:  # DRA came: re-list nodes, keeping those without extended GPUs
            self.nodes.stop()
            self.nodes = WatchCache(f"{self.name}: nodes", k8s.CoreV1Api(self._api).list_node, self.dra.node_record,
                                    watch=self.watch)
        caches = [self.nodes, self.pods]
        for cache in caches:
            cache.start()
        wait_synced(caches, self.sync_timeout)
        for cache in caches:
            if cache.error is not None:  # the watch is failing: what we hold is getting old
                raise cache.error
        versions = self._records.versions((self.nodes, self.pods, self.dra.slices, self.dra.claims))
        pods = self.pods.snapshot()
        dra, dra_skips = self.dra.view(self.sync_timeout, pods)  # nothing, without DRA
        facts, gpu_nodes, jobs, pools = self._records(versions, self.nodes, self.pods, dra)
        said = self.events.messages({job.id: job.submitted_at for job in jobs})  # the scheduler's own words
        jobs = self._said.rows(jobs, said)
        # Objects that cannot be read are left out and counted; the rest of the cluster still shows.
        skips = Skips()
        rayclusters = self._list_custom(RAY_GROUP, RAY_VERSION, RAY_PLURAL)
        jobs += self.rayjobs.rows(rayclusters, skips)  # KubeRay RayJobs, before Kueue attaches its queue facts
        jobs, queues, queue_skips = self.kueue.collect(jobs, self.sync_timeout)  # none without Kueue
        for rc in rayclusters:
            try:
                pools.extend(worker_groups(rc, pods, self.name, skips))
            except Unreadable as exc:
                skips.add(f"{self.name}: {exc}")
        for md in self._list_custom(CAPI_GROUP, CAPI_VERSION, CAPI_PLURAL):
            try:
                pools.append(machine_deployment(md, self.name, gpu_nodes))
            except Unreadable as exc:
                skips.add(f"{self.name}: {exc}")
        pools = [self._with_permission(p) for p in pools]
        parts = [self.nodes.skips(), self.pods.skips(), skips, queue_skips, dra_skips]  # the caches' reasons name the cluster already
        data = SourceData(jobs=jobs, nodes=tuple(gpu_nodes), pools=tuple(pools), queues=queues,
                          skipped=sum(p.count for p in parts),
                          skip_reason=next((p.reason for p in parts if p.reason), None))
        # A quiet cluster: the very same SourceData again, so every memo after this one (the status
        # line's figures, the dashboard's parts, the cost basis) sees it unchanged at an identity
        # check. Comparing is cheap: the rows are mostly the same objects (tuple == checks `is` first).
        if data == self._last_data:
            return self._last_data
        self._last_data = data
        return data

    def _list_custom(self, group: str, version: str, plural: str) -> list[dict[str, Any]]:
        """All objects of a CRD; none when the CRD is not installed (not an error)."""
        try:
            response = self._custom.list_cluster_custom_object(
                group, version, plural, _preload_content=False, _request_timeout=(5, 30)
            )
        except ApiException as exc:
            if exc.status == 404:
                return []
            raise kube_error(exc, f"{self.name}: {plural}.{group}") from None
        except Exception as exc:
            raise kube_error(exc, f"{self.name}: {plural}.{group}") from None
        what = f"{self.name}: {plural}.{group}"
        try:
            body = fast_json.loads(read_bounded(response, CUSTOM_LIST_LIMIT, what))
        except (ValueError, RecursionError):
            raise BadResponse(f"{what}: the API server did not answer with JSON") from None
        items = body.get("items") if isinstance(body, dict) else None
        if not isinstance(items, list):  # an answer we cannot read is not "none installed"
            raise BadResponse(f"{what}: the list answer has no items array")
        return items

    def _with_permission(self, pool: Pool) -> Pool:
        if not pool.scalable:
            return pool
        if pool.kind == "raycluster-workergroup":
            verb, group, resource, sub = "patch", RAY_GROUP, RAY_PLURAL, ""
        else:
            verb, group, resource, sub = "update", CAPI_GROUP, CAPI_PLURAL, "scale"
        if self.allowed(verb, group, resource, sub, pool.namespace or ""):
            return pool
        what = f"{resource}/{sub}" if sub else resource
        return replace(pool, scalable=False,
                       why_not_scalable=f"your credentials may not {verb} {what} in namespace {pool.namespace} (RBAC)")

    def allowed(self, verb: str, group: str, resource: str, subresource: str, namespace: str) -> bool:
        """Ask the API server (SelfSubjectAccessReview), remembering the answer for a while."""
        key = (verb, group, resource, subresource, namespace)
        cached = self._access.get(key)
        if cached is not None and time.monotonic() - cached[1] < ACCESS_TTL:
            return cached[0]
        attributes = {"verb": verb, "group": group, "resource": resource, "namespace": namespace}
        if subresource:
            attributes["subresource"] = subresource
        body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                "spec": {"resourceAttributes": attributes}}
        try:
            review = self._auth.create_self_subject_access_review(body, _request_timeout=(5, 15))
            answer = bool(review.status and review.status.allowed)
        except Exception:
            # Cannot ask: offer the action; the API server still decides, and a 403 is told.
            answer = True
        self._access[key] = (answer, time.monotonic())
        return answer

    async def cancel_job(self, job_id: str) -> ActionOutcome:
        """The cancel of a KubeRay RayJob row: delete that RayJob (kube_rayjobs.py). Pods are not cancelled."""
        self.rayjobs.action_deadline = self.action_deadline
        return await self.rayjobs.cancel(job_id)

    def raw_refusal(self, record: Any) -> str | None:
        from mltop.adapters import raw_objects  # the raw view's module loads httpx: not for `--once`

        return raw_objects.kube_refusal(record)

    async def raw_object(self, record: Any) -> RawObject:
        """The row's pod, node, RayCluster or MachineDeployment as the API server holds it (`y`)."""
        from mltop.adapters import raw_objects

        return await raw_objects.kube_object(self._api, self.name, self.clock, record)

    async def set_workload_active(self, job: Job, active: bool) -> ActionOutcome:
        """Stop (False) or resume (True) the Kueue Workload behind a row (spec.active; kube_kueue.py)."""
        if not job.workload:
            raise Conflict(f"{self.name}: {job.id} is not queued by Kueue; nothing to stop or resume")
        try:
            return await in_thread(self.kueue.set_active, job.workload, active, timeout=self.action_deadline,
                                   name="mltop-kueue-active")
        except asyncio.TimeoutError:
            raise OutcomeUnknown(f"{self.name}: Workload {job.workload}: no answer within "
                                 f"{self.action_deadline:.0f}s; check the cluster (the next refresh shows it)") from None

    # -- logs ---------------------------------------------------------------------------------

    def why_no_log(self, job: Job) -> str | None:
        """Why `l` cannot follow this job's log here, or None: only pods have one (kube_logs.py)."""
        if job.kind != "Pod" or "/" not in job.id:
            return f"a {job.kind or 'record'} without a pod of its own: Kubernetes keeps logs per pod"
        return None

    def log_stream(self, job: Job) -> PodLog:
        namespace, name = job.id.split("/", 1)
        return PodLog(self._api, self.name, namespace, name)

    # -- scaling ------------------------------------------------------------------------------

    async def scale(self, plan: ScalePlan) -> ActionOutcome:
        """Carry out a plan the user confirmed. Refuses, with Conflict, to overwrite a change
        someone else made since the values in the plan were read. A call that gets no answer
        in time is reported as OutcomeUnknown: the change may or may not have been made."""
        sent = threading.Event()  # set just before the change itself goes out
        try:
            return await in_thread(self._scale, plan, sent, timeout=self.action_deadline, name="mltop-kube-scale")
        except asyncio.TimeoutError:
            pool = plan.pool
            what = f"{self.name}: scaling {pool.kind} {pool.namespace}/{pool.name}"
            if not sent.is_set():
                raise Unreachable(f"{what}: no answer from the API server within {self.action_deadline:.0f}s while "
                                  "reading it; nothing was changed") from None
            raise OutcomeUnknown(
                f"{what}: the change was sent but no answer came back within {self.action_deadline:.0f}s; the outcome "
                "is unknown: check the cluster (the next refresh shows what it holds)") from None

    def _scale(self, plan: ScalePlan, sent: threading.Event) -> ActionOutcome:
        if not plan.allowed:
            raise Conflict(plan.refusal or "nothing to change")
        pool = plan.pool
        what = f"{self.name}: {pool.kind} {pool.namespace}/{pool.name}"
        try:
            if pool.kind == "raycluster-workergroup":
                self._scale_worker_group(plan, sent)
            elif pool.kind == "machinedeployment":
                self._scale_machine_deployment(plan, sent)
            else:
                raise Conflict(f"{what}: cannot be scaled from here")
        except SourceError:
            raise
        except Exception as exc:
            raise kube_error(exc, what) from None
        changed = ", ".join(f"{c.field.rsplit('.', 1)[-1]} {c.old} -> {c.new}" for c in plan.changes)
        return ActionOutcome(True, f"{plan.changes[0].obj}: {changed} accepted by the API server")

    def _scale_worker_group(self, plan: ScalePlan, sent: threading.Event) -> None:
        pool = plan.pool
        rc_name, group_name = pool.name.split("/", 1)
        namespace = pool.namespace or "default"
        rc = self._custom.get_namespaced_custom_object(RAY_GROUP, RAY_VERSION, namespace, RAY_PLURAL, rc_name,
                                                       _request_timeout=REQUEST_TIMEOUT)
        meta = rc.get("metadata") or {} if isinstance(rc, dict) else {}
        if meta.get("name") != rc_name or (meta.get("namespace") or "default") != namespace:
            raise Conflict(f"RayCluster {namespace}/{rc_name}: the API server answered for another object; not changed")
        groups = (rc.get("spec") or {}).get("workerGroupSpecs") or []
        index = next((i for i, g in enumerate(groups) if g.get("groupName") == group_name), None)
        if index is None:
            raise Conflict(f"RayCluster {namespace}/{rc_name} no longer has a worker group {group_name!r}")
        group = groups[index]
        base = f"/spec/workerGroupSpecs/{index}"
        # A JSON patch guarded by `test` ops: the group is still at that index, and each field
        # still holds what the user saw. A merge patch would replace the whole groups list.
        ops: list[dict[str, Any]] = [{"op": "test", "path": f"{base}/groupName", "value": group_name}]
        for change in plan.changes:
            field = change.field.rsplit(".", 1)[-1]
            stored = _as_shown(field, group.get(field))
            if stored != change.old:
                raise Conflict(
                    f"RayCluster {namespace}/{rc_name}: {group_name}.{field} is now {stored}, not {change.old} as shown; "
                    "someone changed it meanwhile. Refreshed: look again before scaling."
                )
            if field in group:
                ops.append({"op": "test", "path": f"{base}/{field}", "value": group[field]})
                ops.append({"op": "replace", "path": f"{base}/{field}", "value": change.new})
            else:
                ops.append({"op": "add", "path": f"{base}/{field}", "value": change.new})
        _write(f"RayCluster {namespace}/{rc_name}", sent, lambda: self._api.call_api(
            # Path parameters are encoded by the client, as one segment each.
            f"/apis/{RAY_GROUP}/{RAY_VERSION}/namespaces/{{namespace}}/{RAY_PLURAL}/{{name}}",
            "PATCH",
            path_params={"namespace": namespace, "name": rc_name},
            header_params={"Content-Type": "application/json-patch+json", "Accept": "application/json"},
            body=ops,
            auth_settings=["BearerToken"],
            _preload_content=False,
            _return_http_data_only=True,
            _request_timeout=REQUEST_TIMEOUT,
        ))

    def _scale_machine_deployment(self, plan: ScalePlan, sent: threading.Event) -> None:
        pool = plan.pool
        namespace = pool.namespace or "default"
        change = plan.changes[0]
        scale = self._custom.get_namespaced_custom_object_scale(
            CAPI_GROUP, CAPI_VERSION, namespace, CAPI_PLURAL, pool.name, _request_timeout=REQUEST_TIMEOUT
        )
        meta = scale.get("metadata") or {} if isinstance(scale, dict) else {}
        if meta.get("name") not in (None, pool.name):
            raise Conflict(f"MachineDeployment {namespace}/{pool.name}: the API server answered for another object; "
                           "not changed")
        current = (scale.get("spec") or {}).get("replicas")
        if current != change.old:
            raise Conflict(
                f"MachineDeployment {namespace}/{pool.name}: replicas is now {current}, not {change.old} as shown; "
                "someone changed it meanwhile. Refreshed: look again before scaling."
            )
        body = {
            "apiVersion": "autoscaling/v1",
            "kind": "Scale",
            # The resourceVersion makes the API server refuse (409) if it changed since the read.
            "metadata": {"name": pool.name, "namespace": namespace,
                         "resourceVersion": (scale.get("metadata") or {}).get("resourceVersion")},
            "spec": {"replicas": change.new},
        }
        _write(f"MachineDeployment {namespace}/{pool.name}", sent, lambda: self._custom.replace_namespaced_custom_object_scale(
            CAPI_GROUP, CAPI_VERSION, namespace, CAPI_PLURAL, pool.name, body, _request_timeout=REQUEST_TIMEOUT
        ))


def _write(what: str, sent: threading.Event, call: Callable[[], Any]) -> Any:
    """Send a change. If the request went out but no answer came back (a read timeout, a dropped
    connection), the API server may have applied it: that is OutcomeUnknown, not a failure."""
    sent.set()
    try:
        return call()
    except (ReadTimeoutError, ProtocolError) as exc:
        raise OutcomeUnknown(
            f"{what}: the change was sent but no answer came back ({type(exc).__name__}); the outcome is unknown: "
            "check the cluster (the next refresh shows what it holds)") from None


def _as_shown(field: str, stored: Any) -> int | None:
    """A worker-group field as the pool record shows it (KubeRay's defaults filled in)."""
    if field == "maxReplicas":
        return None if stored in (None, NO_MAX) else int(stored)
    return int(stored or 0)
