"""When each target became idle, and what idle GPUs have cost today: the engine's only memory."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime


def hours(since: datetime | None, now: datetime) -> float:
    return max(0.0, (now - since).total_seconds() / 3600) if since else 0.0


def midnight(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass
class IdleHistory:
    """When each target became idle, remembered across refreshes (and lost on restart).

    A target first seen idle has an unknown past: its start is an estimate from the cluster (the
    end of its last GPU pod, its creation) or the first sighting, and is flagged as a lower bound
    on the idle time. A target seen busy and then idle became idle at that refresh: exact.
    """

    _since: dict[str, tuple[datetime, bool]] = field(default_factory=dict)
    _busy_seen: set[str] = field(default_factory=set)
    wasted_today: float = 0.0
    _day: str = ""
    _last: datetime | None = None
    _counted: set[str] = field(default_factory=set)  # targets whose pre-start waste is counted
    _first_seen: dict[str, datetime] = field(default_factory=dict)

    def observe(self, key: str, idle: bool, now: datetime, estimate: datetime | None = None) -> tuple[datetime | None, bool]:
        if not idle:
            self._busy_seen.add(key)
            self._since.pop(key, None)
            return None, False
        if key not in self._since:
            if key in self._busy_seen:
                self._since[key] = (now, False)
            else:
                start = min(estimate, now) if estimate is not None else now
                self._since[key] = (start, True)
                # From the last evaluation on, the running count covers it.
                self._first_seen[key] = self._last or now
        return self._since[key]

    def forget_except(self, keys: set[str]) -> None:
        """Targets that are gone (deleted nodes, finished jobs) leave the history: memory stays bounded."""
        for key in list(self._since):
            if key not in keys:
                del self._since[key]
                self._first_seen.pop(key, None)
        self._busy_seen &= keys

    def add_waste(
        self,
        now: datetime,
        idle_rate: float,
        before_start: Iterable[tuple[str, datetime | None, float | None]] = (),
    ) -> None:
        """Accumulate today's idle spend between evaluations; reset at midnight UTC.

        Between evaluations every idle GPU counts, at `idle_rate`. `before_start` holds
        (observed key, idle since, $/h) of targets first seen already idle, with an estimated
        start: what each wasted before mltop first saw it (from that start, or midnight, to that
        first sighting) is added once; targets seen going idle are already in the running count.
        """
        day = now.strftime("%Y-%m-%d")
        if day != self._day:
            self._day, self.wasted_today, self._last = day, 0.0, None
            self._counted.clear()
        if self._last is not None:
            self.wasted_today += idle_rate * max(0.0, (now - self._last).total_seconds()) / 3600
        for key, since, rate in before_start:
            if key in self._counted or since is None:
                continue
            self._counted.add(key)
            seen = self._first_seen.get(key, now)
            self.wasted_today += (rate or 0.0) * hours(max(since, midnight(now)), seen)
        self._last = now
