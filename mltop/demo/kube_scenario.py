"""The demo's Kubernetes cluster: GPU pools from GKE, EKS, Karpenter and AKS, a MIG node, a
time-sliced node, a CPU-only pool, a KubeRay cluster, a MachineDeployment, GPU pods coming and
going, pods waiting for GPUs, and one pool (H100) left idle.

`seed_kube` builds the opening state; `KubeScenario.step` plays the controllers a real cluster
runs (KubeRay keeps worker pods at `replicas`, Cluster API brings machines to `replicas`, jobs
finish and new ones queue), so scaling in the demo shows up the way it would for real.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from mltop.demo import kube_objects as k
from mltop.demo.kube_api import KubeStore
from mltop.demo.kube_pod_logs import write_demo_logs

RAY = ("ray.io/v1", "RayCluster")
CAPI = ("cluster.x-k8s.io/v1beta1", "MachineDeployment")
MAX_PODS = 80


def seed_kube(store: KubeStore, now: datetime) -> None:
    day = timedelta(days=1)
    for obj in (
        k.gke_a100_node("gke-a100-pool-7f3a-1", "a100-pool", now - 12 * day),
        k.gke_a100_node("gke-a100-pool-7f3a-2", "a100-pool", now - 12 * day),
        k.eks_h100_node("ip-10-0-41-17.ec2.internal", "h100-ng", now - 2 * day),  # nobody uses it
        k.karpenter_l4_node("ip-10-0-77-5.ec2.internal", "l4-spot", now - timedelta(hours=5)),
        k.karpenter_l4_node("ip-10-0-77-9.ec2.internal", "l4-spot", now - timedelta(hours=3)),
        k.aks_a100_node("aks-a100pool-31415-vmss000000", "a100pool", now - 30 * day),
        k.mig_node("gke-mig-pool-2b1c-1", "mig-pool", now - 9 * day),
        k.time_sliced_node("gke-shared-t4-9e0d-1", "shared-t4", now - 20 * day),
        k.cpu_node("gke-default-pool-1a2b-1", "default-pool", now - 40 * day),
        k.cpu_node("gke-default-pool-1a2b-2", "default-pool", now - 40 * day),
    ):
        store.put(obj)
    hour = timedelta(hours=1)
    for i in (1, 2):
        store.put(k.pod(f"llm-pretrain-{i}-x7k2p", "ml", gpus=8, node_name=f"gke-a100-pool-7f3a-{i}",
                        created=now - 9 * hour, owner=("Job", "llm-pretrain")))
    for i in range(3):
        store.put(k.pod(f"notebook-{i}", "lab", gpus=1, node_name="gke-shared-t4-9e0d-1",
                        created=now - (i + 1) * hour, owner=("StatefulSet", f"notebook-{i}")))
    for i in range(4):
        store.put(k.pod(f"embed-serve-{i}", "serve", gpus=1, resource="nvidia.com/mig-1g.10gb",
                        node_name="gke-mig-pool-2b1c-1", created=now - 2 * day,
                        owner=("ReplicaSet", "embed-serve-7c9f")))
    store.put(k.raycluster("train-cluster", "ml", autoscaling=False, created=now - 5 * hour, groups=[
        k.worker_group("gpu-workers", replicas=2, min_replicas=0, max_replicas=4, gpus=4)]))
    store.put(k.raycluster("serve-cluster", "serve", autoscaling=True, created=now - 30 * day, groups=[
        k.worker_group("inference", replicas=1, min_replicas=1, max_replicas=3, gpus=1)]))
    # Two A10G machines nobody schedules on: an idle pool that `s` can scale down (min 0).
    store.put(k.machine_deployment("gpu-md-0", "capi", replicas=2, ready=2, min_size=0, max_size=6,
                                   gpus_per_machine=4, created=now - 60 * day))
    # It asks for 80 GB A100s by node selector; the idle H100s do not match: GPUs idle while it waits.
    store.put(k.pod("finetune-70b-0-q8m4t", "ml", gpus=8, created=now - timedelta(minutes=18),
                    owner=("PyTorchJob", "finetune-70b"),
                    node_selector={"cloud.google.com/gke-accelerator": "nvidia-a100-80gb"},
                    env=[{"name": "HF_TOKEN", "value": "hf_demoPodTokenDemoPodToken42"},
                         {"name": "WANDB_API_KEY", "valueFrom": {"secretKeyRef": {"name": "wandb", "key": "api-key"}}},
                         {"name": "NCCL_DEBUG", "value": "WARN"}],
                    unschedulable_message="0/10 nodes are available: 2 Insufficient nvidia.com/gpu, "
                                          "1 node(s) had untolerated taint {nvidia.com/gpu: present}, "
                                          "7 node(s) didn't match Pod's node affinity/selector."))
    store.put(k.pod("sweep-lr-3-b2d9f", "research", gpus=2, created=now - timedelta(minutes=4),
                    owner=("Job", "sweep-lr-3"),
                    unschedulable_message="0/10 nodes are available: 10 Insufficient nvidia.com/gpu."))
    seed_events(store, now)
    reconcile(store, now, machines_created=now - 3 * day)


def seed_kfp_step(store: KubeStore, now: datetime) -> None:
    """The pod of a KFP run's train step (demo-kfp's finetune-mistral-7b), as the demo platform
    runs KFP on this cluster: it asks for 16 GPUs in one pod, and no node has 16."""
    created = now - timedelta(minutes=7)
    store.put(k.pod(KFP_STEP_POD, "team-nlp", gpus=16, created=created,
                    owner=("Workflow", "finetune-mistral-7b-9kq2z"), unschedulable_message=KFP_STEP_SAYS))
    store.put(k.scheduling_event(KFP_STEP_POD, "team-nlp", KFP_STEP_SAYS + PREEMPTION_NOT_HELPFUL, first=created,
                                 last=now - timedelta(seconds=30), count=7))


def seed_unusable(store: KubeStore, now: datetime) -> None:
    """A p4d node whose NVIDIA device plugin stopped: the kubelet still reports 8 GPUs of capacity
    and 0 allocatable, so no pod can get them while they are paid for (an unusable-gpus warning)."""
    node = k.node(UNUSABLE_NODE, labels={"eks.amazonaws.com/nodegroup": "a100-ng",
                                         "eks.amazonaws.com/capacityType": "ON_DEMAND",
                                         "node.kubernetes.io/instance-type": "p4d.24xlarge",
                                         "topology.kubernetes.io/zone": "us-east-1a",
                                         **k.gfd_labels("NVIDIA-A100-SXM4-40GB", 8, 40960)},
                  gpus=8, created=now - timedelta(days=6), cpu="96", memory="1152Gi")
    node["status"]["allocatable"]["nvidia.com/gpu"] = "0"
    store.put(node)


UNUSABLE_NODE = "ip-10-0-52-8.ec2.internal"
KFP_STEP_POD = "finetune-mistral-7b-9kq2z-system-container-impl-2871342712"
PREEMPTION_NOT_HELPFUL = " preemption: 0/10 nodes are available: 10 Preemption is not helpful for scheduling."
KFP_STEP_SAYS = ("0/10 nodes are available: 2 node(s) didn't match Pod's node affinity/selector, "
                 "8 Insufficient nvidia.com/gpu.")
EVENT_TTL = timedelta(hours=1)  # the API server's default --event-ttl
EVENT_EVERY = 30  # steps (seconds) between the scheduler's retries of a pod that does not fit


def seed_events(store: KubeStore, now: datetime) -> None:
    """What the scheduler said about the opening pods, plus events a FailedScheduling query must not return."""
    minute = timedelta(minutes=1)
    for pod in store.list("v1", "Pod"):
        condition = next((c for c in pod["status"]["conditions"] if c["type"] == "PodScheduled"), {})
        if condition.get("status") != "False":
            continue
        meta = pod["metadata"]
        created = datetime.fromisoformat(meta["creationTimestamp"].replace("Z", "+00:00"))
        store.put(k.scheduling_event(meta["name"], meta["namespace"], condition["message"] + PREEMPTION_NOT_HELPFUL,
                                     first=created, last=now - minute / 2,
                                     count=max(1, int((now - created) / minute)),
                                     legacy=meta["namespace"] == "research"))
    # Not FailedScheduling: the event a pretrain pod got when it was placed.
    store.put(k.scheduling_event("llm-pretrain-1-x7k2p", "ml", "Successfully assigned ml/llm-pretrain-1-x7k2p to "
                                 "gke-a100-pool-7f3a-1", first=now - 9 * 60 * minute, last=now - 9 * 60 * minute,
                                 reason="Scheduled"))


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def scheduler_retries(store: KubeStore, now: datetime) -> None:
    """The scheduler tries each pod that does not fit again and says so again (the same event, its
    count raised); the API server drops events an hour after they were last seen."""
    said: dict[tuple[str, str], dict[str, Any]] = {}
    for event in store.list("v1", "Event"):
        series = event.get("series") or {}
        last = _when(series.get("lastObservedTime") or event.get("lastTimestamp") or event.get("eventTime"))
        if last is not None and now - last > EVENT_TTL:
            store.delete("v1", "Event", event["metadata"]["name"], event["metadata"]["namespace"])
        elif event["reason"] == "FailedScheduling":
            said[(event["involvedObject"]["namespace"], event["involvedObject"]["name"])] = event
    for pod in store.list("v1", "Pod"):
        condition = next((c for c in pod["status"].get("conditions", []) if c["type"] == "PodScheduled"), {})
        if pod["spec"].get("nodeName") or pod["spec"].get("schedulingGates") or condition.get("status") != "False":
            continue  # a gated pod (Kueue holds it) never reaches the scheduler
        meta = pod["metadata"]
        event = said.get((meta["namespace"], meta["name"]))
        if event is None:
            store.put(k.scheduling_event(meta["name"], meta["namespace"], condition["message"] + PREEMPTION_NOT_HELPFUL,
                                         first=now, last=now))
        elif event.get("lastTimestamp"):  # written by an old recorder: count and lastTimestamp
            event.update(count=(event.get("count") or 1) + 1, lastTimestamp=k.rfc3339(now))
            store.put(event)
        else:
            count = (event.get("series") or {}).get("count", 1) + 1
            event["series"] = {"count": count, "lastObservedTime": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
            store.put(event)


def _worker_labels(cluster: str, group: str) -> dict[str, str]:
    return {"ray.io/cluster": cluster, "ray.io/group": group, "ray.io/node-type": "worker"}


def _free_gpus(store: KubeStore) -> dict[str, float]:
    free = {}
    for node in store.list("v1", "Node"):
        gpus = float((node["status"]["allocatable"] or {}).get("nvidia.com/gpu", 0))
        if gpus and "nvidia.com/gpu.replicas" not in node["metadata"]["labels"]:
            free[node["metadata"]["name"]] = gpus
    for pod in store.list("v1", "Pod"):
        name = pod["spec"].get("nodeName")
        if name in free and pod["status"]["phase"] not in ("Succeeded", "Failed"):
            limits = pod["spec"]["containers"][0]["resources"].get("limits", {})
            free[name] -= float(limits.get("nvidia.com/gpu", 0))
    return free


def reconcile(store: KubeStore, now: datetime, machines_created: datetime | None = None) -> None:
    """What the KubeRay operator and Cluster API would do: bring pods and machines to spec."""
    for rc in store.list(*RAY):
        name, namespace = rc["metadata"]["name"], rc["metadata"]["namespace"]
        for group in rc["spec"]["workerGroupSpecs"]:
            want = min(max(group.get("replicas", 0), group.get("minReplicas", 0)), group.get("maxReplicas", 2**31 - 1))
            labels = _worker_labels(name, group["groupName"])
            pods = [p for p in store.list("v1", "Pod", namespace)
                    if all(p["metadata"].get("labels", {}).get(a) == b for a, b in labels.items())]
            gpus = int(group["template"]["spec"]["containers"][0]["resources"]["limits"].get("nvidia.com/gpu", 0))
            for extra in pods[want:]:
                store.delete("v1", "Pod", extra["metadata"]["name"], namespace)
            for i in range(len(pods), want):
                free = _free_gpus(store)
                node = next((n for n, f in sorted(free.items()) if f >= gpus and ("l4" in n or "77" in n or "aks" in n)),
                            None)
                store.put(k.pod(f"{name}-{group['groupName']}-worker-{_suffix(now, i)}", namespace, gpus=gpus,
                                node_name=node, created=now, labels=labels, owner=("RayCluster", name)))
    for md in store.list(*CAPI):
        _machines(store, md, machines_created or now)
        spec, status = md["spec"], md.setdefault("status", {})
        if status.get("readyReplicas") != spec["replicas"] or status.get("replicas") != spec["replicas"]:
            ready = status.get("readyReplicas", 0)
            status["readyReplicas"] = ready + (1 if ready < spec["replicas"] else -1 if ready > spec["replicas"] else 0)
            status["replicas"] = spec["replicas"]
            status["availableReplicas"] = status["readyReplicas"]
            store.put(md)


def _machines(store: KubeStore, md: dict, now: datetime) -> None:
    """Cluster API's nodes for a MachineDeployment, annotated with their MachineSet as CAPI does."""
    name, namespace = md["metadata"]["name"], md["metadata"]["namespace"]
    owner = f"{name}-7d9f8"
    mine = sorted(n["metadata"]["name"] for n in store.list("v1", "Node")
                  if (n["metadata"].get("annotations") or {}).get("cluster.x-k8s.io/owner-name") == owner)
    want = md["spec"]["replicas"]
    for extra in mine[want:]:
        store.delete("v1", "Node", extra)
    for i in range(len(mine), want):
        node = k.node(f"{name}-{i}", labels={"node.kubernetes.io/instance-type": "g5.12xlarge",
                                             "topology.kubernetes.io/zone": "us-west-2a",
                                             **k.gfd_labels("NVIDIA-A10G", 4, 23028)},
                      gpus=4, created=now, cpu="48", memory="192Gi")
        node["metadata"]["annotations"] = {"cluster.x-k8s.io/owner-kind": "MachineSet",
                                           "cluster.x-k8s.io/owner-name": owner,
                                           "cluster.x-k8s.io/cluster-namespace": namespace,
                                           "cluster.x-k8s.io/cluster-name": md["spec"].get("clusterName", "")}
        store.put(node)


