"""Builders of realistic Kubernetes objects (as JSON dicts) for the demo cluster and the tests.

Labels follow what each platform really sets (backend-apis.md C.1): GPU feature discovery,
GKE/EKS/AKS/Karpenter pool and capacity labels, well-known instance type and zone.
"""

from __future__ import annotations

import zlib
from datetime import datetime, timezone
from typing import Any


def rfc3339(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def gfd_labels(product: str, count: int, memory_mib: int, family: str = "ampere") -> dict[str, str]:
    return {
        "nvidia.com/gpu.present": "true",
        "nvidia.com/gpu.product": product,
        "nvidia.com/gpu.count": str(count),
        "nvidia.com/gpu.memory": str(memory_mib),
        "nvidia.com/gpu.family": family,
        "nvidia.com/cuda.driver.major": "550",
        "nvidia.com/cuda.runtime.major": "12",
    }


def node(
    name: str,
    *,
    labels: dict[str, str],
    gpus: int | None = None,
    resources: dict[str, int] | None = None,
    created: datetime,
    cpu: str = "96",
    memory: str = "1056Gi",
    ready: bool = True,
    unschedulable: bool = False,
    taints: list[dict[str, str]] | None = None,
    provider_id: str = "",
) -> dict[str, Any]:
    accel = dict(resources or {})
    if gpus:
        accel["nvidia.com/gpu"] = gpus
    capacity = {"cpu": cpu, "memory": memory, "pods": "110", **{k: str(v) for k, v in accel.items()}}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", **labels},
            "creationTimestamp": rfc3339(created),
        },
        "spec": {
            "providerID": provider_id or f"fake://{name}",
            **({"unschedulable": True} if unschedulable else {}),
            **({"taints": taints} if taints else {}),
        },
        "status": {
            "capacity": capacity,
            "allocatable": dict(capacity),
            "conditions": [
                {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory"},
                {"type": "Ready", "status": "True" if ready else "False",
                 "reason": "KubeletReady" if ready else "KubeletNotReady",
                 "message": "kubelet is posting ready status" if ready else "container runtime network not ready"},
            ],
            "nodeInfo": {"kubeletVersion": "v1.31.2", "containerRuntimeVersion": "containerd://1.7.22",
                         "architecture": "amd64", "operatingSystem": "linux", "osImage": "Ubuntu 22.04.4 LTS",
                         "kernelVersion": "6.5.0", "kubeProxyVersion": "v1.31.2", "machineID": name,
                         "systemUUID": name, "bootID": name},
        },
    }


GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}


def gke_a100_node(name: str, pool: str, created: datetime, *, spot: bool = False) -> dict[str, Any]:
    labels = {
        "cloud.google.com/gke-nodepool": pool,
        "cloud.google.com/gke-accelerator": "nvidia-tesla-a100",
        "node.kubernetes.io/instance-type": "a2-highgpu-8g",
        "topology.kubernetes.io/zone": "us-central1-a",
        **gfd_labels("NVIDIA-A100-SXM4-40GB", 8, 40960),
    }
    if spot:
        labels["cloud.google.com/gke-spot"] = "true"
    return node(name, labels=labels, gpus=8, created=created, taints=[GPU_TAINT])


def gke_l4_node(name: str, pool: str, created: datetime) -> dict[str, Any]:
    labels = {
        "cloud.google.com/gke-nodepool": pool,
        "cloud.google.com/gke-accelerator": "nvidia-l4",
        "node.kubernetes.io/instance-type": "g2-standard-4",
        "topology.kubernetes.io/zone": "us-central1-b",
    }
    return node(name, labels=labels, gpus=1, created=created, cpu="4", memory="16Gi", taints=[GPU_TAINT])


def eks_h100_node(name: str, nodegroup: str, created: datetime) -> dict[str, Any]:
    labels = {
        "eks.amazonaws.com/nodegroup": nodegroup,
        "eks.amazonaws.com/capacityType": "ON_DEMAND",
        "node.kubernetes.io/instance-type": "p5.48xlarge",
        "topology.kubernetes.io/zone": "us-east-1a",
        **gfd_labels("NVIDIA-H100-80GB-HBM3", 8, 81559, "hopper"),
    }
    return node(name, labels=labels, gpus=8, created=created, cpu="192", memory="2048Gi",
                provider_id=f"aws:///us-east-1a/i-0{zlib.crc32(name.encode()):012d}")


def karpenter_l4_node(name: str, nodepool: str, created: datetime, *, spot: bool = True) -> dict[str, Any]:
    labels = {
        "karpenter.sh/nodepool": nodepool,
        "karpenter.sh/capacity-type": "spot" if spot else "on-demand",
        "karpenter.k8s.aws/instance-gpu-name": "l4",
        "karpenter.k8s.aws/instance-gpu-count": "4",
        "karpenter.k8s.aws/instance-gpu-manufacturer": "nvidia",
        "node.kubernetes.io/instance-type": "g6.12xlarge",
        "topology.kubernetes.io/zone": "us-east-1b",
    }
    return node(name, labels=labels, gpus=4, created=created, cpu="48", memory="192Gi", taints=[GPU_TAINT])


