"""Frozen records that every layer shares: what a source reported, in mltop's own words.

Standard library only. Times are aware UTC datetimes; GPU counts are floats because Ray
resources are fractional (a job may ask for 0.5 GPU).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property


class JobState(str, enum.Enum):
    """One vocabulary across every source; each job keeps its backend's own state beside it."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    CANCELLING = "CANCELLING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATES

    def __str__(self) -> str:  # so f-strings and JSON show "RUNNING", not "JobState.RUNNING"
        return self.value


TERMINAL_STATES = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})


@dataclass(frozen=True)
class Job:
    key: str  # stable and unique across sources and clusters: "ray/<cluster>/<id>"
    source: str  # "ray" (later "kfp", "kubernetes")
    cluster: str
    id: str
    name: str
    state: JobState
    native_state: str
    gpus: float | None  # GPUs the job asked for; None when the backend does not say
    submitted_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    owner: str | None = None
    message: str | None = None
    kind: str = ""  # backend's job type, e.g. Ray's SUBMISSION or DRIVER
    entrypoint: str = ""
    cpus: float | None = None
    cancellable: bool = False  # the backend accepts a cancel for this job in this state
    not_cancellable_because: str | None = None  # said when cancel is asked of a job that is not cancellable
    stop_requested_at: datetime | None = None  # set by mltop after the backend accepted a stop
    namespace: str | None = None  # Kubernetes namespace (pods, KFP runs)
    experiment: str | None = None  # KFP experiment (by name)
    pipeline: str | None = None  # KFP pipeline (by name, with the version when known)
    retryable: bool = False  # the backend can retry this job (KFP: failed or canceled runs)
    # Where a pending pod may run, for explaining why idle GPUs do not take it:
    placement: tuple[tuple[str, str], ...] = ()  # node labels it requires (nodeSelector, required affinity "In")
    tolerates: tuple[str, ...] = ()  # taint keys it tolerates; "*" tolerates every taint
    gpu_utilization: float | None = None  # measured, percent, over the GPUs it holds (None: not measured)
    # Why it waits, as the layer that decides says it (kept raw and clipped; shown through `inert`):
    scheduler_message: str | None = None  # a pending pod: the newest FailedScheduling event's message
    waiting_step: str | None = None  # a KFP run: the step that waits for its pod (its display name)
    waiting_pod: str | None = None  # ...and that step's pod name, to join with a Kubernetes source
    # The nodes it runs on, as GpuNode keys, where the backend says so cheaply (a Ray job: its
    # driver's node, which holds the GPUs its entrypoint asked for). Empty: not said, or not placed.
    node_keys: tuple[str, ...] = ()
    # Kueue (mltop/adapters/kube_kueue.py): the Workload that queues this job, when one does.
    queue: str | None = None  # its LocalQueue ("namespace/name")
    cluster_queue: str | None = None
    queue_position: int | None = None  # 1 = next in its ClusterQueue
    position_estimated: bool = False  # computed by mltop (no visibility API), not Kueue's own word
    priority: int | None = None
    admission: str | None = None  # "pending", "quota reserved", "admitted", "stopped", "evicted", "finished"
    queue_reason: str | None = None  # why Kueue does not admit it, in KEP-10852's words ("waiting for quota")
    queue_message: str | None = None  # Kueue's own message (raw, clipped; shown through `inert`)
    held_by: str | None = None  # "ClusterQueue team-a-cq has used 6 of its 8 nvidia.com/gpu" when quota holds it
    workload: str | None = None  # the Workload "namespace/name" (stop / resume act on it)
    dra_claims: tuple[str, ...] = ()  # a pod waiting on DRA: its ResourceClaims not yet allocated
    # KubeRay RayJobs (mltop/adapters/kuberay_jobs.py): the RayCluster it runs on, its Ray submission
    # id, and KubeRay's reason word (status.reason: "DeadlineExceeded", "AppFailed"...).
    ray_cluster: str | None = None
    submission_id: str | None = None
    reason: str | None = None
    cancel_effect: str | None = None  # what a cancel changes, where it is more than a stop ("deletes RayJob ...")
    links: tuple[str, ...] = ()  # facts mltop/chain.py joins rows on: "kfp-run:<id>", "owner-pod:<name>"...

    def queued_seconds(self, now: datetime) -> float | None:
        """How long a job still waiting has waited; None once it left the queue."""
        if self.state is not JobState.PENDING or self.submitted_at is None:
            return None
        return max(0.0, (now - self.submitted_at).total_seconds())

    def run_seconds(self, now: datetime) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished_at or now
        return max(0.0, (end - self.started_at).total_seconds())


