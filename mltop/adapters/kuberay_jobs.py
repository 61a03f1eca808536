"""KubeRay RayJobs (ray.io/v1) -> queue rows. Pure functions, no I/O (kube_rayjobs.py does the I/O).

A RayJob row has source "kuberay" (it comes from a Kubernetes source: its key, owner and actions
are that source's), id "rayjob:<namespace>/<name>" (never a pod's "<namespace>/<name>", so a cancel
can only ever reach a RayJob), kind "RayJob". Its state is mltop's word for the pair KubeRay keeps,
`status.jobDeploymentStatus` (the RayJob and its RayCluster) and `status.jobStatus` (the Ray job);
the native state shows both ("Running/RUNNING"). Its GPUs are those of the RayCluster it runs on
(the one listed under `status.rayClusterName`, else the RayJob's own `spec.rayClusterSpec`): the
head's plus each worker group's desired replicas x numOfHosts x GPUs per pod.

Total, like kube_parse: a RayJob that cannot be used (no name, parts that are not objects, a state
KubeRay does not define and a Ray job state that does not say either) raises `Unreadable`; a
field that cannot be read is unknown.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mltop.adapters.kube_parse import NO_MAX, Unreadable, _parts, _str, _strings, brief, effective_requests, parse_time, quantity
from mltop.adapters.values import integer, mapping, sequence
from mltop.model import Job, JobState

SOURCE = "kuberay"
KIND = "RayJob"
ID_PREFIX = "rayjob:"
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
SELECTOR_KEY = "ray.io/cluster"  # clusterSelector key KubeRay reads as the name of an existing RayCluster
KFP_RUN_LABEL = "pipeline/runid"  # KFP puts it on a run's step pods; a step that creates a RayJob may copy it

# status.jobDeploymentStatus (rayjob_types.go): "" is New. Running and Complete say no more than
# that a Ray job was submitted or ended: the Ray job's own status decides those two.
WAITING_DEPLOYMENT = frozenset({"", "Initializing", "Waiting", "Retrying", "Suspending", "Suspended",
                                "Scheduling", "Scheduled"})
FAILED_DEPLOYMENT = frozenset({"Failed", "ValidationFailed"})
BY_RAY_STATUS = {
    "PENDING": JobState.PENDING, "": JobState.PENDING, "SCHEDULED": JobState.PENDING,
    "RUNNING": JobState.RUNNING, "SUCCEEDED": JobState.SUCCEEDED, "FAILED": JobState.FAILED,
    "STOPPED": JobState.CANCELLED,
}


def rayjob_id(namespace: str, name: str) -> str:
    return f"{ID_PREFIX}{namespace}/{name}"


def parse_rayjob_id(job_id: str) -> tuple[str, str] | None:
    """(namespace, name) of a RayJob row's id; None for any other id (a pod's, a workload's)."""
    if not job_id.startswith(ID_PREFIX):
        return None
    namespace, _, name = job_id[len(ID_PREFIX):].partition("/")
    return (namespace, name) if namespace and name else None


def job_state(deployment: str, ray_status: str, deleting: bool) -> JobState:
    """mltop's state for KubeRay's pair; Unreadable when neither word is one KubeRay defines."""
    if deployment in FAILED_DEPLOYMENT:
        state = JobState.FAILED
    elif deployment in WAITING_DEPLOYMENT:
        state = JobState.PENDING
    elif deployment == "Complete":
        # KubeRay sets Complete once the Ray job is terminal; STOPPED is a stop, not a success.
        state = BY_RAY_STATUS.get(ray_status, JobState.SUCCEEDED)
        state = state if state.is_terminal else JobState.SUCCEEDED
    elif deployment == "Running" or ray_status in BY_RAY_STATUS:
        if ray_status not in BY_RAY_STATUS:
            raise Unreadable(f"jobStatus {brief(ray_status)} is not a Ray job status")
        state = BY_RAY_STATUS[ray_status]  # a newer deployment word: the Ray job's status still says
    else:
        raise Unreadable(f"jobDeploymentStatus {brief(deployment)} is not one KubeRay defines")
    if deleting and not state.is_terminal:
        return JobState.CANCELLING  # deletion requested: KubeRay's finalizer stops the Ray job first
    return state


