"""What a GPU node costs per hour, and where that figure came from. No I/O but reading the shipped
table; no Textual.

Matching order (first hit wins), each price carrying its `source`:
1. the user's price for the node's pool, instance type, or GPU model (per GPU)  "config: pools" ...
2. the cluster's own price, from OpenCost's metrics in Prometheus               "opencost"
3. the shipped catalog by instance type, in the node's or the chosen region     "catalog: skypilot aws us-east-1 (...)"
4. the shipped catalog by GPU model: the lowest per-GPU list price x GPUs        "catalog: per-GPU model"
Spot nodes get the catalog's spot price for the region, else the user's spot discount. A node with
no match has no price, and says so: it is never counted as free.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from mltop.price_catalog import Catalog, CatalogPrice, shipped_catalog

KNOWN_MODELS = ("H200", "H100", "B200", "A100", "A10G", "L40S", "L40", "L4", "A10", "T4", "V100", "A6000",
                "MI300X", "MI250")
MEMORY = re.compile(r"(\d+)\s*GB", re.IGNORECASE)
NO_SOURCE = "none"
MEMO_LIMIT = 4096


@lru_cache(maxsize=1024)  # a handful of distinct labels, asked for once per node per refresh
def canonical_model(text: str | None) -> str | None:
    """'NVIDIA-A100-SXM4-80GB', 'nvidia-tesla-a100', 'a100' -> 'A100-80GB' / 'A100'."""
    if not text:
        return None
    upper = text.upper().replace("_", "-")
    for model in KNOWN_MODELS:
        if re.search(rf"(^|[^A-Z0-9]){model}($|[^A-Z0-9])", upper) or upper == model:
            memory = MEMORY.search(upper)
            return f"{model}-{memory.group(1)}GB" if memory else model
    return upper


@dataclass(frozen=True)
class Price:
    per_hour: float | None  # for the whole node; None: no known price
    basis: str  # where the figure came from, in words
    source: str = NO_SOURCE  # "config: pools", "opencost", "catalog: skypilot aws us-east-1 (...)", ...


@dataclass(frozen=True)
class PriceBook:
    catalog: Catalog = field(default_factory=Catalog)
    regions: Mapping[str, str] = field(default_factory=dict)  # cloud -> region prices are read for
    # The user's own prices; they always win.
    user_pools: dict[str, float] = field(default_factory=dict)  # pool name -> node price
    user_instances: dict[str, float] = field(default_factory=dict)
    user_per_gpu: dict[str, float] = field(default_factory=dict)  # canonical model -> per GPU
    spot_discount: float = 0.0  # 0.6 = spot costs 40% of on-demand
    currency: str = "$"
    # Answers by their question: 5,000 nodes are a few dozen kinds of node, and matching the catalog
    # by GPU model scans every instance type (bounded: cleared when it grows past MEMO_LIMIT).
    _memo: dict = field(default_factory=dict, init=False, compare=False, repr=False)

    def price(self, **question) -> Price:
        """The node's price (see `_price`), remembered: the same question always has the same answer."""
        key = tuple(sorted(question.items()))
        found = self._memo.get(key)
        if found is None:
            if len(self._memo) >= MEMO_LIMIT:
                self._memo.clear()
            found = self._memo[key] = self._price(**question)
        return found

    def _price(
        self,
        *,
        pool: str | None,
        instance_type: str | None,
        gpu_model: str | None,
        gpus: float,
        spot: bool = False,
        zone: str | None = None,
        cluster: Price | None = None,
    ) -> Price:
        """The node's price; `cluster` is the cluster's own figure for it (OpenCost), when it has one."""
        model = canonical_model(gpu_model)
        mine = self._users(pool, instance_type, model, gpus)
        if mine is not None:
            return mine
        if cluster is not None and cluster.per_hour is not None:
            return cluster
        listed = self.catalog.price(instance_type, zone=zone, regions=self.regions) if instance_type else None
        if listed is not None:
            return self._listed(instance_type or "", listed, spot)
        by_model = self.catalog.per_gpu(model, canonical_model, self.regions) if model and gpus else None
        if by_model is not None:
            each, itype, label = by_model
            rate, note = self._spot(spot)
            return Price(each * gpus * rate, f"lowest per-GPU list price of {model} ({itype}, {label[9:]}) "
                                             f"x{gpus:g}{note}", "catalog: per-GPU model")
        what = instance_type or gpu_model or "this node"
        return Price(None, f"no known price for {what}: add one under [cost.prices] in the config")

    def _users(self, pool: str | None, instance_type: str | None, model: str | None, gpus: float) -> Price | None:
        if pool and pool in self.user_pools:
            return Price(self.user_pools[pool], f"your price for pool {pool}", "config: pools")
        if instance_type and instance_type in self.user_instances:
            return Price(self.user_instances[instance_type], f"your price for {instance_type}",
                         "config: instance types")
        per_gpu = self._lookup(self.user_per_gpu, model)
        if per_gpu is not None and gpus:
            return Price(per_gpu * gpus, f"your price for {model} x{gpus:g}", "config: gpu models")
        return None

    def _spot(self, spot: bool) -> tuple[float, str]:
        if spot and self.spot_discount:
            return 1.0 - self.spot_discount, f", {self.spot_discount:.0%} spot discount"
        return 1.0, ""

    def _listed(self, instance_type: str, listed: CatalogPrice, spot: bool) -> Price:
        where = f"{listed.cloud} {listed.region}" + (f"; {listed.note}" if listed.note else "")
        if spot and listed.spot is not None:
            return Price(listed.spot, f"spot price of {instance_type} ({where})", listed.source)
        rate, note = self._spot(spot)
        return Price((listed.on_demand or 0.0) * rate, f"list price of {instance_type} ({where}){note}", listed.source)

    @staticmethod
    def _lookup(table: dict[str, float], model: str | None) -> float | None:
        if not model:
            return None
        if model in table:
            return table[model]
        bare = model.split("-")[0]  # A100-80GB -> A100 when only the bare model is priced
        return table.get(bare)


def price_book(
    *,
    pools: dict[str, float] | None = None,
    instances: dict[str, float] | None = None,
    per_gpu: dict[str, float] | None = None,
    spot_discount: float = 0.0,
    currency: str = "$",
    region: str | None = None,
    regions: Mapping[str, str] | None = None,
    catalog: Catalog | None = None,
) -> PriceBook:
    """`region`: one region name for every cloud whose catalog lists it; `regions`: per cloud (wins)."""
    table = catalog if catalog is not None else shipped_catalog()
    chosen = {cloud: region for cloud, types in table.clouds.items()
              if region and any(region in e["regions"] for e in types.values())}
    return PriceBook(
        catalog=table,
        regions={**chosen, **(regions or {})},
        user_pools=dict(pools or {}),
        user_instances=dict(instances or {}),
        user_per_gpu={canonical_model(k) or k: v for k, v in (per_gpu or {}).items()},
        spot_discount=spot_discount,
        currency=currency,
    )
