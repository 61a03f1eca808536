"""KubeRay RayJobs for the demo cluster and the tests, shaped as the KubeRay operator writes them
(ray-operator/apis/ray/v1/rayjob_types.go; backend-apis.md C.5).

The demo has two: `embed-backfill` runs on the existing RayCluster `serve-cluster` (clusterSelector),
and `llm-finetune-7b` waits in Initializing: its own RayCluster (2 workers x 8 GPUs) is not up.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from mltop.demo.kube_objects import rfc3339, worker_group

API = ("ray.io/v1", "RayJob")


def head_group(gpus: int = 0) -> dict[str, Any]:
    limits = {"cpu": "4", "memory": "16Gi", **({"nvidia.com/gpu": str(gpus)} if gpus else {})}
    return {"rayStartParams": {"dashboard-host": "0.0.0.0"},
            "template": {"spec": {"containers": [{"name": "ray-head", "image": "rayproject/ray:2.60.0",
                                                   "resources": {"limits": limits, "requests": dict(limits)}}]}}}


def rayjob(name: str, namespace: str, *, created: datetime, entrypoint: str, deployment: str = "",
           ray_status: str = "", cluster: str | None = None, cluster_spec: dict[str, Any] | None = None,
           selector: str | None = None, shutdown: bool = False, started: datetime | None = None,
           job_started: datetime | None = None, ended: datetime | None = None, job_id: str | None = None,
           reason: str = "", message: str = "", labels: dict[str, str] | None = None,
           suspend: bool = False, finalizers: list[str] | None = None) -> dict[str, Any]:
    """A RayJob with the status the operator would have written; empty fields left out (omitempty)."""
    spec: dict[str, Any] = {"entrypoint": entrypoint, "submissionMode": "K8sJobMode", "backoffLimit": 0,
                            "shutdownAfterJobFinishes": shutdown, "ttlSecondsAfterFinished": 0}
    if suspend:
        spec["suspend"] = True
    if selector:
        spec["clusterSelector"] = {"ray.io/cluster": selector}
    else:
        spec["rayClusterSpec"] = cluster_spec or {"rayVersion": "2.60.0", "headGroupSpec": head_group(),
                                                  "workerGroupSpecs": []}
    status: dict[str, Any] = {"jobDeploymentStatus": deployment, "jobStatus": ray_status, "jobId": job_id,
                              "rayClusterName": cluster, "reason": reason, "message": message,
                              "observedGeneration": 1, "failed": 0, "succeeded": 0}
    if cluster:
        status["dashboardURL"] = f"{cluster}-head-svc.{namespace}.svc.cluster.local:8265"
    if started:
        status["startTime"] = rfc3339(started)
    if ended:
        status["endTime"] = rfc3339(ended)
    info = {k: rfc3339(v) for k, v in (("startTime", job_started), ("endTime", ended)) if v}
    if info:
        status["rayJobInfo"] = info
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "creationTimestamp": rfc3339(created),
                            "labels": labels or {}}
    if finalizers:
        meta["finalizers"] = finalizers
    return {"apiVersion": API[0], "kind": API[1], "metadata": meta, "spec": spec,
            "status": {k: v for k, v in status.items() if v not in (None, "")} or {}}


def seed_rayjobs(store: Any, now: datetime) -> None:
    minute = timedelta(minutes=1)
    # On serve-cluster, which the demo's story never scales (train-cluster pauses at 60 s).
    store.put(rayjob("embed-backfill", "serve", created=now - 26 * minute, selector="serve-cluster",
                     entrypoint="python backfill.py --index products-v3 --batch-size 512",
                     deployment="Running", ray_status="RUNNING", cluster="serve-cluster",
                     started=now - 26 * minute, job_started=now - 25 * minute, job_id="embed-backfill-x8k2p"))
    spec = {"rayVersion": "2.60.0", "enableInTreeAutoscaling": False, "headGroupSpec": head_group(),
            "workerGroupSpecs": [worker_group("gpu", replicas=2, min_replicas=2, max_replicas=2, gpus=8)]}
    store.put(rayjob("llm-finetune-7b", "research", created=now - 6 * minute, cluster_spec=spec, shutdown=True,
                     entrypoint="python finetune.py --model llama-7b --epochs 3", deployment="Initializing",
                     cluster="llm-finetune-7b-raycluster-q2x7m", started=now - 6 * minute,
                     job_id="llm-finetune-7b-w4n9c"))
