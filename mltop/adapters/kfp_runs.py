"""A KFP run's fields as mltop reads them, and its details sections. Pure functions, no I/O.

Every field is read as it may come: absent, or of another type than the API promises; a run that
cannot be shown at all (no id, an unknown state) is named by `unreadable()` and skipped.
"""

from __future__ import annotations

import json
from typing import Any

from mltop.adapters.values import mapping, sequence, text
from mltop.model import JobState

EPOCH_PREFIX = "1970-01-01T00:00:00"  # KFP's "not yet" for a time
MAX_TEXT = 1000  # a run's name or error as kept for the table (details fetch the whole run)
STATE_MAP = {
    "PENDING": JobState.PENDING,
    "RUNTIME_STATE_UNSPECIFIED": JobState.PENDING,
    "RUNNING": JobState.RUNNING,
    "PAUSED": JobState.RUNNING,  # still holding what it started with
    "CANCELING": JobState.CANCELLING,
    "SUCCEEDED": JobState.SUCCEEDED,
    "SKIPPED": JobState.SUCCEEDED,
    "FAILED": JobState.FAILED,
    "CANCELED": JobState.CANCELLED,
}


def run_state(run: dict[str, Any]) -> str:
    state = run.get("state")
    return "RUNTIME_STATE_UNSPECIFIED" if state in (None, "") else state


def unreadable(run: Any) -> str | None:
    """Why a run entry cannot be shown at all (it is then skipped and counted), or None."""
    if not isinstance(run, dict):
        return "not an object"
    if not isinstance(run.get("run_id"), str) or not run["run_id"]:
        return "no run_id"
    state = run_state(run)
    if not isinstance(state, str) or state not in STATE_MAP:
        return f"unknown state {str(state)[:40]!r}"
    return None


def _short(value: Any) -> str | None:
    """Backend text as kept in a record: a string, cut to MAX_TEXT characters."""
    value = text(value)
    if not value:
        return None
    return value if len(value) <= MAX_TEXT else value[: MAX_TEXT - 1] + "…"


def run_error(run: dict[str, Any]) -> str | None:
    """Why a run failed: the run's `error`, else the latest state-history entry's (KFP 2.14
    fills only the latter)."""
    history = [h for h in sequence(run.get("state_history")) if isinstance(h, dict)]
    for error in [run.get("error"), *(h.get("error") for h in reversed(history))]:
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
    return None


def waiting_step(run: dict[str, Any]) -> tuple[str, str | None] | None:
    """(step name, its pod's name or None) of the first step that waits (task state PENDING: its
    pod is not running yet), from the task details the run list already carries; None if none.

    KFP says the run is RUNNING meanwhile and shows no error (kubeflow/pipelines #13401): the
    pod's scheduling says why, and a Kubernetes source for the same cluster sees that pod."""
    for task in sequence(mapping(run.get("run_details")).get("task_details")):
        task = mapping(task)
        if task.get("state") != "PENDING":
            continue
        name = _short(task.get("display_name")) or _short(task.get("task_id")) or "?"
        pods = [p for c in sequence(task.get("child_tasks")) if (p := _short(mapping(c).get("pod_name")))]
        return name, (pods[0] if pods else None)
    return None


def step_pods(run: dict[str, Any], limit: int = 50) -> tuple[str, ...]:
    """"step-pod:<pod name>=<step name>" for each step pod the run's task details name, so a RayJob
    a step made (its ownerReference names the pod) is found under its run (mltop/chain.py)."""
    out = []
    for task in sequence(mapping(run.get("run_details")).get("task_details")):
        task = mapping(task)
        name = _short(task.get("display_name")) or _short(task.get("task_id")) or "?"
        for child in sequence(task.get("child_tasks")):
            pod = text(mapping(child).get("pod_name"))
            if pod and "=" not in pod and len(out) < limit:
                out.append(f"step-pod:{pod}={name}")
    return tuple(out)


def run_sections(run: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """What the details view shows under a run's facts: history, tasks, parameters, error.

    Every field is read as it may come: absent, or of another type than the API promises."""
    def field(obj: Any, key: str, default: str = "-") -> str:
        value = text(mapping(obj).get(key))
        return value if value else default

    sections = []
    error = run_error(run)
    if error:
        sections.append(("error", error))
    reference = mapping(run.get("pipeline_version_reference"))
    finished = field(run, "finished_at")
    sections.append(("run", "\n".join([
        f"created    {field(run, 'created_at')}",
        f"scheduled  {field(run, 'scheduled_at')}",
        f"finished   {'-' if finished.startswith(EPOCH_PREFIX) else finished}",
        f"pipeline   {field(reference, 'pipeline_id')}  version {field(reference, 'pipeline_version_id')}",
        f"experiment {field(run, 'experiment_id')}",
        *([f"recurring  {field(run, 'recurring_run_id')}"] if run.get("recurring_run_id") else []),
    ])))
    history = [f"{field(h, 'update_time', '?')}  {field(h, 'state', '?')}" for h in sequence(run.get("state_history"))]
    sections.append(("state history", "\n".join(history) or "(none reported)"))
    tasks = []
    for task in sequence(mapping(run.get("run_details")).get("task_details")):
        task = mapping(task)
        pods = [field(c, "pod_name") for c in sequence(task.get("child_tasks")) if field(c, "pod_name", "")]
        line = f"{field(task, 'state', '?'):<10} {field(task, 'display_name', '') or field(task, 'task_id', '?')}"
        if pods:
            line += f"  (pod {', '.join(pods)})"
        message = field(task.get("error"), "message", "")
        if message:
            line += f"  error: {message}"
        tasks.append(line)
    sections.append(("tasks", "\n".join(tasks) or "(none yet)"))
    parameters = mapping(mapping(run.get("runtime_config")).get("parameters"))
    if parameters:
        lines = [f"{k} = {json.dumps(v, default=str)}" for k, v in sorted(parameters.items(), key=lambda kv: str(kv[0]))]
        sections.append(("runtime parameters", "\n".join(lines)))
    return tuple(sections)
