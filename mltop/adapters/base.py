"""What a source is, and the optional capabilities the UI offers only where a source has them."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from mltop.model import SourceData


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
    async def job_detail(self, job_id: str) -> Any: ...


@runtime_checkable
class Scalable(Protocol):
    """A source whose pools can be resized; `scale` carries out a plan the user confirmed."""

    async def scale(self, plan: Any) -> str: ...
