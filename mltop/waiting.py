"""Why a job waits, in a few words for a table cell: the scheduler's message boiled down, or a
Ray job's demand against its cluster. Standard library only; the sentence the details, the report
and the JSON show is `View.waiting_reason`, and this is its short form (`View.waiting_short`).

The Kubernetes scheduler's message reads "0/12 nodes are available: 4 Insufficient nvidia.com/gpu,
8 node(s) had untolerated taint {dedicated: infer}. preemption: ...": one count per reason, each
node counted once, under its first failing check. The reason most nodes give is the one shown.
"""

from __future__ import annotations

import re
from functools import lru_cache
from collections.abc import Iterable, Mapping

from mltop import format as fmt
from mltop.model import GpuNode, RayClusterState

SHORT_WIDTH = 40  # the most a short reason says; the column cuts further where it must
_NODES = re.compile(r"(\d+)/(\d+) nodes are available:\s*(.*)", re.S)
_COUNTED = re.compile(r"^(\d+)\s+(.*)$", re.S)
_TAINT = re.compile(r"taint \{([^:}]*):?\s*([^}]*)\}")
_INSUFFICIENT = re.compile(r"^Insufficient (\S+)$")
# (words in the scheduler's reason, what the cell says); first match wins.
_PHRASES = (
    ("didn't match Pod's node affinity/selector", "node selector/affinity"),
    ("node affinity/selector", "node selector/affinity"),
    ("volume node affinity conflict", "volume zone conflict"),
    ("unbound immediate PersistentVolumeClaims", "unbound PVC"),
    ("persistentvolumeclaim", "PVC not found"),
    ("were unschedulable", "nodes cordoned"),
    ("topology spread constraints", "topology spread"),
    ("pod anti-affinity", "pod anti-affinity"),
    ("pod affinity", "pod affinity"),
    ("free ports", "host port taken"),
    ("Too many pods", "too many pods"),
    ("resourceclaim", "DRA claim not allocated"),
    ("cannot allocate all claims", "DRA claim not allocated"),
)


@lru_cache(maxsize=512)  # thousands of pending pods, a handful of distinct messages
def scheduler_reasons(message: str | None) -> tuple[int, tuple[tuple[int, str], ...]] | None:
    """(nodes in the cluster, ((nodes, reason), ...)) from a scheduler message; None if it is not one."""
    if not message:
        return None
    match = _NODES.search(message.split(" preemption:", 1)[0])
    if match is None:
        return None
    total, body = int(match[2]), match[3].strip().rstrip(".").strip()
    reasons = []
    for part in re.split(r",\s+(?=\d+\s)", body):
        counted = _COUNTED.match(part.strip())
        reasons.append((int(counted[1]), counted[2].strip()) if counted else (0, part.strip()))
    return total, tuple(r for r in reasons if r[1])


@lru_cache(maxsize=512)  # asked for each waiting pod, on every changed view: a few distinct reasons
def phrase(reason: str) -> str:
    """One scheduler reason in a few words: "taint: dedicated=infer", "Insufficient nvidia.com/gpu"."""
    taint = _TAINT.search(reason)
    if taint is not None:
        key, value = taint[1].strip(), taint[2].strip()
        return f"taint: {key}={value}" if value else f"taint: {key}"
    for words, said in _PHRASES:
        if words.lower() in reason.lower():
            return said
    return fmt.clip(reason.removeprefix("node(s) "), SHORT_WIDTH)


def insufficient(reason: str) -> str | None:
    """The resource of an "Insufficient nvidia.com/gpu" reason; None for any other reason."""
    match = _INSUFFICIENT.match(reason)
    return match[1] if match else None


def most_free(nodes: Iterable[GpuNode]) -> dict[str, float]:
    """The most free accelerators any one node has, by resource name ("nvidia.com/gpu": 8)."""
    out: dict[str, float] = {}
    for node in nodes:
        if node.gpu_resource is not None:
            out[node.gpu_resource] = max(out.get(node.gpu_resource, 0.0), node.gpus_free)
    return out


def scheduler_short(message: str | None, wanted: float | None = None,
                    free_by_resource: Mapping[str, float] | None = None) -> str | None:
    """The reason most nodes give, in a few words; for too few free accelerators, how many the pod
    needs against the most any one node has free ("needs 16 GPU, max free 8"). `free_by_resource`
    is `most_free` of the pod's cluster: computed once per view, not once per pending pod."""
    parsed = scheduler_reasons(message)
    if parsed is None or not parsed[1]:
        return None
    _, reasons = parsed
    _, reason = max(reasons, key=lambda r: r[0])  # ties: the first said
    resource = insufficient(reason)
    free = (free_by_resource or {}).get(resource) if resource and wanted else None
    if free is not None and free < (wanted or 0):  # else the free ones are ruled out otherwise: say what it says
        return f"needs {fmt.gpus(wanted)} GPU, max free {fmt.gpus(free)}"
    return phrase(reason)


def ray_short(wanted: float | None, cluster: RayClusterState | None) -> str | None:
    """A Ray job's GPU demand against its cluster, when that is what holds it; else None."""
    if not wanted or cluster is None:
        return None
    alive = [n for n in cluster.nodes if n.alive]
    largest = max((n.gpus_total for n in alive), default=0.0)
    if wanted > largest:
        return f"no node has {fmt.gpus(wanted)} GPU (max {fmt.gpus(largest)})"
    best = max((n.gpus_total - (n.gpus_used or 0.0) for n in alive), default=0.0)
    if wanted > best:
        return f"needs {fmt.gpus(wanted)} GPU, max free {fmt.gpus(best)}"
    return None


def first_words(message: str | None) -> str | None:
    """A backend's own message, its first sentence, clipped: the short form of last resort."""
    if not message:
        return None
    head = re.split(r"(?<=[a-z0-9)])\. ", " ".join(message.split()), maxsplit=1)[0].rstrip(".")
    return fmt.clip(head, SHORT_WIDTH) or None
