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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kubernetes.utils.quantity import parse_quantity

from mltop.adapters.values import Skips, integer, mapping, number, rfc3339, sequence
from mltop.model import GpuNode, GpuPod, Job, JobState, Pool

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
    if not requests and ray_group is None:
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


# -- nodes -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeFacts:
    name: str
    labels: tuple[tuple[str, str], ...]
    capacity: tuple[tuple[str, float], ...]  # accelerator resources only
    allocatable: tuple[tuple[str, float], ...]
    unschedulable: bool
    taints: tuple[str, ...]
    ready: bool
    conditions: tuple[tuple[str, str, str], ...]
    created_at: datetime | None
    instance_id: str | None
    machine_deployment: str | None = None


def _machine_deployment(annotations: Mapping[str, str]) -> str | None:
    """Cluster API annotates its nodes with the owning MachineSet, named '<deployment>-<suffix>'."""
    if annotations.get("cluster.x-k8s.io/owner-kind") != "MachineSet":
        return None
    owner = annotations.get("cluster.x-k8s.io/owner-name") or ""
    namespace = annotations.get("cluster.x-k8s.io/cluster-namespace") or "default"
    deployment = owner.rsplit("-", 1)[0] if "-" in owner else ""
    return f"{namespace}/{deployment}" if deployment else None


def _accelerators(resources: Any, what: str) -> dict[str, float]:
    """The accelerator amounts of a capacity or allocatable list; a junk amount is Unreadable."""
    return {k: _amount(v, f"{what} {k}") for k, v in _object(resources, what).items() if is_accelerator(k)}


def _taint(taint: Any) -> str | None:
    taint = mapping(taint)
    key = _str(taint.get("key"))
    if key is None:
        return None  # a taint needs a key; without one it taints nothing we can name
    value = _str(taint.get("value"))
    return f"{key}{'=' + value if value else ''}:{_str(taint.get('effect')) or ''}"


def node_facts(obj: Any) -> NodeFacts | None:
    """The facts of a node with accelerator capacity; None for CPU-only nodes.

    Unreadable when the node has no usable shape or name, or an accelerator amount is junk
    (a GPU count of "nan" is not zero GPUs: showing the node with a made-up count would lie)."""
    meta, spec, status, name = _parts(obj, "node")
    capacity = _accelerators(status.get("capacity"), f"node {name}: capacity")
    allocatable = _accelerators(status.get("allocatable"), f"node {name}: allocatable")
    if not any(capacity.values()) and not any(allocatable.values()):
        return None
    conditions = []
    ready = False
    for c in sequence(status.get("conditions")):
        c = mapping(c)
        ctype, cstatus = _str(c.get("type")) or "", _str(c.get("status")) or ""
        if ctype == "Ready":
            ready = cstatus == "True"
        # Keep Ready and any pressure/problem condition that is on.
        if ctype == "Ready" or cstatus == "True":
            conditions.append((ctype, cstatus, _str(c.get("message")) or _str(c.get("reason")) or ""))
    taints = tuple(t for t in map(_taint, sequence(spec.get("taints"))) if t is not None)
    return NodeFacts(
        name=name,
        labels=tuple(sorted(_strings(meta.get("labels")).items())),
        capacity=tuple(sorted(capacity.items())),
        allocatable=tuple(sorted(allocatable.items())),
        unschedulable=spec.get("unschedulable") is True,  # bool("false") would cordon it
        taints=taints,
        ready=ready,
        conditions=tuple(conditions),
        created_at=parse_time(meta.get("creationTimestamp")),
        instance_id=_str(spec.get("providerID")),
        machine_deployment=_machine_deployment(_strings(meta.get("annotations"))),
    )


def pool_of(labels: Mapping[str, str]) -> tuple[str | None, str | None]:
    """(pool name, what kind of pool the label says it is)."""
    for label, kind in POOL_LABELS:
        if labels.get(label):
            return labels[label], kind
    return None, None


