"""What scaling a pool to N would change, and whether it is allowed. Pure; no I/O, no Textual.

The dialog shows the plan (object, field, old value, new value) and the adapter carries out the
same plan, guarded so that a change someone else made in between is refused, not overwritten.
"""

from __future__ import annotations

from dataclasses import dataclass

from mltop.model import Pool


@dataclass(frozen=True)
class Change:
    obj: str  # "RayCluster ml/train-cluster" or "MachineDeployment capi/gpu-md-0"
    field: str  # "spec.workerGroupSpecs[gpu-group].replicas"
    old: int | None
    new: int


@dataclass(frozen=True)
class ScalePlan:
    pool: Pool
    target: int
    changes: tuple[Change, ...]
    refusal: str | None = None  # why this target is not allowed; None when it is
    note: str | None = None  # what the user must know (e.g. the autoscaler owns replicas)

    @property
    def allowed(self) -> bool:
        return self.refusal is None and bool(self.changes)


def current_value(pool: Pool) -> int | None:
    """The number the scale dialog edits: workers/machines, or the floor when autoscaled."""
    if pool.kind == "raycluster-workergroup" and pool.autoscaled:
        return pool.min
    return pool.replicas


def proposed_down(pool: Pool) -> int | None:
    """What an idle-cost warning proposes: the value that removes the wholly idle replicas, not
    below the pool's minimum; None when nothing is idle or the pool does not say enough."""
    now, idle, each = current_value(pool), pool.gpus_idle, pool.gpus_per_replica
    if now is None or not idle or not each or each <= 0:
        return None
    if pool.kind == "raycluster-workergroup" and pool.autoscaled:
        return 0 if now > 0 else None  # the floor keeps idle workers alive; the autoscaler does the rest
    target = max(pool.min or 0, now - int(idle // each))
    return target if target < now else None


def plan(pool: Pool, target: int) -> ScalePlan:
    if not pool.scalable:
        return ScalePlan(pool, target, (), refusal=pool.why_not_scalable or "this pool cannot be scaled from here")
    if target < 0:
        return ScalePlan(pool, target, (), refusal="a pool cannot have fewer than 0 replicas")
    if pool.kind == "raycluster-workergroup":
        return _plan_worker_group(pool, target)
    if pool.kind == "machinedeployment":
        return _plan_machine_deployment(pool, target)
    return ScalePlan(pool, target, (), refusal=f"{pool.kind} pools cannot be scaled from here")


def _plan_worker_group(pool: Pool, target: int) -> ScalePlan:
    rc, group = pool.name.split("/", 1)
    obj = f"RayCluster {pool.namespace}/{rc}"
    field = f"spec.workerGroupSpecs[{group}]"
    if not pool.autoscaled:
        if pool.max is not None and target > pool.max:
            return ScalePlan(pool, target, (), refusal=f"{target} is above the group's maxReplicas ({pool.max})")
        if pool.min is not None and target < pool.min:
            return ScalePlan(pool, target, (), refusal=f"{target} is below the group's minReplicas ({pool.min})")
        if target == pool.replicas:
            return ScalePlan(pool, target, (), refusal=f"the group already has {target} replicas")
        return ScalePlan(pool, target, (Change(obj, f"{field}.replicas", pool.replicas, target),))
    # The Ray autoscaler owns `replicas` and overwrites any edit; its floor is minReplicas.
    changes = [Change(obj, f"{field}.minReplicas", pool.min, target)]
    if pool.max is not None and target > pool.max:
        changes.append(Change(obj, f"{field}.maxReplicas", pool.max, target))
    if target == pool.min:
        return ScalePlan(pool, target, (), refusal=f"minReplicas is already {target}")
    return ScalePlan(
        pool,
        target,
        tuple(changes),
        note="The Ray autoscaler manages this group and would overwrite replicas; mltop sets its floor "
        "(minReplicas) instead, and the autoscaler adds or removes workers to match.",
    )


def _plan_machine_deployment(pool: Pool, target: int) -> ScalePlan:
    obj = f"MachineDeployment {pool.namespace}/{pool.name}"
    if pool.min is not None and target < pool.min:
        return ScalePlan(pool, target, (), refusal=f"{target} is below the autoscaler's min size ({pool.min})")
    if pool.max is not None and target > pool.max:
        return ScalePlan(pool, target, (), refusal=f"{target} is above the autoscaler's max size ({pool.max})")
    if target == pool.replicas:
        return ScalePlan(pool, target, (), refusal=f"it already has {target} replicas")
    note = None
    if pool.autoscaled:
        note = "The cluster autoscaler also sizes this MachineDeployment within its min/max annotations."
    return ScalePlan(pool, target, (Change(obj, "spec.replicas (scale subresource)", pool.replicas, target),),
                     note=note)
