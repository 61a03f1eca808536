"""A Ray cluster's nodes, GPUs and unplaceable demand, from the dashboard's node summary and
cluster status; and a running job's measured GPU utilization. Pure functions, no I/O.

Total: a broken node entry, GPU entry or demand is skipped and counted (`Skips`); a junk number
is unknown (None). Only a node summary with no usable shape at all is an error.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from mltop.adapters.values import MAX_COUNT, Skips, integer, mapping, number, sequence, text
from mltop.errors import BadResponse
from mltop.model import GpuDevice, Job, JobState, RayClusterState, RayNode, ResourceDemand


def with_utilization(job: Job, raw: dict[str, Any], cluster: RayClusterState, sole: bool = False) -> Job:
    """A running job's measured GPU utilization, from the dashboard's telemetry.

    The GPUs on its driver's node whose process list holds the driver's pid; or, when the job is
    the only running GPU job on that node, the node's GPUs that any process uses. (A plain
    entrypoint that never calls ray.init() has no driver_info: its GPU process is a child of
    the job's supervisor, which the API does not name; seen on a real H200.)
    """
    node_id = raw.get("driver_node_id")
    if job.state is not JobState.RUNNING or not isinstance(node_id, str) or not node_id or not job.gpus:
        return job
    node = next((n for n in cluster.nodes if n.node_id == node_id), None)
    if node is None:
        return job
    pid = integer(mapping(raw.get("driver_info")).get("pid"))
    devices = [d for d in node.devices if pid is not None and pid in d.pids]
    if not devices and sole:
        devices = [d for d in node.devices if d.pids]
    values = [d.utilization for d in devices if d.utilization is not None]
    if not values:
        return job
    return replace(job, gpu_utilization=sum(values) / len(values))


class _Unreadable(ValueError):
    """A node entry that cannot be used; parse_cluster leaves it out and counts it."""


def parse_cluster(nodes_raw: Any, status_raw: Any, skips: Skips | None = None) -> RayClusterState:
    """Nodes with logical GPU use and physical telemetry, plus the demand Ray cannot place.

    BadResponse only when the node summary as a whole has no usable shape. A node entry, GPU
    entry or demand that cannot be read is left out and counted in `skips` (when given); a
    field that cannot be read is unknown (None) where the record allows it.
    """
    skips = skips if skips is not None else Skips()
    data = mapping(nodes_raw).get("data")
    summary = data.get("summary", []) if isinstance(data, dict) else None
    if not isinstance(summary, list):
        raise BadResponse("node summary: unexpected shape")
    logical = mapping(data.get("nodeLogicalResources"))
    # cluster_status is optional (autoscaler v2 leaves it null): junk there is just "not said".
    status = mapping(mapping(mapping(status_raw).get("data")).get("clusterStatus"))
    load = mapping(status.get("loadMetricsReport"))
    usage_by_node = mapping(load.get("usageByNode"))

    nodes = []
    for index, entry in enumerate(summary):
        try:
            nodes.append(_node(entry, usage_by_node, logical, skips))
        except _Unreadable as exc:
            skips.add(f"node summary: node #{index}: {exc}")
    demands = []
    # Lists nested in lists are not camelCased, so resource names keep Ray's spelling here.
    for item in sequence(load.get("resourceDemand")) + sequence(load.get("pgDemand")):
        demand = _demand(item)
        if demand is None:
            skips.add(f"cluster status: a resource demand that cannot be read ({type(item).__name__})")
        else:
            demands.append(demand)
    return RayClusterState(nodes=tuple(nodes), demands=tuple(demands))


def _node(entry: Any, usage_by_node: dict[str, Any], logical: dict[str, Any], skips: Skips) -> RayNode:
    if not isinstance(entry, dict) or not isinstance(entry.get("raylet"), dict):
        raise _Unreadable("not an object with a raylet")
    raylet = entry["raylet"]
    node_id = raylet.get("nodeId")
    if not isinstance(node_id, str) or not node_id:
        raise _Unreadable("no nodeId")
    raw_total = mapping(raylet.get("resourcesTotal")).get("GPU")
    total = 0.0 if raw_total is None else number(raw_total)
    if total is None:  # a GPU total that is junk is not zero GPUs: leave the node out, said so
        shown = raw_total[:20] if isinstance(raw_total, str) else type(raw_total).__name__
        raise _Unreadable(f"{node_id[:12]}: GPU total {shown!r} is not a count")
    devices = []
    for raw in sequence(entry.get("gpus")):
        device = _device(raw)
        if device is None:
            skips.add(f"node summary: node {node_id[:12]}: a GPU entry that cannot be read")
        else:
            devices.append(device)
    return RayNode(
        node_id=node_id,
        address=text(entry.get("ip")) or text(raylet.get("nodeManagerAddress")) or "",
        hostname=text(entry.get("hostname")) or "",
        is_head=raylet.get("isHeadNode") is True,
        alive=raylet.get("state") == "ALIVE",
        gpus_total=total,
        gpus_used=_used_gpus(usage_by_node.get(node_id), logical.get(node_id), has_gpus=total > 0),
        devices=tuple(devices),
    )


def _demand(item: Any) -> ResourceDemand | None:
    """`[{resource: amount}, count]`, or None when any part of it cannot be read."""
    if not isinstance(item, list) or len(item) != 2 or not isinstance(item[0], dict):
        return None
    amounts = {str(k): number(v) for k, v in item[0].items()}
    count = integer(item[1])
    if count is None or any(v is None for v in amounts.values()):
        return None
    return ResourceDemand(resources=tuple(sorted((k, v) for k, v in amounts.items() if v is not None)), count=count)


# ASCII digits and same-line blanks only: `\s` spans lines, and `^\s*...\s+` on a long run of
# blank lines backtracks quadratically.
_LOGICAL_GPU = re.compile(r"^[ \t]*([0-9.]+)/([0-9.]+)[ \t]+GPU[ \t\r]*$", re.MULTILINE)


def _used_gpus(usage: Any, logical_text: Any, has_gpus: bool = False) -> float | None:
    """Logical GPUs in use on a node; None when Ray did not say or said junk (Ray always writes
    a GPU line for a node with GPUs: one it cannot read is junk, not zero in use)."""
    if isinstance(usage, dict) and isinstance(usage.get("GPU"), list) and usage["GPU"]:
        return number(usage["GPU"][0])
    # Autoscaler v2 leaves cluster_status empty; the node summary's text form still has it.
    if isinstance(logical_text, str):
        match = _LOGICAL_GPU.search(logical_text)
        if match:
            return number(match.group(1))  # "1.2.3" matches the pattern but is no number
        return None if has_gpus else 0.0
    return None


def _device(raw: Any) -> GpuDevice | None:
    """One GPU's telemetry; None when the entry cannot be read (not an object, a junk index)."""
    if not isinstance(raw, dict):
        return None
    index = integer(raw.get("index", 0))
    if index is None:
        return None
    return GpuDevice(
        index=index,
        name=text(raw.get("name")) or "",
        utilization=_num(raw.get("utilizationGpu"), maximum=100.0),
        memory_used_mib=_num(raw.get("memoryUsed")),
        memory_total_mib=_num(raw.get("memoryTotal")),
        pids=tuple(pid for p in sequence(raw.get("processesPids"))
                   if (pid := integer(mapping(p).get("pid"))) is not None),
    )


def _num(value: Any, maximum: float = MAX_COUNT) -> float | None:
    """A finite, non-negative measurement within `maximum`; anything else is unknown (None)."""
    return number(value, maximum=maximum)
