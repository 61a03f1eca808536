"""Memory over time with churn: the real `mltop` on a pseudo-terminal for an hour against a changing workload.

    python bench/soak.py [--workload large-all] [--minutes 60] [--every 60] [--out bench/SOAK.md]

The workload is served by bench/workloads.py with its churn on from the start (pods finish and
start, Ray jobs finish and queue, KFP runs finish and are submitted, every few seconds), so the
watch caches, the job lists and the view keep turning over. Every `--every` seconds this samples
mltop's RSS and its CPU since the last sample (all threads, from /proc), and writes a Markdown table
with the trend: RSS at the end of the first quarter against the end, and the slope of a least-squares
line over the second half (MiB per hour). "Flat" means that slope is under 5% of the RSS an hour.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import peers  # noqa: E402  (bench/ is not a package)
import pty_check  # noqa: E402
from suite import BACKEND_SETS, command, serve, stop  # noqa: E402


def slope_per_hour(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MiB) points, in MiB per hour."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    den = sum((t - mx) ** 2 for t, _ in points)
    return 3600 * sum((t - mx) * (v - my) for t, v in points) / den if den else 0.0


def start_on_pty(argv: list[str], env: dict[str, str]) -> tuple[subprocess.Popen, int]:
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 48, 160, 0, 0))
    child = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env={**env, "TERM": "xterm-256color"},
                             start_new_session=True)
    os.close(slave)
    threading.Thread(target=pty_check.drain, args=(master, bytearray()), daemon=True).start()
    return child, master


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workload", default="large-all", choices=list(BACKEND_SETS))
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--every", type=float, default=60.0)
    parser.add_argument("--out", default=str(HERE / "SOAK.md"))
    opts = parser.parse_args()
    backends = BACKEND_SETS[opts.workload][-1]
    server, info, _ = serve(opts.workload, quick=False)
    command(server, "churn on")
    child, master = start_on_pty(peers.mltop_argv(info, backends), peers.mltop_env())
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    samples: list[tuple[float, float, float]] = []  # (seconds since start, RSS MiB, CPU % since the last)
    try:
        began = time.monotonic()
        last_cpu, last_t = pty_check.cpu_seconds(child.pid), began
        while (now := time.monotonic()) - began < opts.minutes * 60:
            time.sleep(min(opts.every, opts.minutes * 60 - (now - began)) or 0.01)
            if child.poll() is not None:
                raise SystemExit(f"soak: mltop exited {child.returncode} after {time.monotonic() - began:.0f} s")
            cpu, t = pty_check.cpu_seconds(child.pid), time.monotonic()
            samples.append((t - began, pty_check.rss_mib(child.pid), 100 * (cpu - last_cpu) / (t - last_t)))
            last_cpu, last_t = cpu, t
            print(f"{samples[-1][0]:7.0f} s  RSS {samples[-1][1]:6.1f} MiB  CPU {samples[-1][2]:5.1f}%", flush=True)
    finally:
        stop(child)
        os.close(master)
        stop(server)
    write(opts, backends, samples)


def write(opts: argparse.Namespace, backends: tuple[str, ...], samples: list[tuple[float, float, float]]) -> None:
    quarter = samples[max(0, len(samples) // 4 - 1)]
    half = [(t, rss) for t, rss, _ in samples[len(samples) // 2:]]
    slope = slope_per_hour(half)
    end = samples[-1][1]
    # Within 5% of RSS an hour either way is flat; beyond it, falling (memory handed back) is
    # not growing: until 2026-12-02 a slope of -23.8 MiB/h was printed as "growing".
    trend = "flat" if abs(slope) < 0.05 * end else "falling" if slope < 0 else "growing"
    lines = [
        "# Memory over an hour with churn", "",
        f"`python bench/soak.py --workload {opts.workload} --minutes {opts.minutes:g}` "
        f"({', '.join(backends)}; the workload's churn on throughout; the real `mltop` on a 160x48 pty).", "",
        f"- RSS after the first quarter ({quarter[0] / 60:.0f} min): {quarter[1]:.1f} MiB; at the end "
        f"({samples[-1][0] / 60:.0f} min): {end:.1f} MiB; peak {max(s[1] for s in samples):.1f} MiB.",
        f"- Slope over the second half: {slope:+.1f} MiB per hour: **{trend}** "
        f"(flat: under 5% of RSS an hour).",
        f"- CPU, median of the samples: {sorted(s[2] for s in samples)[len(samples) // 2]:.1f}% of a core.", "",
        "| minute | RSS MiB | CPU % |", "|---:|---:|---:|",
        *(f"| {t / 60:.0f} | {rss:.1f} | {cpu:.1f} |" for t, rss, cpu in samples),
    ]
    Path(opts.out).write_text("\n".join(lines) + "\n")
    print(f"soak: wrote {opts.out}")


if __name__ == "__main__":
    main()
