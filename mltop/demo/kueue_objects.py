"""Kueue objects as a Kueue v0.16 cluster stores them (kueue.x-k8s.io/v1beta2 unless asked), and the
demo's Kueue-managed namespace: team-a's ClusterQueue has 8 A100s of quota, 6 used by a running
job, and two 4-GPU jobs wait behind it, held by quota (positions 1 and 2).

Kueue's pod integration: a pod labelled `kueue.x-k8s.io/queue-name` is held by the scheduling gate
`kueue.x-k8s.io/admission` until its Workload (`pod-<name>-<hash>`, owned by the pod) is admitted.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

from mltop.demo import kube_objects as k

API = "kueue.x-k8s.io/v1beta2"
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
GATE = "kueue.x-k8s.io/admission"
NAMESPACE, LOCAL_QUEUE, CLUSTER_QUEUE, FLAVOR = "team-a", "team-a-queue", "team-a-cq", "a100-team-a"
NODE_POOL = "team-a-pool"


def resource_flavor(name: str, node_labels: dict[str, str], api: str = API) -> dict[str, Any]:
    return {"apiVersion": api, "kind": "ResourceFlavor", "metadata": {"name": name},
            "spec": {"nodeLabels": dict(node_labels)}}


def cluster_queue(name: str, flavor: str, *, gpus: int, used: float, pending: int, admitted: int,
                  api: str = API, borrowing_limit: int | None = None, cohort: str | None = None) -> dict[str, Any]:
    gpu: dict[str, Any] = {"name": "nvidia.com/gpu", "nominalQuota": str(gpus)}
    if borrowing_limit is not None:
        gpu["borrowingLimit"] = str(borrowing_limit)
    spec: dict[str, Any] = {
        "namespaceSelector": {}, "queueingStrategy": "BestEffortFIFO",
        "preemption": {"reclaimWithinCohort": "Never", "withinClusterQueue": "Never"},
        "resourceGroups": [{"coveredResources": ["cpu", "memory", "nvidia.com/gpu"], "flavors": [
            {"name": flavor, "resources": [{"name": "cpu", "nominalQuota": "96"},
                                           {"name": "memory", "nominalQuota": "1Ti"}, gpu]}]}]}
    if cohort:
        spec["cohortName" if api.endswith("v1beta2") else "cohort"] = cohort
    usage = [{"name": flavor, "resources": [{"name": "nvidia.com/gpu", "total": f"{used:g}", "borrowed": "0"}]}]
    return {"apiVersion": api, "kind": "ClusterQueue", "metadata": {"name": name}, "spec": spec,
            "status": {"pendingWorkloads": pending, "reservingWorkloads": admitted, "admittedWorkloads": admitted,
                       "flavorsReservation": usage, "flavorsUsage": usage,
                       "conditions": [{"type": "Active", "status": "True", "reason": "Ready",
                                       "message": "Can admit new workloads", "lastTransitionTime": "2026-01-05T10:00:00Z"}]}}


def local_queue(name: str, namespace: str, cq: str, *, pending: int, admitted: int, api: str = API) -> dict[str, Any]:
    usage_field = "flavorsUsage" if api.endswith("v1beta2") else "flavorUsage"  # renamed in v1beta2
    return {"apiVersion": api, "kind": "LocalQueue", "metadata": {"name": name, "namespace": namespace},
            "spec": {"clusterQueue": cq},
            "status": {"pendingWorkloads": pending, "reservingWorkloads": admitted, "admittedWorkloads": admitted,
                       usage_field: [], "conditions": [{"type": "Active", "status": "True", "reason": "Ready",
                                                        "message": "Can submit new workloads to localQueue"}]}}


def workload_name(pod: str) -> str:
    return f"pod-{pod}-{hashlib.sha256(pod.encode()).hexdigest()[:5]}"


def workload(pod: dict[str, Any], queue: str, *, created: datetime, admitted_to: str | None = None,
             flavor: str = FLAVOR, message: str | None = None, priority: int = 0, api: str = API,
             reason: str = "Pending") -> dict[str, Any]:
    """The Workload Kueue's pod integration makes for `pod`; admitted to a ClusterQueue, or held
    (`QuotaReserved=False` with the flavor assigner's message)."""
    meta = pod["metadata"]
    gpus = pod["spec"]["containers"][0]["resources"]["limits"].get("nvidia.com/gpu", "0")
    when = k.rfc3339(created)
    status: dict[str, Any] = {"resourceRequests": [{"name": "main", "resources": {"nvidia.com/gpu": gpus}}]}
    if admitted_to:
        status["admission"] = {"clusterQueue": admitted_to, "podSetAssignments": [
            {"name": "main", "count": 1, "flavors": {"nvidia.com/gpu": flavor}, "resourceUsage": {"nvidia.com/gpu": gpus}}]}
        status["conditions"] = [
            {"type": "QuotaReserved", "status": "True", "reason": "QuotaReserved", "lastTransitionTime": when,
             "message": f"Quota reserved in ClusterQueue {admitted_to}", "observedGeneration": 1},
            {"type": "Admitted", "status": "True", "reason": "Admitted", "lastTransitionTime": when,
             "message": "The workload is admitted", "observedGeneration": 1}]
    else:
        status["conditions"] = [{"type": "QuotaReserved", "status": "False", "reason": reason,
                                 "lastTransitionTime": when, "observedGeneration": 1, "message": message or ""}]
    return {"apiVersion": api, "kind": "Workload",
            "metadata": {"name": workload_name(meta["name"]), "namespace": meta["namespace"],
                         "creationTimestamp": when, "labels": {"kueue.x-k8s.io/job-uid": f"uid-{meta['name']}"},
                         "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": meta["name"],
                                              "uid": f"uid-{meta['name']}", "controller": True,
                                              "blockOwnerDeletion": True}]},
            "spec": {"active": True, "queueName": queue, "priority": priority, "priorityClassSource": "",
                     "podSets": [{"name": "main", "count": 1, "template": {"spec": pod["spec"]}}]},
            "status": status}


