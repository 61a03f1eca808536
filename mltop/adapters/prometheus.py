"""Measured GPU utilization from Prometheus: NVIDIA's DCGM exporter metrics, through the HTTP API.

One instant query per refresh, averaged over the window server-side:
`avg_over_time(DCGM_FI_DEV_GPU_UTIL[10m])`. Each series carries the exporter's labels: `Hostname`
(the node), `gpu`, `UUID`, `modelName`, and with pod mapping on, `namespace` and `pod`, which is
how utilization joins Kubernetes nodes and pods.
"""

from __future__ import annotations

from typing import Any

import httpx

from mltop.adapters.http import Endpoint, decode_json, make_client, request
from mltop.adapters.prometheus_endpoint import PrometheusEndpoint
from mltop.errors import BadResponse
from mltop.model import GpuSample, SourceData

KIND = "prometheus"
METRIC = "DCGM_FI_DEV_GPU_UTIL"


class PrometheusSource:
    kind = KIND

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
        data = body.get("data") or {}
        if data.get("resultType") != "vector":
            raise BadResponse(f"{what}: expected a vector, got {data.get('resultType')}")
        return SourceData(gpu_samples=tuple(sample(s) for s in data.get("result") or [] if _value(s) is not None))


def _value(series: dict[str, Any]) -> float | None:
    try:
        return float(series["value"][1])
    except (KeyError, IndexError, TypeError, ValueError):
        return None


def sample(series: dict[str, Any]) -> GpuSample:
    labels = series.get("metric") or {}
    return GpuSample(
        hostname=labels.get("Hostname") or labels.get("node") or "",
        gpu=str(labels.get("gpu", "")),
        uuid=labels.get("UUID") or "",
        model=labels.get("modelName") or None,
        utilization=_value(series) or 0.0,
        namespace=labels.get("namespace") or labels.get("exported_namespace") or None,
        pod=labels.get("pod") or labels.get("exported_pod") or None,
    )
