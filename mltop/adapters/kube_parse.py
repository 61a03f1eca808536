"""Kubernetes objects (raw JSON dicts) -> mltop's records. Pure functions, no I/O.

Contracts: ../shared/reference/backend-apis.md part C. What Kubernetes counts, counted the same:
- a pod's effective request for a resource is max(sum of containers + restartable init
  containers (sidecars), the largest init container plus the sidecars started before it) plus
  the pod overhead; extended resources fall back to limits when requests are absent;
- only pods bound to a node and not finished (Succeeded/Failed) hold its GPUs;
- time-sliced GPUs (nvidia.com/gpu.replicas) are divided back into physical GPUs; MIG slices
  count as their share of a GPU.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kubernetes.utils.quantity import parse_quantity

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
MIG_PROFILE = re.compile(r"^nvidia\.com/mig-(\d+)g\.(\d+)gb$")
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
NO_MAX = 2147483647  # KubeRay's default maxReplicas: no limit
CAPI_MIN = "cluster.x-k8s.io/cluster-api-autoscaler-node-group-min-size"
CAPI_MAX = "cluster.x-k8s.io/cluster-api-autoscaler-node-group-max-size"
CAPI_GPU_COUNT = "capacity.cluster-autoscaler.kubernetes.io/gpu-count"
FINISHED_PHASES = {"Succeeded", "Failed"}


def quantity(value: Any) -> float:
    try:
        return float(parse_quantity(value))
    except (ValueError, TypeError):
        return 0.0


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def is_accelerator(resource: str) -> bool:
    return resource in WHOLE_GPU_RESOURCES or resource.startswith(MIG_PREFIX)


# -- pods --------------------------------------------------------------------------------------


def _container_request(container: Mapping[str, Any], resource: str) -> float:
    resources = container.get("resources") or {}
    requests = resources.get("requests") or {}
    limits = resources.get("limits") or {}
    if resource in requests:
        return quantity(requests[resource])
    # Extended resources cannot be overcommitted: a limit alone means the same request.
    return quantity(limits.get(resource, 0))


def effective_requests(spec: Mapping[str, Any]) -> dict[str, float]:
    """Accelerator requests of a pod spec as the scheduler counts them."""
    containers = spec.get("containers") or []
    inits = spec.get("initContainers") or []
    names = {
        r
        for c in [*containers, *inits]
        for part in ("requests", "limits")
        for r in ((c.get("resources") or {}).get(part) or {})
        if is_accelerator(r)
    }
    names |= {r for r in (spec.get("overhead") or {}) if is_accelerator(r)}
    out: dict[str, float] = {}
    for resource in names:
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
        total = max(regular + sidecars, init_peak) + quantity((spec.get("overhead") or {}).get(resource, 0))
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
    pairs = dict(spec.get("nodeSelector") or {})
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    terms = required.get("nodeSelectorTerms") or []
    if len(terms) == 1:  # several terms are ORed: too loose to explain with
        for expr in terms[0].get("matchExpressions") or []:
            if expr.get("operator") == "In" and len(expr.get("values") or []) == 1:
                pairs[expr["key"]] = expr["values"][0]
    return tuple(sorted(pairs.items()))


def _tolerates(spec: Mapping[str, Any]) -> tuple[str, ...]:
    keys = []
    for toleration in spec.get("tolerations") or []:
        if toleration.get("operator") == "Exists" and not toleration.get("key"):
            return ("*",)
        if toleration.get("key"):
            keys.append(toleration["key"])
    return tuple(sorted(set(keys)))


def _finished_at(status: Mapping[str, Any]) -> datetime | None:
    ends = [parse_time(((c.get("state") or {}).get("terminated") or {}).get("finishedAt"))
            for c in status.get("containerStatuses") or []]
    ends = [e for e in ends if e is not None]
    return max(ends) if ends else None


def pod_facts(obj: Mapping[str, Any]) -> PodFacts | None:
    """The facts of a pod that asks for accelerators or is a KubeRay worker; None otherwise."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    labels = meta.get("labels") or {}
    requests = effective_requests(spec)
    ray_group = labels.get("ray.io/group") if labels.get("ray.io/node-type") == "worker" else None
    if not requests and ray_group is None:
        return None  # most pods of a big cluster: not kept at all
    owners = meta.get("ownerReferences") or []
    controller = next((o for o in owners if o.get("controller")), owners[0] if owners else None)
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    scheduled = conditions.get("PodScheduled") or {}
    reason = None
    if scheduled.get("status") == "False":
        reason = scheduled.get("message") or scheduled.get("reason")
    return PodFacts(
        namespace=meta.get("namespace") or "default",
        name=meta.get("name") or "",
        node_name=spec.get("nodeName") or None,
        phase=status.get("phase") or "Pending",
        requests=tuple(sorted(requests.items())),
        created_at=parse_time(meta.get("creationTimestamp")),
        owner=f"{controller.get('kind')}/{controller.get('name')}" if controller else None,
        waiting_reason=reason,
        ready=(conditions.get("Ready") or {}).get("status") == "True",
        ray_cluster=labels.get("ray.io/cluster"),
        ray_group=ray_group,
        placement=_placement(spec) if not spec.get("nodeName") else (),
        tolerates=_tolerates(spec) if not spec.get("nodeName") else (),
        finished_at=_finished_at(status) if status.get("phase") in FINISHED_PHASES else None,
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
    if "-" not in owner:
        return None
    return f"{namespace}/{owner.rsplit('-', 1)[0]}"


def node_facts(obj: Mapping[str, Any]) -> NodeFacts | None:
    """The facts of a node with accelerator capacity; None for CPU-only nodes."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    capacity = {k: quantity(v) for k, v in (status.get("capacity") or {}).items() if is_accelerator(k)}
    allocatable = {k: quantity(v) for k, v in (status.get("allocatable") or {}).items() if is_accelerator(k)}
    if not any(capacity.values()) and not any(allocatable.values()):
        return None
    conditions = []
    ready = False
    for c in status.get("conditions") or []:
        ctype, cstatus = c.get("type", ""), c.get("status", "")
        if ctype == "Ready":
            ready = cstatus == "True"
        # Keep Ready and any pressure/problem condition that is on.
        if ctype == "Ready" or cstatus == "True":
            conditions.append((ctype, cstatus, c.get("message") or c.get("reason") or ""))
    taints = tuple(
        f"{t.get('key')}{'=' + t['value'] if t.get('value') else ''}:{t.get('effect')}" for t in spec.get("taints") or []
    )
    return NodeFacts(
        name=meta.get("name") or "",
        labels=tuple(sorted((meta.get("labels") or {}).items())),
        capacity=tuple(sorted(capacity.items())),
        allocatable=tuple(sorted(allocatable.items())),
        unschedulable=bool(spec.get("unschedulable")),
        taints=taints,
        ready=ready,
        conditions=tuple(conditions),
        created_at=parse_time(meta.get("creationTimestamp")),
        instance_id=spec.get("providerID"),
        machine_deployment=_machine_deployment(meta.get("annotations") or {}),
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
    replicas = 1
    sharing = None
    strategy = labels.get("nvidia.com/gpu.sharing-strategy")
    if labels.get("nvidia.com/gpu.replicas", "1").isdigit() and int(labels.get("nvidia.com/gpu.replicas", "1")) > 1:
        replicas = int(labels["nvidia.com/gpu.replicas"])
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
    primary = primary or (mig[0] if mig else resources[0])
    total = sum(physical(r, capacity.get(r, 0.0)) for r in resources)
    if mig and labels.get("nvidia.com/gpu.count", "").isdigit():
        total = float(labels["nvidia.com/gpu.count"])  # MIG: the GPUs themselves, not the slices
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


def worker_groups(raycluster: Mapping[str, Any], pods: Iterable[PodFacts], cluster: str) -> list[Pool]:
    """A KubeRay RayCluster's worker groups (ray.io/v1)."""
    meta = raycluster.get("metadata") or {}
    spec = raycluster.get("spec") or {}
    rc_name = meta.get("name") or ""
    namespace = meta.get("namespace") or "default"
    autoscaled = bool(spec.get("enableInTreeAutoscaling"))
    mine = [p for p in pods if p.ray_cluster == rc_name and p.namespace == namespace and p.ray_group]
    pools = []
    for group in spec.get("workerGroupSpecs") or []:
        group_name = group.get("groupName") or ""
        template_spec = (group.get("template") or {}).get("spec") or {}
        requests = effective_requests(template_spec)
        gpus = sum(requests.values())
        start_gpus = (group.get("rayStartParams") or {}).get("num-gpus")
        if not gpus and start_gpus is not None:
            gpus = quantity(start_gpus)
        members = [p for p in mine if p.ray_group == group_name and p.phase not in FINISHED_PHASES]
        maximum = group.get("maxReplicas", NO_MAX)
        pools.append(
            Pool(
                key=f"{KIND}/{cluster}/raycluster-workergroup/{namespace}/{rc_name}/{group_name}",
                cluster=cluster,
                kind="raycluster-workergroup",
                name=f"{rc_name}/{group_name}",
                namespace=namespace,
                replicas=int(group.get("replicas", 0) or 0),
                ready=sum(1 for p in members if p.ready and p.phase == "Running"),
                min=int(group.get("minReplicas", 0) or 0),
                max=None if maximum in (None, NO_MAX) else int(maximum),
                gpus_per_replica=gpus * int(group.get("numOfHosts", 1) or 1),
                scalable=True,
                autoscaled=autoscaled,
                members=tuple(sorted(p.name for p in members)),
                parent=rc_name,
                resource_version=meta.get("resourceVersion"),
            )
        )
    return pools


def machine_deployment(obj: Mapping[str, Any], cluster: str, nodes: Iterable[GpuNode] = ()) -> Pool:
    """A Cluster API MachineDeployment (v1beta1 fields; v1beta2 keeps the same counters)."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    annotations = meta.get("annotations") or {}
    low, high = annotations.get(CAPI_MIN), annotations.get(CAPI_MAX)
    gpus = annotations.get(CAPI_GPU_COUNT)
    namespace = meta.get("namespace") or "default"
    name = meta.get("name") or ""
    mine = [n for n in nodes if n.machine_deployment == f"{namespace}/{name}"]
    return Pool(
        key=f"{KIND}/{cluster}/machinedeployment/{namespace}/{name}",
        cluster=cluster,
        kind="machinedeployment",
        name=name,
        namespace=namespace,
        replicas=int(spec.get("replicas", 0) or 0),
        ready=int(status.get("readyReplicas", 0) or 0),
        min=int(low) if low and low.isdigit() else None,
        max=int(high) if high and high.isdigit() else None,
        gpus_per_replica=quantity(gpus) if gpus else None,
        gpus_total=sum(n.gpus_allocatable for n in mine) if mine else None,
        gpus_allocated=sum(n.gpus_allocated for n in mine) if mine else None,
        gpu_model=", ".join(sorted({n.gpu_model for n in mine if n.gpu_model})) or None,
        scalable=True,
        autoscaled=bool(low and high),
        members=tuple(sorted(n.name for n in mine)),
        resource_version=meta.get("resourceVersion"),
    )
