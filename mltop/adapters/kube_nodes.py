"""Kubernetes nodes (raw JSON dicts) -> `NodeFacts` (what the watch cache keeps) and `GpuNode`
records (what the screen shows). Pure functions, no I/O.

Time-sliced GPUs (nvidia.com/gpu.replicas) are divided back into physical GPUs; MIG slices count
as their share of a GPU. Total like `kube_parse`: an unusable node raises `Unreadable`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mltop.adapters.kube_parse import (
    KIND,
    MIG_PREFIX,
    MIG_PROFILE,
    MIG_SLICES_PER_GPU,
    MODEL_LABELS,
    NO_MAX,
    POOL_LABELS,
    WHOLE_GPU_RESOURCES,
    PodFacts,
    _amount,
    _object,
    _parts,
    _str,
    _strings,
    holds_gpus,
    is_accelerator,
    parse_time,
)
from mltop.adapters.values import integer, mapping, sequence
from mltop.model import GpuNode, GpuPod


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


def node_facts(obj: Any, *, keep_all: bool = False) -> NodeFacts | None:
    """The facts of a node with accelerator capacity; None for CPU-only nodes unless `keep_all`
    (DRA: a node's GPUs may be in ResourceSlices only, kube_dra.py).

    Unreadable when the node has no usable shape or name, or an accelerator amount is junk
    (a GPU count of "nan" is not zero GPUs: showing the node with a made-up count would lie)."""
    meta, spec, status, name = _parts(obj, "node")
    capacity = _accelerators(status.get("capacity"), f"node {name}: capacity")
    allocatable = _accelerators(status.get("allocatable"), f"node {name}: allocatable")
    if not keep_all and not any(capacity.values()) and not any(allocatable.values()):
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


def _sharing(labels: Mapping[str, str], capacity: Mapping[str, float]) -> tuple[str | None, int]:
    """How the node's GPUs are shared ("time-slicing x4", "MIG 7x 1g.10gb"), and the time-slicing
    replica count (1 when not time-sliced)."""
    sharing = None
    # integer(), not str.isdigit(): "²".isdigit() is True and int("²") raises.
    replicas = integer(labels.get("nvidia.com/gpu.replicas"), minimum=1, maximum=NO_MAX) or 1
    if replicas > 1:
        sharing = f"{labels.get('nvidia.com/gpu.sharing-strategy') or 'time-slicing'} x{replicas}"
    mig = sorted(r for r in capacity if r.startswith(MIG_PREFIX))
    if mig:
        sharing = "MIG " + ", ".join(f"{int(capacity[r])}x {r[len(MIG_PREFIX):]}" for r in mig)
    elif labels.get("nvidia.com/mig.strategy") == "single":
        sharing = "MIG (single)"
    return sharing, replicas


def _holders(pods: Iterable[PodFacts], physical: Any, resources: list[str]) -> tuple[list[GpuPod], float, Any]:
    """The pods holding the node's GPUs, the GPUs they hold, and when its last GPU pod ended."""
    holding, allocated, last_end = [], 0.0, None
    for pod in pods:
        if pod.finished_at is not None and pod.requests:
            last_end = pod.finished_at if last_end is None else max(last_end, pod.finished_at)
        if not holds_gpus(pod):
            continue
        gpus = sum(physical(r, amount) for r, amount in pod.requests if r in resources)
        if gpus:
            allocated += gpus
            holding.append(GpuPod(pod.namespace, pod.name, gpus, pod.phase, pod.owner))
    return holding, allocated, last_end


def gpu_node(node: NodeFacts, pods: Iterable[PodFacts], cluster: str) -> GpuNode:
    labels = dict(node.labels)
    capacity = dict(node.capacity)
    allocatable = dict(node.allocatable)
    sharing, replicas = _sharing(labels, capacity)
    mig = sorted(r for r in capacity if r.startswith(MIG_PREFIX))

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
    holding, allocated, last_end = _holders(pods, physical, resources)
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


class GpuNodes:
    """`gpu_node`, remembered per node. The watch caches hand back the same record objects until an
    object changes, and the pod cache counts each node's pod changes (WatchCache.group_versions),
    so a node whose record is the very same object and whose pods did not change since is the same
    GpuNode: at 5,000 nodes, building them all again was most of a poll's CPU, and grouping 50,000
    pods by node for each rebuild to compare them was ~10 ms more."""

    def __init__(self, cluster: str) -> None:
        self.cluster = cluster
        self._seen: dict[str, tuple[NodeFacts, int, GpuNode]] = {}

    def __call__(self, node: NodeFacts, pods_version: int,
                 pods_of: Callable[[str], tuple[list[PodFacts], int]]) -> GpuNode:
        """`pods_version`: the node's pod group's change count (-1: no pods); `pods_of(name)`: its
        pods and their count read together (WatchCache.group_and_version), asked only when the node
        is built again. The count remembered is the one read with the pods."""
        last = self._seen.get(node.name)
        if last is not None and last[0] is node and last[1] == pods_version:
            return last[2]
        pods, version = pods_of(node.name)
        built = gpu_node(node, pods, self.cluster)
        self._seen[node.name] = (node, version, built)
        return built

    def keep_only(self, names: Iterable[str]) -> None:
        """Forget nodes that are gone (autoscaled clusters name new nodes all the time)."""
        wanted = set(names)
        if len(self._seen) > len(wanted):
            self._seen = {name: seen for name, seen in self._seen.items() if name in wanted}
