"""The demo cluster's DRA node (`resource.k8s.io/v1`, Kubernetes 1.34+): an H100 node whose GPUs
NVIDIA's DRA driver publishes in a ResourceSlice (no `nvidia.com/gpu` device plugin on it), a
training pod holding 2 of its 4 GPUs through an allocated ResourceClaim, and a pod whose claim
asks for 2 GPUs with 141 GiB each (H200s): no device matches, so the claim stays unallocated and
the pod waits while 2 H100s idle. Objects shaped as the API server and the driver send them.
"""

from __future__ import annotations

import zlib
from datetime import datetime, timedelta
from typing import Any

from mltop.demo import kube_objects as k
from mltop.demo.kube_api import KubeStore

API = "resource.k8s.io/v1"
DRIVER = "gpu.nvidia.com"
DRA_NODE = "gke-h100-dra-pool-5c8e-1"
RUNNING_POD = "rl-rollout-0-h4x9w"
WAITING_POD = "h200-eval-0-p2k7c"
WAITING_SAYS = "0/11 nodes are available: 11 cannot allocate all claims."


def dra_node(name: str, created: datetime) -> dict[str, Any]:
    labels = {"cloud.google.com/gke-nodepool": "h100-dra-pool", "node.kubernetes.io/instance-type": "a3-highgpu-4g",
              "topology.kubernetes.io/zone": "us-central1-a", "nvidia.com/dra-kubelet-plugin": "true"}
    return k.node(name, labels=labels, created=created, cpu="104", memory="936Gi", taints=[k.GPU_TAINT])


def resource_slice(node: str, gpus: int, product: str = "NVIDIA H100 80GB HBM3", *, api: str = API,
                   generation: int = 1) -> dict[str, Any]:
    devices = []
    for i in range(gpus):
        attributes = {"type": {"string": "gpu"}, "uuid": {"string": f"GPU-{zlib.crc32(f'{node}/{i}'.encode()):08x}-4d1e"},
                      "productName": {"string": product}, "brand": {"string": "Nvidia"},
                      "architecture": {"string": "Hopper"}, "index": {"int": i}, "minor": {"int": i},
                      "cudaComputeCapability": {"version": "9.0.0"}, "driverVersion": {"version": "570.124.6"}}
        capacity = {"memory": {"value": "80Gi"}}
        body = {"attributes": attributes, "capacity": capacity}
        devices.append({"name": f"gpu-{i}", **({"basic": body} if api.endswith("v1beta1") else body)})
    return {"apiVersion": api, "kind": "ResourceSlice",
            "metadata": {"name": f"{node}-{DRIVER}-x2v7q", "generateName": f"{node}-{DRIVER}-",
                         "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": node, "uid": f"uid-{node}",
                                              "controller": True}]},
            "spec": {"driver": DRIVER, "nodeName": node, "pool": {"name": node, "generation": generation,
                                                                   "resourceSliceCount": 1},
                     "devices": devices}}


def resource_claim(name: str, namespace: str, count: int, *, api: str = API, node: str | None = None,
                   devices: tuple[str, ...] = (), pod: str | None = None, selector: str | None = None) -> dict[str, Any]:
    wanted: dict[str, Any] = {"deviceClassName": DRIVER, "allocationMode": "ExactCount", "count": count}
    if selector:
        wanted["selectors"] = [{"cel": {"expression": selector}}]
    request = {"name": "gpus", **(wanted if api.endswith("v1beta1") else {"exactly": wanted})}
    status: dict[str, Any] = {}
    if devices:
        status["allocation"] = {
            "devices": {"results": [{"request": "gpus", "driver": DRIVER, "pool": node, "device": d} for d in devices]},
            "nodeSelector": {"nodeSelectorTerms": [{"matchFields": [
                {"key": "metadata.name", "operator": "In", "values": [node]}]}]}}
    if pod:
        status["reservedFor"] = [{"resource": "pods", "name": pod, "uid": f"uid-{pod}"}]
    return {"apiVersion": api, "kind": "ResourceClaim",
            "metadata": {"name": name, "namespace": namespace,
                         **({"ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": pod, "uid": f"uid-{pod}",
                                                  "controller": True}]} if pod else {})},
            "spec": {"devices": {"requests": [request]}}, "status": status}


def dra_pod(name: str, namespace: str, claim: str, *, created: datetime, node: str | None = None,
            owner: tuple[str, str] | None = None, says: str | None = None) -> dict[str, Any]:
    """A pod that gets its GPUs from a claim made from a template (none in `resources.requests`)."""
    pod = k.pod(name, namespace, created=created, node_name=node, owner=owner, unschedulable_message=says)
    pod["spec"]["resourceClaims"] = [{"name": "gpus", "resourceClaimTemplateName": f"{namespace}-gpus"}]
    pod["spec"]["containers"][0]["resources"]["claims"] = [{"name": "gpus"}]
    pod["status"]["resourceClaimStatuses"] = [{"name": "gpus", "resourceClaimName": claim}]
    return pod


def seed_dra(store: KubeStore, now: datetime) -> None:
    """The DRA node, its slice, a pod holding 2 of its 4 H100s, and a pod waiting on its claim."""
    store.put(dra_node(DRA_NODE, now - timedelta(days=6)))
    store.put(resource_slice(DRA_NODE, 4))
    store.put(resource_claim(f"{RUNNING_POD}-gpus-7bq2d", "rl", 2, node=DRA_NODE, devices=("gpu-0", "gpu-1"),
                             pod=RUNNING_POD))
    store.put(dra_pod(RUNNING_POD, "rl", f"{RUNNING_POD}-gpus-7bq2d", created=now - timedelta(hours=3),
                      node=DRA_NODE, owner=("Job", "rl-rollout")))
    created = now - timedelta(minutes=6)
    store.put(resource_claim(f"{WAITING_POD}-gpus-m5r8t", "research", 2,
                             selector=f'device.capacity["{DRIVER}"].memory.compareTo(quantity("141Gi")) >= 0'))
    store.put(dra_pod(WAITING_POD, "research", f"{WAITING_POD}-gpus-m5r8t", created=created,
                      owner=("Job", "h200-eval"), says=WAITING_SAYS))
    store.put(k.scheduling_event(WAITING_POD, "research", WAITING_SAYS, first=created,
                                 last=now - timedelta(seconds=20), count=6))