def gpu_model(labels: Mapping[str, str]) -> str | None:
    for label in MODEL_LABELS:
        if labels.get(label):
            return labels[label]
    return None


def capacity_type(labels: Mapping[str, str]) -> str | None:
    value = (
        labels.get("karpenter.sh/capacity-type")
        or labels.get("eks.amazonaws.com/capacityType")
        or labels.get("kubernetes.azure.com/scalesetpriority")
    )
    if value:
        return "spot" if value.lower() == "spot" else "on-demand"
    if labels.get("cloud.google.com/gke-spot") == "true" or labels.get("cloud.google.com/gke-preemptible") == "true":
        return "spot"
    if labels.get("cloud.google.com/gke-nodepool") or labels.get("kubernetes.azure.com/agentpool"):
        return "on-demand"  # GKE and AKS label only the spot case
    return None


def _gpu_share(resource: str) -> float:
    """How much of a physical GPU one unit of `resource` is."""
    match = MIG_PROFILE.match(resource)
    if match:
        return min(1.0, int(match.group(1)) / MIG_SLICES_PER_GPU)
    return 1.0


def gpu_node(node: NodeFacts, pods: Iterable[PodFacts], cluster: str) -> GpuNode:
    labels = dict(node.labels)
    capacity = dict(node.capacity)
    allocatable = dict(node.allocatable)
    sharing = None
    strategy = labels.get("nvidia.com/gpu.sharing-strategy")
    # integer(), not str.isdigit(): "²".isdigit() is True and int("²") raises.
    replicas = integer(labels.get("nvidia.com/gpu.replicas"), minimum=1, maximum=NO_MAX) or 1
    if replicas > 1:
        sharing = f"{strategy or 'time-slicing'} x{replicas}"
    mig = sorted(r for r in capacity if r.startswith(MIG_PREFIX))
    if mig:
        sharing = "MIG " + ", ".join(f"{int(capacity[r])}x {r[len(MIG_PREFIX):]}" for r in mig)
    elif labels.get("nvidia.com/mig.strategy") == "single":
        sharing = "MIG (single)"

    def physical(resource: str, amount: float) -> float:
        if resource == "nvidia.com/gpu":
            return amount / replicas
        return amount * _gpu_share(resource)

    resources = sorted(set(capacity) | set(allocatable))
    primary = next((r for r in WHOLE_GPU_RESOURCES if r in resources and capacity.get(r)), None)
    primary = primary or (mig[0] if mig else resources[0] if resources else WHOLE_GPU_RESOURCES[0])
    total = sum(physical(r, capacity.get(r, 0.0)) for r in resources)
    gpu_count = integer(labels.get("nvidia.com/gpu.count"))
    if mig and gpu_count is not None:
        total = float(gpu_count)  # MIG: the GPUs themselves, not the slices
    holding = []
    allocated = 0.0
    last_end = None
    for pod in pods:
        if pod.finished_at is not None and pod.requests:
            last_end = pod.finished_at if last_end is None else max(last_end, pod.finished_at)
        if not holds_gpus(pod):
            continue
        gpus = sum(physical(r, amount) for r, amount in pod.requests if r in resources)
        if gpus:
            allocated += gpus
            holding.append(GpuPod(pod.namespace, pod.name, gpus, pod.phase, pod.owner))
    pool, _ = pool_of(labels)
    if pool is None and node.machine_deployment:
        pool = node.machine_deployment.split("/", 1)[1]  # Cluster API: its MachineDeployment is its pool
    return GpuNode(
        key=f"{KIND}/{cluster}/{node.name}",
        cluster=cluster,
        name=node.name,
        pool=pool,
        gpu_model=gpu_model(labels),
        gpu_resource=primary,
        gpus_total=total,
        gpus_allocatable=sum(physical(r, allocatable.get(r, 0.0)) for r in resources),
        gpus_allocated=allocated,
        ready=node.ready,
        schedulable=not node.unschedulable,
        taints=node.taints,
        instance_type=labels.get("node.kubernetes.io/instance-type") or labels.get("beta.kubernetes.io/instance-type"),
        zone=labels.get("topology.kubernetes.io/zone") or labels.get("failure-domain.beta.kubernetes.io/zone"),
        capacity_type=capacity_type(labels),
        created_at=node.created_at,
        sharing=sharing,
        pods=tuple(sorted(holding, key=lambda p: (p.namespace, p.name))),
        conditions=node.conditions,
        labels=node.labels,
        machine_deployment=node.machine_deployment,
        last_gpu_pod_end=last_end,
    )


