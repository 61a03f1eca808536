"""When each target became idle, and what idle GPUs have cost today: the engine's only memory."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from mltop.cost.kept import Kept


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

    With a store (`persistent`, mltop/state_store.py) it also remembers across restarts and
    processes: `known` holds what the store says is idle now (a target first seen idle takes its
    start from there, exact if it was), and waste is counted per idle group and episode
    (`episodes`, `pre_start`) so that two processes can merge their counts without adding them.
    """

    _since: dict[str, tuple[datetime, bool]] = field(default_factory=dict)
    _busy_seen: set[str] = field(default_factory=set)
    wasted_today: float = 0.0
    _day: str = ""
    _last: datetime | None = None
    _counted: set[str] = field(default_factory=set)  # targets whose pre-start waste is counted
    _first_seen: dict[str, datetime] = field(default_factory=dict)
    persistent: bool = False
    known: dict[str, tuple[datetime, bool]] = field(default_factory=dict)  # from the store: idle now, since
    ended: dict[str, datetime] = field(default_factory=dict)  # key -> start of an episode seen ending
    episodes: dict[str, list] = field(default_factory=dict)  # idle group -> [start, $ today, $/h]
    pre_start: dict[str, tuple[datetime, float]] = field(default_factory=dict)  # key -> (since, $ before first seen)
    # Not history: answers kept per record between evaluations (kept.py). They live here because
    # this is the one object every evaluation is handed.
    kept: Kept = field(default_factory=Kept, compare=False, repr=False)

    def observe(self, key: str, idle: bool, now: datetime, estimate: datetime | None = None) -> tuple[datetime | None, bool]:
        if not idle:
            self._busy_seen.add(key)
            if (gone := self._since.pop(key, None)) is not None and self.persistent:
                self.ended[key] = gone[0]
            return None, False
        if key not in self._since:
            if key in self.known and key not in self._busy_seen and self.known[key][0] <= now:
                self._since[key] = self.known[key]  # another process, or this one before a restart, saw it
            elif key in self._busy_seen:
                self._since[key] = (now, False)
            else:
                start = min(estimate, now) if estimate is not None else now
                self._since[key] = (start, True)
                # From the last evaluation on, the running count covers it.
                self._first_seen[key] = self._last or now
        return self._since[key]

    def idle_now(self) -> dict[str, tuple[datetime, bool]]:
        """Every target idle now: (since, lower bound)."""
        return dict(self._since)

    def forget_except(self, keys: set[str]) -> None:
        """Targets that are gone (deleted nodes, finished jobs) leave the history: memory stays bounded.

        So does the record of whose waste before mltop saw them was counted today (`_counted`,
        `pre_start`): on a cluster whose pods come and go it gained a key for every pod measured
        idle, all day. A target that comes back is new to the count; its estimated start is its
        own (a new pod's, a re-created node's), after what was counted for it before."""
        for key in list(self._since):
            if key not in keys:
                del self._since[key]
                self._first_seen.pop(key, None)
        self._busy_seen &= keys
        self._counted &= keys
        for key in [k for k in self.pre_start if k not in keys]:
            del self.pre_start[key]  # (written to the store, if any, when it was counted)

    def add_waste(
        self,
        now: datetime,
        idle_rate: float,
        before_start: Iterable[tuple[str, datetime | None, float | None]] = (),
        groups: Mapping[str, float | None] | None = None,
    ) -> None:
        """Accumulate today's idle spend between evaluations; reset at midnight UTC.

        Between evaluations every idle GPU counts, at `idle_rate`. `before_start` holds
        (observed key, idle since, $/h) of targets first seen already idle, with an estimated
        start: what each wasted before mltop first saw it (from that start, or midnight, to that
        first sighting) is added once; targets seen going idle are already in the running count.
        `groups` (idle group -> $/h) is what `idle_rate` sums; a persistent history counts each.
        """
        day = now.strftime("%Y-%m-%d")
        last = self._last
        if day != self._day:
            self._day, self.wasted_today, self._last = day, 0.0, None
            self._counted.clear()
            self.pre_start.clear()
        if self._last is not None:
            self.wasted_today += idle_rate * max(0.0, (now - self._last).total_seconds()) / 3600
        if self.persistent and groups is not None:
            self._add_group_waste(now, groups, last)
        for key, since, rate in before_start:
            if key in self._counted or since is None or (self.persistent and key not in self._first_seen):
                continue  # (a start the store gave was counted by whoever saw it first)
            self._counted.add(key)
            seen = self._first_seen.get(key, now)
            wasted = (rate or 0.0) * hours(max(since, midnight(now)), seen)
            self.wasted_today += wasted
            self.pre_start[key] = (since, wasted)
        self._last = now

    def _add_group_waste(self, now: datetime, groups: Mapping[str, float | None], last: datetime | None) -> None:
        """Each idle group's spend in its current episode, today: from the last evaluation (or
        midnight), or, for a group first seen now that the store knew, from its stored start."""
        day_start = midnight(now)
        for key in list(self.episodes):
            if key not in groups:
                self.ended[key] = self.episodes.pop(key)[0]
        for key, rate in groups.items():
            rate = rate or 0.0
            episode = self.episodes.get(key)
            if episode is None:
                start = min(self.known.get(key, (now, False))[0], now)  # (a start ahead of now: skew)
                self.episodes[key] = [start, rate * hours(max(start, day_start), now), rate]
                continue
            if last is None or last < day_start:
                episode[1] = 0.0  # a new day: its waste counts from midnight
            episode[1] += rate * hours(max(last or now, day_start), now)
            episode[2] = rate

    def merge(self, stored: Mapping[str, tuple[datetime, bool]]) -> None:
        """Take the store's start where another process saw an episode begin earlier (it wins)."""
        for key, value in stored.items():
            if key in self._since and value[0] < self._since[key][0]:
                self._since[key] = value
            if key in self.episodes and value[0] < self.episodes[key][0]:
                self.episodes[key][0] = value[0]
