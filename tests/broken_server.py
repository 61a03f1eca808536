"""A loopback HTTP server that misbehaves on purpose: it answers each path as a test scripts it.

Real clusters contain servers that never answer, answer forever, answer gigabytes, or answer
junk. Each route is a function of the request that returns an aiohttp response (or never
returns); anything unscripted is a 404 with a JSON body.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from mltop.demo.server import LoopbackServer

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CLOSING = web.AppKey("closing", asyncio.Event)


def hang() -> Handler:
    """Accept the request and never answer (until the server stops)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        await request.app[CLOSING].wait()  # released when the server stops
        return web.Response(status=503, text="server stopping")

    return handler


def json_body(obj: Any, status: int = 200) -> Handler:
    text = json.dumps(obj)

    async def handler(_: web.Request) -> web.StreamResponse:
        return web.Response(status=status, text=text, content_type="application/json")

    return handler


def text_body(text: str, status: int = 200) -> Handler:
    async def handler(_: web.Request) -> web.StreamResponse:
        return web.Response(status=status, text=text, content_type="text/plain")

    return handler


def endless(chunk: bytes = b"[" + b'{"status": "PENDING"},' * 1000, declare_length: bool = False,
            total: int = 1 << 40) -> Handler:
    """A body that keeps coming (chunked), or declares a huge Content-Length up front."""

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        if declare_length:
            response.content_length = total
        await response.prepare(request)
        sent = 0
        try:
            while sent < total and not request.app[CLOSING].is_set():
                await response.write(chunk)
                sent += len(chunk)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        return response

    return handler


class BrokenServer:
    """`routes[(METHOD, path)] = handler`; requests seen are recorded in `seen`."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Handler] = {}
        self.seen: list[tuple[str, str]] = []
        self.server = LoopbackServer()
        self.url = ""

    def start(self) -> "BrokenServer":
        @web.middleware
        async def record(request: web.Request, handler: Any) -> web.StreamResponse:
            # raw_path: what the client put on the wire, before any decoding.
            self.seen.append((request.method, request.raw_path))
            route = self.routes.get((request.method, request.path))
            if route is None:
                return web.json_response({"message": f"no route {request.path}"}, status=404)
            return await route(request)

        app = web.Application(middlewares=[record])
        self.server.start()
        app[CLOSING] = self.server.call(asyncio.Event)
        self._app = app
        self.url = self.server.serve(app)
        return self

    def stop(self) -> None:
        self.server.call(self._app[CLOSING].set)
        self.server.stop()

    def __enter__(self) -> "BrokenServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
