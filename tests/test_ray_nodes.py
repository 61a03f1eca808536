"""Ray's nodes in the nodes panel: parsed from real captures, served by the demo, read from a real
head; hostile node data stays safe; and Ray's GPUs are never counted twice in cost or totals."""

from __future__ import annotations

import asyncio
import json
import math
import time

import pytest
from rich.console import Console

from mltop.adapters.http import Endpoint
from mltop.adapters.ray import RaySource
from mltop.adapters.ray_cluster import parse_cluster
from mltop.adapters.ray_nodes import ray_gpu_nodes
from mltop.adapters.values import Skips
from mltop.cost import CostPolicy
from mltop.dashboard import Dashboard
from mltop.model import GpuDevice, GpuNode, GpuPod, RayClusterState, RayNode, SourceData, SourceHealth
from mltop.prices import price_book
from mltop.refresh import SourceUpdate
from mltop.registry import wait_models
from mltop.tui.infra_details import node_view
from mltop.widgets.infra_tables import NodesTable
from tests.conftest import FIXED_NOW, FIXTURES, fixed_clock

H200_ID = "9dda41415c575a8cdd1220ad8eed561bd64376bb9456d8c158c28d2d"


def load(path: str):
    return json.loads((FIXTURES / path).read_text())


def nodes_from(summary, status=None, cluster="c"):
    skips = Skips()
    state = parse_cluster(summary, status, skips=skips)
    return ray_gpu_nodes(cluster, summary, state), skips


