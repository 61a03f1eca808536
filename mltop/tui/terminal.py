"""The terminal mltop draws on: it is given back whatever ends the program."""

from __future__ import annotations

import asyncio
import os
import signal
import threading

EXIT_DEADLINE = 3.0  # seconds a signalled mltop has to finish exiting before it is ended outright


def catch_signals(app) -> None:  # app: MltopApp
    """SIGTERM, SIGHUP (the SSH session dropped) and SIGINT end mltop as `q` does: the terminal
    is given back (main screen, mouse off, cursor on) and every source closed, not left behind."""
    loop = asyncio.get_running_loop()
    for sig, code in ((signal.SIGTERM, 128 + signal.SIGTERM), (signal.SIGHUP, 128 + signal.SIGHUP),
                      (signal.SIGINT, 128 + signal.SIGINT)):
        try:
            loop.add_signal_handler(sig, lambda code=code: _end(app, code))
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no such signal
            pass


def _end(app, code: int) -> None:
    """Exit as `q` does; should that not finish (a dropped SSH session leaves a terminal that may
    block the last writes), end the process anyway: nothing of mltop may be left running."""
    timer = threading.Timer(EXIT_DEADLINE, os._exit, args=(code,))
    timer.daemon = True
    timer.start()
    app.exit(return_code=code)