def aks_a100_node(name: str, agentpool: str, created: datetime) -> dict[str, Any]:
    labels = {
        "kubernetes.azure.com/agentpool": agentpool,
        "agentpool": agentpool,
        "kubernetes.azure.com/accelerator": "nvidia",
        "node.kubernetes.io/instance-type": "Standard_NC24ads_A100_v4",
        "topology.kubernetes.io/zone": "eastus-1",
        **gfd_labels("NVIDIA-A100-PCIE-80GB", 1, 81920),
    }
    return node(name, labels=labels, gpus=1, created=created, cpu="24", memory="220Gi")


def mig_node(name: str, pool: str, created: datetime) -> dict[str, Any]:
    """An A100 in MIG mixed mode: 7 x 1g.10gb slices on one GPU."""
    labels = {
        "cloud.google.com/gke-nodepool": pool,
        "node.kubernetes.io/instance-type": "a2-highgpu-1g",
        "topology.kubernetes.io/zone": "us-central1-a",
        "nvidia.com/mig.strategy": "mixed",
        **gfd_labels("NVIDIA-A100-SXM4-80GB", 1, 81920),
    }
    return node(name, labels=labels, resources={"nvidia.com/mig-1g.10gb": 7}, created=created, cpu="12",
                memory="85Gi", taints=[GPU_TAINT])


def time_sliced_node(name: str, pool: str, created: datetime) -> dict[str, Any]:
    """One T4 shared 4 ways by the device plugin's time-slicing: nvidia.com/gpu reads 4."""
    labels = {
        "cloud.google.com/gke-nodepool": pool,
        "node.kubernetes.io/instance-type": "n1-standard-8",
        "topology.kubernetes.io/zone": "us-central1-c",
        "nvidia.com/gpu.replicas": "4",
        "nvidia.com/gpu.sharing-strategy": "time-slicing",
        **gfd_labels("Tesla-T4-SHARED", 1, 15360, "turing"),
    }
    return node(name, labels=labels, gpus=4, created=created, cpu="8", memory="30Gi")


def cpu_node(name: str, pool: str, created: datetime) -> dict[str, Any]:
    labels = {"cloud.google.com/gke-nodepool": pool, "node.kubernetes.io/instance-type": "n2-standard-16",
              "topology.kubernetes.io/zone": "us-central1-a"}
    return node(name, labels=labels, created=created, cpu="16", memory="64Gi")


