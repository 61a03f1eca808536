"""One async HTTP client per source, and the mapping from HTTP failures to mltop's typed errors.

Every request here is bounded three ways, because the server may be hostile or broken:
- in time: a connect timeout, a per-read timeout, and a total deadline for the whole exchange
  (a server that trickles one byte a second defeats a per-read timeout alone);
- in size: the body is read in chunks up to a limit per endpoint (after decompression, so a
  gzip bomb is cut too); over it, the request fails with one line and the source keeps its
  last good data;
- in what it can address: ids go into paths through `segment()`, one encoded path segment.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import ssl
from typing import Any
from urllib.parse import quote

import httpx

from mltop.errors import (BadResponse, Conflict, NotFound, OutcomeUnknown, SourceError, Unauthorized, Unreachable,
                          first_line)
from mltop.adapters import fast_json
from mltop.adapters.http_endpoint import Endpoint  # noqa: F401  (adapters import it from here too)
from mltop.safe_text import inert_url, remember_secret

MiB = 1024 * 1024
DEFAULT_LIMIT = 8 * MiB  # per response, unless the endpoint says otherwise
ERROR_BODY_LIMIT = 64 * 1024  # of an error answer, only the message is wanted
CONNECT_TIMEOUT = 5.0


def segment(value: str) -> str:
    """`value` as exactly one URL path segment: `/`, `?`, `#`, `%`, `:` and the rest encoded.

    A segment of only dots is encoded too: `.` and `..` would otherwise be removed or climb a
    level when the URL is normalised (httpx does), and `zz/../victim` would address `victim`.
    """
    encoded = quote(value, safe="")
    if encoded.strip(".") == "":
        encoded = encoded.replace(".", "%2E")
    return encoded


class Client(httpx.AsyncClient):
    """An httpx client that knows the total deadline of one exchange with its server."""

    total_timeout: float = 30.0


def make_client(endpoint: Endpoint, transport: httpx.AsyncBaseTransport | None = None) -> Client:
    headers = {"User-Agent": "mltop"}
    if endpoint.token:
        headers["Authorization"] = f"Bearer {endpoint.token}"
        remember_secret(endpoint.token)
    url = httpx.URL(endpoint.url.rstrip("/"))
    remember_secret(url.password)  # http://user:PASS@host: sent as basic auth, never shown
    verify: bool | ssl.SSLContext = endpoint.verify_tls
    if url.scheme != "https":
        verify = _plain_http()
    elif endpoint.verify_tls and endpoint.ca_file:
        verify = ssl.create_default_context(cafile=endpoint.ca_file)
    client = Client(
        base_url=url,
        headers=headers,
        verify=verify,
        timeout=httpx.Timeout(endpoint.timeout, connect=min(CONNECT_TIMEOUT, endpoint.timeout)),
        # A dashboard poll needs a handful of connections at most; keep the footprint small.
        limits=httpx.Limits(max_connections=8, max_keepalive_connections=4),
        transport=transport,
        follow_redirects=False,
    )
    client.total_timeout = 3 * endpoint.timeout
    return client


@functools.cache
def _plain_http() -> ssl.SSLContext:
    """The TLS settings of a client for an http:// URL, shared by all of them. httpx builds a
    context for every client, and by default loads certifi's whole CA bundle into it (about 20 ms
    and 1.5 MiB each): for a server spoken to in plain HTTP that is waste. This one loads no CA at
    all and still requires a verified certificate, so nothing is weakened: an https request that
    somehow went through such a client could never pass (redirects are not followed anyway)."""
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED, check_hostname, no trust anchors


def where(client: httpx.AsyncClient) -> str:
    """The server as it may be shown: its URL without user-info."""
    return inert_url(str(client.base_url).rstrip("/"))


async def request(
    client: httpx.AsyncClient, method: str, path: str, *, what: str, limit: int = DEFAULT_LIMIT, **kwargs: Any
) -> httpx.Response:
    """Send one request; return a 2xx response (its body read, at most `limit` bytes) or raise
    the typed error for what went wrong.

    `what` names the thing being fetched in the user's words ("job raysubmit_1"), so the
    one-line error reads "job raysubmit_1: not found", not a status code.
    """
    total = getattr(client, "total_timeout", 30.0)
    # A change that went out but got no answer may have been made: say so, never "failed".
    acting = method not in ("GET", "HEAD")
    unknown = ": the request was sent but no answer came back; the outcome is unknown: check the backend"
    try:
        return await asyncio.wait_for(_exchange(client, method, path, what, limit, **kwargs), total)
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:  # nothing was sent
        raise Unreachable(f"{where(client)}: cannot connect ({_reason(exc)})") from None
    except asyncio.TimeoutError:
        if acting:
            raise OutcomeUnknown(f"{what}: no answer within {total:.0f}s{unknown}") from None
        raise Unreachable(f"{where(client)}: no complete answer within {total:.0f}s") from None
    except httpx.TimeoutException:
        if acting:
            raise OutcomeUnknown(f"{what}: timed out{unknown}") from None
        raise Unreachable(f"{where(client)}: timed out") from None
    except httpx.HTTPError as exc:
        if acting:
            raise OutcomeUnknown(f"{what}: {_reason(exc)}{unknown}") from None
        raise Unreachable(f"{where(client)}: {_reason(exc)}") from None


async def _exchange(
    client: httpx.AsyncClient, method: str, path: str, what: str, limit: int, **kwargs: Any
) -> httpx.Response:
    async with client.stream(method, path, **kwargs) as response:
        cap = limit if response.is_success else ERROR_BODY_LIMIT
        declared = response.headers.get("content-length", "")
        if response.is_success and declared.isdigit() and int(declared) > cap:
            raise BadResponse(f"{what}: answer of {int(declared) / MiB:,.1f} MiB is over mltop's {cap // MiB} MiB limit")
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > cap:
                if not response.is_success:
                    chunks.append(chunk[: max(0, cap - (size - len(chunk)))])
                    break  # enough of an error body to say what went wrong
                raise BadResponse(f"{what}: answer over mltop's {cap // MiB} MiB limit; not read")
            chunks.append(chunk)
    # The body was decoded while read: the copy must not claim an encoding any more.
    headers = [(k, v) for k, v in response.headers.multi_items()
               if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")]
    body = httpx.Response(response.status_code, headers=headers, content=b"".join(chunks), request=response.request)
    if body.is_success:
        return body
    raise error_for(body, what)


def error_for(response: httpx.Response, what: str) -> SourceError:
    detail = first_line(_body_message(response))
    status = response.status_code
    suffix = f": {detail}" if detail else ""
    if status == 401:
        return Unauthorized(f"{what}: unauthorized (401), check the token{suffix}")
    if status == 403:
        return Unauthorized(f"{what}: forbidden (403){suffix}")
    if status == 404:
        return NotFound(f"{what}: not found{suffix}")
    if status == 409:
        return Conflict(f"{what}: conflict{suffix}")
    return BadResponse(f"{what}: HTTP {status}{suffix}")


def digest(body: bytes) -> bytes:
    """A fingerprint of a response body: an answer the same as last time need not be read again."""
    # SHA-256 has hardware support on current x86 and ARM: 9 ms for 8.7 MiB here, BLAKE2b 17 ms.
    # Keeping the last body to compare instead would be faster still but hold its 8 MiB.
    return hashlib.sha256(body).digest()


def decode_json(response: httpx.Response, what: str) -> Any:
    # fast_json: msgspec where the body is strict JSON (Ray's 8 MiB job list ~25% faster than the
    # stdlib), the stdlib for what it refuses and mltop always read (NaN, UTF-16, 1e400).
    try:
        return fast_json.loads(response.content)
    except ValueError:  # not JSON, or bytes that are not text
        raise BadResponse(f"{what}: the server did not answer with JSON") from None
    except RecursionError:  # valid JSON, but deeper than any real answer: hostile, not a bug of ours
        raise BadResponse(f"{what}: the answer is nested too deeply to read") from None


def _body_message(response: httpx.Response) -> str:
    """The server's own words: a JSON `message`/`error` field when there is one, else the text."""
    text = response.text
    try:
        body = json.loads(text)
    except (json.JSONDecodeError, ValueError):
        return text
    if isinstance(body, dict):
        for key in ("message", "error", "msg"):
            if isinstance(body.get(key), str) and body[key]:
                return body[key]
    return text


def _reason(exc: Exception) -> str:
    text = str(exc).strip()
    if not text:
        return type(exc).__name__
    # httpx wraps OS errors as "[Errno 111] Connection refused"; keep the words.
    if "] " in text and text.startswith("[Errno"):
        text = text.split("] ", 1)[1]
    return first_line(text, 100)
