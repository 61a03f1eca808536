"""The cluster's own node prices: OpenCost's metrics, read through the Prometheus source's HTTP API.

OpenCost exports per node `node_total_hourly_cost` (the whole node, $/h) and `node_gpu_hourly_cost`
(one GPU, $/h), labelled `node`. Two instant queries per refresh, each folded to one series per node
and capped (`topk`), so a cluster of any size answers with a bounded body. A Prometheus without
OpenCost answers with no series: no node costs, not an error. A series that cannot be read (no
`node`, a value that is not a price) is left out and counted.
"""

from __future__ import annotations

from typing import Any

import httpx

from mltop.adapters.http import decode_json, request
from mltop.adapters.values import Skips, number
from mltop.errors import BadResponse
from mltop.model import NodeCost

TOTAL = "node_total_hourly_cost"
PER_GPU = "node_gpu_hourly_cost"
MAX_NODES = 5000
MAX_PRICE = 10_000.0  # $/h for one node; more is junk, not a price


def query(metric: str) -> str:
    return f"topk({MAX_NODES}, max by (node) ({metric}))"


async def node_costs(client: httpx.AsyncClient, source: str) -> tuple[tuple[NodeCost, ...], Skips]:
    """Every node OpenCost prices, with its total and per-GPU price where each is known."""
    skips = Skips()
    found: dict[str, dict[str, float]] = {}
    for metric in (TOTAL, PER_GPU):
        what = f"{source}: {metric}"
        response = await request(client, "GET", "/api/v1/query", what=what, params={"query": query(metric)})
        for node, value in parse(decode_json(response, what), what, skips):
            found.setdefault(node, {})[metric] = value
    costs = tuple(NodeCost(node, total_per_hour=v.get(TOTAL), gpu_per_hour=v.get(PER_GPU))
                  for node, v in sorted(found.items()))
    return costs, skips


def parse(body: Any, what: str, skips: Skips) -> list[tuple[str, float]]:
    """(node, $/h) of each readable series; BadResponse when the answer is not a vector at all."""
    if not isinstance(body, dict) or body.get("status") != "success":
        error = body.get("error") if isinstance(body, dict) else None
        raise BadResponse(f"{what}: query failed: {error or 'unexpected answer'}")
    data = body.get("data")
    result = data.get("result") if isinstance(data, dict) else None
    if not isinstance(result, list):
        raise BadResponse(f"{what}: the answer has no list of series")
    out = []
    for series in result[:MAX_NODES]:
        labels = series.get("metric") if isinstance(series, dict) else None
        value = series.get("value") if isinstance(series, dict) else None
        node = labels.get("node") if isinstance(labels, dict) else None
        price = number(value[1], maximum=MAX_PRICE) if isinstance(value, list) and len(value) == 2 else None
        if not isinstance(node, str) or not node or price is None:
            skips.add(f"{what}: a series without a node or a price")
            continue
        out.append((node, price))
    return out
