"""What a source is, and the optional capabilities the UI offers only where a source has them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from mltop.model import Job, SourceData


@dataclass(frozen=True)
class JobDetail:
    """A job as its backend describes it in full, for the details view."""

    job: Job
    sections: tuple[tuple[str, str], ...] = ()  # (title, text): a log tail, a state history, tasks...

    def section(self, title: str) -> str:
        return next((text for t, text in self.sections if t == title), "")


@dataclass(frozen=True)
class ActionOutcome:
    accepted: bool  # the backend took the request; it says nothing yet about the job's state
    message: str


@runtime_checkable
class Source(Protocol):
    kind: str
    name: str

    async def fetch(self) -> SourceData: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class Cancellable(Protocol):
    """A source whose jobs can be stopped. The outcome says what the backend accepted, no more."""

    async def cancel_job(self, job_id: str) -> Any: ...


@runtime_checkable
class HasJobDetails(Protocol):
    async def job_detail(self, job_id: str) -> JobDetail: ...


@runtime_checkable
class Retryable(Protocol):
    """A source that can re-run a failed or cancelled job."""

    async def retry_job(self, job_id: str) -> ActionOutcome: ...


@runtime_checkable
class Scalable(Protocol):
    """A source whose pools can be resized; `scale` carries out a plan the user confirmed."""

    async def scale(self, plan: Any) -> str: ...
