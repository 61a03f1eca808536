"""What the idle-cost engine warns about, and after how long."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

KINDS = (
    "idle-node",  # a GPU node idle longer than the threshold
    "unusable-gpus",  # GPUs paid for that no pod can get (device plugin down, unhealthy GPUs, NotReady)
    "idle-pool",  # a pool whose GPUs are all idle (its minimum may be what keeps them alive)
    "ray-idle",  # a Ray cluster holding GPUs no task uses
    "low-utilization",  # a job or pod holding GPUs at low measured utilization
    "idle-while-waiting",  # GPUs idle while GPU jobs wait: the most expensive kind
    "no-capacity-coming",  # GPU demand waiting with nothing scaling up
)


@dataclass(frozen=True)
class CostPolicy:
    idle_threshold: timedelta = timedelta(minutes=15)
    low_utilization_percent: float = 10.0
    low_utilization_window: timedelta = timedelta(minutes=10)
    kinds: frozenset[str] = frozenset(KINDS)
    # How each source kind's waiting jobs are explained, as its backend declares (registry):
    # "nodes" (Kubernetes scheduling against GPU nodes) or "ray-cluster" (the Ray cluster the job
    # is in). A kind not named here is not explained.
    waits_on: tuple[tuple[str, str], ...] = ()

    def wait_model(self, source_kind: str) -> str | None:
        return dict(self.waits_on).get(source_kind)