# -- pools -------------------------------------------------------------------------------------


def node_pools(nodes: Iterable[tuple[NodeFacts, GpuNode]], cluster: str) -> list[Pool]:
    """GPU nodes grouped by their pool label. Kubernetes alone cannot resize these."""
    groups: dict[str, list[GpuNode]] = {}
    kinds: dict[str, str | None] = {}
    for facts, node in nodes:
        name, kind = pool_of(dict(facts.labels))
        groups.setdefault(name or "(no pool)", []).append(node)
        kinds[name or "(no pool)"] = kind
    pools = []
    for name, members in sorted(groups.items()):
        kind = kinds[name]
        models = sorted({n.gpu_model for n in members if n.gpu_model})
        pools.append(
            Pool(
                key=f"{KIND}/{cluster}/nodepool/-/{name}",
                cluster=cluster,
                kind="nodepool",
                name=name,
                namespace=None,
                replicas=len(members),
                ready=sum(1 for n in members if n.ready),
                min=None,
                max=None,
                gpus_per_replica=members[0].gpus_total if len({n.gpus_total for n in members}) == 1 else None,
                gpus_total=sum(n.gpus_allocatable for n in members),
                gpus_allocated=sum(n.gpus_allocated for n in members),
                gpu_model=", ".join(models) or None,
                scalable=False,
                why_not_scalable=WHY_NOT_SCALABLE.get(kind or "", "nodes without a pool label: nothing to resize"),
                autoscaled=kind is not None and kind.startswith("Karpenter"),
                members=tuple(sorted(n.name for n in members)),
            )
        )
    return pools


def _count(holder: Mapping[str, Any], key: str, default: int | None, unknown: list[str], *,
           minimum: int = 0) -> int | None:
    """A replica count (int32 in every CRD here): absent is `default`; junk is None and noted in `unknown`."""
    raw = holder.get(key)
    if raw is None:
        return default
    value = integer(raw, minimum=minimum, maximum=NO_MAX)
    if value is None:
        unknown.append(f"{key} {brief(raw)}")
    return value


def _not_scalable(what: str, unknown: list[str]) -> str:
    return f"{what}: {', '.join(unknown)} cannot be read; fix the object before scaling it from here"