@dataclass(frozen=True)
class JobDetail:
    """A job as its backend describes it in full, for the details view."""

    job: Job
    sections: tuple[tuple[str, str], ...] = ()  # (title, text): a log tail, a state history, tasks...

    def section(self, title: str) -> str:
        return next((text for t, text in self.sections if t == title), "")


@dataclass(frozen=True)
class ActionOutcome:
    """What a backend said to an action. `accepted` says the backend took the request; it says
    nothing yet about the target's state (the next refresh shows that)."""

    accepted: bool
    message: str


@dataclass(frozen=True)
class GpuDevice:
    """One physical GPU as the Ray dashboard's telemetry reports it (empty for logical GPUs)."""

    index: int
    name: str
    utilization: float | None  # percent
    memory_used_mib: float | None
    memory_total_mib: float | None
    pids: tuple[int, ...] = ()  # processes using it: how a job's GPUs are found


@dataclass(frozen=True)
class RayNode:
    node_id: str
    address: str
    hostname: str
    is_head: bool
    alive: bool
    gpus_total: float
    gpus_used: float | None  # logical GPUs held by tasks and actors; None when Ray did not say
    devices: tuple[GpuDevice, ...] = ()


@dataclass(frozen=True)
class ResourceDemand:
    """Work Ray cannot place yet: `count` requests each wanting `resources`."""

    resources: tuple[tuple[str, float], ...]
    count: int

    @property
    def gpus(self) -> float:
        return dict(self.resources).get("GPU", 0.0)


@dataclass(frozen=True)
class RayClusterState:
    nodes: tuple[RayNode, ...]
    demands: tuple[ResourceDemand, ...]

    @property
    def gpus_total(self) -> float:
        return sum(n.gpus_total for n in self.nodes if n.alive)

    @property
    def gpus_used(self) -> float | None:
        used = [n.gpus_used for n in self.nodes if n.alive]
        if any(u is None for u in used):
            return None
        return sum(u for u in used if u is not None)

    @property
    def gpus_waiting(self) -> float:
        return sum(d.gpus * d.count for d in self.demands)


@dataclass(frozen=True)
class GpuPod:
    """A pod holding (or asking for) GPUs on a node, for the node's details."""

    namespace: str
    name: str
    gpus: float
    phase: str
    owner: str | None
    utilization: float | None = None  # measured percent (DCGM through Prometheus), when known


