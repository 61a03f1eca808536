"""Measured utilization from a real Prometheus (Debian's package; .ci/run installs it) scraping a
small exporter that the test serves with DCGM-format metrics."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from mltop.adapters.prometheus import PrometheusSource
from mltop.adapters.prometheus_endpoint import PrometheusEndpoint
from mltop.registry import wait_models
from mltop.cost import CostPolicy, IdleHistory, evaluate
from mltop.errors import BadResponse, Unreachable
from mltop.model import GpuNode, GpuPod, Snapshot
from mltop.prices import price_book
from tests.conftest import FIXED_NOW
from tests.prometheus_helpers import real_prometheus

# What dcgm-exporter serves, with pod mapping on (label names as in its default counters).
GPUS = [
    # (gpu, uuid, hostname, namespace, pod, utilization)
    ("0", "GPU-0a1b", "gpu-node-1", "ml", "train-0", 3),
    ("1", "GPU-0a1c", "gpu-node-1", "ml", "train-0", 5),
    ("2", "GPU-0a1d", "gpu-node-1", "ml", "busy-0", 97),
    ("3", "GPU-0a1e", "gpu-node-1", None, None, 0),
]


def exposition() -> str:
    lines = ["# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).", "# TYPE DCGM_FI_DEV_GPU_UTIL gauge"]
    for gpu, uuid, host, ns, pod, util in GPUS:
        labels = (f'gpu="{gpu}",UUID="{uuid}",device="nvidia{gpu}",modelName="NVIDIA H100 80GB HBM3",'
                  f'Hostname="{host}",DCGM_FI_DRIVER_VERSION="550.54.15"')
        if pod:
            labels += f',container="main",namespace="{ns}",pod="{pod}"'
        lines.append(f"DCGM_FI_DEV_GPU_UTIL{{{labels}}} {util}")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def prometheus():
    with real_prometheus(exposition, job="dcgm", ready_query="DCGM_FI_DEV_GPU_UTIL", series=len(GPUS)) as url:
        yield url


async def test_samples_carry_node_pod_and_window_average(prometheus):
    source = PrometheusSource(PrometheusEndpoint(name="prom", url=prometheus, window_seconds=30))
    try:
        samples = (await source.fetch()).gpu_samples
    finally:
        await source.aclose()
    by_uuid = {s.uuid: s for s in samples}
    assert set(by_uuid) == {"GPU-0a1b", "GPU-0a1c", "GPU-0a1d", "GPU-0a1e"}
    train = by_uuid["GPU-0a1b"]
    assert (train.hostname, train.namespace, train.pod, train.utilization) == ("gpu-node-1", "ml", "train-0", 3.0)
    assert train.model == "NVIDIA H100 80GB HBM3" and by_uuid["GPU-0a1e"].pod is None


async def test_a_pod_at_low_measured_utilization_is_warned_about(prometheus):
    source = PrometheusSource(PrometheusEndpoint(name="prom", url=prometheus, window_seconds=30))
    try:
        samples = (await source.fetch()).gpu_samples
    finally:
        await source.aclose()
    node = GpuNode(key="kubernetes/c/gpu-node-1", cluster="c", name="gpu-node-1", pool="h100", gpu_model="NVIDIA-H100",
                   gpu_resource="nvidia.com/gpu", gpus_total=4, gpus_allocatable=4, gpus_allocated=3, ready=True,
                   schedulable=True, instance_type="p5.48xlarge",
                   pods=(GpuPod("ml", "train-0", 2, "Running", "Job/train"), GpuPod("ml", "busy-0", 1, "Running", None)))
    snap = Snapshot(generated_at=FIXED_NOW, sources=(), jobs=(), nodes=(node,), gpu_samples=samples)
    policy = CostPolicy(low_utilization_window=timedelta(minutes=10), waits_on=wait_models())
    history = IdleHistory()
    evaluate(snap, price_book(), policy, history, FIXED_NOW)
    report = evaluate(snap, price_book(), policy, history, FIXED_NOW + timedelta(minutes=11))
    low = [w for w in report.warnings if w.kind == "low-utilization"]
    assert [w.target_name for w in low] == ["ml/train-0"]  # busy-0 works at 97%
    assert "4% utilization" in low[0].message and low[0].idle_gpus == 2
    assert low[0].cost_per_hour == pytest.approx(55.04 * 2 / 4)  # priced by the node's instance type


async def test_a_bad_query_and_an_unreachable_prometheus_are_one_line(prometheus):
    source = PrometheusSource(PrometheusEndpoint(name="prom", url=prometheus, window_seconds=30))
    source_bad = replace(source.endpoint, window_seconds=0)
    bad = PrometheusSource(source_bad)
    try:
        with pytest.raises(BadResponse) as info:
            await bad.fetch()
        assert "\n" not in str(info.value)
    finally:
        await bad.aclose()
        await source.aclose()
    dead = PrometheusSource(PrometheusEndpoint(name="prom", url="http://127.0.0.1:9"))
    with pytest.raises(Unreachable):
        await dead.fetch()
    await dead.aclose()
