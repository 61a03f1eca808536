"""The benchmark suite, one command: every workload, mltop against its peers, bench/RESULTS.md.

    python bench/suite.py [--quick] [--only NAME ...] [--out PATH]

Default: the full sizes (about 10-15 minutes on 2 cores). --quick: a tenth of the sizes, fewer
repeats and shorter windows, to check the suite itself. Every child process (the workload servers,
mltop, the peers, the live probe) is stopped on the way out, Ctrl-C and errors included.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import peers  # noqa: E402  (bench/ is not a package)
import pty_check  # noqa: E402
import report  # noqa: E402
from workloads import WORKLOADS, scaled  # noqa: E402

PYTHON = sys.executable
BACKEND_SETS = {"small": [("kube",), ("ray",), ("kfp",), ("kube", "ray", "kfp")],
                "kube-1k": [("kube",)], "kube-5k": [("kube",)], "ray-10k": [("ray",)], "kfp-200k": [("kfp",)],
                "large-all": [("kube", "ray", "kfp")]}
NAMES = {"kube": "Kubernetes", "ray": "Ray", "kfp": "KFP"}
CHILDREN: list[subprocess.Popen] = []


class Settings:
    def __init__(self, quick: bool) -> None:
        self.quick = quick
        self.repeats = {"small": 3, "default": 2} if quick else {"small": 5, "default": 3}
        self.idle, self.churn, self.presses = (5.0, 5.0, 10) if quick else (20.0, 20.0, 50)


def spawn(argv: list[str], **kw: Any) -> subprocess.Popen:
    child = subprocess.Popen(argv, cwd=HERE.parent, start_new_session=True, **kw)
    CHILDREN.append(child)
    return child


def stop(child: subprocess.Popen) -> None:
    """End a child we started, and its process group (a peer's own children too)."""
    if child.poll() is None:
        for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
            try:
                os.killpg(child.pid, sig)
            except ProcessLookupError:
                break
            try:
                child.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
    for stream in (child.stdin, child.stdout):
        if stream:
            try:
                stream.close()
            except OSError:
                pass
    if child in CHILDREN:
        CHILDREN.remove(child)


def read_line(child: subprocess.Popen, timeout: float, what: str) -> str:
    assert child.stdout is not None
    ready, _, _ = select.select([child.stdout], [], [], timeout)
    line = child.stdout.readline() if ready else ""
    if not line:
        raise RuntimeError(f"{what}: no answer within {timeout:.0f} s (exit {child.poll()})")
    return line


def proc_rss(pid: int) -> float:
    try:
        return next(int(line.split()[1]) for line in open(f"/proc/{pid}/status") if line.startswith("VmRSS")) / 1024
    except (OSError, StopIteration):
        return 0.0


def serve(name: str, quick: bool) -> tuple[subprocess.Popen, dict, float]:
    start = time.perf_counter()
    argv = [PYTHON, str(HERE / "workloads.py"), name] + (["--quick"] if quick else [])
    server = spawn(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    info = json.loads(read_line(server, 600, f"workload {name}"))
    return server, info, time.perf_counter() - start


def command(server: subprocess.Popen, text: str) -> None:
    assert server.stdin is not None
    server.stdin.write(text + "\n")
    server.stdin.flush()
    read_line(server, 30, f"workload command {text!r}")


def check_once(info: dict, backends: tuple[str, ...]) -> tuple[str, list[str]]:
    """One `mltop --once --json`, read: what it saw, and any source that did not answer."""
    argv = [*peers.mltop_argv(info, backends), "--once", "--json"]
    out = subprocess.run(argv, capture_output=True, text=True, env=peers.mltop_env(), cwd=HERE.parent, timeout=600)
    try:
        data = json.loads(out.stdout)
    except json.JSONDecodeError:
        return "no JSON", [f"mltop --once exited {out.returncode}: {out.stderr.strip()[-300:]}"]
    bad = [f"{s['kind']} {s['name']}: {s['error']}" for s in data["sources"] if not s["ok"]]
    gpus = sum(n.get("gpus_total") or 0 for n in data["nodes"])
    seen = (f"{len(data['nodes']):,} nodes with GPUs ({gpus:,.0f} GPUs), {len(data['pools']):,} pools, "
            f"{len(data['jobs']):,} jobs in the table, {len(data['warnings']):,} warnings")
    return seen, bad


def once_pair(info: dict, backends: tuple[str, ...], repeats: int) -> dict:
    mine, theirs = [], []
    peers.mltop_once(info, backends), peers.peer_once(info, backends)  # warm-up, not counted (caches, imports)
    for i in range(repeats):
        order = (peers.mltop_once, peers.peer_once) if i % 2 == 0 else (peers.peer_once, peers.mltop_once)
        results = {f: f(info, backends) for f in order}
        mine.append(results[peers.mltop_once])
        theirs.append(results[peers.peer_once])
    ok = all(r.ok for r in mine + theirs)
    return {"backends": " + ".join(NAMES[b] for b in backends), "peer": peers.peer_names(backends), "ok": ok,
            "mltop_wall": statistics.median(r.wall for r in mine), "peer_wall": statistics.median(r.wall for r in theirs),
            "mltop_rss": statistics.median(r.rss for r in mine), "peer_rss": statistics.median(r.rss for r in theirs)}


PTY_SETTLE = 20.0  # seconds from start: every workload here is live within 8 s, then 5+ polls


def live(server: subprocess.Popen, info: dict, backends: tuple[str, ...], s: Settings) -> dict:
    # The idle measure on a real pseudo-terminal with the real `mltop`, first: the workload in the
    # state the probe's idle window sees (not yet churned). After a churn, jobs younger than a
    # minute tick their WAIT/RUN every second on every screen (measured: small 2.0% -> 4.0%).
    pty = pty_check.idle_on_pty(peers.mltop_argv(info, backends), peers.mltop_env(),
                                settle=PTY_SETTLE, window=max(5.0, 1.5 * s.idle))
    argv = [PYTHON, str(HERE / "live_probe.py"), "--idle", str(s.idle), "--churn", str(s.churn),
            "--presses", str(s.presses), "--", *peers.mltop_argv(info, backends)[1:]]
    probe = spawn(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=peers.mltop_env())
    try:
        line = read_line(probe, 900, "live probe")
        if line.strip() == "churn?":
            command(server, "churn on")
            assert probe.stdin is not None
            probe.stdin.write("go\n")
            probe.stdin.flush()
            line = read_line(probe, 900, "live probe (changing)")
            command(server, "churn off")
        result = json.loads(line)
        server_rss = proc_rss(server.pid)
    finally:
        stop(probe)
    return {"probe": result, "server_rss": server_rss, "pty": pty}


def run_workload(name: str, s: Settings, out: dict) -> None:
    w = scaled(WORKLOADS[name]) if s.quick else WORKLOADS[name]
    print(f"[{time.strftime('%H:%M:%S')}] {name}: serving", flush=True)
    server, info, seed_s = serve(name, s.quick)
    try:
        sets = BACKEND_SETS[name]
        seen, bad = check_once(info, sets[-1])
        out["workloads"].append({"name": name, "title": w.title if not s.quick else f"{w.title}, scaled down",
                                 "served": seen, "seed_s": seed_s})
        out["notes"] += [f"{name}: {b}" for b in bad]
        print(f"  mltop sees: {seen}" + (f"; FAILED: {bad}" if bad else ""), flush=True)
        repeats = s.repeats.get(name, s.repeats["default"])
        for backends in sets:
            row = {"workload": name, **once_pair(info, backends, repeats)}
            out["once"].append(row)
            print(f"  once {row['backends']}: mltop {row['mltop_wall']:.2f} s {row['mltop_rss']:.0f} MiB, "
                  f"peer {row['peer_wall']:.2f} s {row['peer_rss']:.0f} MiB", flush=True)
        result = live(server, info, sets[-1], s)
        out["live"].append({"workload": name, **result})
        p = result["probe"]
        print(f"  live in {p['live_s']:.1f} s, idle {p['idle']['cpu_pct']:.2f} %, "
              f"{(p.get('churn') or {}).get('ms_per_refresh', 0):.0f} ms/refresh, RSS {p['rss_mib']:.0f} MiB, "
              f"keys p95 {p['keys_idle'].get('p95', float('nan')):.1f} ms", flush=True)
    finally:
        stop(server)


def interrupted(*_: object) -> None:
    raise KeyboardInterrupt  # SIGTERM: the same way out as Ctrl-C, through every `finally`


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, few repeats (checks the suite)")
    parser.add_argument("--only", nargs="+", choices=list(WORKLOADS), help="these workloads only")
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    args = parser.parse_args()
    s = Settings(args.quick)
    signal.signal(signal.SIGTERM, interrupted)
    out: dict[str, list] = {"workloads": [], "once": [], "live": [], "notes": []}
    start = time.perf_counter()
    peers.compile_bytecode()
    try:
        for name in args.only or list(WORKLOADS):
            try:
                run_workload(name, s, out)
            except (RuntimeError, json.JSONDecodeError, subprocess.TimeoutExpired) as exc:
                out["notes"].append(f"{name}: not measured: {exc}")
                print(f"  {name} failed: {exc}", file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        print("interrupted: stopping every child", file=sys.stderr)
        return 130
    finally:
        for child in list(CHILDREN):
            stop(child)
    refresh = out["live"][0]["probe"]["refresh"] if out["live"] else 2.0
    report.write(args.out, quick=args.quick, took=time.perf_counter() - start, refresh=refresh, **out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
