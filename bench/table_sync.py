"""How long one refresh of the jobs table takes at N rows, and what the process holds.

    python bench/table_sync.py [ROWS ...]

Each step changes ~2% of the jobs' states, adds and removes ~1% (the turnover of a busy queue),
and times `JobsTable.sync` (the keyed diff) inside a headless app. Prints the median per size and
the process's peak RSS. A benchmark, not a test: machines here are noisy, so read trends.
"""

from __future__ import annotations

import asyncio
import random
import resource
import statistics
import sys
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone

from textual.app import App, ComposeResult

from mltop.jobs import order_jobs
from mltop.model import Job, JobState
from mltop.widgets.jobs_table import JobsTable

NOW = datetime(2026, 11, 28, 12, tzinfo=timezone.utc)
STATES = [JobState.PENDING, JobState.RUNNING, JobState.SUCCEEDED, JobState.FAILED]


def make_job(i: int, rng: random.Random) -> Job:
    state = rng.choice(STATES)
    t = NOW - timedelta(seconds=rng.randint(10, 90_000))
    return Job(key=f"ray/c/j{i}", source="ray", cluster="c", id=f"raysubmit_{i:08d}", name=f"train-{i}",
               state=state, native_state=state.value, gpus=float(rng.randint(0, 8)), submitted_at=t,
               started_at=None if state is JobState.PENDING else t,
               finished_at=NOW if state.is_terminal else None, owner="alice")


class Bench(App):
    def compose(self) -> ComposeResult:
        yield JobsTable()


async def run(rows: int, steps: int = 15) -> float:
    rng = random.Random(1)
    jobs = {i: make_job(i, rng) for i in range(rows)}
    next_id = rows
    app = Bench()
    times = []
    async with app.run_test(size=(160, 48)) as pilot:
        table = app.query_one(JobsTable)
        table.relayout(158)
        table.sync(order_jobs(jobs.values(), rows), NOW)
        await pilot.pause()
        for _ in range(steps):
            for i in rng.sample(list(jobs), max(1, rows // 50)):
                jobs[i] = replace(jobs[i], state=rng.choice(STATES))
            for i in rng.sample(list(jobs), max(1, rows // 100)):
                del jobs[i]
                jobs[next_id] = make_job(next_id, rng)
                next_id += 1
            ordered = order_jobs(jobs.values(), rows)
            start = time.perf_counter()
            table.sync(ordered, NOW)
            times.append(time.perf_counter() - start)
            await pilot.pause()
    return statistics.median(times)


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [100, 1000, 3000]
    for rows in sizes:
        median = asyncio.run(run(rows))
        print(f"{rows:>6} rows: sync median {median * 1000:8.1f} ms")
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak_mib:.0f} MiB")


if __name__ == "__main__":
    main()
