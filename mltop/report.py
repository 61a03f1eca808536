"""`mltop --once`: one snapshot as a plain-text table or as JSON, for scripts. No Textual here."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from mltop import format as fmt
from mltop.jobs import order_jobs
from mltop.cost import CostReport, IdleWarning
from mltop.model import GpuNode, Job, Pool, RayClusterState, Snapshot, SourceHealth
from mltop.safe_text import inert

EXIT_OK = 0
EXIT_NO_SOURCE = 2
EXIT_IDLE_SPEND = 3


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
        "gpu_utilization": job.gpu_utilization,
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


def warning_json(w: IdleWarning) -> dict[str, Any]:
    return {
        "kind": w.kind,
        "target": w.target,
        "target_name": w.target_name,
        "cluster": w.cluster,
        "idle_gpus": round(w.idle_gpus, 3),
        "idle_since": _iso(w.idle_since),
        "idle_since_is_lower_bound": w.idle_since_is_lower_bound,
        "cost_per_hour": None if w.cost_per_hour is None else round(w.cost_per_hour, 4),
        "wasted": None if w.wasted is None else round(w.wasted, 2),
        "remedy": w.remedy,
        "remedy_key": w.remedy_key,
        "message": w.message,
    }


def node_json(node: GpuNode, cost: CostReport | None = None) -> dict[str, Any]:
    price = cost.node_prices.get(node.key) if cost else None
    return {
        "price_per_hour": price.per_hour if price else None,
        "price_basis": price.basis if price else None,
        "idle_gpus": node.gpus_free,
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


def pool_json(pool: Pool, nodes: dict[str, GpuNode], cost: CostReport | None = None) -> dict[str, Any]:
    members = [nodes[f"{pool.cluster}/{m}"] for m in pool.members if f"{pool.cluster}/{m}" in nodes]
    prices = [cost.node_prices[n.key].per_hour for n in members] if cost else []
    price = None if not prices or any(p is None for p in prices) else sum(p for p in prices if p is not None)
    return {
        "price_per_hour": price,
        "idle_gpus": pool.gpus_idle,
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
        "skipped": health.skipped,
        "skip_reason": health.skip_reason,
    }
    if health.kind == "ray":
        out["cluster"] = cluster_json(cluster) if cluster is not None else None
    return out


def to_json(snapshot: Snapshot, finished_limit: int, cost: CostReport | None = None) -> dict[str, Any]:
    now = snapshot.generated_at
    clusters = dict(snapshot.ray_clusters)
    by_name = {f"{n.cluster}/{n.name}": n for n in snapshot.nodes}
    return {
        "generated_at": _iso(now),
        "sources": [source_json(s, clusters.get(s.name) if s.ok else None, now) for s in snapshot.sources],
        "jobs": [job_json(j, now) for j in order_jobs(snapshot.jobs, finished_limit)],
        "nodes": [node_json(n, cost) for n in snapshot.nodes],
        "pools": [pool_json(p, by_name, cost) for p in snapshot.pools],
        "warnings": [warning_json(w) for w in cost.warnings] if cost else [],
        "cost": None if cost is None else {
            "currency": cost.currency,
            "burn_rate_per_hour": round(cost.burn_rate, 2),
            "idle_per_hour": round(cost.idle_rate, 2),
            "wasted_today": round(cost.wasted_today, 2),
            "unpriced_nodes": cost.unpriced_nodes,
        },
    }


def render_json(snapshot: Snapshot, finished_limit: int, cost: CostReport | None = None) -> str:
    return json.dumps(to_json(snapshot, finished_limit, cost), indent=2)


def cost_line(cost: CostReport) -> str:
    c = inert(cost.currency)  # from the config file; the TUI shows this line too
    if cost.unpriced_nodes and not cost.burn_rate:
        # Nothing priced: say so rather than show $0, which would read as "free".
        return f"GPU cost unknown: {cost.unpriced_nodes} GPU nodes without a price (add yours under [cost.prices])"
    unpriced = f" ({cost.unpriced_nodes} nodes without a price)" if cost.unpriced_nodes else ""
    return (f"GPU burn {c}{cost.burn_rate:,.2f}/h, idle {c}{cost.idle_rate:,.2f}/h, "
            f"wasted today {c}{cost.wasted_today:,.2f}{unpriced}")


COLUMNS = (("CLUSTER", 12), ("ID", 24), ("NAME", 28), ("STATE", 10), ("GPUS", 4), ("WAIT/RUN", 8), ("OWNER", 10))


def render_text(snapshot: Snapshot, finished_limit: int, cost: CostReport | None = None) -> str:
    """Every line built from backend text is inert: this goes to a terminal (or a log that will)."""
    now = snapshot.generated_at
    lines = []
    if cost is not None and (snapshot.nodes or snapshot.ray_clusters):
        lines.append(cost_line(cost))
    for s in snapshot.sources:
        status = "ok" if s.ok else f"ERROR: {inert(s.error or 'failed')}"
        latency = f" ({s.latency_ms:.0f} ms)" if s.latency_ms is not None else ""
        skipped = f", {fmt.skipped_note(s.skipped, s.skip_reason)}" if s.ok and s.skipped > 0 else ""
        lines.append(f"{inert(s.kind)}/{inert(s.name)}: {status}{latency}{skipped}")
    for name, cluster in snapshot.ray_clusters:
        used = fmt.gpus(cluster.gpus_used)
        lines.append(
            f"ray/{inert(name)}: GPUs {used}/{fmt.gpus(cluster.gpus_total)} in use, "
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
    if cost is not None and cost.warnings:
        lines += ["", "IDLE-COST WARNINGS (most expensive first)"]
        for w in cost.warnings:
            rate = "price unknown" if w.cost_per_hour is None else f"{inert(cost.currency)}{w.cost_per_hour:,.2f}/h"
            since = fmt.short_duration((now - w.idle_since).total_seconds()) if w.idle_since else "?"
            lines.append(f"- [{inert(w.kind)}] {inert(w.cluster)}: {inert(w.message)}; "
                         f"idle {'>= ' if w.idle_since_is_lower_bound else ''}{since}, {rate}; fix: {inert(w.remedy)}")
    return "\n".join(lines) + "\n"


NODE_COLUMNS = (("CLUSTER", 12), ("NODE", 28), ("POOL", 16), ("MODEL", 22), ("GPUS", 4), ("ALLOC", 5),
                ("FREE", 4), ("STATE", 16))
POOL_COLUMNS = (("CLUSTER", 12), ("KIND", 22), ("NAME", 24), ("REPL", 4), ("READY", 5), ("MIN..MAX", 8),
                ("GPU/R", 5), ("SCALE", 5))
