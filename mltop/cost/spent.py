"""What a job's GPUs have cost so far: pure, from records already fetched. No I/O, no Textual."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from mltop.model import GpuNode, Job, JobState
from mltop.prices import Price


def gpu_cost_so_far(job: Job, nodes: Mapping[str, GpuNode], prices: Mapping[str, Price | None],
                    now: datetime) -> float | None:
    """The job's GPUs x its node's price per GPU x the time it has run (to its end, if it ended).

    0 for a job that holds no GPUs (asks for none, or still waits). None, never a guess, when any
    part is unknown: how many GPUs, which node (the backend must say, and on one node), or that
    node's price. `nodes` and `prices` are keyed by node key (Kubernetes or Ray)."""
    if job.gpus == 0 or (job.state is JobState.PENDING and job.started_at is None):
        return 0.0
    run = job.run_seconds(now)
    if job.gpus is None or run is None or len(job.node_keys) != 1:
        return None
    node, price = nodes.get(job.node_keys[0]), prices.get(job.node_keys[0])
    if node is None or price is None or price.per_hour is None or not node.gpus_total:
        return None
    return price.per_hour / node.gpus_total * job.gpus * run / 3600
