"""A row's object as its backend holds it, fetched fresh for the raw view (`y`).

Ray: `GET /api/jobs/{id}`; KFP: `GET /apis/v2beta1/runs/{id}` (both through the sources' own
checked reads: the id is one encoded path segment and the answer must name that same job); and
through the official Kubernetes client a pending pod, a node, a KubeRay worker group's RayCluster
or a Cluster API MachineDeployment, read as the API server's JSON (not the client's models, which
drop fields they do not know) with a deadline and a size limit. Nothing is redacted here: the
raw view (mltop.raw) does that for every backend alike.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx

from mltop.adapters.blocking import in_thread
from mltop.adapters.http import decode_json, request, segment
from mltop.adapters.kube_cache import MiB, read_bounded
from mltop.adapters.kube_errors import kube_error
from mltop.errors import BadResponse, Conflict, NotFound, SourceError, Unreachable
from mltop.model import GpuNode, Job, Pool, RawObject

if TYPE_CHECKING:  # the client is imported where a Kubernetes object is read: Ray and KFP never pay for it
    from kubernetes import client as k8s

RAY_NODE_LIMIT = 16 * MiB  # a node's workers and actors: thousands on a big node
KUBE_LIMIT = 4 * MiB  # etcd keeps objects under 1.5 MiB by default
KUBE_TIMEOUT = (5, 20)  # (connect, read) seconds per request
KUBE_DEADLINE = 30.0  # for the whole read, in its thread
RAY_CLUSTER = ("ray.io", "v1", "rayclusters", "RayCluster")
MACHINE_DEPLOYMENT = ("cluster.x-k8s.io", "v1beta1", "machinedeployments", "MachineDeployment")
RAY_JOB = ("ray.io", "v1", "rayjobs", "RayJob")
CUSTOM = {t[3]: t for t in (RAY_CLUSTER, MACHINE_DEPLOYMENT, RAY_JOB)}


def job_refusal(record: Any, backend: str) -> str | None:
    if isinstance(record, Job) or (backend == "Ray's dashboard" and isinstance(record, GpuNode)):
        return None
    return f"{backend} gives no object of its own for {_named(record)}"


async def ray_node(record: GpuNode, client: httpx.AsyncClient, cluster: str, clock: Callable[[], datetime]) -> RawObject:
    """`GET /nodes/{node_id}`: what the dashboard knows of one node (its stats, workers, actors).

    Ray answers 200 with an empty shell for a node id it does not know: the answer must carry the
    same node id, or the node is gone."""
    if not isinstance(record, GpuNode):
        raise Conflict(job_refusal(record, "Ray's dashboard") or "not a node")
    node_id = record.key.rsplit("/", 1)[1]  # ray/<cluster>/<node id>: hex, never a slash
    what = f"{cluster}: node {record.name}"
    response = await request(client, "GET", f"/nodes/{segment(node_id)}", what=what, limit=RAY_NODE_LIMIT)
    body = decode_json(response, what)
    detail = ((body.get("data") or {}).get("detail") if isinstance(body, dict) else None) or {}
    raylet = detail.get("raylet") if isinstance(detail, dict) else None
    if not isinstance(raylet, dict) or raylet.get("nodeId") != node_id:
        raise NotFound(f"{what}: Ray no longer knows node {node_id}")
    return RawObject(kind="Ray node", cluster=cluster, name=record.name, fetched_at=clock(), body=body,
                     api=f"GET /nodes/{node_id}")


async def ray_job(record: Job, read: Callable[[str], Awaitable[dict[str, Any]]], cluster: str,
                  clock: Callable[[], datetime]) -> RawObject:
    """`read` is RaySource._job_by_id: an encoded id, and a Conflict if Ray answers for another job."""
    body = await read(record.id)
    return RawObject(kind="Ray job", cluster=cluster, name=record.id, fetched_at=clock(), body=body,
                     api=f"GET /api/jobs/{record.id}")


async def kfp_run(record: Job, read: Callable[[str], Awaitable[dict[str, Any]]], cluster: str,
                  clock: Callable[[], datetime]) -> RawObject:
    """`read` is KfpSource._run_by_id: an encoded id, and a Conflict if KFP answers for another run."""
    body = await read(record.id)
    return RawObject(kind="KFP run", cluster=cluster, name=record.id, fetched_at=clock(), body=body,
                     api=f"GET /apis/v2beta1/runs/{record.id}")


def kube_refusal(record: Any) -> str | None:
    """Why a Kubernetes row has no object of its own to show, or None."""
    if isinstance(record, Job):
        if record.kind == "RayJob" and record.id.startswith("rayjob:") and "/" in record.id:
            return None
        return None if record.kind == "Pod" and "/" in record.id else f"{_named(record)} is not a pod"
    if isinstance(record, GpuNode):
        return None
    if isinstance(record, Pool):
        if record.kind == "nodepool":
            return (f"node pool {record.name} is a label on its nodes, not an object the Kubernetes API serves "
                    "(its cloud or Karpenter holds it): press y on one of its nodes")
        if record.kind in ("raycluster-workergroup", "machinedeployment"):
            return None
        return f"mltop cannot fetch a {record.kind} pool"
    return f"Kubernetes gives no object of its own for {_named(record)}"


async def kube_object(api: k8s.ApiClient, cluster: str, clock: Callable[[], datetime], record: Any) -> RawObject:
    refusal = kube_refusal(record)
    if refusal:
        raise Conflict(refusal)
    kind, namespace, name, note = _kube_target(record)
    what = f"{cluster}: {kind} {namespace + '/' if namespace else ''}{name}"
    try:
        body = await in_thread(_read_kube, api, kind, namespace, name, what, timeout=KUBE_DEADLINE,
                               name="mltop-kube-raw")
    except asyncio.TimeoutError:
        raise Unreachable(f"{what}: the API server did not answer within {KUBE_DEADLINE:.0f}s") from None
    if isinstance(record, Pool) and record.kind == "raycluster-workergroup":
        note = _group_note(body, record.name.split("/", 1)[1])
    return RawObject(kind=kind, cluster=cluster, name=f"{namespace}/{name}" if namespace else name,
                     fetched_at=clock(), body=body, api=_api_path(kind, namespace, name), note=note)


def _kube_target(record: Any) -> tuple[str, str | None, str, str]:
    """(kind, namespace, name, note) of the object behind a row."""
    if isinstance(record, Job):
        namespace, name = record.id.removeprefix("rayjob:").split("/", 1)
        return ("RayJob" if record.kind == "RayJob" else "Pod"), namespace, name, ""
    if isinstance(record, GpuNode):
        return "Node", None, record.name, ""
    namespace = record.namespace or "default"
    if record.kind == "raycluster-workergroup":
        return "RayCluster", namespace, record.parent or record.name.split("/", 1)[0], ""
    return "MachineDeployment", namespace, record.name, ""


def _read_kube(api: k8s.ApiClient, kind: str, namespace: str | None, name: str, what: str) -> Any:
    """In a thread: the object's JSON, at most KUBE_LIMIT bytes; it must be the object asked for."""
    from kubernetes import client as k8s

    core, custom = k8s.CoreV1Api(api), k8s.CustomObjectsApi(api)
    options = {"_preload_content": False, "_request_timeout": KUBE_TIMEOUT}
    try:
        if kind == "Pod":
            response = core.read_namespaced_pod(name, namespace, **options)
        elif kind == "Node":
            response = core.read_node(name, **options)
        else:
            group, version, plural, _ = CUSTOM[kind]
            response = custom.get_namespaced_custom_object(group, version, namespace, plural, name, **options)
        data = read_bounded(response, KUBE_LIMIT, what)
    except SourceError:
        raise
    except Exception as exc:
        raise kube_error(exc, what) from None
    try:
        body = json.loads(data)
    except (ValueError, RecursionError):
        raise BadResponse(f"{what}: the API server did not answer with JSON") from None
    meta = body.get("metadata") if isinstance(body, dict) else None
    if not isinstance(meta, dict) or meta.get("name") != name or (namespace and meta.get("namespace") != namespace):
        raise Conflict(f"{what}: the API server answered for another object; not shown")
    return body


def _api_path(kind: str, namespace: str | None, name: str) -> str:
    if kind == "Pod":
        return f"GET /api/v1/namespaces/{namespace}/pods/{name}"
    if kind == "Node":
        return f"GET /api/v1/nodes/{name}"
    group, version, plural, _ = CUSTOM[kind]
    return f"GET /apis/{group}/{version}/namespaces/{namespace}/{plural}/{name}"


def _group_note(body: Any, group: str) -> str:
    groups = ((body.get("spec") or {}).get("workerGroupSpecs") or []) if isinstance(body, dict) else []
    index = next((i for i, g in enumerate(groups if isinstance(groups, list) else [])
                  if isinstance(g, dict) and g.get("groupName") == group), None)
    if index is None:
        return f"worker group {group} is no longer in this RayCluster"
    return f"worker group {group} is spec.workerGroupSpecs[{index}]"


def _named(record: Any) -> str:
    if isinstance(record, GpuNode):
        return f"node {record.name}"
    if isinstance(record, Pool):
        return f"pool {record.name}"
    if isinstance(record, Job):
        return f"job {record.id}"
    return "this row"
