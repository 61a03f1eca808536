"""The live screen, measured: mltop's App run headless in this process, against a served workload.

    python bench/live_probe.py [--idle S] [--churn S] [--presses N] -- MLTOP FLAGS...

Config and sources are built from the flags exactly as `mltop` does. Every frame the compositor
makes is turned into the bytes a terminal would get (as the real driver does), so a frame costs
what it costs on a terminal. Phases, each reported as one JSON object on stdout at the end:

1. live: seconds from process start until every source has answered once (health ok);
2. keys: N presses of j/k, each timed from the key event to the first frame showing the moved cursor;
3. idle: process CPU (all threads) / wall over S seconds while nothing changes; RSS after it;
4. churn: prints `churn?`, waits for a line on stdin (the suite turns churn on), then process CPU
   over S seconds per refresh interval and per source update, and N more key presses.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

IMPORTED = time.time()  # the fallback for the process start


def process_start() -> float:
    """This process's start, as wall-clock time (from /proc: it counts interpreter start-up)."""
    try:
        ticks = int(open("/proc/self/stat").read().rsplit(")", 1)[1].split()[19])
        boot = next(float(line.split()[1]) for line in open("/proc/stat") if line.startswith("btime"))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return IMPORTED


def rss_mib(field: str = "VmRSS") -> float:
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def make_app(flags: list[str]) -> Any:
    from textual._compositor import CompositorUpdate

    from mltop import state_store
    from mltop.cli import build_parser, make_sources, quiet_logging
    from mltop.config import load
    from mltop.tui.app import MltopApp

    args = build_parser().parse_args(flags)
    config = load(vars(args), config_flag=args.config, refresh_flag=args.refresh, read_only_flag=args.read_only)
    if not config.history:
        state_store.disable()
    quiet_logging()

    class ProbeApp(MltopApp):
        CSS_PATH = str(Path(sys.modules[MltopApp.__module__].__file__ or "").with_name(MltopApp.CSS_PATH))
        frames = 0
        updates = 0
        on_frame: Any = None

        def on_source_updated(self, message: Any) -> None:  # runs besides MltopApp's own handler
            ProbeApp.updates += 1

        def _display(self, screen: Any, renderable: Any) -> None:
            if renderable is not None and not self._batch_count:
                if isinstance(renderable, CompositorUpdate):
                    renderable.render_segments(self.console)  # the bytes a terminal would be sent
                ProbeApp.frames += 1
                if self.on_frame is not None:
                    self.on_frame()
            super()._display(screen, renderable)

    return ProbeApp(config, make_sources(config)), config


async def wait_live(app: Any, timeout: float = 600) -> float:
    keys = list(app.dashboard.source_keys)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ups = app.dashboard.updates
        if all(k in ups and ups[k].health.ok for k in keys):
            return time.time()
        await asyncio.sleep(0.02)
    bad = {k: (app.dashboard.updates[k].health.error if k in app.dashboard.updates else "no answer") for k in keys}
    raise SystemExit(f"live_probe: sources not live after {timeout:.0f} s: {bad}")


async def press_keys(app: Any, count: int) -> list[float]:
    """Milliseconds from each key event to the first frame in which the focused table's cursor moved."""
    from textual import events

    latencies = []
    for i in range(count):
        key = "j" if i % 2 == 0 else "k"
        focused = app.focused
        before = getattr(focused, "cursor_row", None)
        done = asyncio.Event()
        seen: list[float] = []

        def frame(focused: Any = focused, before: Any = before) -> None:
            if not seen and getattr(focused, "cursor_row", None) != before:
                seen.append(time.perf_counter())
                done.set()

        app.on_frame = frame
        start = time.perf_counter()
        event = events.Key(key, key)
        event.set_sender(app)
        app._driver.send_message(event)
        try:
            await asyncio.wait_for(done.wait(), 2.0)
        except asyncio.TimeoutError:
            pass
        app.on_frame = None
        if seen:
            latencies.append((seen[0] - start) * 1000)
        await asyncio.sleep(0.05)  # a person's keys come tens of milliseconds apart at best
    return latencies


def summary(latencies: list[float], asked: int) -> dict[str, Any]:
    if not latencies:
        return {"n": 0, "asked": asked}
    ordered = sorted(latencies)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return {"n": len(ordered), "asked": asked, "p50": statistics.median(ordered), "p95": p95, "max": ordered[-1]}


async def cpu_window(app: Any, seconds: float) -> tuple[float, float, int]:
    """(process CPU seconds, wall seconds, source updates) over a window."""
    cpu, wall, ups = time.process_time(), time.monotonic(), type(app).updates
    await asyncio.sleep(seconds)
    return time.process_time() - cpu, time.monotonic() - wall, type(app).updates - ups


async def probe(opts: argparse.Namespace, flags: list[str]) -> dict[str, Any]:
    started = process_start()
    app, config = make_app(flags)
    result: dict[str, Any] = {"refresh": config.refresh, "sources": list(app.dashboard.source_keys)}
    async with app.run_test(size=(160, 48)) as pilot:
        result["live_s"] = await wait_live(app) - started
        await pilot.pause()
        await asyncio.sleep(2 * config.refresh)  # let the first full draws settle
        result["keys_idle"] = summary(await press_keys(app, opts.presses), opts.presses)
        cpu, wall, ups = await cpu_window(app, opts.idle)
        result["idle"] = {"cpu_pct": 100 * cpu / wall, "seconds": wall, "updates": ups}
        result["rss_mib"], result["hwm_mib"] = rss_mib(), rss_mib("VmHWM")
        if opts.churn:
            print("churn?", flush=True)
            sys.stdin.readline()
            await asyncio.sleep(config.refresh)  # the first changes reach the server
            cpu, wall, ups = await cpu_window(app, opts.churn)
            refreshes = wall / config.refresh
            result["churn"] = {"cpu_pct": 100 * cpu / wall, "seconds": wall, "updates": ups,
                               "ms_per_refresh": 1000 * cpu / refreshes, "ms_per_update": 1000 * cpu / max(ups, 1)}
            result["keys_churn"] = summary(await press_keys(app, opts.presses), opts.presses)
            result["rss_churn_mib"] = rss_mib()
        result["frames"] = type(app).frames
        await pilot.exit(0)
    return result


def main() -> None:
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    parser = argparse.ArgumentParser()
    parser.add_argument("--idle", type=float, default=20.0)
    parser.add_argument("--churn", type=float, default=20.0)
    parser.add_argument("--presses", type=int, default=50)
    opts = parser.parse_args(argv[:split])
    result = asyncio.run(probe(opts, argv[split + 1:]))
    print(json.dumps(result), flush=True)
    os._exit(0)  # watch threads of a big cluster need not be waited on


if __name__ == "__main__":
    main()
