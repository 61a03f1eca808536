"""A Ray cluster's GPU nodes as GpuNode records, for the nodes panel beside Kubernetes nodes.
Pure functions of the dashboard's `/nodes?view=summary` answer and the cluster state parsed from
it (ray_cluster.parse_cluster); no I/O.

What each field comes from (backend-apis.md A.3; real captures in tests/fixtures):
- GPUs total: `raylet.resourcesTotal.GPU`; in use: the cluster state's logical use (cluster
  status `usageByNode`, else the summary's `nodeLogicalResources` text). Unknown stays unknown.
- ready: `raylet.state == "ALIVE"`; schedulable: not DRAINING (`stateSnapshot.state`).
- GPU model: the first GPU's name in the telemetry, else the `ray.io/accelerator-type` label, else
  the `acceleratorType:<model>` resource Ray adds on GPU machines (logical GPUs have none).
- utilization: the mean of the GPUs' `utilizationGpu`, only where telemetry reports it.

Total: an entry that cannot be read was already skipped and counted by parse_cluster; a field
that cannot be read here is unknown (None), never an exception.
"""

from __future__ import annotations

from typing import Any

from mltop.adapters.values import epoch_ms, mapping, sequence, text
from mltop.model import GpuNode, RayClusterState, RayNode, ray_node_key

GPU_RESOURCE = "GPU"  # Ray's logical resource name
ACCELERATOR_LABEL = "ray.io/accelerator-type"
ACCELERATOR_RESOURCE = "acceleratorType:"  # camelCased from accelerator_type:<model> by the dashboard
MAX_LABELS = 32
MAX_LABEL_CHARS = 200


def ray_gpu_nodes(cluster: str, nodes_raw: Any, state: RayClusterState) -> tuple[GpuNode, ...]:
    """Every node of `state` that has GPUs, as a GpuNode keyed `ray/<cluster>/<node id>`."""
    raw_by_id: dict[str, dict[str, Any]] = {}
    for entry in sequence(mapping(mapping(nodes_raw).get("data")).get("summary")):
        node_id = mapping(mapping(entry).get("raylet")).get("nodeId")
        if isinstance(node_id, str) and node_id not in raw_by_id:
            raw_by_id[node_id] = entry
    return tuple(gpu_node(cluster, n, raw_by_id.get(n.node_id, {})) for n in state.nodes if n.gpus_total > 0)


def gpu_node(cluster: str, node: RayNode, entry: dict[str, Any]) -> GpuNode:
    raylet = mapping(entry.get("raylet"))
    snapshot_state = text(mapping(raylet.get("stateSnapshot")).get("state"))
    native = text(raylet.get("state")) or "unknown"
    labels = _labels(raylet.get("labels"))
    role = "head" if node.is_head else "worker"
    utilizations = [d.utilization for d in node.devices if d.utilization is not None]
    return GpuNode(
        key=ray_node_key(cluster, node.node_id),
        cluster=cluster,
        name=_clip(node.hostname or node.address or node.node_id[:12]),
        # Under the Ray autoscaler, the node type is its pool; otherwise say it is Ray's.
        pool=text(raylet.get("nodeTypeName")) or ("ray head" if node.is_head else "ray"),
        gpu_model=model_of(node, raylet, dict(labels)),
        gpu_resource=GPU_RESOURCE,
        gpus_total=node.gpus_total,
        gpus_allocatable=node.gpus_total,
        gpus_allocated=node.gpus_used,
        ready=node.alive,
        schedulable=node.alive and snapshot_state != "DRAINING",
        instance_type=text(raylet.get("instanceTypeName")) or None,
        created_at=epoch_ms(raylet.get("startTimeMs")),
        conditions=((f"Ray {role}", native, _clip(text(raylet.get("stateMessage")) or "")),),
        labels=labels,
        origin="ray",
        address=node.address or None,
        gpu_utilization=sum(utilizations) / len(utilizations) if utilizations else None,
    )


def model_of(node: RayNode, raylet: dict[str, Any], labels: dict[str, str]) -> str | None:
    named = next((d.name for d in node.devices if d.name), None)
    if named:
        return named
    if labels.get(ACCELERATOR_LABEL):
        return labels[ACCELERATOR_LABEL]
    for resource in mapping(raylet.get("resourcesTotal")):
        if isinstance(resource, str) and resource.startswith(ACCELERATOR_RESOURCE) and len(resource) > len(ACCELERATOR_RESOURCE):
            return _clip(resource[len(ACCELERATOR_RESOURCE):])
    return None


def _labels(raw: Any) -> tuple[tuple[str, str], ...]:
    """A node's labels as sent (strings only, a bounded number of them, each clipped)."""
    pairs = [(k, v) for k, v in mapping(raw).items() if isinstance(k, str) and isinstance(v, str)]
    return tuple((_clip(k), _clip(v)) for k, v in sorted(pairs)[:MAX_LABELS])


def _clip(value: str) -> str:
    return value[:MAX_LABEL_CHARS]
