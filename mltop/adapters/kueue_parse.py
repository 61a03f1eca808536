"""Kueue objects (kueue.x-k8s.io v1beta2 and v1beta1) as compact facts, and why a Workload waits.

Pure functions: one bad object is `Unreadable` (the cache leaves it out and counts it), one bad
field is unknown (None). The two versions differ in a few names, read both ways: LocalQueue
`flavorUsage` (v1beta1) / `flavorsUsage` (v1beta2), ClusterQueue `cohort` / `cohortName`.

Why a Workload is not admitted, in KEP-10852's words, from its conditions: Kueue (up to v0.15)
says it in `QuotaReserved=False` messages written by its flavor assigner ("insufficient unused
quota for nvidia.com/gpu in flavor a100, 4 more needed"); releases with the KEP put the graded
reason (`WaitingForQuota`, ...) in the condition's reason. Both are read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mltop.adapters.kube_parse import Unreadable, _parts, _str, effective_requests, parse_time, quantity
from mltop.adapters.values import integer, mapping, sequence

GROUP = "kueue.x-k8s.io"
VERSIONS = ("v1beta2", "v1beta1")  # newest first: v1beta2 is storage from v0.16; v0.14 serves v1beta1 only
VISIBILITY_GROUP = "visibility.kueue.x-k8s.io"
VISIBILITY_VERSIONS = ("v1beta2", "v1beta1")
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"

# (KEP-10852 reason, its words); the reason names are what the condition says once the KEP ships.
KEP_REASONS = {
    "WaitingForQuota": "waiting for quota",
    "NoMatchingFlavor": "no matching flavor",
    "ExceedsMaxQuota": "exceeds max quota",
    "BorrowingLimitReached": "borrowing limit",
    "WaitingForPreemptedWorkloads": "waiting for preemption",
    "TopologyPlacementFailed": "topology placement failed",
    "Misconfigured": "misconfigured",
}
# Words of Kueue's own messages (flavorassigner, scheduler) -> the KEP reason; first match wins.
_MESSAGE_WORDS = (
    ("request > maximum capacity", "ExceedsMaxQuota"),
    ("exceeds the maximum", "ExceedsMaxQuota"),
    ("borrowing limit", "BorrowingLimitReached"),
    ("pending the preemption", "WaitingForPreemptedWorkloads"),
    ("waiting for preempted", "WaitingForPreemptedWorkloads"),
    ("insufficient unused quota", "WaitingForQuota"),
    ("no longer fits", "WaitingForQuota"),
    ("insufficient quota", "WaitingForQuota"),
    ("topology", "TopologyPlacementFailed"),
    ("doesn't match", "NoMatchingFlavor"),
    ("untolerated taint", "NoMatchingFlavor"),
    ("unavailable in clusterqueue", "NoMatchingFlavor"),
    ("no flavor", "NoMatchingFlavor"),
    ("doesn't exist", "Misconfigured"),
    ("is inactive", "Misconfigured"),
    ("is stopped", "Misconfigured"),
)


@dataclass(frozen=True)
class WorkloadFacts:
    namespace: str
    name: str
    queue: str | None  # LocalQueue name (spec.queueName)
    admitted_to: str | None  # status.admission.clusterQueue
    priority: int | None
    active: bool
    created: datetime | None
    state: str  # "pending", "quota reserved", "admitted", "stopped", "evicted", "finished"
    reason: str | None  # KEP words, for a workload not admitted
    message: str | None  # Kueue's message behind it
    owner: tuple[str, str] | None  # (kind, name) of the job it stands for
    gpus: float | None  # accelerators its pod sets ask for, all counts
    gpu_resource: str | None


@dataclass(frozen=True)
class QuotaFacts:
    flavor: str
    resource: str
    nominal: float | None
    borrowing_limit: float | None


@dataclass(frozen=True)
class ClusterQueueFacts:
    name: str
    cohort: str | None
    quotas: tuple[QuotaFacts, ...]
    usage: tuple[tuple[str, str, float | None, float | None], ...]  # (flavor, resource, total, borrowed)
    pending: int | None
    admitted: int | None

    def used(self, flavor: str, resource: str) -> tuple[float | None, float | None]:
        return next(((t, b) for f, r, t, b in self.usage if (f, r) == (flavor, resource)), (None, None))


@dataclass(frozen=True)
class LocalQueueFacts:
    namespace: str
    name: str
    cluster_queue: str | None
    pending: int | None
    admitted: int | None


def _conditions(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in sequence(status.get("conditions")) if isinstance(c, dict) and _str(c.get("type"))}


def reason_words(reason: Any, message: Any) -> str | None:
    """A condition's reason and message in KEP-10852's words; None when neither says why."""
    if isinstance(reason, str) and reason in KEP_REASONS:
        return KEP_REASONS[reason]
    text = message.lower() if isinstance(message, str) else ""
    found = next((kep for words, kep in _MESSAGE_WORDS if words in text), None)
    return KEP_REASONS[found] if found else None


def _state(active: bool, conditions: dict[str, dict[str, Any]]) -> tuple[str, str | None, str | None]:
    """(state, KEP reason, message) from a Workload's conditions."""
    def true(kind: str) -> bool:
        return (conditions.get(kind) or {}).get("status") == "True"

    if true("Finished"):
        return "finished", None, _str((conditions.get("Finished") or {}).get("message"))
    if not active:
        said = conditions.get("Deactivated") or conditions.get("Evicted") or {}
        return "stopped", "stopped (spec.active is false)", _str(said.get("message"))
    if true("Admitted"):
        return "admitted", None, None
    if true("QuotaReserved"):
        return "quota reserved", "waiting for admission checks", _str((conditions.get("Admitted") or {}).get("message"))
    held = conditions.get("QuotaReserved") or {}
    message = _str(held.get("message"))
    words = reason_words(held.get("reason"), message)
    evicted = conditions.get("Evicted") or {}
    if evicted.get("status") == "True" or true("Preempted"):
        why = _str(evicted.get("reason")) or "Evicted"
        said = f"evicted ({why})" + (f": {evicted['message']}" if _str(evicted.get("message")) else "")
        return "evicted", words or f"evicted ({why.lower()})", message or said
    return "pending", words, message


