"""A Kubernetes poll's records from the watch caches, built again only when the caches changed.

The Kubernetes source is polled every couple of seconds, but its watch caches change only when the
API server sends an event. At 5,000 nodes and 50,000 pods, turning the caches into GpuNodes, node
pools and pending jobs cost ~0.15 s of CPU per poll: for a cluster where nothing happened that was
most of mltop's idle CPU. Each cache counts its changes (`WatchCache.version`); while no count
moved, the last poll's records are returned as they were (the very same objects, which the
dashboard then compares in no time). Within a rebuild, a node whose record and pods are the same
objects as before is not rebuilt either (kube_nodes.GpuNodes).
"""

from __future__ import annotations

import threading
from typing import Any

from mltop.adapters.kube_nodes import GpuNodes
from mltop.adapters.kube_parse import pending_job
from mltop.adapters.kube_pools import NodePools
from mltop.model import GpuNode, Job, Pool


UNBOUND = ""  # the group of pods no node has taken yet


def pods_by_node(pod: Any) -> str:
    """A pod record's group in the pod cache: its node's name, or UNBOUND."""
    return pod.node_name or UNBOUND


class ClusterRecords:
    def __init__(self, cluster: str) -> None:
        self.cluster = cluster
        self._gpu_node = GpuNodes(cluster)
        self._node_pools = NodePools(cluster)
        self._pending: dict[int, tuple[Any, Job | None]] = {}  # id(pod record) -> (record, its pending job)
        self._facts: tuple[object, list[Any]] | None = None  # (node and DRA versions, records shown)
        self._lock = threading.Lock()
        self._versions: tuple[tuple[int, int], ...] | None = None
        self._last: tuple[list[Any], list[GpuNode], tuple[Job, ...], tuple[Pool, ...]] | None = None
        self._index: tuple[list[Any], dict[str, int]] | None = None  # (records shown, name -> place)

    @staticmethod
    def versions(caches: tuple[Any, ...]) -> tuple[tuple[int, int], ...]:
        """The caches' change counts: read them before reading the caches (a change in between
        is then seen by the next poll, never lost)."""
        return tuple((id(c), c.version) for c in caches if c is not None)

    def __call__(self, versions: tuple[tuple[int, int], ...], nodes_cache: Any, pods_cache: Any, dra: Any
                 ) -> tuple[list[Any], list[GpuNode], tuple[Job, ...], list[Pool]]:
        """(node records shown, their GpuNodes, pending jobs, node pools) for the caches' contents;
        `versions` of every cache these depend on (nodes, pods, DRA's). The pod cache groups its
        records by node (`pods_by_node`). The pools come back as a new list, which the caller may
        extend."""
        with self._lock:  # a poll abandoned at its deadline may still be running in its thread
            if versions != self._versions or self._last is None:
                self._last = self._build(versions, nodes_cache, pods_cache, dra)
                self._versions = versions
            facts, nodes, jobs, pools = self._last
        return facts, nodes, jobs, list(pools)

    def _build(self, versions: tuple[tuple[int, int], ...], nodes_cache: Any, pods_cache: Any, dra: Any
               ) -> tuple[list[Any], list[GpuNode], tuple[Job, ...], tuple[Pool, ...]]:
        facts = self._shown(versions, nodes_cache, dra)
        found = self._nodes_changed(versions, facts, pods_cache, dra)
        if found is None:
            changed = pods_cache.group_versions()  # per node: the count at its pods' last change
            nodes = [self._gpu_node(f, changed.get(f.name, -1), pods_cache.group_and_version) for f in facts]
            if dra.devices:  # DRA GPUs added to the nodes that have some (none: the same nodes)
                nodes = [dra.node(n, f) for n, f in zip(nodes, facts)]
            self._gpu_node.keep_only(f.name for f in facts)
            # Nodes a MachineDeployment owns are its pool, not a cloud node pool's.
            pools = self._node_pools([(f, n) for f, n in zip(facts, nodes) if not n.machine_deployment])
        else:
            nodes, moved = found
            pools = self._node_pools.replace([(facts[at], nodes[at]) for at in moved])
        jobs = self._pending_jobs(pods_cache.group(UNBOUND), dra)  # only an unbound pod waits
        return facts, nodes, jobs, tuple(pools)

    def _nodes_changed(self, versions: tuple[tuple[int, int], ...], facts: list[Any], pods_cache: Any, dra: Any
                       ) -> tuple[list[GpuNode], list[int]] | None:
        """The last build's nodes with only those whose pods changed since built again, and the
        places of those, when the node records shown are the same as then (None otherwise: build
        them all). Most watch events are pods'; visiting all 5,000 nodes to find the four whose pods
        moved was ~10 ms a poll."""
        last, before = self._last, self._versions
        if last is None or before is None or last[0] is not facts or dra.devices or len(before) < 2 \
                or before[1][0] != versions[1][0]:
            return None
        changed = pods_cache.groups_changed_since(before[1][1])  # versions[1]: the pod cache's count
        if changed is None:
            return None
        index = self._index
        if index is None or index[0] is not facts:
            index = self._index = (facts, {f.name: i for i, f in enumerate(facts)})
        nodes, moved = list(last[1]), []
        for name, pods_version in changed.items():
            at = index[1].get(name)
            if at is not None:
                node = self._gpu_node(facts[at], pods_version, pods_cache.group_and_version)
                if node is not nodes[at]:
                    nodes[at] = node
                    moved.append(at)
        return nodes, moved

    def _shown(self, versions: tuple[tuple[int, int], ...], nodes_cache: Any, dra: Any) -> list[Any]:
        """The node records shown, by name: sorted again only when the node cache or DRA's changed
        (versions: nodes, pods, then DRA's). Most events are pods': 5,000 nodes sorted and checked
        for GPUs on each was ~8 ms."""
        key = (versions[0], versions[2:])
        if self._facts is None or self._facts[0] != key:
            shown = [f for f in sorted(nodes_cache.snapshot(), key=lambda f: f.name) if dra.shows(f)]
            self._facts = (key, shown)
        return self._facts[1]

    def _pending_jobs(self, pods: list[Any], dra: Any) -> tuple[Job, ...]:
        """The jobs of unbound pods that wait (`pods`: the pod cache's UNBOUND group). Only an unbound
        pod can wait (both tests start there): the 50,000 bound ones are not even walked. A pod record the cache hands back unchanged (the same
        object) has the same pending job: 700 waiting pods took 17-21 ms a rebuild, now ~1 ms. The
        memo holds its records, so an id in it is never reused by another object while it is there.
        DRA's answer depends on its claims too and is asked every time (it is None without DRA)."""
        memo, kept, jobs = self._pending, {}, []
        for pod in pods:
            if pod.node_name is not None:
                continue
            last = memo.get(id(pod))
            job = last[1] if last is not None and last[0] is pod else pending_job(pod, self.cluster)
            kept[id(pod)] = (pod, job)
            if job is None:
                job = dra.waiting_job(pod, self.cluster)
            if job is not None:
                jobs.append(job)
        self._pending = kept
        return tuple(jobs)
