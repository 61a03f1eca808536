"""Per-source refresh loops: one loop per source, so a slow or dead source never stalls another.

A loop schedules its next poll only when the last one has finished (polls never pile up), backs
off while its source fails, and keeps the last good data with its time so the screen can show
how stale it is. No Textual here: the TUI and the one-shot report both drive these.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timezone

from mltop.actions import Source
from mltop.errors import SourceError
from mltop.model import SourceData, SourceHealth, Snapshot

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 60.0
POLL_TIMEOUT_SECONDS = 30.0


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def source_key(source: Source) -> str:
    return source.key


@dataclass(frozen=True)
class SourceUpdate:
    """The whole result of one poll; the next update for the same source replaces it."""

    key: str
    health: SourceHealth
    data: SourceData | None  # the last good data, kept while the source fails


async def poll(
    source: Source,
    previous: SourceUpdate | None = None,
    *,
    clock: Callable[[], datetime] = utcnow,
    timeout: float = POLL_TIMEOUT_SECONDS,
) -> SourceUpdate:
    """Poll one source once. Never raises for a source failure: the failure is in the health."""
    started = time.monotonic()
    attempt = clock()
    error: str | None = None
    data: SourceData | None = None
    try:
        data = await asyncio.wait_for(source.fetch(), timeout)
    except SourceError as exc:
        error = str(exc)
    except asyncio.TimeoutError:
        error = f"{source.name}: no answer within {timeout:.0f}s"
    except Exception as exc:  # a bug or an unforeseen payload must not kill the loop or the screen
        log.exception("polling %s failed", source_key(source))
        error = f"{source.name}: unexpected error ({type(exc).__name__}: {exc})"
    latency_ms = (time.monotonic() - started) * 1000.0
    ok = data is not None
    last_success = attempt if ok else (previous.health.last_success if previous else None)
    health = SourceHealth(
        kind=source.kind,
        name=source.name,
        ok=ok,
        error=error,
        latency_ms=round(latency_ms, 1) if ok else None,
        last_success=last_success,
        last_attempt=attempt,
        skipped=data.skipped if data is not None else 0,
        skip_reason=data.skip_reason if data is not None else None,
    )
    if data is None and previous is not None:
        data = previous.data
    return SourceUpdate(key=source_key(source), health=health, data=data)


class SourceLoop:
    """Polls one source forever: wait `interval` (or the source's slower pace) after each success,
    back off after failures."""

    def __init__(
        self,
        source: Source,
        interval: float,
        on_update: Callable[[SourceUpdate], None],
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.source = source
        self.interval = interval
        self.on_update = on_update
        self.clock = clock
        self.latest: SourceUpdate | None = None
        self.failures = 0
        self._wake = asyncio.Event()

    def poke(self) -> None:
        """Poll again now (after an action), instead of at the next interval."""
        self._wake.set()

    def pace(self) -> tuple[float, str | None]:
        """Seconds between good polls, and why when that is longer than `interval`.

        A source whose answers are large may ask for a slower pace (an optional `poll_pace`
        method: RaySource's, for a job list of thousands of jobs); never a faster one.
        """
        poll_pace = getattr(self.source, "poll_pace", None)
        seconds, note = poll_pace(self.interval) if poll_pace is not None else (self.interval, None)
        return (seconds, note) if seconds > self.interval else (self.interval, None)

    def next_delay(self) -> float:
        if self.failures == 0:
            return self.pace()[0]
        return min(MAX_BACKOFF_SECONDS, self.interval * 2 ** min(self.failures, 10))

    async def run_once(self) -> SourceUpdate:
        self._wake.clear()
        update = await poll(self.source, self.latest, clock=self.clock)
        self.failures = 0 if update.health.ok else self.failures + 1
        seconds, note = self.pace() if update.health.ok else (self.interval, None)
        if note:  # the source's line says it, so a slower poll does not read as a stall
            update = replace(update, health=replace(update.health, poll_every=seconds, note=note))
        self.latest = update
        self.on_update(update)
        return update

    async def run(self) -> None:
        while True:
            await self.run_once()
            try:
                await asyncio.wait_for(self._wake.wait(), self.next_delay())
            except asyncio.TimeoutError:
                pass


async def poll_all(sources: Iterable[Source], *, clock: Callable[[], datetime] = utcnow) -> list[SourceUpdate]:
    return list(await asyncio.gather(*(poll(s, clock=clock) for s in sources)))


def snapshot_of(updates: Iterable[SourceUpdate], now: datetime) -> Snapshot:
    """Merge the latest update of every source into one snapshot."""
    updates = list(updates)
    jobs = tuple(job for u in updates if u.data for job in u.data.jobs)
    clusters = tuple(
        (u.health.name, u.data.ray_cluster) for u in updates if u.data and u.data.ray_cluster is not None
    )
    return Snapshot(
        generated_at=now,
        sources=tuple(u.health for u in updates),
        jobs=jobs,
        ray_clusters=clusters,
        nodes=tuple(node for u in updates if u.data for node in u.data.nodes),
        pools=tuple(pool for u in updates if u.data for pool in u.data.pools),
        gpu_samples=tuple(s for u in updates if u.data for s in u.data.gpu_samples),
        node_costs=tuple(c for u in updates if u.data for c in u.data.node_costs),
    )