@dataclass(frozen=True)
class GpuNode:
    """A Kubernetes node with accelerator capacity. GPU figures are physical GPUs.

    Time-sliced GPUs are divided by their replica count; MIG slices count as their share of a
    GPU (7 x 1g.10gb on one A100 = 1 GPU); `sharing` says which.
    """

    key: str  # "kubernetes/<cluster>/<node>"
    cluster: str
    name: str
    pool: str | None
    gpu_model: str | None
    gpu_resource: str  # the extended resource the pods ask for: nvidia.com/gpu, amd.com/gpu, ...
    gpus_total: float
    gpus_allocatable: float
    gpus_allocated: float | None  # None: the backend did not say (a Ray node only; never counted as free)
    ready: bool
    schedulable: bool  # not cordoned
    taints: tuple[str, ...] = ()
    instance_type: str | None = None
    zone: str | None = None
    capacity_type: str | None = None  # "spot" | "on-demand" | None when no label says
    created_at: datetime | None = None
    sharing: str | None = None  # "time-slicing x4", "MIG 7x 1g.10gb"
    pods: tuple[GpuPod, ...] = ()
    conditions: tuple[tuple[str, str, str], ...] = ()  # (type, status, message) that matter
    labels: tuple[tuple[str, str], ...] = ()
    machine_deployment: str | None = None  # "namespace/name" of the Cluster API MachineDeployment behind it
    last_gpu_pod_end: datetime | None = None  # when the last GPU pod it ran finished, if still known
    # A Ray node (origin "ray", key ray_node_key(...)) is shown beside Kubernetes nodes; its GPUs are
    # Ray's logical GPUs and its cost is Ray's accounting (SourceData.ray_nodes says why).
    origin: str = "kubernetes"
    address: str | None = None  # its IP address (Ray nodes)
    gpu_utilization: float | None = None  # measured percent over its GPUs, where telemetry reports it
    dra_gpus: float = 0.0  # of gpus_total, those counted from DRA ResourceSlices (kube_dra.py)

    @cached_property  # asked for many times per node per refresh (sorting, totals, the cost engine)
    def gpus_free(self) -> float:
        # Unknown allocation is not free: never counted as idle.
        return 0.0 if self.gpus_allocated is None else max(0.0, self.gpus_allocatable - self.gpus_allocated)


def ray_node_key(cluster: str, node_id: str) -> str:
    """A Ray node's record key: never the same as a Kubernetes node's ("kubernetes/<cluster>/<node>")."""
    return f"ray/{cluster}/{node_id}"


@dataclass(frozen=True)
class Pool:
    """Something that holds GPU capacity and may be resized: a node pool, a KubeRay worker group,
    a Cluster API MachineDeployment."""

    key: str  # "kubernetes/<cluster>/<kind>/<namespace>/<name>"
    cluster: str
    kind: str  # "nodepool" | "raycluster-workergroup" | "machinedeployment"
    name: str
    namespace: str | None
    replicas: int | None  # nodes in a node pool, desired workers / machines otherwise
    ready: int | None
    min: int | None
    max: int | None
    gpus_per_replica: float | None
    gpus_total: float | None = None
    gpus_allocated: float | None = None
    gpu_model: str | None = None
    scalable: bool = False
    why_not_scalable: str | None = None
    autoscaled: bool = False
    members: tuple[str, ...] = ()  # node or worker-pod names
    parent: str | None = None  # the RayCluster of a worker group
    resource_version: str | None = None  # of the object a scale would change

    @property
    def gpus_idle(self) -> float | None:
        if self.gpus_total is None or self.gpus_allocated is None:
            return None
        return max(0.0, self.gpus_total - self.gpus_allocated)


@dataclass(frozen=True)
class GpuSample:
    """One GPU's measured utilization (percent, averaged over a window) from DCGM via Prometheus."""

    hostname: str  # the node it is on
    gpu: str
    uuid: str
    model: str | None
    utilization: float
    namespace: str | None = None  # the pod using it, when the exporter maps pods
    pod: str | None = None


@dataclass(frozen=True)
class NodeCost:
    """A node's price as the cluster itself reports it ($/h): OpenCost's metrics in Prometheus."""
    node: str  # the Kubernetes node name (OpenCost's `node` label)
    total_per_hour: float | None = None  # node_total_hourly_cost
    gpu_per_hour: float | None = None  # node_gpu_hourly_cost, per GPU