def queued_pod(name: str, namespace: str, queue: str, *, gpus: int, created: datetime,
               node_name: str | None = None) -> dict[str, Any]:
    """A pod under Kueue's pod integration: gated until admitted, then scheduled."""
    pod = k.pod(name, namespace, gpus=gpus, created=created, node_name=node_name,
                labels={QUEUE_LABEL: queue, "kueue.x-k8s.io/managed": "true"})
    if node_name is None:
        pod["spec"]["schedulingGates"] = [{"name": GATE}]
        pod["status"]["conditions"] = [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated",
                                        "message": "Scheduling is blocked due to non-empty scheduling gates"}]
    return pod


def seed_team_a(store: Any, now: datetime) -> None:
    """team-a: a node pool of its own, 8 GPUs of quota, 6 in use, two 4-GPU jobs held by quota."""
    store.put(k.gke_a100_node("gke-team-a-pool-5d1e-1", NODE_POOL, now - timedelta(days=6)))
    store.put(resource_flavor(FLAVOR, {"cloud.google.com/gke-nodepool": NODE_POOL}))
    store.put(cluster_queue(CLUSTER_QUEUE, FLAVOR, gpus=8, used=6, pending=2, admitted=1))
    store.put(local_queue(LOCAL_QUEUE, NAMESPACE, CLUSTER_QUEUE, pending=2, admitted=1))
    running = queued_pod("train-bert-0", NAMESPACE, LOCAL_QUEUE, gpus=6, created=now - timedelta(hours=2),
                         node_name="gke-team-a-pool-5d1e-1")
    store.put(running)
    store.put(workload(running, LOCAL_QUEUE, created=now - timedelta(hours=2), admitted_to=CLUSTER_QUEUE))
    for i, (name, minutes) in enumerate((("eval-llama-0", 25), ("sweep-bs-0", 12))):
        pod = queued_pod(name, NAMESPACE, LOCAL_QUEUE, gpus=4, created=now - timedelta(minutes=minutes))
        store.put(pod)
        store.put(workload(pod, LOCAL_QUEUE, created=now - timedelta(minutes=minutes),
                           message=f"couldn't assign flavors to pod set main: insufficient unused quota for "
                                   f"nvidia.com/gpu in flavor {FLAVOR}, 2 more needed"))


def seed_queued_rayjob(store: Any, now: datetime) -> None:
    """A KubeRay RayJob Kueue holds for quota (third in team-a-cq): Kueue keeps it suspended, so it has
    no RayCluster yet; its Workload (owned by the RayJob) asks for a head and two 4-GPU workers."""
    from mltop.demo.kube_rayjobs import head_group, rayjob, worker_group

    store.put(cluster_queue(CLUSTER_QUEUE, FLAVOR, gpus=8, used=6, pending=3, admitted=1))
    store.put(local_queue(LOCAL_QUEUE, NAMESPACE, CLUSTER_QUEUE, pending=3, admitted=1))
    created = now - timedelta(minutes=8)
    spec = {"rayVersion": "2.60.0", "headGroupSpec": head_group(),
            "workerGroupSpecs": [worker_group("gpu", replicas=2, min_replicas=2, max_replicas=2, gpus=4)]}
    job = rayjob("rl-policy-sweep", NAMESPACE, created=created, cluster_spec=spec, shutdown=True, suspend=True,
                 entrypoint="python sweep.py --algo ppo --trials 16", deployment="Suspended",
                 labels={QUEUE_LABEL: LOCAL_QUEUE})
    job["metadata"]["uid"] = "uid-rayjob-rl-policy-sweep"
    store.put(job)
    when = k.rfc3339(created)
    worker = spec["workerGroupSpecs"][0]["template"]["spec"]
    store.put({"apiVersion": API, "kind": "Workload",
               "metadata": {"name": "rayjob-rl-policy-sweep-7c2f1", "namespace": NAMESPACE, "creationTimestamp": when,
                            "labels": {"kueue.x-k8s.io/job-uid": "uid-rayjob-rl-policy-sweep"},
                            "ownerReferences": [{"apiVersion": "ray.io/v1", "kind": "RayJob", "name": "rl-policy-sweep",
                                                 "uid": "uid-rayjob-rl-policy-sweep", "controller": True,
                                                 "blockOwnerDeletion": True}]},
               "spec": {"active": True, "queueName": LOCAL_QUEUE, "priority": 0, "priorityClassSource": "",
                        "podSets": [{"name": "head", "count": 1, "template": spec["headGroupSpec"]["template"]},
                                    {"name": "gpu", "count": 2, "template": {"spec": worker}}]},
               "status": {"resourceRequests": [{"name": "head", "resources": {"cpu": "4"}},
                                               {"name": "gpu", "resources": {"nvidia.com/gpu": "8"}}],
                          "conditions": [{"type": "QuotaReserved", "status": "False", "reason": "Pending",
                                          "lastTransitionTime": when, "observedGeneration": 1,
                                          "message": "couldn't assign flavors to pod set gpu: insufficient unused "
                                                     f"quota for nvidia.com/gpu in flavor {FLAVOR}, 6 more needed"}]}})
