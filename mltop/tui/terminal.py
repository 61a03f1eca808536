"""The terminal mltop draws on: it is given back whatever ends the program."""

from __future__ import annotations

import asyncio
import signal


def catch_signals(app) -> None:  # app: MltopApp
    """SIGTERM, SIGHUP (the SSH session dropped) and SIGINT end mltop as `q` does: the terminal
    is given back (main screen, mouse off, cursor on) and every source closed, not left behind."""
    loop = asyncio.get_running_loop()
    for sig, code in ((signal.SIGTERM, 128 + signal.SIGTERM), (signal.SIGHUP, 128 + signal.SIGHUP),
                      (signal.SIGINT, 128 + signal.SIGINT)):
        try:
            loop.add_signal_handler(sig, lambda code=code: app.exit(return_code=code))
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no such signal
            pass
