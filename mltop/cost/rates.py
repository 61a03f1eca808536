"""Prices of idle GPUs, and the report that carries every total (defined once, on CostReport)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from typing import TYPE_CHECKING

from mltop.model import IdleWarning, NodeCost, RayNode
from mltop.prices import Price, PriceBook

if TYPE_CHECKING:
    from mltop.cost.teams import TeamCost


@dataclass(frozen=True)
class IdleGpus:
    """One group of GPUs idle right now; groups never share a GPU."""

    gpus: float
    cost_per_hour: float | None  # None: no known price


def share(price: Price, gpus: float, total: float) -> float | None:
    """The $/h of `gpus` of a node's `total`, at the node's price."""
    if price.per_hour is None or not total:
        return None
    return price.per_hour * gpus / total


def known_sum(values: Iterable[float | None]) -> float | None:
    """The sum of the known values; None when none is known (unknown is never zero)."""
    total, any_known = 0.0, False
    for value in values:
        if value is not None:
            total, any_known = total + value, True
    return total if any_known else None


def full_sum(values: Iterable[float | None]) -> float | None:
    """The sum when every value is known (and there is one); otherwise None."""
    listed = list(values)
    if not listed or any(v is None for v in listed):
        return None
    return sum(v for v in listed if v is not None)


def opencost_price(cost: NodeCost | None, gpus: float) -> Price | None:
    """The cluster's own price for a node (OpenCost): its total, else its per-GPU price x its GPUs."""
    if cost is None:
        return None
    if cost.total_per_hour is not None:
        return Price(cost.total_per_hour, "the cluster's own price (OpenCost node_total_hourly_cost)", "opencost")
    if cost.gpu_per_hour is not None and gpus:
        return Price(cost.gpu_per_hour * gpus, f"the cluster's own price (OpenCost node_gpu_hourly_cost x{gpus:g})",
                     "opencost")
    return None


def ray_node_price(node: RayNode, prices: PriceBook) -> Price:
    model = node.devices[0].name if node.devices else None  # logical GPUs have no model, hence no price
    return prices.price(pool=None, instance_type=None, gpu_model=model, gpus=node.gpus_total)


@dataclass(frozen=True)
class CostReport:
    """Everything the screens and the report show about cost. Screens never add warnings up themselves:

    - idle_rate: the $/h of every GPU idle right now, each GPU counted once. Idle GPUs are
      (1) unallocated GPUs of Kubernetes nodes (allocatable minus what pods request), at the node's
      price x idle/total GPUs; (2) logical GPUs of live Ray nodes that no task or actor holds, at
      the node's per-GPU model price; (3) GPUs held by a running Ray job, or by a pod measured
      through Prometheus, whose utilization has stayed under `low_utilization_percent` for the
      whole `low_utilization_window` (whether or not that warning kind is on). No GPU is in two:
      (1) is unallocated where (3) is allocated, (2) is free in Ray where (3) is held, and a pod
      that is itself a Ray node (KubeRay) is left to Ray's accounting. GPUs with no known price
      add nothing; `unpriced_nodes` counts the nodes that leaves out. (4) GPUs a Kubernetes node has
      and does not offer (capacity minus the larger of allocatable and held: device plugin not
      registered, GPUs marked unhealthy), at the node's price x unusable/total: paid for, usable
      by nobody. (4) is capacity above allocatable where (1) is below it: no GPU is in both.
    - warned_rate: the $/h of the union of the GPUs the warnings are about, each GPU counted once
      (an idle-while-waiting warning about GPUs an idle-node warning covers adds nothing). Every
      warning is about idle GPUs of (1)-(3), so warned_rate <= idle_rate.
    - a warning's cost_per_hour: the $/h of the GPUs that warning is about (None when none of them
      has a known price). Two warnings may be about the same GPUs: these do not add up to a total.
    - node_idle(node): its unallocated and unusable GPUs, (1) and (4); pool_idle(pool): its member nodes' node_idle
      added up, pool_price(pool): their prices added up; either is None when a member has no
      price or the snapshot holds none of its members.
    """

    warnings: tuple[IdleWarning, ...]  # most expensive first
    node_prices: Mapping[str, Price]  # node key -> price of the whole node
    burn_rate: float  # $/h of every priced GPU node
    idle_rate: float  # $/h of the GPUs idle now, each once
    warned_rate: float  # $/h of the GPUs the warnings are about, each once; <= idle_rate
    wasted_today: float
    unpriced_nodes: int
    node_idle_costs: Mapping[str, float | None]  # node key -> $/h of its unallocated GPUs (None: no price)
    pool_idle_costs: Mapping[str, float | None]  # pool key -> its member nodes' idle $/h (None: any unpriced)
    pool_prices: Mapping[str, float | None]  # pool key -> its member nodes' prices (None: any unpriced)
    currency: str = "$"
    # Ray GPU nodes' prices under their nodes-panel keys (ray_node_key); Kubernetes nodes are in node_prices.
    ray_node_prices: Mapping[str, Price] = field(default_factory=dict)
    # Burn and idle per team (namespace, Ray job owner), most expensive first; see mltop/cost/teams.py.
    teams: tuple[TeamCost, ...] = ()

    def node_price(self, node_key: str) -> Price | None:
        """The price of a whole node (Kubernetes or Ray) by its key; None when it is not priced here."""
        return self.node_prices.get(node_key) or self.ray_node_prices.get(node_key)

    def node_idle(self, node_key: str) -> float | None:
        return self.node_idle_costs.get(node_key)

    def pool_idle(self, pool_key: str) -> float | None:
        return self.pool_idle_costs.get(pool_key)

    def pool_price(self, pool_key: str) -> float | None:
        return self.pool_prices.get(pool_key)