def _suffix(now: datetime, i: int) -> str:
    return f"{int(now.timestamp()) % 100000:05d}{i}"


class KubeScenario:
    """Jobs finish and new ones queue; pending pods get placed when GPUs free up."""

    def __init__(self, store: KubeStore, clock: Callable[[], datetime], seed: int = 11) -> None:
        self.store = store
        self.clock = clock
        self.rng = random.Random(seed)
        self.steps = 0

    # The story's beats, in steps (seconds): warnings appear and clear as a user would see them.
    TRAINING_ENDS = 60  # train-cluster's workers go away: the L4 pool goes idle (a warning a minute later)
    TRAINING_RESUMES = 300  # ...and come back: the warning clears
    FINETUNE_GIVES_UP = 420  # the pod waiting for another GPU model is deleted: that warning clears
    PRETRAIN_SHARD_DONE = 150  # one A100 node frees up: batch jobs come and go there from then on

    def step(self) -> None:
        self.steps += 1
        now = self.clock()
        if self.steps == self.TRAINING_ENDS:
            self._set_replicas("train-cluster", "ml", 0)
        elif self.steps == self.TRAINING_RESUMES:
            self._set_replicas("train-cluster", "ml", 2)
        elif self.steps == self.PRETRAIN_SHARD_DONE and self.store.get("v1", "Pod", "llm-pretrain-2-x7k2p", "ml"):
            self.store.delete("v1", "Pod", "llm-pretrain-2-x7k2p", "ml")
        elif self.steps == self.FINETUNE_GIVES_UP and self.store.get("v1", "Pod", "finetune-70b-0-q8m4t", "ml"):
            self.store.delete("v1", "Pod", "finetune-70b-0-q8m4t", "ml")
        if self.steps % 20 == 0:
            self._new_job(now)
        if self.steps % EVENT_EVERY == 1:
            scheduler_retries(self.store, now)
        self._place_pending()
        self._finish_some(now)
        reconcile(self.store, now)
        write_demo_logs(self.store, self.steps)  # running pods write to their logs: `l` follows them

    def _set_replicas(self, name: str, namespace: str, replicas: int) -> None:
        rc = self.store.get(*RAY, name, namespace)
        if rc is not None:
            rc["spec"]["workerGroupSpecs"][0]["replicas"] = replicas
            self.store.put(rc)

    def _new_job(self, now: datetime) -> None:
        waiting = [p for p in self.store.list("v1", "Pod")
                   if not p["spec"].get("nodeName") and not p["spec"].get("schedulingGates")]
        if len(waiting) >= 4 or len(self.store.list("v1", "Pod")) >= MAX_PODS:
            return
        gpus = self.rng.choice([1, 2, 4])
        name = f"batch-infer-{self.steps}"
        self.store.put(k.pod(f"{name}-0", "ml", gpus=gpus, created=now, owner=("Job", name),
                             unschedulable_message="0/10 nodes are available: Insufficient nvidia.com/gpu."))

    def _place_pending(self) -> None:
        free = _free_gpus(self.store)
        for pod in self.store.list("v1", "Pod"):
            if pod["spec"].get("nodeName") or pod["spec"].get("schedulingGates") \
                    or pod["metadata"]["name"].startswith(("finetune-70b", "sweep-lr")) \
                    or pod["spec"].get("resourceClaims"):  # DRA pods: their claim decides (demo/kube_dra.py)
                continue  # the two opening pods stay queued: one wants a pool that does not exist
            gpus = float(pod["spec"]["containers"][0]["resources"]["limits"].get("nvidia.com/gpu", 0))
            # Batch jobs only land on the A100 pool: the H100 group and the MachineDeployment stay
            # idle (the demo's idle pools) and the L4 pool idles while training pauses.
            node = next((n for n, f in sorted(free.items()) if f >= gpus and "a100-pool" in n), None)
            if node is None:
                continue
            free[node] -= gpus
            pod["spec"]["nodeName"] = node
            pod["status"] = {"phase": "Running", "conditions": [{"type": "PodScheduled", "status": "True"},
                                                                {"type": "Ready", "status": "True"}]}
            self.store.put(pod)

    def _finish_some(self, now: datetime) -> None:
        for pod in self.store.list("v1", "Pod"):
            name = pod["metadata"]["name"]
            if pod["status"]["phase"] != "Running" or not name.startswith("batch-infer"):
                continue
            started = datetime.fromisoformat(pod["metadata"]["creationTimestamp"].replace("Z", "+00:00"))
            if (now - started).total_seconds() > 45:
                self.store.delete("v1", "Pod", name, "ml")


def kubeconfig(url: str, token: str, context: str) -> dict[str, Any]:
    """A kubeconfig (JSON is valid YAML) pointing at the demo API server."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": context, "cluster": {"server": url}}],
        "users": [{"name": "demo-user", "user": {"token": token}}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": "demo-user"}}],
        "current-context": context,
    }
