"""`mltop --once`: the dashboard's view as a plain-text table or as JSON, for scripts. No Textual here.

It renders the same `dashboard.View` the screen does, so the figures can never disagree.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from collections.abc import Mapping

from mltop import chain, format as fmt, kueue
from mltop.cost import CostReport, TeamCost
from mltop.dashboard import SourceLine, View
from mltop.keys import key_label
from mltop.model import GpuNode, IdleWarning, Job, Pool, RayClusterState
from mltop.safe_text import inert

EXIT_OK = 0
EXIT_NO_SOURCE = 2
EXIT_IDLE_SPEND = 3


def exit_status(view: View) -> int:
    """0 when at least one source answered, 2 when none did (or none is configured)."""
    return EXIT_OK if any(line.health.ok for line in view.sources) else EXIT_NO_SOURCE


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def job_json(job: Job, now: datetime, waiting_reason: str | None = None) -> dict[str, Any]:
    queued = job.queued_seconds(now)
    return {
        "waiting_reason": waiting_reason,  # waiting jobs: why, in the screen's words; else null
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
        "dra_claims": list(job.dra_claims),  # DRA ResourceClaims it waits on
        "ray_cluster": job.ray_cluster,  # KubeRay RayJobs: the RayCluster it runs on
        "submission_id": job.submission_id,  # ...its Ray job submission id
        "reason": job.reason,  # ...KubeRay's reason word (status.reason)
        **kueue.job_fields(job),  # queue, cluster_queue, queue_position, queue_reason...: null without Kueue
    }


def warning_json(w: IdleWarning, keymap: Mapping[str, str] | None = None) -> dict[str, Any]:
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
        "remedy_action": w.remedy_action,  # a binding id: "jobs.cancel", "pools.scale"
        "remedy_key": key_label(w.remedy_action, keymap),  # the user's key for it now
        "message": w.message,
    }


def node_json(node: GpuNode, cost: CostReport | None = None) -> dict[str, Any]:
    price = cost.node_price(node.key) if cost else None
    return {
        "price_per_hour": price.per_hour if price else None,
        "price_basis": price.basis if price else None,
        "price_source": price.source if price else None,  # "config: pools", "opencost", "catalog: ..."
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
        "dra_gpus": node.dra_gpus,  # of gpus_total, those from DRA ResourceSlices
        "sharing": node.sharing,
        "ready": node.ready,
        "schedulable": node.schedulable,
        "taints": list(node.taints),
        "instance_type": node.instance_type,
        "zone": node.zone,
        "capacity_type": node.capacity_type,
        "created_at": _iso(node.created_at),
        "pods": [{"namespace": p.namespace, "name": p.name, "gpus": p.gpus, "owner": p.owner} for p in node.pods],
        "origin": node.origin,  # "kubernetes", or "ray": a Ray node, whose GPUs Ray's own figures count
        "address": node.address,
        "gpu_utilization": node.gpu_utilization,
    }


def pool_json(pool: Pool, cost: CostReport | None = None) -> dict[str, Any]:
    return {
        "price_per_hour": cost.pool_price(pool.key) if cost else None,
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


def source_json(line: SourceLine, now: datetime) -> dict[str, Any]:
    health = line.health
    age = health.age_seconds(now)
    return {
        "kind": health.kind,
        "name": health.name,
        "ok": health.ok,
        "error": health.error,
        "latency_ms": health.latency_ms,
        "last_success": _iso(health.last_success),
        "age_seconds": round(age, 1) if age is not None else None,
        "skipped": health.skipped,
        "skip_reason": health.skip_reason,
        # A Ray source's GPUs; null for a source that has no cluster to report (or failed).
        "cluster": cluster_json(line.cluster) if line.cluster is not None and health.ok else None,
    }


def cost_json(cost: CostReport | None) -> dict[str, Any] | None:
    if cost is None:
        return None
    return {
        "currency": cost.currency,
        "burn_rate_per_hour": round(cost.burn_rate, 2),
        "idle_per_hour": round(cost.idle_rate, 2),
        "warned_per_hour": round(cost.warned_rate, 2),
        "wasted_today": round(cost.wasted_today, 2),
        "unpriced_nodes": cost.unpriced_nodes,
    }


def to_json(view: View, keymap: Mapping[str, str] | None = None) -> dict[str, Any]:
    now, cost = view.now, view.cost
    return {
        "generated_at": _iso(now),
        "sources": [source_json(line, now) for line in view.sources],
        # The queue's rows, each followed by the jobs folded under it (chain_parent says which: mltop/chain.py)
        "jobs": [{**job_json(j, now, view.waiting_reason(j)), **chain.json_fields(view.chains, j)}
                 for j in chain.with_members(view.chains, view.jobs)],
        "nodes": [node_json(n, cost) for n in view.nodes],
        "pools": [pool_json(p, cost) for p in view.pools],
        "warnings": [warning_json(w, keymap) for w in cost.warnings] if cost else [],
        "cost": cost_json(cost),
        "queues": [kueue.queue_json(q) for q in view.queues],  # Kueue ClusterQueues; empty without Kueue
        "teams": [team_json(t) for t in cost.teams] if cost else [],  # burn and idle per namespace / Ray owner
    }


def team_json(t: TeamCost) -> dict[str, Any]:
    return {
        "team": t.team,
        "kind": t.kind,  # "namespace", "owner" (a Ray job's), "unassigned" (GPUs nobody holds)
        "gpus": round(t.gpus, 3),
        "burn_per_hour": None if t.burn_per_hour is None else round(t.burn_per_hour, 4),
        "idle_per_hour": None if t.idle_per_hour is None else round(t.idle_per_hour, 4),
    }


def team_lines(cost: CostReport) -> list[str]:
    """COST BY TEAM: one line per team, most expensive first."""
    c = inert(cost.currency)

    def money(value: float | None) -> str:
        return "price unknown" if value is None else f"{c}{value:,.2f}/h"

    return ["", "COST BY TEAM (burn, of which idle)"] + [
        f"- {inert(t.team)} ({t.kind}): {fmt.gpus(t.gpus)} GPUs, {money(t.burn_per_hour)}, "
        f"idle {money(t.idle_per_hour)}"
        for t in cost.teams]


def render_json(view: View, keymap: Mapping[str, str] | None = None) -> str:
    return json.dumps(to_json(view, keymap), indent=2)


def cost_line(cost: CostReport) -> str:
    c = inert(cost.currency)  # from the config file; the TUI shows this line too
    if cost.unpriced_nodes and not cost.burn_rate:
        # Nothing priced: say so rather than show $0, which would read as "free".
        return f"GPU cost unknown: {cost.unpriced_nodes} GPU nodes without a price (add yours under [cost.prices])"
    unpriced = f" ({cost.unpriced_nodes} nodes without a price)" if cost.unpriced_nodes else ""
    return (f"GPU burn {c}{cost.burn_rate:,.2f}/h, idle {c}{cost.idle_rate:,.2f}/h, "
            f"wasted today {c}{cost.wasted_today:,.2f}{unpriced}")


COLUMNS = (("CLUSTER", 12), ("ID", 24), ("NAME", 28), ("STATE", 10), ("GPUS", 4), ("WAIT/RUN", 8), ("OWNER", 10))


def render_text(view: View, keymap: Mapping[str, str] | None = None) -> str:
    """Every line built from backend text is inert: this goes to a terminal (or a log that will)."""
    lines = []
    if view.cost is not None and (view.nodes or view.summary.has_ray):
        lines.append(cost_line(view.cost))
    lines += _source_lines(view)
    lines += ["", *_table(COLUMNS, [_job_cells(job, view.now) for job in view.jobs])]
    if not view.jobs:
        lines.append("(no jobs)")
    waiting = [j for j in view.jobs if view.waiting_reason(j)]
    if waiting:
        lines += ["", "WHY THEY WAIT (longest wait first)"]
        lines += [f"- {inert(j.cluster)}/{inert(j.id)}: {inert(view.waiting_reason(j))}" for j in waiting]
    trees = [view.chain_tree(j.key) for j in view.jobs if view.children_of(j.key)]
    if trees:
        lines += ["", "CHAINS (one row each: the layers under it)", *(inert(line) for t in trees for line in t)]
    if view.nodes:
        lines += ["", *_table(NODE_COLUMNS, [_node_cells(n) for n in view.nodes])]
    if view.pools:
        lines += ["", *_table(POOL_COLUMNS, [_pool_cells(p) for p in view.pools])]
    if view.cost is not None and view.cost.teams:
        lines += team_lines(view.cost)
    if view.cost is not None and view.cost.warnings:
        lines += ["", "IDLE-COST WARNINGS (most expensive first)"]
        lines += [_warning_line(w, view, keymap) for w in view.cost.warnings]
    return "\n".join(lines) + "\n"


def _source_lines(view: View) -> list[str]:
    lines = []
    for line in view.sources:
        s = line.health
        status = "ok" if s.ok else f"ERROR: {inert(s.error or 'failed')}"
        latency = f" ({s.latency_ms:.0f} ms)" if s.latency_ms is not None else ""
        skipped = f", {fmt.skipped_note(s.skipped, s.skip_reason)}" if s.ok and s.skipped > 0 else ""
        lines.append(f"{inert(s.kind)}/{inert(s.name)}: {status}{latency}{skipped}")
    for line in view.sources:
        if line.cluster is not None:
            c = line.cluster
            lines.append(f"{inert(line.key)}: GPUs {fmt.gpus(c.gpus_used)}/{fmt.gpus(c.gpus_total)} in use, "
                         f"{fmt.gpus(c.gpus_waiting)} wanted by work that waits")
    return lines


# Columns whose distinguishing part is often the end (raysubmit_<random>, ip-10-0-1-2.ec2.internal):
# cut in the middle, as on the screen.
MIDDLE_CUT = {"ID", "NODE"}


def _table(columns: tuple[tuple[str, int], ...], rows: list[tuple[str, ...]]) -> list[str]:
    """A header and rows, each cell cut to its column (inert: fmt.clip, fmt.clip_middle)."""
    out = ["  ".join(title.ljust(width) for title, width in columns).rstrip()]
    for cells in rows:
        out.append("  ".join((fmt.clip_middle if title in MIDDLE_CUT else fmt.clip)(c, w).ljust(w)
                             for c, (title, w) in zip(cells, columns)).rstrip())
    return out


def _job_cells(job: Job, now: datetime) -> tuple[str, ...]:
    waited = job.queued_seconds(now)
    when = fmt.short_duration(waited if waited is not None else job.run_seconds(now))
    return (job.cluster, job.id, job.name, job.state.value, fmt.gpus(job.gpus), when, job.owner or "-")


def _node_cells(n: GpuNode) -> tuple[str, ...]:
    state = ("Ready" if n.ready else "NotReady") + ("" if n.schedulable else ",cordoned")
    return (n.cluster, n.name, n.pool or "-", n.gpu_model or "-", fmt.gpus(n.gpus_total),
            fmt.gpus(n.gpus_allocated), fmt.gpus(n.gpus_free), state)


def _pool_cells(p: Pool) -> tuple[str, ...]:
    bounds = "-" if p.kind == "nodepool" else f"{fmt.count(p.min, '0')}..{fmt.count(p.max, '∞')}"
    return (p.cluster, p.kind, p.name, fmt.count(p.replicas), fmt.count(p.ready), bounds,
            fmt.gpus(p.gpus_per_replica), "yes" if p.scalable else "no")


def _warning_line(w: IdleWarning, view: View, keymap: Mapping[str, str] | None) -> str:
    currency = inert(view.cost.currency) if view.cost else "$"
    rate = "price unknown" if w.cost_per_hour is None else f"{currency}{w.cost_per_hour:,.2f}/h"
    since = fmt.short_duration((view.now - w.idle_since).total_seconds()) if w.idle_since else "?"
    key = key_label(w.remedy_action, keymap)
    fix = f"{inert(w.remedy)} ({inert(key)} in mltop)" if key else inert(w.remedy)
    return (f"- [{inert(w.kind)}] {inert(w.cluster)}: {inert(w.message)}; "
            f"idle {'>= ' if w.idle_since_is_lower_bound else ''}{since}, {rate}; fix: {fix}")


NODE_COLUMNS = (("CLUSTER", 12), ("NODE", 28), ("POOL", 16), ("MODEL", 22), ("GPUS", 4), ("ALLOC", 5),
                ("FREE", 4), ("STATE", 16))
POOL_COLUMNS = (("CLUSTER", 12), ("KIND", 22), ("NAME", 24), ("REPL", 4), ("READY", 5), ("MIN..MAX", 8),
                ("GPU/R", 5), ("SCALE", 5))
