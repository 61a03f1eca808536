"""Measured GPU utilization from Prometheus: NVIDIA's DCGM exporter metrics, through the HTTP API;
and, where the same Prometheus has OpenCost's metrics, the cluster's own node prices (adapters/opencost.py).

One instant query per refresh, averaged over the window server-side:
`avg_over_time(DCGM_FI_DEV_GPU_UTIL[10m])`. Each series carries the exporter's labels: `Hostname`
(the node), `gpu`, `UUID`, `modelName`, and with pod mapping on, `namespace` and `pod`, which is
how utilization joins Kubernetes nodes and pods.

A series that cannot be read (not an object, a label that is not a string, a value that is not
a percent: NaN, Inf, outside 0..100) is left out and counted in `SourceData.skipped`; only an
answer without a `data` object or a `result` list fails the source.
"""

from __future__ import annotations

from typing import Any

import httpx

from mltop.adapters.http import Endpoint, decode_json, make_client, request
from mltop.adapters.opencost import node_costs
from mltop.adapters.prometheus_endpoint import PrometheusEndpoint
from mltop.adapters.values import Skips, number
from mltop.errors import BadResponse
from mltop.model import GpuSample, SourceData

KIND = "prometheus"
METRIC = "DCGM_FI_DEV_GPU_UTIL"


class PrometheusSource:
    kind = KIND

    @property
    def key(self) -> str:
        """The source's key ("kind/name"): its records, updates and actions are filed under it."""
        return f"{KIND}/{self.name}"

    def __init__(self, endpoint: PrometheusEndpoint, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.endpoint = endpoint
        self.name = endpoint.name
        self._client = make_client(
            Endpoint(endpoint.name, endpoint.url, endpoint.token, endpoint.ca_file, endpoint.verify_tls), transport
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    @property
    def query(self) -> str:
        return f"avg_over_time({METRIC}[{self.endpoint.window_seconds}s])"

    async def fetch(self) -> SourceData:
        what = f"{self.name}: {METRIC}"
        response = await request(self._client, "GET", "/api/v1/query", what=what, params={"query": self.query})
        body = decode_json(response, what)
        if not isinstance(body, dict) or body.get("status") != "success":
            error = body.get("error") if isinstance(body, dict) else None
            raise BadResponse(f"{what}: query failed: {error or 'unexpected answer'}")
        samples, skips = parse_vector(body.get("data"), what)
        try:  # OpenCost is optional: its metrics missing or unreadable never blank the utilization
            costs, cost_skips = await node_costs(self._client, self.name)
        except BadResponse as exc:
            costs, cost_skips = (), Skips()
            cost_skips.add(str(exc))
        reason = skips.reason or cost_skips.reason
        return SourceData(gpu_samples=samples, node_costs=costs, skipped=skips.count + cost_skips.count,
                          skip_reason=reason)


class BadSeries(ValueError):
    """One series that cannot be read; str() says why. `sample` raises it, and nothing else."""


def parse_vector(data: Any, what: str = METRIC) -> tuple[tuple[GpuSample, ...], Skips]:
    """The samples of a query answer's `data`, and the series left out. BadResponse when `data`
    is not an object, not a vector, or its `result` is not a list."""
    if not isinstance(data, dict):
        raise BadResponse(f"{what}: the answer has no data object")
    if data.get("resultType") != "vector":
        kind = data.get("resultType")
        raise BadResponse(f"{what}: expected a vector, got {kind[:40] if isinstance(kind, str) else kind!r:.40}")
    result = data.get("result")
    if not isinstance(result, list):
        raise BadResponse(f"{what}: the answer's result is not a list")
    samples = []
    skips = Skips()
    for series in result:
        try:
            samples.append(sample(series))
        except BadSeries as exc:
            skips.add(f"{what}: {exc}")
    return tuple(samples), skips


def _value(series: dict[str, Any]) -> float | None:
    """The sample's value, a percent; NaN (no data in the window), Inf or junk is None."""
    value = series.get("value")
    if not isinstance(value, list) or len(value) != 2:
        return None
    return number(value[1], minimum=0.0, maximum=100.0)


def sample(series: Any) -> GpuSample:
    """One series as a sample; BadSeries when it cannot be read."""
    if not isinstance(series, dict):
        raise BadSeries(f"a series that is not an object ({type(series).__name__})")
    labels = series.get("metric")
    labels = {} if labels is None else labels
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise BadSeries("a series whose labels are not all strings")
    utilization = _value(series)
    if utilization is None:
        raise BadSeries(f"{labels.get('Hostname') or labels.get('node') or '?'} GPU {labels.get('gpu', '?')}: "
                        f"the value is not a percent (0..100)")
    return GpuSample(
        hostname=labels.get("Hostname") or labels.get("node") or "",
        gpu=labels.get("gpu", ""),
        uuid=labels.get("UUID") or "",
        model=labels.get("modelName") or None,
        utilization=utilization,
        namespace=labels.get("namespace") or labels.get("exported_namespace") or None,
        pod=labels.get("pod") or labels.get("exported_pod") or None,
    )
