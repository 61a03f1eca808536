"""Serve aiohttp apps on loopback from a background thread, so a caller with its own event loop
(the TUI, pytest) can talk to them over real HTTP as it would to a real cluster."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from aiohttp import web

T = TypeVar("T")


class LoopbackServer:
    """One thread, one event loop, any number of apps, each on its own 127.0.0.1 port."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="mltop-demo-server", daemon=True)
        self._runners: list[web.AppRunner] = []
        self._tasks: list[asyncio.Task[Any]] = []
        self._started = False

    def start(self) -> None:
        if not self._started:
            self._thread.start()
            self._started = True

    def serve(self, app: web.Application, port: int = 0) -> str:
        """Start serving `app`; return its base URL."""
        self.start()
        return self._run(self._serve(app, port))

    async def _serve(self, app: web.Application, port: int) -> str:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        self._runners.append(runner)
        sockets = site._server.sockets if site._server else []  # the port the OS chose
        bound = sockets[0].getsockname()[1] if sockets else port
        return f"http://127.0.0.1:{bound}"

    def every(self, seconds: float, fn: Callable[[], None]) -> None:
        """Run `fn` in the server thread every `seconds` (the scenario's heartbeat)."""

        async def loop() -> None:
            while True:
                await asyncio.sleep(seconds)
                fn()

        def schedule() -> None:
            self._tasks.append(self._loop.create_task(loop()))

        self._loop.call_soon_threadsafe(schedule)

    def call(self, fn: Callable[[], T]) -> T:
        """Run `fn` in the server thread and return its result (the sims are not thread-safe)."""

        async def run() -> T:
            return fn()

        return self._run(run())

    def _run(self, coro: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(timeout=30)

    def stop(self) -> None:
        if not self._started:
            return

        async def shutdown() -> None:
            for task in self._tasks:
                task.cancel()
            for runner in self._runners:
                await runner.cleanup()

        try:
            self._run(shutdown())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
            self._started = False

    def __enter__(self) -> "LoopbackServer":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
