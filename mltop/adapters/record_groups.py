"""A watch cache's records kept by group (pods by node), with when each group last changed.

Kept as events arrive, so a reader can tell which groups changed without walking every record:
grouping 50,000 pods again on every rebuild was ~10 ms, and visiting every node's count to find
the four whose pods moved ~10 ms more. Not thread-safe: the owning WatchCache holds its lock
around every call.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from typing import Generic, TypeVar

R = TypeVar("R")

# Group changes remembered (`changed_since`): a poll sees tens, a rollout more. Past this the older
# half goes, and a reader from before what is left looks at every group.
LOG_LIMIT = 5_000


class RecordGroups(Generic[R]):
    def __init__(self, group_of: Callable[[R], str]) -> None:
        self.group_of = group_of
        self.members: dict[str, dict[str, R]] = {}  # group -> record key -> record
        self.versions: dict[str, int] = {}  # group -> the cache's count when it last changed
        # Which groups changed, in order: (count, group). `_logged_from`: no change after that count is missing.
        self._log: list[tuple[int, str]] = []
        self._logged_from = 0

    def reset(self, records: dict[str, R], version: int) -> None:
        """A fresh list: groups may have gone without a trace, so no reader from before it can be
        told what changed."""
        self.members, self.versions = {}, {}
        for key, record in records.items():
            self.move(key, None, record, version)
        self._log, self._logged_from = [], version

    def move(self, key: str, old: R | None, new: R | None, version: int) -> None:
        """One record added, changed, moved between groups or removed, at the cache's count `version`."""
        name = self.group_of(new) if new is not None else None
        was = self.group_of(old) if old is not None else None
        if was is not None and was != name:
            members = self.members.get(was)
            if members is not None and members.pop(key, None) is not None:
                self._changed(was, version)
                if not members:
                    del self.members[was], self.versions[was]
        if new is not None and name is not None:
            self.members.setdefault(name, {})[key] = new  # in its place when it stays in its group
            self._changed(name, version)

    def changed_since(self, version: int) -> dict[str, int] | None:
        """The groups changed after the count `version`, each with its count now (-1: no records
        any more); None when the log does not reach back that far."""
        if version < self._logged_from:
            return None
        start = bisect.bisect_right(self._log, version, key=lambda entry: entry[0])  # type: ignore[call-overload]
        return {name: self.versions.get(name, -1) for _, name in self._log[start:]}

    def _changed(self, name: str, version: int) -> None:
        self.versions[name] = version
        log = self._log
        log.append((version, name))
        if len(log) > LOG_LIMIT:
            dropped = len(log) // 2
            self._logged_from = log[dropped - 1][0]  # a reader at that count or later missed nothing
            del log[:dropped]
