"""Kubernetes objects that hold GPU capacity and may be resized -> `Pool` records: node pools
(by label), KubeRay worker groups and Cluster API MachineDeployments. Pure functions, no I/O.

Total like `kube_parse`: a broken object raises `Unreadable` (counted by the caller), a broken
group is skipped and counted, and a count that cannot be read makes the pool not scalable.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from mltop.adapters.kube_nodes import NodeFacts, pool_of
from mltop.adapters.kube_parse import (
    CAPI_GPU_COUNT,
    CAPI_MAX,
    CAPI_MIN,
    FINISHED_PHASES,
    KIND,
    NO_MAX,
    POOL_LABELS,
    WHY_NOT_SCALABLE,
    PodFacts,
    Unreadable,
    _parts,
    _str,
    _strings,
    brief,
    effective_requests,
    quantity,
)
from mltop.adapters.values import Skips, integer, mapping
from mltop.model import GpuNode, Pool


POOL_LABEL_KEYS = frozenset(label for label, _ in POOL_LABELS)


@lru_cache(maxsize=1024)
def _pool_of_labels(pool_labels: tuple[tuple[str, str], ...]) -> tuple[str | None, str | None]:
    """pool_of, remembered by the node's pool labels only (a few pairs, shared by a pool's nodes: the
    cache stays small however many nodes come and go). The pools are rebuilt on every change of a
    large cluster, and a dict of every node's labels each time was most of it."""
    return pool_of(dict(pool_labels))


def node_pools(nodes: Iterable[tuple[NodeFacts, GpuNode]], cluster: str) -> list[Pool]:
    """GPU nodes grouped by their pool label. Kubernetes alone cannot resize these."""
    return NodePools(cluster)(nodes)


class NodePools:
    """`node_pools`, remembered between rebuilds of one cluster's records. A watch event changes a
    few nodes of 5,000; each node's pool label is looked up again only when its record is a new
    object, and a pool is built again only when one of its member GpuNodes is (kube_nodes.GpuNodes
    hands back the very same object for an unchanged node). At 5,000 nodes in 100 pools this took
    a rebuild's pools from 16-18 ms to ~3 ms (bench/README.md)."""

    def __init__(self, cluster: str) -> None:
        self.cluster = cluster
        self._labels: dict[str, tuple[NodeFacts, str, str | None]] = {}  # node name -> (record, pool, kind)
        self._pools: dict[str, tuple[tuple[GpuNode, ...], str | None, Pool]] = {}  # pool name -> (members, kind, pool)
        self._place: dict[str, int] = {}  # node name -> its place among its pool's members

    def __call__(self, nodes: Iterable[tuple[NodeFacts, GpuNode]]) -> list[Pool]:
        groups: dict[str, list[GpuNode]] = {}
        kinds: dict[str, str | None] = {}
        labels, seen, place = self._labels, {}, {}
        for facts, node in nodes:
            last = labels.get(facts.name)
            if last is None or last[0] is not facts:
                name, kind = _pool_of_labels(tuple(pair for pair in facts.labels if pair[0] in POOL_LABEL_KEYS))
                last = (facts, name or "(no pool)", kind)
            seen[facts.name] = last
            members = groups.setdefault(last[1], [])
            place[facts.name] = len(members)
            members.append(node)
            kinds[last[1]] = last[2]
        self._labels, self._place = seen, place  # only the nodes there now: the memo never outgrows the cluster
        pools, built = [], {}
        for name, members in sorted(groups.items()):
            kind, last_pool = kinds[name], self._pools.get(name)
            if last_pool is not None and last_pool[1] == kind and len(last_pool[0]) == len(members) \
                    and all(a is b for a, b in zip(last_pool[0], members)):
                pool = last_pool[2]
            else:
                pool = _node_pool(name, kind, members, self.cluster)
            built[name] = (tuple(members), kind, pool)
            pools.append(pool)
        self._pools = built
        return pools

    def replace(self, nodes: Iterable[tuple[NodeFacts, GpuNode]]) -> list[Pool]:
        """The pools after these nodes were built again from the same records as at the last call
        (so each stays in its pool, in its place): only their pools are built again. Nodes that
        are in no node pool (a MachineDeployment's) are passed over."""
        changed: dict[str, list[GpuNode]] = {}
        for facts, node in nodes:
            label = self._labels.get(facts.name)
            if label is None or node.machine_deployment:
                continue
            members = changed.get(label[1])
            if members is None:
                members = changed[label[1]] = list(self._pools[label[1]][0])
            members[self._place[facts.name]] = node
        for name, members in changed.items():
            _, kind, _ = self._pools[name]
            self._pools[name] = (tuple(members), kind, _node_pool(name, kind, members, self.cluster))
        return [pool for _, _, pool in self._pools.values()]


def _node_pool(name: str, kind: str | None, members: list[GpuNode], cluster: str) -> Pool:
    models = sorted({n.gpu_model for n in members if n.gpu_model})
    return Pool(
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
