"""Prometheus with NVIDIA's DCGM exporter metrics: measured GPU utilization."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from mltop.adapters.prometheus_endpoint import PrometheusEndpoint
from mltop.config_types import HttpSourceConfig, default_name, local_file, url_flags
from mltop.registry import Backend, Inputs, SourceFlag, register


class PrometheusSourceConfig(HttpSourceConfig):
    window_minutes: float = Field(default=10.0, gt=0, le=24 * 60)  # utilization is averaged over this


def resolve(inputs: Inputs) -> tuple[PrometheusEndpoint, ...]:
    """--prometheus flags (averaged over the cost window), else the file's [[prometheus]]."""
    cost = getattr(inputs.settings, "cost", None)
    window = (cost.low_utilization_window_minutes if cost else 0) or 10.0
    flags = url_flags("--prometheus", inputs.flags.get("prometheus"))
    if flags:
        return tuple(PrometheusEndpoint(name=name or default_name(url), url=url, window_seconds=int(window * 60))
                     for name, url in flags)
    out = []
    for p in inputs.entries:
        name = p.name or default_name(p.url)
        out.append(PrometheusEndpoint(name=name, url=p.url, window_seconds=int(p.window_minutes * 60), token=p.token,
                                      ca_file=local_file(p.ca_file, f"{inputs.path}: prometheus.{name}.ca_file"),
                                      verify_tls=p.verify_tls))
    return tuple(out)


def build(endpoint: PrometheusEndpoint, config: Any) -> Any:
    from mltop.adapters.prometheus import PrometheusSource

    return PrometheusSource(endpoint)


BACKEND = register(Backend(
    kind="prometheus",
    display_name="Prometheus",
    job_noun="series",
    resolve=resolve,
    build=build,
    section="prometheus",
    entry_model=PrometheusSourceConfig,
    flags=(SourceFlag("--prometheus", "prometheus", "a Prometheus with DCGM exporter metrics, for measured GPU "
                      "utilization (repeatable)", metavar="[NAME=]URL"),),
    order=40,
))
