"""Run a blocking client call (the official `kubernetes` client) without ever waiting on it to quit.

`asyncio.to_thread` uses the loop's default executor, whose threads are joined when the loop
shuts down: one call blocked on an API server that never answers kept `q` from exiting for a
minute and more. Here each call gets its own daemon thread, and the caller waits at most
`timeout` seconds; a call still blocked then is abandoned (its thread dies with the process).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def in_thread(call: Callable[..., T], *args: Any, timeout: float | None = None, name: str = "mltop-call") -> T:
    """`call(*args)` in a daemon thread; raises asyncio.TimeoutError after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if future.done():  # the caller stopped waiting (timeout, cancel)
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def run() -> None:
        try:
            result, error = call(*args), None
        except BaseException as exc:  # handed to the awaiting coroutine, raised there
            result, error = None, exc
        try:
            loop.call_soon_threadsafe(settle, result, error)
        except RuntimeError:
            pass  # the loop is closed: nobody waits for this answer any more

    threading.Thread(target=run, name=name, daemon=True).start()
    return await asyncio.wait_for(future, timeout)
