"""A cross-check of the headless probe: the real `mltop` on a pseudo-terminal (160x48), idle CPU and RSS.

The terminal's output is read and dropped as fast as it comes, as a terminal emulator would read
it. CPU is the process's utime + stime (all threads) from /proc over the window.
"""

from __future__ import annotations

import fcntl
import os
import struct
import subprocess
import termios
import threading
import time

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_mib(pid: int) -> float:
    return next(int(line.split()[1]) for line in open(f"/proc/{pid}/status") if line.startswith("VmRSS")) / 1024


def drain(fd: int, tail: bytearray) -> None:
    """Read the terminal as an emulator would; keep the last bytes (an error message, if it dies)."""
    try:
        while chunk := os.read(fd, 65536):
            tail.extend(chunk)
            del tail[:-2000]
    except OSError:
        pass  # the child closed the terminal


def idle_on_pty(argv: list[str], env: dict[str, str], settle: float, window: float) -> dict:
    """Start mltop on a pty, wait `settle` seconds (until its sources are live), measure `window`."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 48, 160, 0, 0))
    child = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env={**env, "TERM": "xterm-256color"},
                             start_new_session=True)
    os.close(slave)
    tail = bytearray()
    threading.Thread(target=drain, args=(master, tail), daemon=True).start()
    try:
        time.sleep(settle)
        if child.poll() is not None:
            time.sleep(0.2)  # the last of its output
            said = " ".join(bytes(tail).decode(errors="replace").split())[-200:]
            return {"error": f"mltop exited {child.returncode} on the pty: {said}"}
        cpu, wall = cpu_seconds(child.pid), time.monotonic()
        time.sleep(window)
        used, took = cpu_seconds(child.pid) - cpu, time.monotonic() - wall
        return {"cpu_pct": 100 * used / took, "rss_mib": rss_mib(child.pid), "seconds": took}
    finally:
        child.kill()
        child.wait()
        os.close(master)
