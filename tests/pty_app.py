"""Run mltop as a user would: in a pseudo-terminal, reading what it draws, typing keys."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time


class PtyApp:
    def __init__(self, args: list[str], env: dict[str, str] | None = None, cols: int = 100, rows: int = 30,
                 inherit_env: bool = True) -> None:
        self.master, slave = pty.openpty()
        import fcntl
        import struct
        import termios

        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        full_env = {**(os.environ if inherit_env else {}), "TERM": "xterm-256color", **(env or {})}
        self.proc = subprocess.Popen([sys.executable, "-m", "mltop", *args], stdin=slave, stdout=slave, stderr=slave,
                                     env=full_env, start_new_session=True, close_fds=True)
        os.close(slave)
        self.output = b""

    def read(self, seconds: float) -> bytes:
        """Collect what the app writes for `seconds`."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], max(0.0, deadline - time.monotonic()))
            if ready:
                try:
                    chunk = os.read(self.master, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                self.output += chunk
        return self.output

    def wait_for(self, text: bytes, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.read(0.2):
                return True
            if self.proc.poll() is not None:
                return False
        return False

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def exited_within(self, seconds: float) -> float | None:
        """Seconds until the process exited (draining its output meanwhile), or None."""
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            self.read(0.05)
            if self.proc.poll() is not None:
                return time.monotonic() - started
        return None

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        os.close(self.master)
