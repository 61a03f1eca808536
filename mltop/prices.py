"""What a GPU node costs per hour: the user's prices first, then the shipped table. No I/O but
reading the shipped data file; no Textual.

Matching order (first hit wins): the user's price for the node's pool, for its instance type,
for its GPU model (per GPU); then the shipped table by instance type, then by GPU model (per GPU,
times the node's GPUs). Spot nodes get the user's spot discount on table prices. A node with no
match has no price, and says so: it is never counted as free.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

KNOWN_MODELS = ("H200", "H100", "A100", "A10G", "L40S", "L40", "L4", "A10", "T4", "V100", "MI300X", "MI250")
MEMORY = re.compile(r"(\d+)\s*GB", re.IGNORECASE)


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


@dataclass(frozen=True)
class PriceBook:
    instances: dict[str, float] = field(default_factory=dict)  # instance type -> node price
    per_gpu: dict[str, float] = field(default_factory=dict)  # canonical model -> price per GPU
    sources: dict[str, str] = field(default_factory=dict)  # key -> source and date, for the basis
    # The user's own prices; they always win.
    user_pools: dict[str, float] = field(default_factory=dict)  # pool name -> node price
    user_instances: dict[str, float] = field(default_factory=dict)
    user_per_gpu: dict[str, float] = field(default_factory=dict)  # canonical model -> per GPU
    spot_discount: float = 0.0  # 0.6 = spot costs 40% of on-demand
    currency: str = "$"

    def price(
        self,
        *,
        pool: str | None,
        instance_type: str | None,
        gpu_model: str | None,
        gpus: float,
        spot: bool = False,
    ) -> Price:
        model = canonical_model(gpu_model)
        if pool and pool in self.user_pools:
            return Price(self.user_pools[pool], f"your price for pool {pool}")
        if instance_type and instance_type in self.user_instances:
            return Price(self.user_instances[instance_type], f"your price for {instance_type}")
        per_gpu = self._lookup(self.user_per_gpu, model)
        if per_gpu is not None and gpus:
            return Price(per_gpu * gpus, f"your price for {model} x{gpus:g}")
        discount = (1.0 - self.spot_discount) if spot else 1.0
        note = f", {self.spot_discount:.0%} spot discount" if spot and self.spot_discount else ""
        if instance_type and instance_type in self.instances:
            return Price(self.instances[instance_type] * discount,
                         f"list price of {instance_type} ({self.sources.get(instance_type, 'shipped table')}){note}")
        per_gpu = self._lookup(self.per_gpu, model)
        if per_gpu is not None and gpus:
            return Price(per_gpu * gpus * discount, f"list price of {model} per GPU x{gpus:g}{note}")
        what = instance_type or gpu_model or "this node"
        return Price(None, f"no known price for {what}: add one under [cost.prices] in the config")

    @staticmethod
    def _lookup(table: dict[str, float], model: str | None) -> float | None:
        if not model:
            return None
        if model in table:
            return table[model]
        bare = model.split("-")[0]  # A100-80GB -> A100 when only the bare model is priced
        return table.get(bare)


@lru_cache(maxsize=1)
def shipped_table() -> tuple[dict[str, float], dict[str, float], dict[str, str]]:
    data = json.loads(resources.files("mltop.data").joinpath("gpu_prices.json").read_text())
    instances = {e["instance_type"]: float(e["price"]) for e in data["instances"]}
    per_gpu = {canonical_model(e["gpu_model"]) or e["gpu_model"]: float(e["price"]) for e in data["per_gpu"]}
    sources = {e["instance_type"]: f"{e['source']}, {e['as_of']}" for e in data["instances"]}
    return instances, per_gpu, sources


def price_book(
    *,
    pools: dict[str, float] | None = None,
    instances: dict[str, float] | None = None,
    per_gpu: dict[str, float] | None = None,
    spot_discount: float = 0.0,
    currency: str = "$",
) -> PriceBook:
    table_instances, table_per_gpu, sources = shipped_table()
    return PriceBook(
        instances=dict(table_instances),
        per_gpu=dict(table_per_gpu),
        sources=dict(sources),
        user_pools=dict(pools or {}),
        user_instances=dict(instances or {}),
        user_per_gpu={canonical_model(k) or k: v for k, v in (per_gpu or {}).items()},
        spot_discount=spot_discount,
        currency=currency,
    )