def pod(
    name: str,
    namespace: str,
    *,
    gpus: float = 0,
    resource: str = "nvidia.com/gpu",
    node_name: str | None = None,
    phase: str | None = None,  # default: Running when bound, Pending when not
    created: datetime,
    owner: tuple[str, str] | None = None,
    labels: dict[str, str] | None = None,
    limits_only: bool = False,
    init_gpus: float = 0,
    unschedulable_message: str | None = None,
    node_selector: dict[str, str] | None = None,
    env: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    resources: dict[str, Any] = {"requests": {"cpu": "4", "memory": "16Gi"}, "limits": {"memory": "16Gi"}}
    if gpus:
        amount = str(int(gpus)) if gpus == int(gpus) else str(gpus)
        resources["limits"][resource] = amount
        if not limits_only:
            resources["requests"][resource] = amount
    spec: dict[str, Any] = {
        "containers": [{"name": "main", "image": "nvcr.io/nvidia/pytorch:24.08-py3", "resources": resources,
                        **({"env": env} if env else {})}],
        "restartPolicy": "Never",
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    }
    if node_selector:
        spec["nodeSelector"] = dict(node_selector)
    if init_gpus:
        spec["initContainers"] = [{"name": "warmup", "image": "busybox",
                                   "resources": {"limits": {resource: str(int(init_gpus))}}}]
    if node_name:
        spec["nodeName"] = node_name
    phase = phase or ("Running" if node_name else "Pending")
    conditions = []
    if node_name:
        conditions.append({"type": "PodScheduled", "status": "True"})
        conditions.append({"type": "Ready", "status": "True" if phase == "Running" else "False"})
    else:
        conditions.append({"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                           "message": unschedulable_message or "0/9 nodes are available: 9 Insufficient nvidia.com/gpu."})
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "creationTimestamp": rfc3339(created),
                            "labels": labels or {}}
    if owner:
        meta["ownerReferences"] = [{"apiVersion": "batch/v1" if owner[0] == "Job" else "ray.io/v1",
                                    "kind": owner[0], "name": owner[1], "uid": f"uid-{owner[1]}",
                                    "controller": True}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec,
            "status": {"phase": phase, "conditions": conditions}}


def raycluster(
    name: str,
    namespace: str,
    *,
    groups: list[dict[str, Any]],
    autoscaling: bool,
    created: datetime,
) -> dict[str, Any]:
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": rfc3339(created)},
        "spec": {
            "rayVersion": "2.60.0",
            "enableInTreeAutoscaling": autoscaling,
            "headGroupSpec": {"rayStartParams": {"dashboard-host": "0.0.0.0"},
                              "template": {"spec": {"containers": [{"name": "ray-head", "image": "rayproject/ray:2.60.0"}]}}},
            "workerGroupSpecs": groups,
        },
        "status": {"state": "ready"},
    }


def worker_group(name: str, *, replicas: int, min_replicas: int, max_replicas: int, gpus: int) -> dict[str, Any]:
    return {
        "groupName": name,
        "replicas": replicas,
        "minReplicas": min_replicas,
        "maxReplicas": max_replicas,
        "numOfHosts": 1,
        "rayStartParams": {},
        "template": {"spec": {"containers": [{
            "name": "ray-worker", "image": "rayproject/ray:2.60.0-gpu",
            "resources": {"limits": {"cpu": "8", "memory": "64Gi", "nvidia.com/gpu": str(gpus)},
                          "requests": {"cpu": "8", "memory": "64Gi", "nvidia.com/gpu": str(gpus)}}}]}},
    }


def machine_deployment(
    name: str, namespace: str, *, replicas: int, ready: int, min_size: int | None, max_size: int | None,
    gpus_per_machine: int, created: datetime,
) -> dict[str, Any]:
    annotations = {"capacity.cluster-autoscaler.kubernetes.io/gpu-count": str(gpus_per_machine),
                   "capacity.cluster-autoscaler.kubernetes.io/gpu-type": "nvidia.com/gpu"}
    if min_size is not None:
        annotations["cluster.x-k8s.io/cluster-api-autoscaler-node-group-min-size"] = str(min_size)
    if max_size is not None:
        annotations["cluster.x-k8s.io/cluster-api-autoscaler-node-group-max-size"] = str(max_size)
    return {
        "apiVersion": "cluster.x-k8s.io/v1beta1",
        "kind": "MachineDeployment",
        "metadata": {"name": name, "namespace": namespace, "annotations": annotations,
                     "creationTimestamp": rfc3339(created)},
        "spec": {"clusterName": "gpu-capi", "replicas": replicas,
                 "selector": {"matchLabels": {"cluster.x-k8s.io/deployment-name": name}},
                 "template": {"spec": {"clusterName": "gpu-capi", "version": "v1.31.2"}}},
        "status": {"replicas": replicas, "readyReplicas": ready, "availableReplicas": ready,
                   "updatedReplicas": replicas, "phase": "Running",
                   "selector": f"cluster.x-k8s.io/deployment-name={name}"},
    }


def _micro(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def scheduling_event(pod_name: str, namespace: str, message: str, *, first: datetime, last: datetime,
                     count: int = 1, legacy: bool = False, reason: str = "FailedScheduling",
                     kind: str = "Pod") -> dict[str, Any]:
    """A core/v1 Event about a pod, as the API server shows it.

    The scheduler writes through events.k8s.io/v1: read back through core/v1 that event has
    `eventTime`, `series` once repeated, `reportingComponent`, and null legacy timestamps. An
    older writer (`legacy`) fills `source`, `firstTimestamp`, `lastTimestamp` and `count` instead.
    The name is the object's name plus a hex suffix, as client-go's recorder makes it."""
    suffix = f"{zlib.crc32(f'{namespace}/{pod_name}/{reason}'.encode()):08x}{int(first.timestamp()) % 0xFFFFFFFF:08x}"
    event: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": f"{pod_name}.{suffix}", "namespace": namespace, "creationTimestamp": rfc3339(first)},
        "involvedObject": {"apiVersion": "v1", "kind": kind, "namespace": namespace, "name": pod_name,
                           "uid": f"uid-{zlib.crc32(f'{namespace}/{pod_name}'.encode()):08x}"},
        "reason": reason, "message": message, "type": "Warning" if reason.startswith("Failed") else "Normal",
    }
    if legacy:
        event.update({"source": {"component": "default-scheduler"}, "firstTimestamp": rfc3339(first),
                      "lastTimestamp": rfc3339(last), "count": count, "eventTime": None,
                      "reportingComponent": "", "reportingInstance": ""})
    else:
        event.update({"source": {}, "firstTimestamp": None, "lastTimestamp": None, "eventTime": _micro(first),
                      "action": "Scheduling", "reportingComponent": "default-scheduler",
                      "reportingInstance": "default-scheduler-control-plane"})
        if count > 1:
            event["series"] = {"count": count, "lastObservedTime": _micro(last)}
    return event
