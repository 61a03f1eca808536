"""One identity chain: a KFP run, the RayJob its step made, that RayJob's RayCluster and the Ray job
running on it are one item of the queue, not unrelated rows. Headless, standard library only.

`link(jobs)` finds the links; the dashboard removes the linked children from the queue and keeps
them here, so the details draw the chain as a tree, the confirmation says which layer a cancel
acts on, and `--once --json` says `chain_parent` and `chain`. Links are only ever made on facts
the backends report, never on a look-alike name:

* Ray job -> RayJob: the Ray job's submission id is the RayJob's `status.jobId` (KubeRay submits it
  under that id), and the Ray source is that RayJob's RayCluster: its name names the cluster
  (`<cluster>`, `<namespace>/<cluster>`, or the head service `<cluster>-head-svc[.<namespace>...]`),
  or, when the name says nothing, that RayJob is the only one anywhere with that submission id.
  A name that names another cluster, or two RayJobs with the id, links nothing.
* RayJob -> KFP run: the RayJob carries the run's `pipeline/runid` label (KFP puts it on step
  pods; a step copies it), or an ownerReference to a Pod that the run's task details name as one
  of its steps' pods; in the run's namespace when KFP says one. Two runs that fit link nothing.
* Kueue: its Workload's facts are already on the RayJob row (mltop/adapters/kube_kueue.py).

A child that still runs under a parent that has ended is not folded away: it stays its own row.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mltop import format as fmt
from mltop import kueue
from mltop.model import Job, Pool

KFP, RAYJOB, RAY = "kfp", "kuberay", "ray"  # the sources of the layers
RUN_LINK, OWNER_LINK, STEP_LINK = "kfp-run:", "owner-pod:", "step-pod:"  # see Job.links
_NAME = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
HEAD_SVC = re.compile(rf"^(?P<rc>{_NAME})-head-svc(?:\.(?P<ns>{_NAME}))?(?:[.:]|$)")


@dataclass(frozen=True)
class Chains:
    parents: dict[str, str] = field(default_factory=dict)  # child key -> parent key
    steps: dict[str, tuple[str, str]] = field(default_factory=dict)  # RayJob key -> (step, its pod)
    members: dict[str, Job] = field(default_factory=dict)  # every job in a chain, by key

    def children(self, key: str) -> tuple[Job, ...]:
        return tuple(self.members[k] for k, p in sorted(self.parents.items()) if p == key and k in self.members)

    def top(self, key: str) -> str:
        seen = {key}
        while (parent := self.parents.get(key)) is not None and parent not in seen:
            seen.add(key := parent)
        return key

    def chain(self, key: str) -> tuple[Job, ...]:
        """The top of `key`'s chain and everything under it, depth first; () when not in a chain."""
        top = self.top(key)
        if top not in self.members:
            return ()
        out: list[Job] = []

        def walk(job: Job) -> None:
            out.append(job)
            for child in self.children(job.key):
                if child not in out:
                    walk(child)
        walk(self.members[top])
        return tuple(out)


def link(jobs: Sequence[Job]) -> Chains:
    """The links among these jobs (see the module's docstring)."""
    rayjobs = [j for j in jobs if j.source == RAYJOB]
    runs = [j for j in jobs if j.source == KFP]
    parents: dict[str, str] = {}
    steps: dict[str, tuple[str, str]] = {}
    for job in (j for j in jobs if j.source == RAY):
        parent = _rayjob_of(job, rayjobs)
        if parent is not None and _folds(job, parent):
            parents[job.key] = parent.key
    for rayjob in rayjobs:
        found = _run_of(rayjob, runs)
        if found is not None and _folds(rayjob, found[0]):
            parents[rayjob.key] = found[0].key
            if found[1] is not None:
                steps[rayjob.key] = found[1]
    keys = set(parents) | set(parents.values())
    return Chains(parents, steps, {j.key: j for j in jobs if j.key in keys})


def _folds(child: Job, parent: Job) -> bool:
    """A child still running under a parent that ended stays in the queue on its own."""
    return child.state.is_terminal or not parent.state.is_terminal


def _points_at(ray_name: str, rayjob: Job) -> bool | None:
    """True: the Ray source's name names this RayJob's RayCluster; False: another; None: no cluster."""
    if not rayjob.ray_cluster:
        return None
    if ray_name in (rayjob.ray_cluster, f"{rayjob.namespace}/{rayjob.ray_cluster}"):
        return True
    match = HEAD_SVC.match(ray_name)
    if match is None:
        return None
    return match["rc"] == rayjob.ray_cluster and match["ns"] in (None, rayjob.namespace)


def _rayjob_of(job: Job, rayjobs: Iterable[Job]) -> Job | None:
    same = [r for r in rayjobs if r.submission_id and r.submission_id == job.id]
    said = {r.key: _points_at(job.cluster, r) for r in same}
    named = [r for r in same if said[r.key] is True]
    if named:
        return named[0] if len(named) == 1 else None
    if len(same) == 1 and said[same[0].key] is None and HEAD_SVC.match(job.cluster) is None:
        return same[0]  # the source's name says no cluster; the id is the only one of its kind
    return None


