"""One async HTTP client per source, and the mapping from HTTP failures to mltop's typed errors."""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass
from typing import Any

import httpx

from mltop.errors import BadResponse, Conflict, NotFound, SourceError, Unauthorized, Unreachable, first_line


@dataclass(frozen=True)
class Endpoint:
    """Where one backend lives and how to authenticate to it."""

    name: str
    url: str
    token: str | None = None
    ca_file: str | None = None
    verify_tls: bool = True
    timeout: float = 10.0


def make_client(endpoint: Endpoint, transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    headers = {"User-Agent": "mltop"}
    if endpoint.token:
        headers["Authorization"] = f"Bearer {endpoint.token}"
    verify: bool | ssl.SSLContext = endpoint.verify_tls
    if endpoint.verify_tls and endpoint.ca_file:
        verify = ssl.create_default_context(cafile=endpoint.ca_file)
    return httpx.AsyncClient(
        base_url=endpoint.url.rstrip("/"),
        headers=headers,
        verify=verify,
        timeout=httpx.Timeout(endpoint.timeout, connect=min(5.0, endpoint.timeout)),
        # A dashboard poll needs a handful of connections at most; keep the footprint small.
        limits=httpx.Limits(max_connections=8, max_keepalive_connections=4),
        transport=transport,
        follow_redirects=False,
    )


async def request(client: httpx.AsyncClient, method: str, path: str, *, what: str, **kwargs: Any) -> httpx.Response:
    """Send one request; return a 2xx response or raise the typed error for what went wrong.

    `what` names the thing being fetched in the user's words ("job raysubmit_1"), so the
    one-line error reads "job raysubmit_1: not found", not a status code.
    """
    try:
        response = await client.request(method, path, **kwargs)
    except httpx.TimeoutException:
        raise Unreachable(f"{client.base_url}: timed out") from None
    except httpx.ConnectError as exc:
        raise Unreachable(f"{client.base_url}: cannot connect ({_reason(exc)})") from None
    except httpx.HTTPError as exc:
        raise Unreachable(f"{client.base_url}: {_reason(exc)}") from None
    if response.is_success:
        return response
    raise error_for(response, what)


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


def decode_json(response: httpx.Response, what: str) -> Any:
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadResponse(f"{what}: the server did not answer with JSON") from None


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
