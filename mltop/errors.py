"""The few errors adapters raise, each carrying one line a person can act on.

The UI and the report show `str(error)` and nothing else: never a traceback, never a raw
server body (Ray answers errors with plain-text Python tracebacks).
"""

from __future__ import annotations

from mltop.safe_text import redact


class SourceError(Exception):
    """Base: one human-readable line."""

    def __init__(self, message: str) -> None:
        # Server bodies may echo the request's credentials (a 401 that repeats the token).
        message = redact(message)
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class Unreachable(SourceError):
    """Nothing answered: connection refused, DNS, TLS, or a timeout."""


class Unauthorized(SourceError):
    """401 or 403: the credentials are missing, wrong, or not allowed to do this."""


class NotFound(SourceError):
    """404: the job (or endpoint) does not exist."""


class Conflict(SourceError):
    """The object changed under us, or the server refused the action in the object's state."""


class BadResponse(SourceError):
    """The server answered, but not with what the API promises."""


class OutcomeUnknown(SourceError):
    """An action was sent but no answer came back in time: it may or may not have been done.

    Never reported as success or failure; the next refresh shows what the backend holds.
    """


class NotYet(SourceError):
    """What was asked for does not exist yet but will (a log before its container starts):
    not a failure; ask again later."""


def first_line(text: str, limit: int = 160) -> str:
    """The most telling line of a server's error body, for bodies that may be whole tracebacks.

    Python tracebacks put the exception last, so prefer the last non-empty line when the body
    looks like one; otherwise take the first.
    """
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    if not lines:
        return ""
    line = lines[-1] if lines[0].startswith("Traceback") else lines[0]
    return line if len(line) <= limit else line[: limit - 1] + "…"
