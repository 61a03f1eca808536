"""Workloads at size for the benchmark suite, built with the demo's own object builders.

Kubernetes: GPU nodes in pools of 50 (GKE A100, EKS H100, Karpenter L4, AKS A100), daemon pods on
every node, 2% of pods asking for GPUs (most bound, some pending with the scheduler's message), the
rest CPU pods of ReplicaSets and Jobs spread over the nodes. Ray: 16 GPU workers, a few hundred
running and waiting jobs, the rest finished. KFP: runs in one namespace, a few hundred active.
"""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta, timezone

from mltop.demo import kube_objects as k
from mltop.demo.kfp_api import KfpStore
from mltop.demo.kube_api import KubeStore
from mltop.demo.ray_sim import RaySim, SimJob, SimNode

NOW = datetime.now(timezone.utc).replace(microsecond=0)
POOL_SIZE = 50
NODE_KINDS = (k.gke_a100_node, k.eks_h100_node, k.karpenter_l4_node, k.aks_a100_node)
DAEMONS = ("nvidia-device-plugin", "dcgm-exporter", "kube-proxy")
KFP_NAMESPACE = "team-ml"


def gpu_node(i: int) -> dict:
    pool = i // POOL_SIZE
    build = NODE_KINDS[pool % len(NODE_KINDS)]
    return build(f"gpu-{pool:03d}-{i % POOL_SIZE:02d}", f"pool-{pool:03d}", NOW - timedelta(days=3))


def node_gpus(node: dict) -> int:
    return int(node["status"]["capacity"].get("nvidia.com/gpu", 0))


# A fifth of the pods that are not daemons ask for GPUs (1, 2, 4 or 8): about as many GPUs as the nodes
# have, so most nodes are busy, some have GPUs free and a queue waits, as on a busy training cluster.
# (Until 2026-11-30 this was every 50th pod, and a slip made every GPU pod pend: nodes held no pods.)
GPU_EVERY = 5


def seed_kube(store: KubeStore, nodes: int, pods: int) -> list[tuple[str, str, str, int]]:
    """Seed the store; returns the GPU pods bound to nodes, (namespace, name, node, GPUs), for the churn."""
    rng = random.Random(13)
    built = [gpu_node(i) for i in range(nodes)]
    free = {n["metadata"]["name"]: node_gpus(n) for n in built}
    for node in built:
        store.put(node)
    names = list(free)
    count = 0
    for name in names:  # daemon pods: three on every node
        for daemon in DAEMONS:
            if count < pods:
                store.put(k.pod(f"{daemon}-{name}", "kube-system", node_name=name, created=NOW - timedelta(days=3),
                                owner=("DaemonSet", daemon)))
                count += 1
    i = 0
    bound: list[tuple[str, str, str, int]] = []
    while count < pods:
        age = timedelta(minutes=rng.randint(1, 3000))
        ns = f"team-{i % 40:02d}"
        if i % GPU_EVERY == 0:
            pod = store.put(_gpu_pod(i, ns, rng, free, names, NOW - age))
            if pod["spec"].get("nodeName"):
                bound.append((ns, pod["metadata"]["name"], pod["spec"]["nodeName"], pod_gpus(pod)))
        else:
            owner = ("ReplicaSet", f"svc-{i // 10}") if i % 3 else ("Job", f"etl-{i // 10}")
            phase = "Succeeded" if owner[0] == "Job" and i % 2 else None
            store.put(k.pod(f"app-{i:06d}", ns, node_name=names[i % len(names)], created=NOW - age,
                            owner=owner, phase=phase))
        i += 1
        count += 1
    return bound


def pod_gpus(pod: dict) -> int:
    return sum(int(c["resources"].get("requests", {}).get("nvidia.com/gpu", 0)) for c in pod["spec"]["containers"])


