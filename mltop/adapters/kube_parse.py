"""Kubernetes objects (raw JSON dicts) -> mltop's records. Pure functions, no I/O.

Contracts: ../shared/reference/backend-apis.md part C. What Kubernetes counts, counted the same:
- a pod's effective request for a resource is max(sum of containers + restartable init
  containers (sidecars), the largest init container plus the sidecars started before it) plus
  the pod overhead; extended resources fall back to limits when requests are absent;
- only pods bound to a node and not finished (Succeeded/Failed) hold its GPUs;
- time-sliced GPUs (nvidia.com/gpu.replicas) are divided back into physical GPUs; MIG slices
  count as their share of a GPU.

Total on any JSON value. A field that cannot be read is unknown (None) or left out (a label that
is not a string, a taint without a key); an object that cannot be used at all (not an object, no
name, metadata/spec/status not objects, an accelerator amount that is not a quantity) makes the
parser raise `Unreadable`, and nothing else: the caller leaves that one object out and counts it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mltop.adapters.kube_pod_claims import pod_claims
from mltop.adapters.values import mapping, number, rfc3339, sequence
from mltop.model import Job, JobState

KIND = "kubernetes"
WHOLE_GPU_RESOURCES = (
    "nvidia.com/gpu",
    "amd.com/gpu",
    "gpu.intel.com/i915",
    "aws.amazon.com/neuron",
    "aws.amazon.com/neurondevice",
    "google.com/tpu",
)
MIG_PREFIX = "nvidia.com/mig-"
MIG_PROFILE = re.compile(r"^nvidia\.com/mig-(\d{1,3})g\.(\d+)gb$", re.ASCII)  # bounded: int() stays cheap
MIG_SLICES_PER_GPU = 7  # A100 and H100 both have 7 compute slices

# First present wins (backend-apis.md C.1).
POOL_LABELS = (
    ("karpenter.sh/nodepool", "Karpenter NodePool"),
    ("karpenter.sh/provisioner-name", "Karpenter Provisioner"),
    ("eks.amazonaws.com/nodegroup", "EKS managed node group"),
    ("cloud.google.com/gke-nodepool", "GKE node pool"),
    ("kubernetes.azure.com/agentpool", "AKS agent pool"),
    ("agentpool", "AKS agent pool"),
)
WHY_NOT_SCALABLE = {
    "Karpenter NodePool": "Karpenter sizes it from pending pods; change the NodePool's limits instead",
    "Karpenter Provisioner": "Karpenter sizes it from pending pods; change the Provisioner's limits instead",
    "EKS managed node group": "EKS resizes it, not Kubernetes: use eksctl or the AWS console",
    "GKE node pool": "GKE resizes it, not Kubernetes: use gcloud container clusters resize",
    "AKS agent pool": "AKS resizes it, not Kubernetes: use az aks nodepool scale",
}
MODEL_LABELS = (
    "nvidia.com/gpu.product",  # GPU feature discovery
    "cloud.google.com/gke-accelerator",
    "karpenter.k8s.aws/instance-gpu-name",
    "amd.com/gpu.product-name",
)
NO_MAX = 2147483647  # KubeRay's default maxReplicas: no limit (and the int32 ceiling of every count)
CAPI_MIN = "cluster.x-k8s.io/cluster-api-autoscaler-node-group-min-size"
CAPI_MAX = "cluster.x-k8s.io/cluster-api-autoscaler-node-group-max-size"
CAPI_GPU_COUNT = "capacity.cluster-autoscaler.kubernetes.io/gpu-count"
FINISHED_PHASES = {"Succeeded", "Failed"}


class Unreadable(ValueError):
    """An object too broken to use; str() says which object and why, in one line.

    The only exception the parsers here raise. Callers leave that object out and count it
    (`values.Skips`, the watch cache's skip count): one bad object never costs the whole source.
    """


def brief(value: Any) -> str:
    """A bad value for a one-line reason: scalars shown (cut), containers only named, since
    repr() of a deeply nested one costs time and may even recurse too deep."""
    if value is not None and not isinstance(value, (str, int, float)):
        return f"(a {type(value).__name__})"
    try:
        shown = repr(value)
    except ValueError:  # an int too long to print
        return "(a huge number)"
    return shown if len(shown) <= 40 else shown[:39] + "…"


def _str(value: Any) -> str | None:
    """A non-empty string, else None (numbers are not names or label values in Kubernetes)."""
    return value if isinstance(value, str) and value else None


def _strings(value: Any) -> dict[str, str]:
    """Labels or annotations: only string keys with string values count; the rest is junk."""
    return {k: v for k, v in mapping(value).items() if isinstance(k, str) and isinstance(v, str)}


def _object(value: Any, what: str) -> dict[str, Any]:
    """A part an object cannot do without: absent is empty, anything but an object is Unreadable."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Unreadable(f"{what} is not an object: {brief(value)}")
    return value


def _parts(obj: Any, kind: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], str]:
    """(metadata, spec, status, name) of an object; Unreadable when it has no usable shape or name."""
    if not isinstance(obj, dict):
        raise Unreadable(f"a {kind} that is not an object: {brief(obj)}")
    meta = _object(obj.get("metadata"), f"a {kind}'s metadata")
    name = _str(meta.get("name"))
    if name is None:
        raise Unreadable(f"a {kind} without a name: {brief(meta.get('name'))}")
    namespace = _str(meta.get("namespace"))
    label = f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"
    return meta, _object(obj.get("spec"), f"{label}: spec"), _object(obj.get("status"), f"{label}: status"), name


