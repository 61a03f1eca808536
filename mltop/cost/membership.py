"""Which nodes of a snapshot belong to which pool, worked out again only when that can change.

A pool names its members (node names); the engine needs them as the snapshot's node records. At
5,000 nodes, resolving every pool's members by name on each evaluation was ~9 ms of a ~90 ms
evaluation, although the pools' member lists and the set of nodes change far less often than the
nodes' records (a pod moving makes a new record for its node, not a new member). So the names
are resolved to node keys once per (pools' member lists, node keys), and each evaluation only
looks the current records up by key. What is kept is one answer: it never outgrows the cluster.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mltop.model import GpuNode, Pool

SCALED_POOL_KINDS = ("nodepool", "machinedeployment")  # pools whose members are Kubernetes nodes


class PoolMembership:
    def __init__(self) -> None:
        self._basis: object = None
        self._members: dict[str, tuple[str, ...]] = {}  # pool key -> its member nodes' keys, in members' order
        self._scaled: dict[str, tuple[int, ...]] = {}  # scaled pool key -> its nodes' places in the snapshot
        self._pool_of: dict[str, str] = {}  # node key -> the key of its scaled pool
        self._last: tuple[object, object] = (None, None)  # the sequences last resolved, by identity

    def member_keys(self, nodes: Sequence[GpuNode], pools: Sequence[Pool]) -> Mapping[str, tuple[str, ...]]:
        """Pool key -> the keys of its member nodes that the snapshot holds (any pool kind)."""
        self._resolve(nodes, pools)
        return self._members

    def scaled(self, nodes: Sequence[GpuNode], pools: Sequence[Pool]) -> tuple[dict[str, Pool], dict[str, tuple[GpuNode, ...]]]:
        """(node key -> its node pool or MachineDeployment, pool key -> its nodes in the snapshot's order)."""
        self._resolve(nodes, pools)
        pool_by_key = {p.key: p for p in pools}
        return ({node: pool_by_key[pool] for node, pool in self._pool_of.items()},
                {pool: tuple(nodes[i] for i in places) for pool, places in self._scaled.items()})

    def _resolve(self, nodes: Sequence[GpuNode], pools: Sequence[Pool]) -> None:
        if nodes is self._last[0] and pools is self._last[1]:
            return  # the same snapshot's nodes and pools: an evaluation asks twice (observe, the report)
        self._last = (nodes, pools)
        node_keys = tuple(n.key for n in nodes)
        basis = (node_keys, tuple((p.key, p.kind, p.cluster, p.members) for p in pools))
        if basis == self._basis:  # the same strings and tuples: compared by identity first, fast
            return
        by_name = {(n.cluster, n.name): n.key for n in nodes}
        self._members = {p.key: tuple(by_name[(p.cluster, m)] for m in p.members if (p.cluster, m) in by_name)
                         for p in pools}
        pool_of: dict[str, str] = {}
        for pool in pools:
            if pool.kind in SCALED_POOL_KINDS:
                for key in self._members[pool.key]:
                    pool_of[key] = pool.key  # a node two pools name: the last one, as before
        scaled: dict[str, list[int]] = {}
        for place, key in enumerate(node_keys):
            if (pool_key := pool_of.get(key)) is not None:
                scaled.setdefault(pool_key, []).append(place)
        self._pool_of = {key: pool_of[key] for key in node_keys if key in pool_of}
        self._scaled = {key: tuple(members) for key, members in scaled.items()}
        self._basis = basis