def _run_of(rayjob: Job, runs: Iterable[Job]) -> tuple[Job, tuple[str, str] | None] | None:
    """The KFP run whose step made this RayJob, and (step, pod) when its pod is the RayJob's owner."""
    run_ids = {x[len(RUN_LINK):] for x in rayjob.links if x.startswith(RUN_LINK)}
    pods = {x[len(OWNER_LINK):] for x in rayjob.links if x.startswith(OWNER_LINK)}
    found = []
    for run in runs:
        if run.namespace is not None and rayjob.namespace is not None and run.namespace != rayjob.namespace:
            continue
        step_of = dict(x[len(STEP_LINK):].partition("=")[::2] for x in run.links if x.startswith(STEP_LINK))
        owner = next(((step_of[p], p) for p in sorted(pods) if p in step_of), None)
        if run.id in run_ids or owner is not None:
            found.append((run, owner))
    return found[0] if len(found) == 1 else None


# -- in words ----------------------------------------------------------------------------------

def _state(job: Job) -> str:
    said = f" ({job.native_state})" if job.native_state != job.state.value else ""
    return f"[{job.state.value}{said}]"


def layer_name(job: Job) -> str:
    if job.source == KFP:
        return f"KFP run {job.name} ({job.id})" if job.name != job.id else f"KFP run {job.id}"
    if job.source == RAYJOB:
        return f"RayJob {job.namespace}/{job.name}"
    if job.source == RAY:
        return f"Ray job {job.id} on {job.cluster}"
    return f"{job.source} {job.id}"


def _kueue(job: Job) -> str:
    if not job.workload:
        return ""
    said = kueue.short(job) or job.admission or "?"
    return f"  (Kueue workload {job.workload}: {said})"


def _pool_note(rayjob: Job, pools: Iterable[Pool]) -> str:
    groups = [p for p in pools if p.kind == "raycluster-workergroup" and p.parent == rayjob.ray_cluster
              and p.namespace == rayjob.namespace and p.cluster == rayjob.cluster]
    if not groups or any(p.ready is None or p.replicas is None for p in groups):
        return ""
    return f"  ({sum(p.ready or 0 for p in groups)} of {sum(p.replicas or 0 for p in groups)} workers ready)"


def tree_lines(chains: Chains, key: str, pools: Iterable[Pool] = ()) -> list[str]:
    """The chain of `key` as an indented tree, one layer a line, each with its own state."""
    pools = tuple(pools)
    branch = "`- " if fmt.SEPARATOR == "|" else "└─ "
    lines: list[str] = []

    def add(depth: int, text: str) -> None:
        lines.append(("   " * (depth - 1) + branch if depth else "") + text)

    def walk(job: Job, depth: int) -> None:
        if job.source == RAYJOB and (step := chains.steps.get(job.key)):
            add(depth, f"step {step[0]} (pod {step[1]})")
            depth += 1
        gpus = f"  {fmt.gpus(job.gpus)} GPU" if job.gpus else ""
        add(depth, f"{layer_name(job)}  {_state(job)}{gpus}{_kueue(job)}")
        if job.source == RAYJOB and job.ray_cluster:
            depth += 1
            add(depth, f"RayCluster {job.ray_cluster}{_pool_note(job, pools)}")
        for child in chains.children(job.key):
            walk(child, depth + 1)
    chain = chains.chain(key)
    if chain:
        walk(chain[0], 0)
    return lines


def acts_on(chains: Chains, job: Job) -> str | None:
    """Which layer a cancel of this row acts on and what the layers under it do; None: no chain."""
    below = chains.children(job.key)
    if not below:
        return None
    if job.source == KFP:
        parts = [f"terminates {layer_name(job)}; KFP stops its steps"]
        for rayjob in below:
            step = chains.steps.get(rayjob.key)
            if step is not None:
                rays = chains.children(rayjob.key)
                ray = "".join(f"; KubeRay stops {layer_name(r)} before the RayJob goes" for r in rays)
                wl = f" (and its Kueue workload {rayjob.workload})" if rayjob.workload else ""
                parts.append(f"step {step[0]}'s pod owns {layer_name(rayjob)}: Kubernetes deletes it{wl} when that "
                             f"pod is deleted (Argo's pod GC), not when the step merely stops{ray}")
            else:
                parts.append(f"{layer_name(rayjob)} carries the run's id but no step pod owns it: it is not "
                             "deleted and keeps running (it shows as its own row once the run has ended)")
        return "; ".join(parts)
    if job.source == RAYJOB:
        rays = ", ".join(layer_name(r) for r in below)
        wl = f" and its Kueue workload {job.workload}" if job.workload else ""
        return f"deletes {layer_name(job)}{wl} (Kubernetes); KubeRay stops {rays} before it goes"
    return None


def json_fields(chains: Chains, job: Job) -> dict[str, Any]:
    """`chain_parent`: the key of the row it is folded under, or null; `chain`: on a chain's top, its
    keys top first (depth first), else empty."""
    chain = chains.chain(job.key) if job.key not in chains.parents else ()
    return {"chain_parent": chains.parents.get(job.key), "chain": [j.key for j in chain]}


def with_members(chains: Chains, tops: Iterable[Job]) -> list[Job]:
    """The queue's rows, each followed by the jobs folded under it (for the JSON report)."""
    out: list[Job] = []
    for job in tops:
        out += chains.chain(job.key) if job.key in chains.members else [job]
    return out
