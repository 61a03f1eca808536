"""What sources can do, as small typed capabilities, and the one runner that carries actions out.

Actions are named by their binding id ("jobs.cancel", "jobs.retry", "pools.scale"): the same id
the user remaps a key with, a backend declares in the registry, and the cost engine names a
remedy by. A source offers an action by having the method; the runner checks the target's
source, runs the call with a deadline, keeps one in-flight set keyed by target, and turns every
answer into an ActionOutcome or one line. No Textual here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Protocol, runtime_checkable

from mltop.audit import AuditEntry, AuditLog
from mltop.errors import OutcomeUnknown, SourceError
from mltop.model import ActionOutcome, JobDetail, SourceData

ACTION_DEADLINE = 60.0  # seconds; adapters have shorter ones, this also covers one that ignores them


@runtime_checkable
class Source(Protocol):
    kind: str
    name: str

    @property
    def key(self) -> str: ...  # "kind/name": unique among the sources of one run

    async def fetch(self) -> SourceData: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class Cancellable(Protocol):
    """Its jobs can be stopped. The outcome says what the backend accepted, no more."""

    async def cancel_job(self, job_id: str) -> ActionOutcome: ...


@runtime_checkable
class Retryable(Protocol):
    """It can re-run a failed or cancelled job."""

    async def retry_job(self, job_id: str) -> ActionOutcome: ...


@runtime_checkable
class Scalable(Protocol):
    """Its pools can be resized; `scale` carries out a plan the user confirmed."""

    async def scale(self, plan: Any) -> ActionOutcome: ...


@runtime_checkable
class KueueControllable(Protocol):
    """Its jobs' Kueue Workloads can be stopped and resumed (spec.active)."""

    async def set_workload_active(self, job: Any, active: bool) -> ActionOutcome: ...


@runtime_checkable
class HasJobDetails(Protocol):
    async def job_detail(self, job_id: str) -> JobDetail: ...


@dataclass(frozen=True)
class Action:
    binding_id: str
    capability: type
    verb: str  # for messages: "cancel", "retry", "scale"


ACTIONS = {
    "jobs.cancel": Action("jobs.cancel", Cancellable, "cancel"),
    "jobs.retry": Action("jobs.retry", Retryable, "retry"),
    "pools.scale": Action("pools.scale", Scalable, "scale"),
    "jobs.workload": Action("jobs.workload", KueueControllable, "stop or resume the Kueue workload of"),
}


def can(source: object, binding_id: str) -> bool:
    action = ACTIONS.get(binding_id)
    return action is not None and isinstance(source, action.capability)


@dataclass(frozen=True)
class Result:
    """How an action ended, for the screen: done (the backend accepted), refused (an error line),
    or unknown (sent, no answer: check the backend)."""

    outcome: ActionOutcome | None
    error: str | None = None
    unknown: bool = False


class ActionRunner:
    """Runs actions one at a time per target; remembers which targets have one in flight, and
    writes every action sent to the audit log with its outcome."""

    def __init__(self, deadline: float = ACTION_DEADLINE, audit: AuditLog | None = None) -> None:
        self.deadline = deadline
        self.in_flight: set[str] = set()
        self.audit = audit

    def busy(self, target_key: str) -> bool:
        return target_key in self.in_flight

    async def run(self, binding_id: str, source: object, target_key: str, target_name: str,
                  call: Callable[[Any], Awaitable[ActionOutcome]], change: str = "") -> Result:
        """`call(source)` for the action `binding_id` on `target_key`, if `source` can do it."""
        action = ACTIONS[binding_id]
        if not isinstance(source, action.capability):
            return Result(None, f"{getattr(source, 'key', '?')} cannot {action.verb} {target_name}")
        if target_key in self.in_flight:
            return Result(None, f"an action on {target_name} is already under way")
        self.in_flight.add(target_key)
        try:
            result = await self._send(action, source, target_name, call)
        finally:
            self.in_flight.discard(target_key)
        if self.audit is not None:
            outcome = "done" if result.outcome else "unknown" if result.unknown else "refused"
            self.audit.append(AuditEntry(
                time=datetime.now(timezone.utc), action=binding_id, source=getattr(source, "key", "?"),
                target=target_key, target_name=target_name, change=change or action.verb, outcome=outcome,
                answer=result.outcome.message if result.outcome else result.error or ""))
        return result

    async def _send(self, action: Action, source: object, target_name: str,
                    call: Callable[[Any], Awaitable[ActionOutcome]]) -> Result:
        try:
            return Result(await asyncio.wait_for(call(source), self.deadline))
        except OutcomeUnknown as exc:
            return Result(None, f"outcome unknown: {exc}", unknown=True)
        except asyncio.TimeoutError:
            return Result(None, f"outcome unknown: {action.verb} {target_name}: no answer within "
                                f"{self.deadline:.0f}s; check the backend, the next refresh shows the truth",
                          unknown=True)
        except SourceError as exc:
            return Result(None, str(exc))
