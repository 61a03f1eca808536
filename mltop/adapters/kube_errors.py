"""The official Kubernetes client's exceptions -> mltop's typed one-line errors."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

from mltop.errors import BadResponse, Conflict, NotFound, SourceError, Unauthorized, Unreachable, first_line

if TYPE_CHECKING:
    from kubernetes.client.exceptions import ApiException


def _loaded(module: str, name: str) -> type:
    """A class of a module already imported, else a class nothing is an instance of: an exception
    of a library that was never imported cannot have been raised (and importing the `kubernetes`
    client costs a third of a second, too much for a Ray-only `--once` that reaches this module)."""
    return getattr(sys.modules.get(module), name, _Never)


class _Never(Exception):
    pass


def status_message(exc: ApiException) -> str:
    """The `message` of the Status object the API server answers errors with."""
    try:
        body = json.loads(exc.body or "")
    except (json.JSONDecodeError, TypeError, ValueError):
        return first_line(str(exc.reason or exc.body or ""))
    if isinstance(body, dict) and body.get("message"):
        return first_line(str(body["message"]), 200)
    return first_line(str(exc.reason or ""))


def kube_error(exc: BaseException, what: str) -> SourceError:
    if isinstance(exc, SourceError):
        return exc
    if isinstance(exc, _loaded("kubernetes.client.exceptions", "ApiException")):
        message = status_message(exc)
        status = exc.status
        if status in (401, 403):
            label = "unauthorized (401), check the kubeconfig credentials" if status == 401 else "forbidden (403)"
            return Unauthorized(f"{what}: {label}: {message}" if message else f"{what}: {label}")
        if status == 404:
            return NotFound(f"{what}: not found: {message}")
        if status in (409, 422):
            return Conflict(f"{what}: {message}")
        if status == 410:
            return Conflict(f"{what}: expired: {message}")
        if status == 0 or status is None:
            return Unreachable(f"{what}: {message or 'cannot reach the API server'}")
        return BadResponse(f"{what}: HTTP {status}: {message}")
    if isinstance(exc, (_loaded("urllib3.exceptions", "HTTPError"), OSError)):
        reason = str(getattr(exc, "reason", "") or exc)
        if "Connection refused" in reason:
            reason = "connection refused"
        return Unreachable(f"{what}: cannot reach the API server ({first_line(reason, 100)})")
    if isinstance(exc, json.JSONDecodeError):
        return BadResponse(f"{what}: the API server did not answer with JSON")
    return BadResponse(f"{what}: {type(exc).__name__}: {first_line(str(exc), 120)}")