def _owner(meta: dict[str, Any]) -> tuple[str, str] | None:
    owners = [o for o in sequence(meta.get("ownerReferences")) if isinstance(o, dict)]
    chosen = next((o for o in owners if o.get("controller") is True), owners[0] if owners else {})
    kind, name = _str(chosen.get("kind")), _str(chosen.get("name"))
    return (kind, name) if kind and name else None


def _pod_set_gpus(spec: dict[str, Any]) -> tuple[float | None, str | None]:
    total, resource = 0.0, None
    for pod_set in sequence(spec.get("podSets")):
        pod_spec = mapping(mapping(mapping(pod_set).get("template")).get("spec"))
        count = integer(mapping(pod_set).get("count"), minimum=0)
        try:
            requests = effective_requests(pod_spec)
        except Unreadable:
            return None, None  # one junk amount: the count is unknown, the workload still shows
        for name, amount in requests.items():
            total += amount * (1 if count is None else count)
            resource = resource or name
    return total, resource


def workload_facts(obj: Any) -> WorkloadFacts:
    meta, spec, status, name = _parts(obj, "Workload")
    namespace = _str(meta.get("namespace")) or "default"
    active = spec.get("active") is not False  # absent means active
    state, reason, message = _state(active, _conditions(status))
    gpus, resource = _pod_set_gpus(spec)
    priority = spec.get("priority")
    return WorkloadFacts(
        namespace=namespace, name=name, queue=_str(spec.get("queueName")),
        admitted_to=_str(mapping(status.get("admission")).get("clusterQueue")),
        priority=priority if isinstance(priority, int) and not isinstance(priority, bool) else None,
        active=active, created=parse_time(meta.get("creationTimestamp")), state=state, reason=reason,
        message=message[:500] if message else None, owner=_owner(meta), gpus=gpus, gpu_resource=resource)