def quantity(value: Any) -> float | None:
    """A Kubernetes quantity ("8", "500m", 2) as a finite, non-negative float; None for junk.

    parse_quantity alone accepts "NaN", "Infinity", "-1" and "1e309" (as Decimal NaN, inf, ...),
    and raises ArithmeticError on exponents past Decimal's range.
    """
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    # Imported here: the module is tiny, but importing it imports the whole client (a third of a
    # second), and kube_cache, which the Ray and KFP raw views use, imports this module.
    from kubernetes.utils.quantity import parse_quantity

    try:
        amount = float(parse_quantity(value))
    except (ValueError, TypeError, ArithmeticError):
        return None
    return number(amount)


def _amount(value: Any, what: str) -> float:
    """An accelerator amount; junk here would make GPU accounting wrong, so it is Unreadable."""
    amount = quantity(value)
    if amount is None:
        raise Unreadable(f"{what} {brief(value)} is not a quantity")
    return amount


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 time as an aware UTC datetime (never naive: the cost engine compares them)."""
    return rfc3339(value)


def is_accelerator(resource: Any) -> bool:
    return isinstance(resource, str) and (resource in WHOLE_GPU_RESOURCES or resource.startswith(MIG_PREFIX))


# -- pods --------------------------------------------------------------------------------------


def _containers(spec: Mapping[str, Any], field: str) -> list[dict[str, Any]]:
    containers = spec.get(field)
    if containers is None:
        return []
    if not isinstance(containers, list) or not all(isinstance(c, dict) for c in containers):
        # A container we cannot read may hold GPUs: counting the rest would understate the pod.
        raise Unreadable(f"{field} is not a list of objects: {brief(containers)}")
    return containers


def _resource_list(container: Mapping[str, Any], part: str) -> dict[str, Any]:
    return mapping(mapping(container.get("resources")).get(part))


def _container_request(container: Mapping[str, Any], resource: str) -> float:
    requests = _resource_list(container, "requests")
    if resource in requests:
        return _amount(requests[resource], f"{_str(container.get('name')) or 'a container'}'s {resource} request")
    # Extended resources cannot be overcommitted: a limit alone means the same request.
    limits = _resource_list(container, "limits")
    if resource in limits:
        return _amount(limits[resource], f"{_str(container.get('name')) or 'a container'}'s {resource} limit")
    return 0.0


def effective_requests(spec: Mapping[str, Any]) -> dict[str, float]:
    """Accelerator requests of a pod spec as the scheduler counts them.

    Unreadable when a container list or an accelerator amount cannot be read."""
    spec = mapping(spec)
    containers = _containers(spec, "containers")
    inits = _containers(spec, "initContainers")
    overhead = mapping(spec.get("overhead"))
    names = {
        r
        for c in [*containers, *inits]
        for part in ("requests", "limits")
        for r in _resource_list(c, part)
        if is_accelerator(r)
    }
    names |= {r for r in overhead if is_accelerator(r)}
    out: dict[str, float] = {}
    for resource in sorted(names):
        regular = sum(_container_request(c, resource) for c in containers)
        sidecars = 0.0
        init_peak = 0.0
        for init in inits:
            amount = _container_request(init, resource)
            if init.get("restartPolicy") == "Always":  # a sidecar: runs alongside everything after it
                sidecars += amount
                init_peak = max(init_peak, sidecars)
            else:
                init_peak = max(init_peak, amount + sidecars)
        extra = _amount(overhead[resource], f"{resource} overhead") if resource in overhead else 0.0
        total = max(regular + sidecars, init_peak) + extra
        if total:
            out[resource] = total
    return out


@dataclass(frozen=True)
class PodFacts:
    """What mltop keeps of a pod: a few hundred bytes instead of the whole object."""

    namespace: str
    name: str
    node_name: str | None
    phase: str
    requests: tuple[tuple[str, float], ...]
    created_at: datetime | None
    owner: str | None  # "Kind/name" of the controlling owner
    waiting_reason: str | None  # the scheduler's word on an unbound pod
    ready: bool
    ray_cluster: str | None
    ray_group: str | None
    placement: tuple[tuple[str, str], ...] = ()
    tolerates: tuple[str, ...] = ()
    finished_at: datetime | None = None
    claims: tuple[tuple[str, str], ...] = ()  # DRA: (reference, ResourceClaim name or "" not made yet)


def _placement(spec: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """Node labels a pod requires: its nodeSelector and single-valued required affinity terms."""
    pairs = _strings(spec.get("nodeSelector"))
    required = mapping(mapping(mapping(spec.get("affinity")).get("nodeAffinity"))
                       .get("requiredDuringSchedulingIgnoredDuringExecution"))
    terms = sequence(required.get("nodeSelectorTerms"))
    if len(terms) == 1:  # several terms are ORed: too loose to explain with
        for expr in sequence(mapping(terms[0]).get("matchExpressions")):
            expr = mapping(expr)
            key, values = _str(expr.get("key")), sequence(expr.get("values"))
            if expr.get("operator") == "In" and key and len(values) == 1 and isinstance(values[0], str):
                pairs[key] = values[0]
    return tuple(sorted(pairs.items()))


def _tolerates(spec: Mapping[str, Any]) -> tuple[str, ...]:
    keys = []
    for toleration in sequence(spec.get("tolerations")):
        toleration = mapping(toleration)
        key = _str(toleration.get("key"))
        if toleration.get("operator") == "Exists" and not toleration.get("key"):
            return ("*",)
        if key:
            keys.append(key)
    return tuple(sorted(set(keys)))


def _finished_at(status: Mapping[str, Any]) -> datetime | None:
    ends = [parse_time(mapping(mapping(mapping(c).get("state")).get("terminated")).get("finishedAt"))
            for c in sequence(status.get("containerStatuses"))]
    known = [e for e in ends if e is not None]
    return max(known) if known else None


def _conditions(status: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Conditions by type; entries that are not objects or have no string type are junk."""
    return {c["type"]: c for c in sequence(status.get("conditions"))
            if isinstance(c, dict) and isinstance(c.get("type"), str)}