def worker_groups(raycluster: Any, pods: Iterable[PodFacts], cluster: str, skips: Skips | None = None) -> list[Pool]:
    """A KubeRay RayCluster's worker groups (ray.io/v1).

    Unreadable when the RayCluster itself cannot be used (no name, spec or workerGroupSpecs
    junk); a worker group that cannot be used (not an object, no groupName) is left out and
    counted in `skips`. A group whose counts cannot be read is shown with them unknown and is
    not scalable: a scale plan compares and writes exactly those fields."""
    meta, spec, _, rc_name = _parts(raycluster, "RayCluster")
    namespace = _str(meta.get("namespace")) or "default"
    where = f"RayCluster {namespace}/{rc_name}"
    groups = spec.get("workerGroupSpecs")
    if groups is not None and not isinstance(groups, list):
        raise Unreadable(f"{where}: workerGroupSpecs is not a list: {brief(groups)}")
    autoscaling = spec.get("enableInTreeAutoscaling")
    cluster_unknown = [] if autoscaling is None or isinstance(autoscaling, bool) else [
        f"enableInTreeAutoscaling {brief(autoscaling)}"]
    mine = [p for p in pods if p.ray_cluster == rc_name and p.namespace == namespace and p.ray_group]
    pools = []
    for index, group in enumerate(groups or []):
        group_name = _str(group.get("groupName")) if isinstance(group, dict) else None
        if group_name is None:
            if skips is not None:
                skips.add(f"{where}: worker group #{index} has no groupName or is not an object")
            continue
        unknown = list(cluster_unknown)
        replicas = _count(group, "replicas", 0, unknown)
        low = _count(group, "minReplicas", 0, unknown)
        high = _count(group, "maxReplicas", None, unknown)
        hosts_unknown: list[str] = []  # numOfHosts only scales the GPU figure, not what a scale writes
        hosts = _count(group, "numOfHosts", 1, hosts_unknown, minimum=1) if group.get("numOfHosts") != 0 else 1
        gpus: float | None
        try:
            gpus = sum(effective_requests(mapping(mapping(group.get("template")).get("spec"))).values())
        except Unreadable:
            gpus = None  # the group stays; only its GPUs per worker are unknown
        start_gpus = mapping(group.get("rayStartParams")).get("num-gpus")
        if not gpus and start_gpus is not None:
            gpus = quantity(start_gpus)
        members = [p for p in mine if p.ray_group == group_name and p.phase not in FINISHED_PHASES]
        pools.append(
            Pool(
                key=f"{KIND}/{cluster}/raycluster-workergroup/{namespace}/{rc_name}/{group_name}",
                cluster=cluster,
                kind="raycluster-workergroup",
                name=f"{rc_name}/{group_name}",
                namespace=namespace,
                replicas=replicas,
                ready=sum(1 for p in members if p.ready and p.phase == "Running"),
                min=low,
                max=None if high == NO_MAX else high,
                gpus_per_replica=None if gpus is None or hosts is None else gpus * hosts,
                scalable=not unknown,
                why_not_scalable=_not_scalable(f"{where} group {group_name}", unknown) if unknown else None,
                autoscaled=autoscaling is True,
                members=tuple(sorted(p.name for p in members)),
                parent=rc_name,
                resource_version=_str(meta.get("resourceVersion")),
            )
        )
    return pools


def machine_deployment(obj: Any, cluster: str, nodes: Iterable[GpuNode] = ()) -> Pool:
    """A Cluster API MachineDeployment (v1beta1 fields; v1beta2 keeps the same counters).

    Unreadable when it has no usable shape or name. Counts that cannot be read are unknown,
    and then it is not scalable (a scale writes replicas within the min/max annotations)."""
    meta, spec, status, name = _parts(obj, "MachineDeployment")
    namespace = _str(meta.get("namespace")) or "default"
    annotations = _strings(meta.get("annotations"))
    unknown: list[str] = []
    replicas = _count(spec, "replicas", 0, unknown)
    low = _count(annotations, CAPI_MIN, None, unknown)
    high = _count(annotations, CAPI_MAX, None, unknown)
    ready = _count(status, "readyReplicas", 0, [])  # only shown: unknown is enough
    gpus = annotations.get(CAPI_GPU_COUNT)
    mine = [n for n in nodes if n.machine_deployment == f"{namespace}/{name}"]
    return Pool(
        key=f"{KIND}/{cluster}/machinedeployment/{namespace}/{name}",
        cluster=cluster,
        kind="machinedeployment",
        name=name,
        namespace=namespace,
        replicas=replicas,
        ready=ready,
        min=low,
        max=high,
        gpus_per_replica=quantity(gpus) if gpus else None,
        gpus_total=sum(n.gpus_allocatable for n in mine) if mine else None,
        gpus_allocated=sum(n.gpus_allocated for n in mine) if mine else None,
        gpu_model=", ".join(sorted({n.gpu_model for n in mine if n.gpu_model})) or None,
        scalable=not unknown,
        why_not_scalable=_not_scalable(f"MachineDeployment {namespace}/{name}", unknown) if unknown else None,
        autoscaled=low is not None and high is not None,
        members=tuple(sorted(n.name for n in mine)),
        resource_version=_str(meta.get("resourceVersion")),
    )
