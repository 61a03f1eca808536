"""DELETE of one object on the fake API server, as a real apiserver answers it.

`DeleteOptions` come in the body (what the official clients send) and/or as query parameters:
`propagationPolicy` (Orphan, Background, Foreground), `preconditions.uid` and
`preconditions.resourceVersion` (409 Conflict when the stored object differs), `dryRun=All`.
An object with finalizers (or a Foreground deletion) is not removed: it gets `deletionTimestamp`
and stays until its controller removes the finalizers. The answer is 200 with the object (its last
state, or the one now being deleted), as the generic registry answers for custom resources.
This fake runs no garbage collector: dependents of a deleted owner stay.
"""

from __future__ import annotations

import json
from typing import Any

from mltop.demo.kube_api import KubeError, KubeStore, Resource, _rfc3339

POLICIES = ("Orphan", "Background", "Foreground")


def delete_options(body: bytes, query: Any) -> dict[str, Any]:
    try:
        options = json.loads(body or b"{}")
    except json.JSONDecodeError as exc:
        raise KubeError(400, f"couldn't get version/kind; json parse error: {exc}") from None
    if not isinstance(options, dict):
        raise KubeError(400, "json: cannot unmarshal into Go value of type v1.DeleteOptions")
    for field in ("propagationPolicy", "dryRun"):
        if field in query and field not in options:
            options[field] = query[field] if field != "dryRun" else [query[field]]
    policy = options.get("propagationPolicy")
    if policy is not None and policy not in POLICIES:
        raise KubeError(422, f'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported value: '
                             f'"{policy}": supported values: "Foreground", "Background", "Orphan"')
    return options


def delete_object(store: KubeStore, res: Resource, name: str, namespace: str | None, current: dict[str, Any],
                  options: dict[str, Any]) -> dict[str, Any]:
    meta = current["metadata"]
    pre = options.get("preconditions") or {}
    for field, key in (("uid", "uid"), ("resourceVersion", "resourceVersion")):
        wanted = pre.get(field) if isinstance(pre, dict) else None
        if wanted not in (None, "") and wanted != meta.get(key):
            label = "UID" if field == "uid" else "ResourceVersion"
            raise KubeError(409, f'Operation cannot be fulfilled on {res.qualified} "{name}": Precondition failed: '
                                 f"{label} in precondition: {wanted}, {label} in object meta: {meta.get(key)}",
                            res=res, name=name)
    if "All" in (options.get("dryRun") or []):
        return current
    finalizers = list(meta.get("finalizers") or [])
    if options.get("propagationPolicy") == "Foreground" and "foregroundDeletion" not in finalizers:
        finalizers.append("foregroundDeletion")
    if not finalizers:
        store.delete(res.api_version, res.kind, name, namespace)
        return current
    if meta.get("deletionTimestamp"):
        return current  # already being deleted: nothing changes
    meta["finalizers"] = finalizers
    meta["deletionTimestamp"] = _rfc3339(store.clock())
    meta["deletionGracePeriodSeconds"] = 0
    return store.put(current)
