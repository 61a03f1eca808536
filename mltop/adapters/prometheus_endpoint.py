"""Where Prometheus (with NVIDIA's DCGM exporter metrics) answers: kept light for config."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PrometheusEndpoint:
    name: str
    url: str
    window_seconds: int = 600  # utilization is averaged over this window, server-side
    token: str | None = None
    ca_file: str | None = None
    verify_tls: bool = True
