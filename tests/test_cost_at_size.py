"""The idle-cost engine's "why it waits" at size: indexed once per evaluation and answering pods alike
once, it must say exactly what the plain per-pod computation says (kept here as the reference)."""

from __future__ import annotations

import random
from datetime import timedelta

from mltop.cost import evaluate
from mltop.cost.context import Snapshot
from mltop.cost.history import IdleHistory
from mltop.cost.policy import CostPolicy
from mltop.model import GpuNode, GpuPod, Job, JobState
from mltop.prices import price_book
from mltop.registry import wait_models
from tests.conftest import FIXED_NOW

NOW = FIXED_NOW
ACCELERATORS = ("h100", "a100", "l4", "t4")


def reference_fits(job: Job, node: GpuNode) -> str | None:
    labels = dict(node.labels)
    for key, value in job.placement:
        if labels.get(key) != value:
            return f"it requires {key}={value}, which {node.name} does not have"
    if "*" not in job.tolerates:
        for taint in node.taints:
            key = taint.split("=", 1)[0].split(":", 1)[0]
            if taint.endswith((":NoSchedule", ":NoExecute")) and key not in job.tolerates:
                return f"{node.name} has the taint {taint}, which it does not tolerate"
    if not node.ready or not node.schedulable:
        return f"{node.name} is {'not Ready' if not node.ready else 'cordoned'}"
    return None


def reference_reason(job: Job, nodes: list[GpuNode]) -> str | None:
    """The message the plain per-pod computation gives for `job`, or None when it fits."""
    wanted = job.gpus or 0
    idle = sorted((n for n in nodes if n.gpus_free > 0), key=lambda n: (-n.gpus_free, n.name))
    if not idle:
        return None
    reasons = []
    for node in idle:
        why = reference_fits(job, node)
        if why is None and node.gpus_free < wanted:
            why = f"{node.name} has only {node.gpus_free:g} free"
        if why is None:
            return None
        reasons.append(why)
    idle_gpus = sum(n.gpus_free for n in idle)
    largest = max(n.gpus_allocatable for n in nodes)
    if wanted > largest:
        reason = f"no node has {wanted:g} GPUs for one pod (the largest has {largest:g})"
    elif idle_gpus >= wanted and all("only" in r for r in reasons):
        reason = f"{idle_gpus:g} GPUs are free but scattered across {len(idle)} nodes (fragmentation)"
    else:
        reason = reasons[0] + (f" (and {len(reasons) - 1} more nodes with free GPUs)" if len(reasons) > 1 else "")
    return f"{idle_gpus:g} GPUs idle while {job.name} waits for {wanted:g}: {reason}"


def random_cluster(seed: int, count: int, pending: int) -> tuple[list[GpuNode], list[Job]]:
    rng = random.Random(seed)
    nodes = []
    for i in range(count):
        total = rng.choice((1, 4, 8))
        free = rng.choice((0,) * 12 + (1, total))
        nodes.append(GpuNode(
            key=f"kubernetes/c/n{i}", cluster="c", name=f"node-{i:04d}", pool=f"pool-{i % 5}",
            gpu_model="NVIDIA-H100-80GB-HBM3", gpu_resource="nvidia.com/gpu", gpus_total=total,
            gpus_allocatable=total, gpus_allocated=total - free, ready=rng.random() > 0.02,
            schedulable=rng.random() > 0.05, taints=("dedicated=infer:NoSchedule",) if rng.random() < 0.2 else (),
            instance_type="p5.48xlarge", zone="us-east-1a", capacity_type="on-demand",
            created_at=NOW - timedelta(days=2), pods=(GpuPod("ml", f"p{i}", total - free, "Running", "Job/x"),),
            labels=(("accelerator", rng.choice(ACCELERATORS)),)))
    jobs = [Job(key=f"kubernetes/c/ml/w{i}", source="kubernetes", cluster="c", id=f"ml/w{i}", name=f"w{i}",
                state=JobState.PENDING, native_state="Pending", gpus=rng.choice((1, 2, 4, 8)),
                submitted_at=NOW - timedelta(minutes=rng.randint(2, 90)), started_at=None, finished_at=None,
                namespace="ml", placement=(("accelerator", rng.choice(ACCELERATORS)),) if rng.random() < 0.8 else (),
                tolerates=("dedicated",) if rng.random() < 0.3 else ())
            for i in range(pending)]
    return nodes, jobs


def test_why_it_waits_at_size_matches_the_plain_computation():
    explained, messages, fitting = 0, set(), 0
    for seed in range(3):
        nodes, jobs = random_cluster(seed, count=120, pending=150)
        snap = Snapshot(generated_at=NOW, sources=(), jobs=tuple(jobs), ray_clusters=(), nodes=tuple(nodes), pools=())
        report = evaluate(snap, price_book(), CostPolicy(waits_on=wait_models()), IdleHistory(), NOW)
        said = {w.target: w.message for w in report.warnings if w.kind == "idle-while-waiting"}
        expected = {j.key: reference_reason(j, nodes) for j in jobs}
        expected = {key: message for key, message in expected.items() if message is not None}
        assert said == expected
        explained, messages, fitting = explained + len(said), messages | set(said.values()), fitting + len(jobs) - len(said)
    assert explained > 40 and len(messages) > 10 and fitting > 40  # plenty to explain in many ways, and pods that fit
