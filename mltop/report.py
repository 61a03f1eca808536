"""`mltop --once`: one snapshot as a plain-text table or as JSON, for scripts. No Textual here."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from mltop import format as fmt
from mltop.jobs import order_jobs
from mltop.model import GpuNode, Job, Pool, RayClusterState, Snapshot, SourceHealth

EXIT_OK = 0
EXIT_NO_SOURCE = 2


def exit_status(snapshot: Snapshot) -> int:
    """0 when at least one source answered, 2 when none did (or none is configured)."""
    return EXIT_OK if any(s.ok for s in snapshot.sources) else EXIT_NO_SOURCE


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def job_json(job: Job, now: datetime) -> dict[str, Any]:
    queued = job.queued_seconds(now)
    return {
        "key": job.key,
        "source": job.source,
        "cluster": job.cluster,
        "id": job.id,
        "name": job.name,
        "state": job.state.value,
        "native_state": job.native_state,
        "gpus": job.gpus,
        "cpus": job.cpus,
        "queued_seconds": round(queued, 1) if queued is not None else None,
        "run_seconds": round(ran, 1) if (ran := job.run_seconds(now)) is not None else None,
        "submitted_at": _iso(job.submitted_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "owner": job.owner,
        "message": job.message,
        "kind": job.kind,
        "entrypoint": job.entrypoint,
        "namespace": job.namespace,
        "experiment": job.experiment,
        "pipeline": job.pipeline,
    }


def node_json(node: GpuNode) -> dict[str, Any]:
    return {
        "key": node.key,
        "cluster": node.cluster,
        "name": node.name,
        "pool": node.pool,
        "gpu_model": node.gpu_model,
        "gpu_resource": node.gpu_resource,
        "gpus_total": node.gpus_total,
        "gpus_allocatable": node.gpus_allocatable,
        "gpus_allocated": node.gpus_allocated,
        "gpus_free": node.gpus_free,
        "sharing": node.sharing,
        "ready": node.ready,
        "schedulable": node.schedulable,
        "taints": list(node.taints),
        "instance_type": node.instance_type,
        "zone": node.zone,
        "capacity_type": node.capacity_type,
        "created_at": _iso(node.created_at),
        "pods": [{"namespace": p.namespace, "name": p.name, "gpus": p.gpus, "owner": p.owner} for p in node.pods],
    }


def pool_json(pool: Pool) -> dict[str, Any]:
    return {
        "key": pool.key,
        "cluster": pool.cluster,
        "kind": pool.kind,
        "name": pool.name,
        "namespace": pool.namespace,
        "replicas": pool.replicas,
        "ready": pool.ready,
        "min": pool.min,
        "max": pool.max,
        "gpus_per_replica": pool.gpus_per_replica,
        "gpus_total": pool.gpus_total,
        "gpus_allocated": pool.gpus_allocated,
        "gpus_idle": pool.gpus_idle,
        "gpu_model": pool.gpu_model,
        "scalable": pool.scalable,
        "why_not_scalable": pool.why_not_scalable,
        "autoscaled": pool.autoscaled,
    }


def cluster_json(cluster: RayClusterState) -> dict[str, Any]:
    return {
        "gpus_total": cluster.gpus_total,
        "gpus_used": cluster.gpus_used,
        "gpus_waiting": cluster.gpus_waiting,
        "nodes": [
            {
                "node_id": n.node_id,
                "address": n.address,
                "hostname": n.hostname,
                "is_head": n.is_head,
                "alive": n.alive,
                "gpus_total": n.gpus_total,
                "gpus_used": n.gpus_used,
                "devices": [
                    {
                        "index": d.index,
                        "name": d.name,
                        "utilization": d.utilization,
                        "memory_used_mib": d.memory_used_mib,
                        "memory_total_mib": d.memory_total_mib,
                    }
                    for d in n.devices
                ],
            }
            for n in cluster.nodes
        ],
        "pending_demands": [{"resources": dict(d.resources), "count": d.count} for d in cluster.demands],
    }


def source_json(health: SourceHealth, cluster: RayClusterState | None, now: datetime) -> dict[str, Any]:
    age = health.age_seconds(now)
    out: dict[str, Any] = {
        "kind": health.kind,
        "name": health.name,
        "ok": health.ok,
        "error": health.error,
        "latency_ms": health.latency_ms,
        "last_success": _iso(health.last_success),
        "age_seconds": round(age, 1) if age is not None else None,
    }
    if health.kind == "ray":
        out["cluster"] = cluster_json(cluster) if cluster is not None else None
    return out


def to_json(snapshot: Snapshot, finished_limit: int) -> dict[str, Any]:
    now = snapshot.generated_at
    clusters = dict(snapshot.ray_clusters)
    return {
        "generated_at": _iso(now),
        "sources": [source_json(s, clusters.get(s.name) if s.ok else None, now) for s in snapshot.sources],
        "jobs": [job_json(j, now) for j in order_jobs(snapshot.jobs, finished_limit)],
        "nodes": [node_json(n) for n in snapshot.nodes],
        "pools": [pool_json(p) for p in snapshot.pools],
        "warnings": [],
    }


def render_json(snapshot: Snapshot, finished_limit: int) -> str:
    return json.dumps(to_json(snapshot, finished_limit), indent=2)


COLUMNS = (("CLUSTER", 12), ("ID", 24), ("NAME", 28), ("STATE", 10), ("GPUS", 4), ("WAIT/RUN", 8), ("OWNER", 10))


def render_text(snapshot: Snapshot, finished_limit: int) -> str:
    now = snapshot.generated_at
    lines = []
    for s in snapshot.sources:
        status = "ok" if s.ok else f"ERROR: {s.error}"
        latency = f" ({s.latency_ms:.0f} ms)" if s.latency_ms is not None else ""
        lines.append(f"{s.kind}/{s.name}: {status}{latency}")
    for name, cluster in snapshot.ray_clusters:
        used = fmt.gpus(cluster.gpus_used)
        lines.append(
            f"ray/{name}: GPUs {used}/{fmt.gpus(cluster.gpus_total)} in use, "
            f"{fmt.gpus(cluster.gpus_waiting)} wanted by work that waits"
        )
    lines.append("")
    lines.append("  ".join(title.ljust(width) for title, width in COLUMNS).rstrip())
    jobs = order_jobs(snapshot.jobs, finished_limit)
    for job in jobs:
        waited = job.queued_seconds(now)
        when = fmt.short_duration(waited if waited is not None else job.run_seconds(now))
        cells = (job.cluster, job.id, job.name, job.state.value, fmt.gpus(job.gpus), when, job.owner or "-")
        lines.append("  ".join(fmt.clip(c, w).ljust(w) for c, (_, w) in zip(cells, COLUMNS)).rstrip())
    if not jobs:
        lines.append("(no jobs)")
    if snapshot.nodes:
        lines += ["", "  ".join(t.ljust(w) for t, w in NODE_COLUMNS).rstrip()]
        for n in snapshot.nodes:
            state = "Ready" if n.ready else "NotReady"
            if not n.schedulable:
                state += ",cordoned"
            cells = (n.cluster, n.name, n.pool or "-", n.gpu_model or "-", fmt.gpus(n.gpus_total),
                     fmt.gpus(n.gpus_allocated), fmt.gpus(n.gpus_free), state)
            lines.append("  ".join(fmt.clip(c, w).ljust(w) for c, (_, w) in zip(cells, NODE_COLUMNS)).rstrip())
    if snapshot.pools:
        lines += ["", "  ".join(t.ljust(w) for t, w in POOL_COLUMNS).rstrip()]
        for p in snapshot.pools:
            cells = (p.cluster, p.kind, p.name, fmt.count(p.replicas), fmt.count(p.ready),
                     "-" if p.kind == "nodepool" else f"{fmt.count(p.min, '0')}..{fmt.count(p.max, '∞')}",
                     fmt.gpus(p.gpus_per_replica),
                     "yes" if p.scalable else "no")
            lines.append("  ".join(fmt.clip(c, w).ljust(w) for c, (_, w) in zip(cells, POOL_COLUMNS)).rstrip())
    return "\n".join(lines) + "\n"


NODE_COLUMNS = (("CLUSTER", 12), ("NODE", 28), ("POOL", 16), ("MODEL", 22), ("GPUS", 4), ("ALLOC", 5),
                ("FREE", 4), ("STATE", 16))
POOL_COLUMNS = (("CLUSTER", 12), ("KIND", 22), ("NAME", 24), ("REPL", 4), ("READY", 5), ("MIN..MAX", 8),
                ("GPU/R", 5), ("SCALE", 5))
