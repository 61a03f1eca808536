"""Start-up cost: wall time and peak RSS of `mltop --demo --once --json` and of importing the TUI.

    python bench/startup.py [REPEATS]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time


def measure(args: list[str], repeats: int) -> tuple[float, float]:
    walls, rss = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c",
             "import resource, runpy, sys, contextlib, io\n"
             f"sys.argv = {args!r}\n"
             "buf = io.StringIO()\n"
             "with contextlib.redirect_stdout(buf):\n"
             "    try: runpy.run_module(sys.argv[0], run_name='__main__')\n"
             "    except SystemExit: pass\n"
             "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"],
            capture_output=True, text=True, env={**os.environ, "MLTOP_CONFIG": os.devnull},
        )
        walls.append(time.perf_counter() - start)
        rss.append(int(out.stdout.strip().splitlines()[-1]) / 1024)
    return statistics.median(walls), statistics.median(rss)


def main() -> None:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    wall, rss = measure(["mltop", "--demo", "--once", "--json"], repeats)
    print(f"mltop --demo --once --json: {wall * 1000:.0f} ms, peak RSS {rss:.0f} MiB (median of {repeats})")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import mltop.tui.app"], check=True)
    print(f"import mltop.tui.app: {(time.perf_counter() - start) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
