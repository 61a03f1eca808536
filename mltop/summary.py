"""What the status lines and the summary line say: per source, its health and counts; over all
sources, GPUs in use by model. Pure functions of the latest updates (mltop/dashboard.py calls them
only when an update or its health changed). No Textual here."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from mltop.model import GpuNode, JobState, RayClusterState, SourceData, SourceHealth
from mltop.refresh import SourceUpdate
from mltop.registry import job_noun


@dataclass(frozen=True)
class SourceLine:
    """One source as its status line shows it."""

    key: str
    health: SourceHealth
    cluster: RayClusterState | None = None  # a Ray source's GPUs, when it reported them
    nodes: int = 0  # GPU nodes it reported (a Kubernetes source)
    gpus_allocated: float = 0.0
    gpus_allocatable: float = 0.0
    waiting: int = 0  # of its jobs, how many wait
    job_noun: str = "job"


@dataclass(frozen=True)
class ModelUse:
    model: str | None
    allocated: float
    allocatable: float


@dataclass(frozen=True)
class Summary:
    sources_up: int
    sources_total: int
    ray_gpus_used: float | None  # None: some cluster did not say
    ray_gpus_total: float
    has_ray: bool
    has_nodes: bool
    gpus_allocated: float  # Kubernetes GPU nodes, all clusters
    gpus_allocatable: float
    by_model: tuple[ModelUse, ...] = ()


def source_lines(updates: Sequence[SourceUpdate], source_keys: Sequence[str],
                 names: Mapping[str, tuple[str, str]]) -> Iterable[SourceLine]:
    by_key = {u.key: u for u in updates}
    for key in source_keys:
        update = by_key.get(key)
        if update is None:
            kind, name = names.get(key, tuple(key.split("/", 1)) if "/" in key else (key, key))
            yield SourceLine(key, SourceHealth(kind, name, False, None, None, None, None))
            continue
        data = update.data
        f = _figures(data)
        yield SourceLine(
            key, update.health, cluster=data.ray_cluster if data else None, nodes=f.nodes,
            gpus_allocated=f.allocated, gpus_allocatable=f.allocatable, waiting=f.waiting,
            job_noun=job_noun(update.health.kind),
        )


# A source's figures, kept for its latest records: every poll's health is new (its latency), but a
# Kubernetes source hands back the same records while nothing happened, and counting 5,000 nodes
# again for each status line and the summary was most of a quiet large cluster's view. Holds the
# records it counted, so an id in it is never another object's. Only the latest few: each entry holds
# a whole snapshot of a source (at 5,000 nodes and 10,000 Ray jobs, tens of MiB that a changing
# cluster does not share with the next one), and keeping 64 of them grew RSS by 40 MiB in 9 minutes.
@dataclass(frozen=True)
class _Figures:
    nodes: int = 0
    allocated: float = 0.0  # summed in node order
    allocatable: float = 0.0
    waiting: int = 0
    by_model: tuple[tuple[str | None, float, float], ...] = ()  # (GPU model, allocated, allocatable)


_COUNTED: dict[int, tuple[object, _Figures]] = {}
_KEEP = 8  # the latest records of each of a few sources, and the ones before


def _figures(data: SourceData | None) -> _Figures:
    if data is None:
        return _Figures()
    seen = _COUNTED.get(id(data))
    if seen is not None and seen[0] is data:
        return seen[1]
    models: dict[str | None, list[float]] = {}
    allocated = allocatable = 0  # as sum() starts: an int until a node is added
    for n in data.nodes:  # one walk for the totals and the models (three took ~3 ms at 5,000 nodes)
        a, c = n.gpus_allocated, n.gpus_allocatable
        allocated += a
        allocatable += c
        entry = models.get(n.gpu_model)
        if entry is None:
            entry = models[n.gpu_model] = [0.0, 0.0]
        entry[0] += a
        entry[1] += c
    figures = _Figures(len(data.nodes), allocated, allocatable,
                       sum(1 for j in data.jobs if j.state is JobState.PENDING),
                       tuple((m, a, c) for m, (a, c) in models.items()))
    _COUNTED[id(data)] = (data, figures)
    while len(_COUNTED) > _KEEP:  # the oldest first (a dict keeps insertion order)
        del _COUNTED[next(iter(_COUNTED))]
    return figures


def summarize(nodes: Sequence[GpuNode], updates: Sequence[SourceUpdate], sources_total: int) -> Summary:
    """`nodes`: the Kubernetes GPU nodes of `updates` (the sums are each source's, from `_figures`)."""
    clusters = [u.data.ray_cluster for u in updates if u.data and u.data.ray_cluster]
    used = [c.gpus_used for c in clusters]
    figures = [_figures(u.data) for u in updates]
    by_model: dict[str | None, list[float]] = {}
    for f in figures:
        for model, allocated, allocatable in f.by_model:
            entry = by_model.setdefault(model, [0.0, 0.0])
            entry[0] += allocated
            entry[1] += allocatable
    return Summary(
        sources_up=sum(1 for u in updates if u.health.ok),
        sources_total=sources_total,
        ray_gpus_used=None if any(u is None for u in used) else sum(u for u in used if u is not None),
        ray_gpus_total=sum(c.gpus_total for c in clusters),
        has_ray=bool(clusters),
        has_nodes=bool(nodes),
        gpus_allocated=sum(f.allocated for f in figures),
        gpus_allocatable=sum(f.allocatable for f in figures),
        by_model=tuple(ModelUse(m, a, c) for m, (a, c) in by_model.items()),
    )
