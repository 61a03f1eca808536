"""Follow a Ray submission job's driver log over the dashboard's own tail: the websocket at
`/api/jobs/{id}/logs/tail` that `ray job logs --follow` reads (Ray 2.60, job_head.py).

What Ray does there, and what this module does about it:
- the head waits (sending nothing) until the job's supervisor runs, then relays the job agent's
  tail: text frames of up to 10 lines (or ~20,000 characters, a line may be cut), from the
  start of the log, and closes with code 1000 once the job has ended and the log is read;
- a 404 (no such job) or 400 (a driver job) comes as a plain HTTP answer to the handshake;
- a reconnect replays the log from its start: the characters already received are skipped.
Bounded in time: a connect deadline and a handshake deadline; then, as a quiet job sends nothing
for as long as it likes and Ray's head never answers a websocket ping (it never reads the socket),
30 s without a frame makes mltop ask the head for its version (10 s deadline): a head that does
not answer ends the stream as failed, and the follower reconnects.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from mltop.adapters.http import CONNECT_TIMEOUT, Endpoint, segment
from mltop.errors import BadResponse, NotFound, SourceError, Unauthorized, Unreachable, first_line
from mltop.safe_text import inert_url, remember_secret

QUIET = 30.0  # seconds without a frame before the head is asked whether it still answers
PROBE_DEADLINE = 10.0
HANDSHAKE_DEADLINE = 15.0
CLOSE_TIMEOUT = 1.0
MAX_FRAME = 8 * 1024 * 1024  # Ray's frames hold 10 lines; a bigger one is refused, not buffered

if TYPE_CHECKING:  # imported where a log is followed: aiohttp costs a quarter second, and `--once` follows none
    import aiohttp


class RayJobLog:
    """One submission job's log, followed; `chunks()` may be called again after a failure."""

    def __init__(self, endpoint: Endpoint, job_id: str) -> None:
        self.endpoint = endpoint
        self.job_id = job_id
        self.title = f"Ray job {job_id} on {endpoint.name} (driver log)"
        self.end_reason = "the job has ended and Ray has sent all of its log"
        self._received = 0  # characters of the log received so far

    def _target(self) -> tuple[str, aiohttp.BasicAuth | None, dict[str, str]]:
        import aiohttp
        from yarl import URL

        base = URL(self.endpoint.url.rstrip("/"))
        auth = None
        if base.user is not None:
            remember_secret(base.password)
            auth = aiohttp.BasicAuth(base.user, base.password or "")
        headers = {"User-Agent": "mltop"}
        if self.endpoint.token:
            remember_secret(self.endpoint.token)
            headers["Authorization"] = f"Bearer {self.endpoint.token}"
        origin = str(base.with_user(None).with_password(None)).rstrip("/")
        return f"{origin}/api/jobs/{segment(self.job_id)}/logs/tail", auth, headers

    def _ssl(self) -> ssl.SSLContext | bool:
        if not self.endpoint.verify_tls:
            return False
        if self.endpoint.ca_file:
            return ssl.create_default_context(cafile=self.endpoint.ca_file)
        return True

    async def chunks(self) -> AsyncIterator[str]:
        import aiohttp

        url, auth, headers = self._target()
        what = f"{self.endpoint.name}: log of job {self.job_id}"
        connect = min(CONNECT_TIMEOUT, self.endpoint.timeout)
        timeout = aiohttp.ClientTimeout(total=None, connect=connect, sock_connect=connect)
        async with aiohttp.ClientSession(timeout=timeout, headers=headers, auth=auth) as session:
            ws = await self._connect(session, url, what)
            yield ""  # connected: Ray sends nothing until the job's supervisor runs
            skip = self._received
            async for text in self._frames(session, ws, what):
                if skip:  # the replay of what an earlier connection delivered
                    cut = min(skip, len(text))
                    text, skip = text[cut:], skip - cut
                self._received += len(text)
                if text:
                    yield text
            if ws.close_code not in (None, aiohttp.WSCloseCode.OK):
                raise Unreachable(f"{what}: Ray closed the log stream with code {ws.close_code}")

    async def _frames(self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse,
                      what: str) -> AsyncIterator[str]:
        """The text frames until Ray closes. Ray's head never reads from this socket, so it never
        answers a ping: a quiet stream is checked by asking the head for its version instead."""
        import aiohttp

        while True:
            try:
                message = await ws.receive(timeout=QUIET)
            except asyncio.TimeoutError:
                await self._probe(session, what)
                continue
            if message.type == aiohttp.WSMsgType.TEXT:
                yield message.data
            elif message.type == aiohttp.WSMsgType.ERROR:
                raise Unreachable(f"{what}: the connection failed ({_reason(ws.exception())})")
            elif message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
                return

    async def _probe(self, session: aiohttp.ClientSession, what: str) -> None:
        import aiohttp

        origin = self._target()[0].split("/api/jobs/", 1)[0]
        try:
            async with asyncio.timeout(PROBE_DEADLINE):
                async with session.get(origin + "/api/version", ssl=self._ssl()) as response:
                    if response.status < 500:
                        return
                    problem = f"HTTP {response.status}"
        except (asyncio.TimeoutError, aiohttp.ClientError, OSError) as exc:
            problem = _reason(exc) if not isinstance(exc, asyncio.TimeoutError) else f"no answer in {PROBE_DEADLINE:.0f}s"
        raise Unreachable(f"{what}: the log is quiet and the head does not answer ({problem})")

    async def _connect(self, session: aiohttp.ClientSession, url: str, what: str) -> aiohttp.ClientWebSocketResponse:
        import aiohttp
        from yarl import URL

        try:
            return await asyncio.wait_for(session.ws_connect(
                URL(url, encoded=True), ssl=self._ssl(), max_msg_size=MAX_FRAME,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=CLOSE_TIMEOUT)), HANDSHAKE_DEADLINE)
        except aiohttp.WSServerHandshakeError as exc:
            raise _refused(exc.status, what) from None
        except asyncio.TimeoutError:
            raise Unreachable(f"{inert_url(self.endpoint.url)}: no answer to the log request within "
                              f"{HANDSHAKE_DEADLINE:.0f}s") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise Unreachable(f"{inert_url(self.endpoint.url)}: cannot connect ({_reason(exc)})") from None


def _refused(status: int, what: str) -> SourceError:
    if status == 404:
        return NotFound(f"{what}: Ray does not know this job (404)")
    if status == 400:
        return BadResponse(f"{what}: Ray serves logs only for submission jobs (400)")
    if status in (401, 403):
        return Unauthorized(f"{what}: {'unauthorized (401), check the token' if status == 401 else 'forbidden (403)'}")
    if status == 200:
        return BadResponse(f"{what}: the dashboard does not serve the log tail websocket (Ray older than 2.0?)")
    return BadResponse(f"{what}: HTTP {status} to the log request")


def _reason(exc: BaseException | None) -> str:
    if exc is None:
        return "no reason given"
    return first_line(str(exc), 100) or type(exc).__name__
