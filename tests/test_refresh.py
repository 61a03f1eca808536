"""Refresh loops: one per source, no pile-up, backoff, stale data kept with its age."""

from __future__ import annotations

import asyncio

from mltop.errors import Unreachable
from mltop.model import SourceData
from mltop.refresh import MAX_BACKOFF_SECONDS, SourceLoop, poll, snapshot_of
from tests.factories import job


class FakeSource:
    """A stand-in with the Source shape; what it does is scripted per test."""

    kind = "ray"

    def __init__(self, name: str, *, delay: float = 0.0, fail: bool = False) -> None:
        self.name = name
        self.delay = delay
        self.fail = fail
        self.calls = 0
        self.in_flight = 0
        self.max_in_flight = 0

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.name}"

    async def fetch(self) -> SourceData:
        self.calls += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
            if self.fail:
                raise Unreachable(f"{self.name}: cannot connect (refused)")
            return SourceData(jobs=(job(f"{self.name}-{self.calls}"),))
        finally:
            self.in_flight -= 1

    async def aclose(self) -> None:
        pass


async def test_a_failure_keeps_the_last_good_data_and_its_time():
    source = FakeSource("a")
    first = await poll(source)
    assert first.health.ok and first.health.latency_ms is not None
    source.fail = True
    second = await poll(source, first)
    assert not second.health.ok
    assert second.health.error == "a: cannot connect (refused)"
    assert second.data == first.data  # still shown, with its age
    assert second.health.last_success == first.health.last_success


async def test_an_unexpected_exception_becomes_an_error_line_not_a_crash():
    class Broken(FakeSource):
        async def fetch(self):
            raise KeyError("surprise")

    update = await poll(Broken("b"))
    assert not update.health.ok and "unexpected error (KeyError" in update.health.error


async def test_a_slow_source_never_stalls_a_fast_one_and_polls_never_overlap():
    slow, fast = FakeSource("slow", delay=0.5), FakeSource("fast")
    seen: list[str] = []
    loops = [SourceLoop(s, 0.05, lambda u: seen.append(u.key)) for s in (slow, fast)]
    tasks = [asyncio.create_task(loop.run()) for loop in loops]
    await asyncio.sleep(0.6)
    for task in tasks:
        task.cancel()
    assert fast.calls >= 5 and slow.calls <= 2
    assert slow.max_in_flight == 1 and fast.max_in_flight == 1
    assert seen.count("ray/fast") >= 5


async def test_backoff_grows_while_failing_and_resets_on_success():
    source = FakeSource("x", fail=True)
    loop = SourceLoop(source, 2.0, lambda u: None)
    delays = []
    for _ in range(8):
        await loop.run_once()
        delays.append(loop.next_delay())
    assert delays[:3] == [4.0, 8.0, 16.0]
    assert max(delays) == MAX_BACKOFF_SECONDS
    source.fail = False
    await loop.run_once()
    assert loop.next_delay() == 2.0


async def test_poke_polls_now_instead_of_at_the_interval():
    source = FakeSource("p")
    loop = SourceLoop(source, 3600, lambda u: None)
    task = asyncio.create_task(loop.run())
    await asyncio.sleep(0.05)
    assert source.calls == 1
    loop.poke()
    await asyncio.sleep(0.05)
    task.cancel()
    assert source.calls == 2


async def test_snapshot_merges_sources():
    a, b = await poll(FakeSource("a")), await poll(FakeSource("b", fail=True))
    snap = snapshot_of([a, b], a.health.last_attempt)
    assert [s.ok for s in snap.sources] == [True, False]
    assert [j.id for j in snap.jobs] == ["a-1"]