def pod_facts(obj: Any) -> PodFacts | None:
    """The facts of a pod that asks for accelerators or is a KubeRay worker; None otherwise.

    Unreadable when the pod has no usable shape or name, or an accelerator amount is junk."""
    meta, spec, status, name = _parts(obj, "pod")
    namespace = _str(meta.get("namespace")) or "default"
    labels = _strings(meta.get("labels"))
    try:
        requests = effective_requests(spec)
    except Unreadable as exc:
        raise Unreadable(f"pod {namespace}/{name}: {exc}") from None
    ray_group = labels.get("ray.io/group") if labels.get("ray.io/node-type") == "worker" else None
    claims = pod_claims(spec, status)
    if not requests and ray_group is None and not claims:
        return None  # most pods of a big cluster: not kept at all
    owners = [o for o in sequence(meta.get("ownerReferences")) if isinstance(o, dict)]
    controller = next((o for o in owners if o.get("controller") is True), owners[0] if owners else {})
    owner_kind, owner_name = _str(controller.get("kind")), _str(controller.get("name"))
    conditions = _conditions(status)
    scheduled = conditions.get("PodScheduled") or {}
    reason = None
    if scheduled.get("status") == "False":
        reason = _str(scheduled.get("message")) or _str(scheduled.get("reason"))
    node_name = _str(spec.get("nodeName"))
    phase = _str(status.get("phase")) or "Pending"
    return PodFacts(
        namespace=namespace,
        name=name,
        node_name=node_name,
        phase=phase,
        requests=tuple(sorted(requests.items())),
        created_at=parse_time(meta.get("creationTimestamp")),
        owner=f"{owner_kind}/{owner_name}" if owner_kind and owner_name else None,
        waiting_reason=reason,
        ready=(conditions.get("Ready") or {}).get("status") == "True",
        ray_cluster=labels.get("ray.io/cluster"),
        ray_group=ray_group,
        placement=_placement(spec) if not node_name else (),
        tolerates=_tolerates(spec) if not node_name else (),
        finished_at=_finished_at(status) if phase in FINISHED_PHASES else None,
        claims=claims,
    )


def holds_gpus(pod: PodFacts) -> bool:
    return pod.node_name is not None and pod.phase not in FINISHED_PHASES and bool(pod.requests)


def pending_job(pod: PodFacts, cluster: str) -> Job | None:
    """An unbound pod asking for GPUs is part of the queue."""
    if pod.node_name is not None or pod.phase != "Pending" or not pod.requests:
        return None
    gpus = sum(amount for _, amount in pod.requests)
    return Job(
        key=f"{KIND}/{cluster}/{pod.namespace}/{pod.name}",
        source=KIND,
        cluster=cluster,
        id=f"{pod.namespace}/{pod.name}",
        name=pod.owner.split("/", 1)[1] if pod.owner else pod.name,
        state=JobState.PENDING,
        native_state="Pending",
        gpus=gpus,
        submitted_at=pod.created_at,
        started_at=None,
        finished_at=None,
        owner=pod.owner,
        message=pod.waiting_reason,
        kind="Pod",
        namespace=pod.namespace,
        placement=pod.placement,
        tolerates=pod.tolerates,
    )