def _gpu_pod(i: int, ns: str, rng: random.Random, free: dict[str, int], names: list[str], created: datetime) -> dict:
    """A GPU pod: bound where its GPUs fit (walking the nodes), else pending; one in ten pends anyway.
    `i` counts all pods, GPU pods are every GPU_EVERY-th: the pod's own number decides."""
    gpus = rng.choice((1, 2, 4, 8))
    owner = ("Job", f"train-{i}") if i % 4 else ("RayCluster", f"rc-{i}")
    if (i // GPU_EVERY) % 10:
        start = rng.randrange(len(names))
        for step in range(0, len(names), 7):
            name = names[(start + step) % len(names)]
            if free[name] >= gpus:
                free[name] -= gpus
                return k.pod(f"train-{i:06d}", ns, gpus=gpus, node_name=name, created=created, owner=owner)
    return k.pod(f"train-{i:06d}", ns, gpus=gpus, created=created, owner=owner,
                 unschedulable_message=f"0/{len(names)} nodes are available: {len(names)} Insufficient nvidia.com/gpu.")


class BenchRaySim(RaySim):
    """A RaySim whose state changes only when the suite says so (the churn thread), so that a
    dashboard with 10,000 jobs answers in milliseconds, as a real one does from its GCS."""

    def advance(self) -> None:
        pass

    def gpus_used(self, node_id: str) -> float:
        return self._used().get(node_id, (0.0, 0.0))[0]

    def cpus_used(self, node_id: str) -> float:
        return self._used().get(node_id, (0.0, 0.0))[1]

    def _used(self) -> dict[str, tuple[float, float]]:
        stamp = getattr(self, "stamp", 0)
        if getattr(self, "_used_stamp", None) != stamp:
            used: dict[str, tuple[float, float]] = {}
            for job in self.jobs.values():
                if job.status == "RUNNING" and job.node_id:
                    g, c = used.get(job.node_id, (0.0, 0.0))
                    used[job.node_id] = (g + job.gpus, c + job.cpus)
            self._cache, self._used_stamp = used, stamp
        return self._cache


def ray_nodes(workers: int) -> list[SimNode]:
    head = SimNode(uuid.uuid4().hex * 2, "10.0.0.10", "ray-head", gpus=0, cpus=8, is_head=True)
    return [head] + [SimNode(uuid.uuid4().hex * 2, f"10.0.1.{i}", f"gpu-worker-{i}", gpus=8, cpus=64,
                             gpu_model="NVIDIA A100-SXM4-80GB") for i in range(workers)]


def seed_ray(jobs: int, workers: int = 16) -> BenchRaySim:
    sim = BenchRaySim(ray_nodes(workers), start_timeout=1e9)
    rng = random.Random(7)
    now = sim.now_ms()
    slots = [n for n in sim.nodes if n.gpus for _ in range(int(n.gpus) // 2)]
    for i in range(jobs):
        newest = jobs - 1 - i  # the newest jobs run or wait, the older ones have finished
        status = ("RUNNING" if newest < len(slots) else "PENDING" if newest < len(slots) + min(50, jobs // 20)
                  else rng.choice(("SUCCEEDED", "SUCCEEDED", "SUCCEEDED", "FAILED", "STOPPED")))
        sim.jobs[f"raysubmit_{i:06d}"] = make_job(sim, i, status, now - newest * 9_000,
                                                    slots[newest].node_id if status == "RUNNING" else None)
    return sim


def make_job(sim: RaySim, i: int, status: str, submitted_ms: int, node_id: str | None) -> SimJob:
    job = SimJob(submission_id=f"raysubmit_{i:06d}", entrypoint=f"python train.py --trial {i}", gpus=2.0,
                 cpus=4.0, submitted_ms=submitted_ms, metadata={"owner": f"user{i % 30}", "job_name": f"trial-{i}"},
                 status=status)
    if status != "PENDING":
        job.started_ms = submitted_ms + 2_000
        job.ray_job_id = f"{i + 1:08x}"
        job.node_id = node_id
        job.message = "Job is currently running." if status == "RUNNING" else "Job finished."
    if status in ("SUCCEEDED", "FAILED", "STOPPED"):
        job.end_ms = submitted_ms + 8_000
        job.exit_code = 0 if status == "SUCCEEDED" else 1
        job.node_id = None
    return job


def seed_kfp(store: KfpStore, runs: int, active: int = 300) -> None:
    pipeline = store.add_pipeline("train-pipeline", KFP_NAMESPACE)
    experiments = [store.add_experiment(f"exp-{e}", KFP_NAMESPACE)["experiment_id"] for e in range(20)]
    start = NOW - timedelta(days=400)
    step = timedelta(days=399) / max(runs, 1)
    for i in range(runs):
        created = start + i * step
        state = ("RUNNING" if i % 2 else "PENDING") if i >= runs - active else ("FAILED" if i % 9 == 0 else "SUCCEEDED")
        store.add_run(f"run-{i:06d}", experiments[i % len(experiments)], state=state, created_at=created,
                      scheduled_at=created, finished_at=created + timedelta(minutes=30) if state in ("FAILED", "SUCCEEDED")
                      else None, pipeline_id=pipeline["pipeline_id"])