@dataclass(frozen=True)
class SourceData:
    """Everything one poll of one source produced."""

    jobs: tuple[Job, ...] = ()
    ray_cluster: RayClusterState | None = None
    nodes: tuple[GpuNode, ...] = ()
    pools: tuple[Pool, ...] = ()
    gpu_samples: tuple[GpuSample, ...] = ()
    # A Ray source's GPU nodes as GpuNodes, for the nodes panel. Kept apart from `nodes` on purpose:
    # `nodes` feed the Kubernetes GPU totals and the idle-cost engine, which already counts Ray's
    # GPUs through `ray_cluster`; a KubeRay pod's GPUs are also its Kubernetes node's. Counting
    # these too would count the same GPUs and dollars twice.
    ray_nodes: tuple[GpuNode, ...] = ()
    # Items the backend sent that could not be read (a bad status, a malformed object): each is
    # left out, counted here and reported on the source's line, never the cause of a blank source.
    skipped: int = 0
    skip_reason: str | None = None  # the first one's reason, one line
    queues: tuple[QueueUse, ...] = ()  # Kueue ClusterQueues, one row per flavor and resource
    node_costs: tuple[NodeCost, ...] = ()  # the cluster's own node prices (OpenCost, via Prometheus)


@dataclass(frozen=True)
class QueueUse:
    """One Kueue ClusterQueue's quota of one resource in one flavor, for the queues view."""

    cluster: str
    cluster_queue: str
    flavor: str
    resource: str
    nominal: float | None  # None: unreadable
    used: float | None  # status.flavorsUsage total
    borrowed: float | None
    borrowing_limit: float | None  # None: no limit set
    pending: int | None  # workloads of the ClusterQueue (not per flavor: Kueue counts them per queue)
    admitted: int | None
    cohort: str | None = None


@dataclass(frozen=True)
class SourceHealth:
    kind: str
    name: str
    ok: bool
    error: str | None
    latency_ms: float | None
    last_success: datetime | None  # when the data shown was fetched; its age is what users judge
    last_attempt: datetime | None
    skipped: int = 0  # items of the last good poll left out as unreadable (see SourceData.skipped)
    skip_reason: str | None = None
    poll_every: float | None = None  # seconds, when the source polls slower than the refresh (a large Ray job list)
    note: str | None = None  # why, in a few words for the source's line: "polling every 10s (10,000 jobs, 8.7 MiB)"

    def age_seconds(self, now: datetime) -> float | None:
        if self.last_success is None:
            return None
        return max(0.0, (now - self.last_success).total_seconds())


@dataclass(frozen=True)
class Snapshot:
    generated_at: datetime
    sources: tuple[SourceHealth, ...]
    jobs: tuple[Job, ...]
    ray_clusters: tuple[tuple[str, RayClusterState], ...] = field(default=())
    nodes: tuple[GpuNode, ...] = ()
    pools: tuple[Pool, ...] = ()
    gpu_samples: tuple[GpuSample, ...] = ()
    node_costs: tuple[NodeCost, ...] = ()


@dataclass(frozen=True)
class IdleWarning:
    """GPUs paid for and doing nothing (or idle while work waits), what they cost, and the remedy.

    The remedy is said in words; `remedy_action` names the binding id (see mltop.keys) of the
    action that carries it out on `remedy_target`, so each screen shows the user's own key for it.
    """

    kind: str  # one of mltop.cost.KINDS
    target: str  # the key of the node, pool, job or cluster it is about
    target_name: str
    cluster: str
    idle_gpus: float
    idle_since: datetime | None
    idle_since_is_lower_bound: bool
    cost_per_hour: float | None  # of the GPUs it is about; None: no known price (never counted as free)
    wasted: float | None  # so far, since idle_since
    remedy: str
    message: str
    remedy_action: str | None = None  # "jobs.cancel", "pools.scale"; None: nothing mltop can do
    remedy_target: str | None = None


@dataclass(frozen=True)
class RawObject:
    """One object as its backend sent it, for the raw view (`y`): fetched when asked, never kept
    per row. `body` is NOT redacted: show it only through `mltop.raw`, which redacts secrets."""

    kind: str  # "Ray job", "KFP run", "Pod", "Node", "RayCluster", "MachineDeployment"
    cluster: str  # the source's name
    name: str  # the id, or "namespace/name"
    fetched_at: datetime
    body: object  # the decoded JSON answer
    api: str = ""  # where it came from, e.g. "GET /api/jobs/<id>"
    note: str = ""  # how it relates to the row, e.g. which worker group of a RayCluster
