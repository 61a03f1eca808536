"""Each Kubernetes node's price and idle GPUs, remembered per node record.

A large cluster changes a few nodes per watch event, and the engine is evaluated again for the
change: pricing all 5,000 nodes and working out their free and unusable GPUs on every evaluation
was ~40% of one. The Kubernetes adapter hands back the very same GpuNode object for a node that
did not change (kube_nodes.GpuNodes), so the answers here are kept per node object: a node is
priced again only when its record is a new object, its OpenCost price changed, or the price book
is another one. What is kept is only the nodes of the last evaluation: it never outgrows the cluster.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from mltop.cost.rates import IdleGpus, known_sum, opencost_price, share
from mltop.model import GpuNode, GpuPod, NodeCost as OpenCostNode
from mltop.prices import Price, PriceBook


UNASSIGNED = "unassigned"  # the team of GPUs no one holds (mltop/cost/teams.py)
Team = tuple[str, str]  # (name, kind): a namespace, a Ray job owner, or unassigned


def unallocated_key(node: GpuNode) -> str:
    return f"unallocated/{node.key}"


def unusable_key(node: GpuNode) -> str:
    return f"unusable/{node.key}"


def pod_util_key(node: GpuNode, pod: GpuPod) -> str:
    return f"util/{node.cluster}/{pod.namespace}/{pod.name}"


def unusable_gpus(node: GpuNode) -> float:
    """GPUs a node is paid for that its device plugin does not offer: capacity above allocatable,
    less any that pods still hold (bound before the GPUs went unhealthy). Never counted twice: the
    unallocated GPUs are allocatable minus held, these are capacity minus the larger of the two."""
    held = node.gpus_allocated or 0.0
    gpus = node.gpus_total - max(node.gpus_allocatable, held)
    return gpus if gpus > 1e-6 else 0.0  # MIG shares add up to 0.999...: not a missing GPU


@dataclass(frozen=True)
class NodeCost:
    """What the engine works out from one node record and its price, clock aside."""

    price: Price  # of the whole node
    free: float  # unallocated GPUs (GpuNode.gpus_free)
    unusable: float  # unusable_gpus
    unallocated_key: str
    unusable_key: str
    unallocated: IdleGpus | None  # the free GPUs as an idle group; None when there are none
    unusable_idle: IdleGpus | None  # the unusable GPUs as an idle group; None when there are none
    idle_per_hour: float | None  # $/h of the free and unusable GPUs (nodes panel's IDLE $/H)
    pod_keys: tuple[str, ...]  # pod_util_key of each of node.pods, in their order
    measured: tuple[int, ...] = ()  # the places in node.pods of GPU pods with a measured utilization
    # What the node adds to each team (teams.py): (team, GPUs, $/h of them, the idle keys whose
    # cost is that team's), its pods' namespaces first, then the GPUs no pod holds.
    team_parts: tuple[tuple[Team, float, float | None, tuple[str, ...]], ...] = ()


def node_cost(node: GpuNode, prices: PriceBook, cluster_price: Price | None) -> NodeCost:
    price = prices.price(pool=node.pool, instance_type=node.instance_type, gpu_model=node.gpu_model,
                         gpus=node.gpus_total, spot=node.capacity_type == "spot", zone=node.zone,
                         cluster=cluster_price)
    free, lost = node.gpus_free, unusable_gpus(node)
    pod_keys = tuple(pod_util_key(node, pod) for pod in node.pods)
    return NodeCost(
        price=price, free=free, unusable=lost, unallocated_key=unallocated_key(node), unusable_key=unusable_key(node),
        unallocated=IdleGpus(free, share(price, free, node.gpus_total)) if free > 0 else None,
        unusable_idle=IdleGpus(lost, share(price, lost, node.gpus_total)) if lost > 0 else None,
        idle_per_hour=share(price, free + lost, node.gpus_total),
        pod_keys=pod_keys, team_parts=_team_parts(node, price, pod_keys),
        measured=tuple(i for i, pod in enumerate(node.pods) if pod.utilization is not None and pod.gpus))


def _team_parts(node: GpuNode, price: Price, pod_keys: tuple[str, ...]) -> tuple:
    """NodeCost.team_parts: each pod's GPUs to its namespace, the rest of the node to no one."""
    parts: dict[Team, tuple[float, list[float | None], list[str]]] = {}
    held = 0.0
    for pod, key in zip(node.pods, pod_keys):
        held += pod.gpus
        gpus, burn, keys = parts.get((pod.namespace, "namespace")) or (0.0, [], [])
        burn.append(share(price, pod.gpus, node.gpus_total))
        keys.append(key)
        parts[(pod.namespace, "namespace")] = (gpus + pod.gpus, burn, keys)
    rest = max(0.0, node.gpus_total - held)
    if rest > 0:
        parts[(UNASSIGNED, UNASSIGNED)] = (rest, [share(price, rest, node.gpus_total)],
                                           [unallocated_key(node), unusable_key(node)])
    return tuple((team, gpus, known_sum(burn), tuple(keys)) for team, (gpus, burn, keys) in parts.items())


class NodeCosts:
    def __init__(self) -> None:
        self._book: PriceBook | None = None
        self._seen: dict[int, tuple[GpuNode, Price | None, NodeCost]] = {}  # id(node) -> (node, OpenCost, answer)

    def __call__(self, nodes: Iterable[GpuNode], prices: PriceBook,
                 opencost: Mapping[str, OpenCostNode]) -> dict[str, NodeCost]:
        """Node key -> its NodeCost, for every node, in their order. The memo holds the node
        records it answered for, so an id in it is never another object's while it is there."""
        if prices is not self._book:
            self._book, self._seen = prices, {}
        seen, kept, out = self._seen, {}, {}
        for node in nodes:
            cluster_price = opencost_price(opencost.get(node.name), node.gpus_total) if opencost else None
            last = seen.get(id(node))
            if last is not None and last[0] is node and last[1] == cluster_price:
                cost = last[2]
            else:
                cost = node_cost(node, prices, cluster_price)
            kept[id(node)] = (node, cluster_price, cost)
            out[node.key] = cost
        self._seen = kept
        return out
