"""What the status lines and the summary line say: per source, its health and counts; over all
sources, GPUs in use by model. Pure functions of the latest updates (mltop/dashboard.py calls them
only when an update or its health changed). No Textual here."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from mltop.model import GpuNode, JobState, RayClusterState, SourceHealth
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
        nodes = data.nodes if data else ()
        yield SourceLine(
            key, update.health, cluster=data.ray_cluster if data else None, nodes=len(nodes),
            gpus_allocated=sum(n.gpus_allocated for n in nodes),
            gpus_allocatable=sum(n.gpus_allocatable for n in nodes),
            waiting=sum(1 for j in data.jobs if j.state is JobState.PENDING) if data else 0,
            job_noun=job_noun(update.health.kind),
        )


def summarize(nodes: Sequence[GpuNode], updates: Sequence[SourceUpdate], sources_total: int) -> Summary:
    clusters = [u.data.ray_cluster for u in updates if u.data and u.data.ray_cluster]
    used = [c.gpus_used for c in clusters]
    by_model: dict[str | None, list[float]] = {}
    for n in nodes:
        entry = by_model.setdefault(n.gpu_model, [0.0, 0.0])
        entry[0] += n.gpus_allocated
        entry[1] += n.gpus_allocatable
    return Summary(
        sources_up=sum(1 for u in updates if u.health.ok),
        sources_total=sources_total,
        ray_gpus_used=None if any(u is None for u in used) else sum(u for u in used if u is not None),
        ray_gpus_total=sum(c.gpus_total for c in clusters),
        has_ray=bool(clusters),
        has_nodes=bool(nodes),
        gpus_allocated=sum(n.gpus_allocated for n in nodes),
        gpus_allocatable=sum(n.gpus_allocatable for n in nodes),
        by_model=tuple(ModelUse(m, a, c) for m, (a, c) in by_model.items()),
    )
