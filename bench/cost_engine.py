"""How long the idle-cost engine takes per refresh at N GPU nodes and P pending GPU pods.

    python bench/cost_engine.py [NODES:PENDING ...]      (default 1000:200 5000:1000)

Builds one Kubernetes cluster: a quarter of the nodes with free GPUs (tainted, or labelled for
another accelerator, so the pending pods do not fit and every one needs its "why it waits"), the
rest full; times `cost.evaluate` (median of 5 runs after a warm-up) with the shipped prices.
A benchmark, not a test: machines here are noisy, so compare medians taken on the same machine.
"""

from __future__ import annotations

import statistics
import sys
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone

from mltop.cost import evaluate
from mltop.cost.context import Snapshot
from mltop.cost.history import IdleHistory
from mltop.cost.policy import CostPolicy
from mltop.model import GpuNode, GpuPod, Job, JobState
from mltop.prices import price_book
from mltop.registry import wait_models

NOW = datetime(2026, 11, 30, 12, tzinfo=timezone.utc)


def nodes(count: int) -> list[GpuNode]:
    out = []
    for i in range(count):
        free = 4 if i % 4 == 0 else 0
        out.append(GpuNode(
            key=f"kubernetes/big/n{i}", cluster="big", name=f"ip-10-{i // 250}-{i % 250}-1", pool=f"pool-{i % 20}",
            gpu_model="NVIDIA-H100-80GB-HBM3", gpu_resource="nvidia.com/gpu", gpus_total=8, gpus_allocatable=8,
            gpus_allocated=8 - free, ready=True, schedulable=True,
            taints=("dedicated=infer:NoSchedule",) if i % 8 == 0 else (), instance_type="p5.48xlarge",
            zone="us-east-1a", capacity_type="on-demand", created_at=NOW - timedelta(days=3),
            pods=(GpuPod("ml", f"p{i}", 8 - free, "Running", "Job/x"),) if free < 8 else (),
            labels=(("accelerator", "h100" if i % 8 else "a100"), *((f"l{k}", str(k)) for k in range(20)))))
    return out


def pending(count: int) -> list[Job]:
    return [Job(key=f"kubernetes/big/ml/w{i}", source="kubernetes", cluster="big", id=f"ml/w{i}", name=f"w{i}",
                state=JobState.PENDING, native_state="Pending", gpus=8, submitted_at=NOW - timedelta(minutes=5),
                started_at=None, finished_at=None, namespace="ml", placement=(("accelerator", "h100"),))
            for i in range(count)]


def main(sizes: list[tuple[int, int]]) -> None:
    book, policy = price_book(), CostPolicy(waits_on=wait_models())
    for n, p in sizes:
        snap = Snapshot(generated_at=NOW, sources=(), jobs=tuple(pending(p)), ray_clusters=(),
                        nodes=tuple(nodes(n)), pools=())
        history = IdleHistory()
        evaluate(snap, book, policy, history, NOW)  # warm-up (and the idle history's first sight)
        for what in ("nothing changed", "4 nodes changed"):
            times = []
            for run in range(9):
                if what != "nothing changed":
                    snap = replace(snap, nodes=moved(snap.nodes, run))
                start = time.perf_counter()
                report = evaluate(snap, book, policy, history, NOW)
                times.append(time.perf_counter() - start)
            print(f"{n:>6} nodes {p:>5} pending, {what}: evaluate median {statistics.median(times) * 1000:8.1f} ms "
                  f"(min {min(times) * 1000:.1f}), {len(report.warnings)} warnings")


def moved(all_nodes: tuple[GpuNode, ...], run: int) -> tuple[GpuNode, ...]:
    """Four nodes' records new: a full node frees its GPUs, a free one fills, two trade a pod."""
    out = list(all_nodes)
    for i in range(4):
        at = (run * 97 + i * 31) % len(out)
        node = out[at]
        allocated = 0.0 if node.gpus_allocated else node.gpus_total
        out[at] = replace(node, gpus_allocated=allocated, pods=(GpuPod("ml", f"p{at}-{run}", allocated, "Running",
                                                                       "Job/x"),) if allocated else ())
    return tuple(out)


if __name__ == "__main__":
    args = sys.argv[1:] or ["1000:200", "5000:1000"]
    main([tuple(int(x) for x in a.split(":")) for a in args])  # type: ignore[misc]