def native_state(deployment: str, ray_status: str, deleting: bool) -> str:
    said = f"{deployment or 'New'}/{ray_status}" if ray_status else (deployment or "New")
    return f"Terminating ({said})" if deleting else said


def _pod_gpus(group: Mapping[str, Any]) -> float | None:
    """GPUs of one pod of a head or worker group; None when they cannot be read."""
    try:
        gpus = sum(effective_requests(mapping(mapping(group.get("template")).get("spec"))).values())
    except Unreadable:
        return None
    start = mapping(group.get("rayStartParams")).get("num-gpus")
    if not gpus and start is not None:
        return quantity(start)
    return gpus


def _desired(group: Mapping[str, Any]) -> int | None:
    """Worker pods KubeRay keeps for a group: clamp(replicas, min, max) x numOfHosts, 0 if suspended."""
    if group.get("suspend") is True:
        return 0
    def field(key: str, default: int, minimum: int = 0) -> int | None:  # absent or null: KubeRay's default
        raw = group.get(key)
        return default if raw is None else integer(raw, minimum=minimum, maximum=NO_MAX)

    replicas, low, high = field("replicas", 0), field("minReplicas", 0), field("maxReplicas", NO_MAX)
    hosts = field("numOfHosts", 1, minimum=1)
    if None in (replicas, low, high, hosts):
        return None
    return min(max(replicas, low), high) * hosts  # type: ignore[type-var,operator]


def cluster_gpus(spec: Any) -> float | None:
    """GPUs a RayCluster spec holds when all its pods run: the head's plus every worker group's."""
    spec = mapping(spec)
    total = _pod_gpus(mapping(spec.get("headGroupSpec")))
    groups = spec.get("workerGroupSpecs")
    if total is None or (groups is not None and not isinstance(groups, list)):
        return None
    for group in groups or []:
        if not isinstance(group, dict):
            return None
        pods, each = _desired(group), _pod_gpus(group)
        if pods is None or each is None:
            return None
        total += pods * each
    return total


def _cluster_note(name: str | None, rc: Mapping[str, Any] | None) -> str | None:
    """Why a waiting RayJob waits, from its RayCluster's status, when KubeRay gives no message."""
    if name is None:
        return None
    if rc is None:
        return f"its RayCluster is not created yet ({name})"
    status = mapping(rc.get("status"))
    ready = integer(status.get("readyWorkerReplicas", status.get("availableWorkerReplicas", 0)))
    desired = integer(status.get("desiredWorkerReplicas", 0))
    state = _str(status.get("state"))
    if state == "ready" and ready is not None and ready >= (desired or 0):
        return None
    counted = f", {ready} of {desired} workers ready" if ready is not None and desired else ""
    return f"its RayCluster is not ready ({name}: {state or 'no state yet'}{counted})"