def _quotas(spec: dict[str, Any]) -> tuple[QuotaFacts, ...]:
    out = []
    for group in sequence(spec.get("resourceGroups")):
        for flavor in sequence(mapping(group).get("flavors")):
            flavor_name = _str(mapping(flavor).get("name"))
            for res in sequence(mapping(flavor).get("resources")):
                res = mapping(res)
                if flavor_name and _str(res.get("name")):
                    out.append(QuotaFacts(flavor_name, res["name"], quantity(res.get("nominalQuota")),
                                          quantity(res.get("borrowingLimit"))))
    return tuple(out)


def _usage(status: dict[str, Any], *fields: str) -> tuple[tuple[str, str, float | None, float | None], ...]:
    listed = next((status[f] for f in fields if isinstance(status.get(f), list)), [])
    out = []
    for flavor in listed:
        flavor_name = _str(mapping(flavor).get("name"))
        for res in sequence(mapping(flavor).get("resources")):
            res = mapping(res)
            if flavor_name and _str(res.get("name")):
                out.append((flavor_name, res["name"], quantity(res.get("total")), quantity(res.get("borrowed"))))
    return tuple(out)


def cluster_queue_facts(obj: Any) -> ClusterQueueFacts:
    _, spec, status, name = _parts(obj, "ClusterQueue")
    return ClusterQueueFacts(
        name=name, cohort=_str(spec.get("cohortName")) or _str(spec.get("cohort")), quotas=_quotas(spec),
        # flavorsUsage counts admitted workloads; flavorsReservation also those with quota reserved.
        usage=_usage(status, "flavorsUsage", "flavorsReservation"),
        pending=integer(status.get("pendingWorkloads")), admitted=integer(status.get("admittedWorkloads")))


def local_queue_facts(obj: Any) -> LocalQueueFacts:
    meta, spec, status, name = _parts(obj, "LocalQueue")
    return LocalQueueFacts(namespace=_str(meta.get("namespace")) or "default", name=name,
                           cluster_queue=_str(spec.get("clusterQueue")),
                           pending=integer(status.get("pendingWorkloads")),
                           admitted=integer(status.get("admittedWorkloads")))


def positions_from_visibility(body: Any) -> dict[tuple[str, str], int]:
    """(namespace, name) -> 1-based position in its ClusterQueue, from a PendingWorkloadsSummary."""
    out: dict[tuple[str, str], int] = {}
    for item in sequence(mapping(body).get("items")):
        meta = mapping(mapping(item).get("metadata"))
        name, position = _str(meta.get("name")), integer(mapping(item).get("positionInClusterQueue"))
        if name is not None and position is not None:
            out[(_str(meta.get("namespace")) or "default", name)] = position + 1
    return out


def estimated_positions(workloads: list[WorkloadFacts], cq_of: dict[tuple[str, str], str]) -> dict[tuple[str, str], int]:
    """Kueue's BestEffortFIFO order, as mltop can see it: per ClusterQueue, pending workloads by
    priority (highest first), then creation time. Not Kueue's word (requeue times, fair sharing)."""
    queues: dict[str, list[WorkloadFacts]] = {}
    for wl in workloads:
        cq = cq_of.get((wl.namespace, wl.name))
        if cq and wl.state in ("pending", "evicted"):
            queues.setdefault(cq, []).append(wl)
    out = {}
    for members in queues.values():
        members.sort(key=lambda w: (-(w.priority or 0), w.created.timestamp() if w.created else 0.0, w.name))
        out.update({(w.namespace, w.name): i for i, w in enumerate(members, 1)})
    return out
