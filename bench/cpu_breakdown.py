"""Where the live screen's CPU goes: each stage's own thread CPU, per refresh interval.

    python bench/cpu_breakdown.py WORKLOAD [--idle S] [--churn S]

Serves WORKLOAD (bench/workloads.py), then runs the live probe (bench/live_probe.py: the real
MltopApp headless at 160x48, every frame turned into terminal bytes) with each stage below wrapped
in a timer of its own thread's CPU (`time.thread_time`). Prints, for the probe's idle window and its
changing (churn) window, the process CPU and each stage's CPU per refresh interval (2 s), its calls
and its CPU per call. Stages nest (derive holds the cost evaluation, _parts and the REASON column;
KeyedTable.sync holds JobsTable.sync's work): the table is a breakdown, not a sum. What no stage
holds is the watch threads' JSON, the HTTP clients and the event loop.

Why this and not a sampling profiler: py-spy with --gil sees the thread that holds the GIL at each
sample, a few hundred samples a run; cProfile charges time spent waiting for the GIL to whatever
function was running. Thread CPU around each stage is exact and costs ~1 us a call.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import importlib
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

# (module, class or None, function): the stages, in the order a refresh meets them.
STAGES = [
    ("mltop.adapters.kube", "KubeSource", "_collect"),  # a Kubernetes poll (its own thread)
    ("mltop.adapters.kube_kueue", None, "attach"),
    ("urllib3.connectionpool", "HTTPConnectionPool", "urlopen"),  # the kubernetes client's requests (not watches' reads)
    ("mltop.adapters.http", None, "decode_json"),  # Ray's and KFP's bodies
    ("mltop.adapters.ray", "RaySource", "_read_job_list"),
    ("mltop.tui.derive", None, "derive"),  # the view, in the derive thread
    ("mltop.cost", None, "evaluate"),
    ("mltop.dashboard", "Dashboard", "_parts"),
    ("mltop.chain", None, "link"),
    ("mltop.jobs", None, "order_jobs"),
    ("mltop.dashboard", "Dashboard", "_owners"),
    ("mltop.jobs", None, "pending_pods"),
    ("mltop.dashboard", "View", "short_reasons"),
    ("mltop.dashboard", "View", "_most_free"),
    ("mltop.tui.app", "MltopApp", "_show"),  # applying it, on the UI thread
    ("mltop.widgets.keyed_table", "KeyedTable", "sync"),
    ("mltop.widgets.jobs_table", "JobsTable", "sync"),
    ("mltop.tui.dashboard_screen", "DashboardScreen", "_infra"),
    ("textual.screen", "Screen", "_compositor_refresh"),  # drawing the frames
]
CPU: Counter[str] = Counter()
CALLS: Counter[str] = Counter()


def timed(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        began = time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            CPU[name] += time.thread_time() - began
            CALLS[name] += 1
    return wrapper


def instrument() -> None:
    """Wrap every stage, and every module-level name bound to a wrapped function (`from x import f`)."""
    for module, cls, attr in STAGES:
        owner: Any = importlib.import_module(module)
        if cls:
            owner = getattr(owner, cls)
        fn = owner.__dict__[attr] if cls else getattr(owner, attr)
        name = f"{cls or module.rsplit('.', 1)[-1]}.{attr}"
        if isinstance(fn, staticmethod):
            setattr(owner, attr, staticmethod(timed(fn.__func__, name)))
        elif isinstance(fn, functools.cached_property):
            fn.func = timed(fn.func, name)
        else:
            wrapped = timed(fn, name)
            setattr(owner, attr, wrapped)
            if not cls:
                for other in list(sys.modules.values()):
                    if getattr(other, "__name__", "").startswith("mltop") and getattr(other, attr, None) is fn:
                        setattr(other, attr, wrapped)


def probe(idle: float, churn: float, flags: list[str]) -> None:
    """In the child: the live probe, its two CPU windows each with the stages' share."""
    import live_probe

    windows: list[dict[str, Any]] = []
    plain = live_probe.cpu_window

    async def window(app: Any, seconds: float) -> tuple[float, float, int]:
        cpu, calls = Counter(CPU), Counter(CALLS)
        result = await plain(app, seconds)
        windows.append({"process": result[0], "wall": result[1], "refresh": app.config.refresh,
                        "stages": {k: (CPU[k] - cpu[k], CALLS[k] - calls[k]) for k in CPU}})
        return result

    live_probe.cpu_window = window
    live_probe.make_app = functools.partial(made_instrumented, live_probe.make_app)
    opts = argparse.Namespace(idle=idle, churn=churn, presses=0)
    asyncio.run(live_probe.probe(opts, flags))
    print(json.dumps(windows), flush=True)
    os._exit(0)  # as live_probe: the watch threads of a big cluster need not be waited on


def made_instrumented(make_app: Callable[[list[str]], Any], flags: list[str]) -> Any:
    app, config = make_app(flags)  # the app's modules are imported now: wrap what they bound
    instrument()
    return app, config


def table(label: str, w: dict[str, Any]) -> str:
    per = w["wall"] / w["refresh"]  # refresh intervals in the window
    lines = [f"{label}: process {1000 * w['process'] / per:.0f} ms per {w['refresh']:.0f} s refresh "
             f"({100 * w['process'] / w['wall']:.2f} % of a core, {w['wall']:.0f} s)",
             f"  {'stage':38s} {'ms/refresh':>10s} {'calls':>6s} {'ms/call':>8s}"]
    for module, cls, attr in STAGES:
        name = f"{cls or module.rsplit('.', 1)[-1]}.{attr}"
        cpu, calls = w["stages"].get(name, (0.0, 0))
        lines.append(f"  {name:38s} {1000 * cpu / per:10.1f} {calls:6d} {1000 * cpu / max(calls, 1):8.1f}")
    return "\n".join(lines)


def main() -> int:
    argv = sys.argv[1:]
    if argv and argv[0] == "--probe":
        split = argv.index("--")
        probe(float(argv[1]), float(argv[2]), argv[split + 1:])
        return 0
    import peers
    import suite

    parser = argparse.ArgumentParser()
    parser.add_argument("workload", choices=list(suite.WORKLOADS))
    parser.add_argument("--idle", type=float, default=20.0)
    parser.add_argument("--churn", type=float, default=20.0)
    opts = parser.parse_args(argv)
    server, info, _ = suite.serve(opts.workload, False)
    try:
        flags = peers.mltop_argv(info, suite.BACKEND_SETS[opts.workload][-1])[1:]
        child = suite.spawn([suite.PYTHON, __file__, "--probe", str(opts.idle), str(opts.churn), "--", *flags],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=peers.mltop_env())
        line = suite.read_line(child, 900, "probe")
        if line.strip() == "churn?":
            suite.command(server, "churn on")
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
            line = suite.read_line(child, 900, "probe (changing)")
        idle, changing = json.loads(line)
        print(table(f"{opts.workload}, idle", idle))
        print(table(f"{opts.workload}, changing", changing))
    finally:
        for child in list(suite.CHILDREN):
            suite.stop(child)
    return 0


if __name__ == "__main__":
    sys.exit(main())