def rayjob_row(obj: Any, clusters: Mapping[tuple[str, str], dict[str, Any]], source_name: str,
               source_kind: str = "kubernetes") -> Job:
    """A RayJob as a queue row. `clusters` holds the listed RayClusters by (namespace, name)."""
    meta, spec, status, name = _parts(obj, KIND)
    namespace = _str(meta.get("namespace")) or "default"
    deployment = status.get("jobDeploymentStatus") or ""
    ray_status = status.get("jobStatus") or ""
    if not isinstance(deployment, str) or not isinstance(ray_status, str):
        raise Unreadable(f"RayJob {namespace}/{name}: its status words are not strings")
    deleting = meta.get("deletionTimestamp") is not None
    try:
        state = job_state(deployment, ray_status, deleting)
    except Unreadable as exc:
        raise Unreadable(f"RayJob {namespace}/{name}: {exc}") from None
    selector = _strings(spec.get("clusterSelector"))
    rc_name = _str(status.get("rayClusterName")) or selector.get(SELECTOR_KEY)
    rc = clusters.get((namespace, rc_name)) if rc_name else None
    gpus = cluster_gpus(rc.get("spec")) if rc is not None else cluster_gpus(spec.get("rayClusterSpec"))
    info = mapping(status.get("rayJobInfo"))
    waiting = state is JobState.PENDING
    message = _str(status.get("message"))
    owners = [o for o in sequence(meta.get("ownerReferences")) if isinstance(o, dict)]
    owner = next((f"{o.get('kind')}/{o.get('name')}" for o in owners if o.get("controller") is True), None)
    return Job(
        key=f"{source_kind}/{source_name}/rayjob/{namespace}/{name}",
        source=SOURCE,
        cluster=source_name,
        id=rayjob_id(namespace, name),
        name=name,
        state=state,
        native_state=native_state(deployment, ray_status, deleting),
        gpus=gpus,
        submitted_at=parse_time(meta.get("creationTimestamp")),
        started_at=None if waiting else parse_time(info.get("startTime")) or parse_time(status.get("startTime")),
        finished_at=(parse_time(info.get("endTime")) or parse_time(status.get("endTime"))) if state.is_terminal else None,
        owner=owner,
        message=message or (_cluster_note(rc_name, rc) if waiting and deployment != "Suspended" else None),
        kind=KIND,
        entrypoint=_str(spec.get("entrypoint")) or "",
        namespace=namespace,
        ray_cluster=rc_name,
        submission_id=_str(status.get("jobId")) or _str(spec.get("jobId")),
        reason=_str(status.get("reason")),
        queue=f"{namespace}/{label}" if (label := _strings(meta.get("labels")).get(QUEUE_LABEL)) else None,
        links=chain_links(meta),
        **_cancel(namespace, name, state, deleting, rc_name, rc, selector, spec),
    )


def chain_links(meta: Mapping[str, Any]) -> tuple[str, ...]:
    """What ties a RayJob to the KFP run whose step made it (mltop/chain.py): the `pipeline/runid`
    label KFP puts on step pods, when the step copied it, and an ownerReference to a Pod (a step
    that owns what it creates, so it goes with the pod). Nothing here is a guess: absent, no link."""
    run = _strings(meta.get("labels")).get(KFP_RUN_LABEL)
    pods = [o.get("name") for o in sequence(meta.get("ownerReferences")) if isinstance(o, dict)
            and o.get("kind") == "Pod" and isinstance(o.get("name"), str) and o.get("name")]
    return (*((f"kfp-run:{run}",) if run else ()), *(f"owner-pod:{p}" for p in pods[:4]))


def _cancel(namespace: str, name: str, state: JobState, deleting: bool, rc_name: str | None,
            rc: Mapping[str, Any] | None, selector: Mapping[str, str], spec: Mapping[str, Any]) -> dict[str, Any]:
    """Whether `c` may delete it, why not, and what the deletion takes with it, in words."""
    if deleting:
        return {"cancellable": False, "not_cancellable_because": "its deletion was already requested (Terminating)"}
    if state.is_terminal:
        return {"cancellable": False,
                "not_cancellable_because": "its Ray job has ended: nothing to stop (kubectl delete removes the RayJob)"}
    effect = f"deletes RayJob {namespace}/{name}"
    owned = rc is not None and any(
        isinstance(o, dict) and o.get("kind") == KIND and o.get("name") == name
        for o in sequence(mapping(rc.get("metadata")).get("ownerReferences")))
    if owned or (rc is None and SELECTOR_KEY not in selector and spec.get("rayClusterSpec") is not None):
        # The RayCluster a RayJob creates has it as owner: Kubernetes' garbage collector deletes it.
        effect += f" and its RayCluster {rc_name or '(not created yet)'}, which it owns"
        if spec.get("shutdownAfterJobFinishes") is not True:
            effect += " (though not shutdownAfterJobFinishes: only a deletion removes it)"
    elif rc_name:
        effect += f"; RayCluster {rc_name} is not its own (clusterSelector) and stays"
    return {"cancellable": True, "cancel_effect": effect}
