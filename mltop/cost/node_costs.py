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

from mltop.cost.rates import IdleGpus, opencost_price, share
from mltop.model import GpuNode, GpuPod, NodeCost as OpenCostNode
from mltop.prices import Price, PriceBook


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


def node_cost(node: GpuNode, prices: PriceBook, cluster_price: Price | None) -> NodeCost:
    price = prices.price(pool=node.pool, instance_type=node.instance_type, gpu_model=node.gpu_model,
                         gpus=node.gpus_total, spot=node.capacity_type == "spot", zone=node.zone,
                         cluster=cluster_price)
    free, lost = node.gpus_free, unusable_gpus(node)
    return NodeCost(
        price=price, free=free, unusable=lost, unallocated_key=unallocated_key(node), unusable_key=unusable_key(node),
        unallocated=IdleGpus(free, share(price, free, node.gpus_total)) if free > 0 else None,
        unusable_idle=IdleGpus(lost, share(price, lost, node.gpus_total)) if lost > 0 else None,
        idle_per_hour=share(price, free + lost, node.gpus_total),
        pod_keys=tuple(pod_util_key(node, pod) for pod in node.pods))


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
