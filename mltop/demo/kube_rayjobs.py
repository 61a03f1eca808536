"""KubeRay RayJobs for the demo cluster and the tests, shaped as the KubeRay operator writes them
(ray-operator/apis/ray/v1/rayjob_types.go; backend-apis.md C.5).

The demo has two: `embed-backfill` runs on the existing RayCluster `serve-cluster` (clusterSelector),
and `llm-finetune-7b` waits in Initializing: its own RayCluster (2 workers x 8 GPUs) is not up.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from mltop.demo.kube_objects import rfc3339, worker_group
from mltop.demo.kfp_scenario import FINETUNE_RUN_ID

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


# The identity chain (mltop/chain.py): demo-kfp's finetune-llama-3-8b-lora runs its train step in pod
# finetune-llama-train-91x; the step creates this RayJob, copying its pod's `pipeline/runid` label and
# naming the pod as its owner (so Kubernetes deletes the RayJob with the pod). KubeRay submits the Ray
# job under CHAIN_SUBMISSION_ID, and that RayCluster's own dashboard shows it (chain_ray_sim).
CHAIN_RAYJOB, CHAIN_NAMESPACE, CHAIN_STEP_POD = "finetune-llama-train", "team-nlp", "finetune-llama-train-91x"
CHAIN_SUBMISSION_ID = "finetune-llama-train-7kq4d"
CHAIN_RAY_CLUSTER = f"{CHAIN_RAYJOB}-raycluster-h5v2d"


def kfp_step_rayjob(now: datetime, run_id: str = FINETUNE_RUN_ID, namespace: str = CHAIN_NAMESPACE,
                    pod: str | None = CHAIN_STEP_POD, name: str = CHAIN_RAYJOB,
                    job_id: str = CHAIN_SUBMISSION_ID) -> dict[str, Any]:
    minute = timedelta(minutes=1)
    spec = {"rayVersion": "2.60.0", "headGroupSpec": head_group(),
            "workerGroupSpecs": [worker_group("gpu", replicas=1, min_replicas=1, max_replicas=1, gpus=4)]}
    obj = rayjob(name, namespace, created=now - 30 * minute, cluster_spec=spec, shutdown=True,
                 entrypoint="python -m train --config llama3-8b-lora.yaml", deployment="Running",
                 ray_status="RUNNING", cluster=CHAIN_RAY_CLUSTER if name == CHAIN_RAYJOB else f"{name}-rc",
                 started=now - 30 * minute,
                 job_started=now - 29 * minute, job_id=job_id, labels={"pipeline/runid": run_id} if run_id else {})
    if pod:
        obj["metadata"]["ownerReferences"] = [{"apiVersion": "v1", "kind": "Pod", "name": pod, "uid": f"uid-{pod}",
                                               "blockOwnerDeletion": True}]
    return obj


def seed_kfp_rayjob(store: Any, now: datetime) -> None:
    store.put(kfp_step_rayjob(now))


def chain_ray_sim(clock: Any = None) -> Any:
    """The RayJob's own RayCluster, as its dashboard (head service port 8265) shows it: a head and one
    4-GPU worker, running the Ray job KubeRay submitted under CHAIN_SUBMISSION_ID."""
    from mltop.demo.ray_sim import RaySim, SimNode
    from mltop.demo.scenario import GPU_MODEL, set_utilization

    nodes = [SimNode("5c0ffee5" * 7, "10.0.3.10", f"{CHAIN_RAY_CLUSTER}-head-7x2lq", gpus=0, cpus=4, is_head=True),
             SimNode("7e57ab1e" * 7, "10.0.3.11", f"{CHAIN_RAY_CLUSTER}-gpu-worker-k9d4s", gpus=4, cpus=32,
                     gpu_model=GPU_MODEL)]
    sim = RaySim(nodes, clock=clock) if clock else RaySim(nodes)
    sim.session_name = "session_finetune_llama_train"
    start_timeout, sim.start_timeout = sim.start_timeout, 1e9
    job = sim.submit("python -m train --config llama3-8b-lora.yaml", submission_id=CHAIN_SUBMISSION_ID, gpus=4,
                     metadata={"job_name": CHAIN_RAYJOB}, run_seconds=6 * 3600,
                     submitted_ms=sim.now_ms() - 29 * 60_000)
    job.started_ms = job.submitted_ms
    sim.start_timeout = start_timeout
    sim.advance()
    set_utilization(sim)
    return sim