def plain(renderable, width=160) -> str:
    console = Console(width=width, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


# -- real captures ------------------------------------------------------------------------------


def test_a_real_h200_node_with_telemetry():
    (node,), skips = nodes_from(load("ray-2.60-h200/nodes_summary_burn.json"), load("ray-2.60-h200/cluster_status.json"),
                                cluster="gpu")
    assert skips.count == 0
    assert node.key == f"ray/gpu/{H200_ID}" and node.origin == "ray"
    assert (node.name, node.address, node.pool) == ("vm", "192.0.2.2", "ray head")
    assert node.gpu_model == "NVIDIA H200" and node.gpu_resource == "GPU"
    assert (node.gpus_total, node.gpus_allocatable, node.gpus_allocated, node.gpus_free) == (1.0, 1.0, 1.0, 0.0)
    assert node.gpu_utilization == 100.0 and node.ready and node.schedulable
    assert node.created_at is not None and node.created_at.year == 2026
    assert ("ray.io/accelerator-type", "H200") in node.labels


def test_logical_gpus_have_no_model_and_no_utilization():
    (node,), _ = nodes_from(load("ray-2.49/nodes_summary.json"), load("ray-2.49/cluster_status.json"))
    assert node.gpus_total == 4.0 and node.gpus_allocated == 1.0 and node.gpus_free == 3.0
    assert node.gpu_model is None and node.gpu_utilization is None


def test_the_model_comes_from_the_label_or_the_accelerator_resource_when_telemetry_is_empty():
    summary = load("ray-2.60-h200/nodes_summary_burn.json")
    entry = summary["data"]["summary"][0]
    entry["gpus"] = []
    (node,), _ = nodes_from(summary)
    assert node.gpu_model == "H200" and node.gpu_utilization is None
    del entry["raylet"]["labels"]["ray.io/accelerator-type"]
    (node,), _ = nodes_from(summary)
    assert node.gpu_model == "H200"  # from the acceleratorType:H200 resource


# -- hostile node data --------------------------------------------------------------------------


def hostile_summary():
    summary = load("ray-2.60-h200/nodes_summary_burn.json")
    good = summary["data"]["summary"][0]
    nan_node = json.loads(json.dumps(good))
    nan_node["raylet"]["nodeId"] = "nan" * 10
    nan_node["raylet"]["resourcesTotal"]["GPU"] = float("nan")
    odd = json.loads(json.dumps(good))
    odd["raylet"]["nodeId"] = "odd" * 10
    odd["hostname"] = "evil\x1b[31mred\x07[bold]x[/bold]\n" + "h" * 5000
    odd["raylet"]["state"] = "DEAD"
    odd["raylet"]["nodeTypeName"] = {"not": "a string"}
    odd["raylet"]["labels"] = {"k": ["not", "a", "string"], "ok": "v\x1b]52;c;x\x07"}
    odd["raylet"]["startTimeMs"] = "NaN"
    odd["gpus"] = [{"index": 0, "name": "NVIDIA H200", "utilizationGpu": float("nan")}, "junk"]
    summary["data"]["summary"] += [nan_node, odd, "not a node"]
    summary["data"]["nodeLogicalResources"]["odd" * 10] = "1e999/1.0 GPU"
    return summary


def test_hostile_nodes_make_one_field_unknown_or_are_skipped_and_counted():
    nodes, skips = nodes_from(hostile_summary())
    by_id = {n.key.rsplit("/", 1)[1]: n for n in nodes}
    assert set(by_id) == {H200_ID, "odd" * 10}  # the NaN-GPU node and the non-object are left out...
    assert skips.count == 3  # ...and counted, with the junk GPU entry of the odd node
    odd = by_id["odd" * 10]
    assert not odd.ready and not odd.schedulable and odd.pool == "ray head"
    assert odd.gpus_allocated is None and odd.gpus_free == 0.0  # unknown use is never counted as free
    assert odd.gpu_utilization is None and odd.created_at is None
    assert dict(odd.labels) == {"ok": "v\x1b]52;c;x\x07"} and len(odd.name) <= 200


async def test_hostile_node_text_is_drawn_inert_in_the_panel_and_the_details():
    from textual.app import App

    (odd,) = [n for n in nodes_from(hostile_summary())[0] if n.key.endswith("odd" * 10)]

    class Panel(App):
        def compose(self):
            yield NodesTable(id="nodes")

    app = Panel()
    async with app.run_test(size=(100, 10)):
        table = app.query_one(NodesTable)
        table.relayout(98)
        table.sync([odd])
        cells = [str(c) for c in table.get_row_at(0)]
    shown = " ".join(cells) + plain(node_view(odd, FIXED_NOW))
    assert "\x1b" not in shown and "\x07" not in shown and "evil" in shown
    assert "[bold]x[/bold]" in shown  # shown as typed: never taken as markup
    assert "?" in cells[3] or "-" in cells[3]  # the unknown allocation reads as unknown


# -- the demo's dashboard, through the adapter ------------------------------------------------------


async def test_the_demo_serves_its_ray_nodes_as_a_real_head_does(frozen_demo):
    source = RaySource(frozen_demo.ray_endpoints()[0], clock=fixed_clock)
    try:
        data = await source.fetch()
    finally:
        await source.aclose()
    nodes = {n.name: n for n in data.ray_nodes}
    assert set(nodes) == {"gpu-worker-1", "gpu-worker-2"}  # the head has no GPUs: not a GPU node
    w1, w2 = nodes["gpu-worker-1"], nodes["gpu-worker-2"]
    assert w1.key.startswith("ray/demo/") and w1.address == "10.0.0.11" and w1.gpu_model == "NVIDIA A100-SXM4-80GB"
    assert (w1.gpus_total, w1.gpus_allocated, w2.gpus_allocated) == (8.0, 8.0, 6.0)
    assert w1.gpu_utilization == pytest.approx(93.0) and w2.gpu_utilization is not None
    assert data.nodes == ()  # Kubernetes' nodes only: the cost engine's input is unchanged
    llama = next(j for j in data.jobs if j.id == "raysubmit_llama70b")
    assert llama.node_keys == (w1.key,)


async def test_the_full_demo_shows_both_kinds_of_node_with_distinct_keys(frozen_demo):
    from mltop.adapters.kube import KubeSource
    from mltop.config import Config
    from mltop.dashboard import dashboard_for
    from mltop.refresh import poll_all

    config = Config(endpoints={"ray": frozen_demo.ray_endpoints(), "kubernetes": frozen_demo.kube_targets()})
    sources = [RaySource(e, clock=fixed_clock) for e in config.of("ray")]
    sources += [KubeSource(t, clock=fixed_clock) for t in config.of("kubernetes")]
    updates = await poll_all(sources, clock=fixed_clock)
    for s in sources:
        await s.aclose()
    dashboard = dashboard_for(sources, config)
    for u in updates:
        dashboard.update(u)
    view = dashboard.view(FIXED_NOW)
    ray = [n for n in view.nodes if n.origin == "ray"]
    kube = [n for n in view.nodes if n.origin == "kubernetes"]
    assert len(ray) == 2 and len(kube) >= 1
    assert len({n.key for n in view.nodes}) == len(view.nodes)
    assert all(view.source_of(n.key) == "ray/demo" for n in ray)
    # The K8s totals are Kubernetes' alone; Ray's GPUs are in Ray's own figures.
    assert view.summary.gpus_allocatable == sum(n.gpus_allocatable for n in kube)
    assert view.summary.ray_gpus_total == 16
    w2 = next(n for n in ray if n.name == "gpu-worker-2")
    assert view.node_idle_cost(w2) == pytest.approx(view.cost.node_price(w2.key).per_hour * 2 / 8)


# -- no double counting ------------------------------------------------------------------------------

A100 = "NVIDIA A100-SXM4-80GB"


def kuberay_updates(with_ray_nodes: bool) -> list[SourceUpdate]:
    """A KubeRay worker pod (ray-worker-abc, 8 GPUs) on Kubernetes node n; Ray uses 2 of them."""
    device = GpuDevice(0, A100, 50.0, 1.0, 81920.0)
    ray_node = RayNode("abc", "10.1.0.5", "ray-worker-abc", False, True, 8.0, 2.0, (device,) * 8)
    cluster = RayClusterState(nodes=(ray_node,), demands=())
    ray_nodes = ray_gpu_nodes("r", {"data": {"summary": []}}, cluster) if with_ray_nodes else ()
    kube_node = GpuNode(key="kubernetes/k/n", cluster="k", name="n", pool="a100", gpu_model="NVIDIA-A100-SXM4-80GB",
                        gpu_resource="nvidia.com/gpu", gpus_total=8, gpus_allocatable=8, gpus_allocated=8, ready=True,
                        schedulable=True, instance_type="p4de.24xlarge",
                        pods=(GpuPod("ray", "ray-worker-abc", 8, "Running", "RayCluster/r"),))

    def health(kind, name):
        return SourceHealth(kind, name, True, None, 1.0, FIXED_NOW, FIXED_NOW)

    return [SourceUpdate("ray/r", health("ray", "r"), SourceData(ray_cluster=cluster, ray_nodes=ray_nodes)),
            SourceUpdate("kubernetes/k", health("kubernetes", "k"), SourceData(nodes=(kube_node,)))]


def view_of(updates):
    dashboard = Dashboard([u.key for u in updates], prices=price_book(), policy=CostPolicy(waits_on=wait_models()))
    for u in updates:
        dashboard.update(u)
    return dashboard.view(FIXED_NOW)


def test_a_kuberay_node_shown_in_the_panel_adds_no_gpus_and_no_dollars():
    without, shown = view_of(kuberay_updates(False)), view_of(kuberay_updates(True))
    assert [n.origin for n in shown.nodes] == ["ray", "kubernetes"]  # Ray's node has 6 free: first
    for field in ("idle_rate", "burn_rate", "warned_rate", "unpriced_nodes", "warnings"):
        assert getattr(shown.cost, field) == getattr(without.cost, field), field
    assert shown.summary == without.summary and shown.summary.gpus_allocatable == 8
    # The Ray node's own idle figure is the one idle_rate already holds: Ray's 6 free GPUs.
    ray_node = shown.nodes[0]
    assert shown.node_idle_cost(ray_node) == pytest.approx(shown.cost.idle_rate)
    # The pod's GPUs are paid for in its Kubernetes node's price: burn counts that node once.
    assert shown.cost.burn_rate == pytest.approx(shown.cost.node_prices["kubernetes/k/n"].per_hour)


def test_a_ray_node_on_its_own_is_priced_by_ray():
    ray_only = [u for u in kuberay_updates(True) if u.key == "ray/r"]
    view = view_of(ray_only)
    (node,) = view.nodes
    price = view.cost.node_price(node.key).per_hour
    assert price and view.cost.burn_rate == pytest.approx(price)
    assert view.node_idle_cost(node) == pytest.approx(price * 6 / 8) == pytest.approx(view.cost.idle_rate)
    assert not math.isnan(view.node_idle_cost(node))


# -- a real Ray head ------------------------------------------------------------------------------------


@pytest.mark.ray
async def test_the_real_heads_node_appears_with_its_gpus_and_its_jobs_point_at_it(ray_head):
    import uuid

    import httpx

    sid = ray_head.submit("import time; time.sleep(600)", submission_id=f"nodes_{uuid.uuid4().hex[:8]}", gpus=1)
    source = RaySource(Endpoint(name="local", url=ray_head.url))
    try:
        ray_head.wait_for(sid, {"RUNNING"})
        data = await source.fetch()
        deadline = time.monotonic() + 30
        # Ray says what is in use a few seconds after it changes (unknown until then, never 0).
        while (not data.ray_nodes or (data.ray_nodes[0].gpus_allocated or 0) < 1) and time.monotonic() < deadline:
            await asyncio.sleep(1)
            data = await source.fetch()
    finally:
        await source.aclose()
        httpx.post(f"{ray_head.url}/api/jobs/{sid}/stop", timeout=30)
    (node,) = data.ray_nodes
    assert node.gpus_total == 4.0 and node.gpus_allocatable == 4.0 and node.ready
    assert node.key.startswith("ray/local/") and len(node.key.rsplit("/", 1)[1]) == 56
    assert node.gpu_model is None and node.gpu_utilization is None  # logical GPUs: no telemetry
    assert node.gpus_allocated is not None and 1.0 <= node.gpus_allocated <= 4.0
    assert node.pool == "ray head" and node.address
    job = next(j for j in data.jobs if j.id == sid)
    assert job.node_keys == (node.key,)  # the driver's node, by the id Ray gives both
