"""Kueue's visibility API on the fake Kubernetes API server: the pending workloads of a ClusterQueue
or a LocalQueue, as Kueue's aggregated API server answers (`PendingWorkloadsSummary`).

    GET /apis/visibility.kueue.x-k8s.io/{v1beta1|v1beta2}/clusterqueues/{cq}/pendingworkloads?limit=&offset=
    GET /apis/visibility.kueue.x-k8s.io/{version}/namespaces/{ns}/localqueues/{lq}/pendingworkloads

Kueue orders a queue (BestEffortFIFO) by priority, highest first, then by its queue-order time: the
creation time, or the eviction time of a workload that was evicted and requeued (so it goes to the
back). Positions are 0-based. A (group, version) in `store.unserved` answers 404, as a cluster
whose VisibilityOnDemand feature gate is off does; ("get", "clusterqueues/pendingworkloads") in
`store.denied_verbs` answers 403.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

GROUP = "visibility.kueue.x-k8s.io"
KUEUE = "kueue.x-k8s.io"
DEFAULT_LIMIT = 1000


def _true(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind and condition.get("status") == "True":
            return condition
    return None


def _order_time(obj: dict[str, Any]) -> str:
    evicted = _true(obj, "Evicted")
    if evicted and evicted.get("lastTransitionTime"):
        return evicted["lastTransitionTime"]
    return obj["metadata"].get("creationTimestamp") or ""


def pending_in(store: Any, version: str, cluster_queue: str) -> list[dict[str, Any]]:
    """Workloads of `cluster_queue` (through their LocalQueue) waiting for quota, in Kueue's order."""
    api = f"{KUEUE}/{version}"
    queues = {(q["metadata"]["namespace"], q["metadata"]["name"]): (q.get("spec") or {}).get("clusterQueue")
              for q in store.list(api, "LocalQueue")}
    waiting = [w for w in store.list(api, "Workload")
               if queues.get((w["metadata"]["namespace"], (w.get("spec") or {}).get("queueName"))) == cluster_queue
               and (w.get("spec") or {}).get("active") is not False
               and not _true(w, "QuotaReserved") and not _true(w, "Finished")]
    waiting.sort(key=lambda w: (-int((w.get("spec") or {}).get("priority") or 0), _order_time(w),
                                w["metadata"]["name"]))
    return waiting


def _item(w: dict[str, Any], in_cq: int, in_lq: int) -> dict[str, Any]:
    meta = w["metadata"]
    return {"metadata": {k: meta[k] for k in ("name", "namespace", "creationTimestamp", "ownerReferences")
                         if k in meta},
            "priority": int((w.get("spec") or {}).get("priority") or 0),
            "localQueueName": (w.get("spec") or {}).get("queueName"),
            "positionInClusterQueue": in_cq, "positionInLocalQueue": in_lq}


def summary(store: Any, version: str, stored_in: str, cluster_queue: str, query: Any,
            local: tuple[str, str] | None = None) -> dict[str, Any]:
    items, per_local = [], {}
    for i, w in enumerate(pending_in(store, stored_in, cluster_queue)):
        lq = (w["metadata"]["namespace"], w["spec"]["queueName"])
        per_local[lq] = per_local.get(lq, -1) + 1
        if local is None or lq == local:
            items.append(_item(w, i, per_local[lq]))
    offset, limit = _int(query.get("offset"), 0), _int(query.get("limit"), DEFAULT_LIMIT)
    return {"kind": "PendingWorkloadsSummary", "apiVersion": f"{GROUP}/{version}",
            "metadata": {"creationTimestamp": None}, "items": items[offset:offset + limit]}


def _int(text: Any, default: int) -> int:
    return int(text) if isinstance(text, str) and text.isdigit() else default


def add_visibility_routes(app: web.Application, store: Any) -> None:
    from mltop.demo.kube_api import KubeError, USER  # the server's own Status errors (no import cycle)

    def check(request: web.Request, resource: str, namespace: str | None) -> str:
        version = request.match_info["version"]
        if version not in ("v1beta1", "v1beta2") or (GROUP, version) in store.unserved \
                or (KUEUE, version) in store.unserved:
            raise web.HTTPNotFound()
        if ("get", resource) in store.denied_verbs:
            where = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
            raise KubeError(403, f'{resource.split("/")[0]}.{GROUP} is forbidden: User "{USER}" cannot get resource '
                                 f'"{resource}" in API group "{GROUP}" {where}')
        return version

    def stored(kind: str, name: str, namespace: str | None = None) -> tuple[str, dict[str, Any]]:
        """(the kueue.x-k8s.io version it is stored in, the object): the visibility API's own
        version is independent of the one Kueue's objects are read in."""
        for version in ("v1beta2", "v1beta1"):
            obj = store.get(f"{KUEUE}/{version}", kind, name, namespace)
            if obj is not None:
                return version, obj
        raise KubeError(404, f'{kind.lower()}s.{GROUP} "{name}" not found')

    async def by_cluster_queue(request: web.Request) -> web.Response:
        version = check(request, "clusterqueues/pendingworkloads", None)
        name = request.match_info["name"]
        stored_in, _ = stored("ClusterQueue", name)
        return web.json_response(summary(store, version, stored_in, name, request.query))

    async def by_local_queue(request: web.Request) -> web.Response:
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        version = check(request, "localqueues/pendingworkloads", namespace)
        stored_in, lq = stored("LocalQueue", name, namespace)
        cq = (lq.get("spec") or {}).get("clusterQueue") or ""
        return web.json_response(summary(store, version, stored_in, cq, request.query, local=(namespace, name)))

    base = f"/apis/{GROUP}/{{version}}"
    app.router.add_get(base + "/clusterqueues/{name}/pendingworkloads", by_cluster_queue)
    app.router.add_get(base + "/namespaces/{namespace}/localqueues/{name}/pendingworkloads", by_local_queue)
