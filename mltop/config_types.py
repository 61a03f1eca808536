"""What every backend's configuration is made of: the strict base model, the common HTTP source
settings, and the checks that turn a bad value into one line for the user. No Textual, no adapter.

`mltop/config.py` assembles the whole configuration; each backend in `mltop/backends/` builds its
own section from these pieces.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mltop.local_files import why_unreadable


class ConfigError(Exception):
    """One line for the user: where, which key, and why."""


class Strict(BaseModel):
    # allow_inf_nan=False: TOML has nan and inf, and no setting here means either.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def check_http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{value!r} is not an http(s) URL")
    return value.rstrip("/")


class HttpSourceConfig(Strict):
    """What every HTTP source shares: where it is and how to trust and reach it."""

    url: str
    name: str | None = None
    token: str | None = None
    ca_file: str | None = None
    verify_tls: bool = True
    timeout: float = Field(default=10.0, gt=0, le=300)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return check_http_url(value)


def name_and_url(value: str) -> tuple[str | None, str]:
    """A source flag: `URL` or `NAME=URL`."""
    name, sep, url = value.partition("=")
    if sep and "://" not in name:
        return name.strip() or None, url.strip()
    return None, value.strip()


def url_flags(flag: str, values: list[str] | None) -> list[tuple[str | None, str]]:
    """(name, url) for each `--flag [NAME=]URL`; a bad URL is a ConfigError naming the flag."""
    out = []
    for value in values or ():
        name, url = name_and_url(value)
        try:
            out.append((name, check_http_url(url)))
        except ValueError as exc:
            raise ConfigError(f"{flag}: {exc}") from None
    return out


def default_name(url: str) -> str:
    """A source named after its host (and port, unless it is the Ray dashboard's 8265)."""
    parts = urlsplit(url)
    host = parts.hostname or url
    return f"{host}:{parts.port}" if parts.port and parts.port != 8265 else host


def unique_names(names: list[str]) -> list[str]:
    """Two sources of one kind never share a name: the second `h` becomes `h-2`."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}-{seen[name]}")
    return out


def local_file(value: str | None, where: str) -> str | None:
    """A file named in the config or a flag: `~` expanded, and it must be a regular file now
    (a FIFO would block whoever reads it), else ConfigError naming `where`."""
    if not value:
        return None
    path = os.path.expanduser(value)
    why = why_unreadable(path)
    if why is not None:
        raise ConfigError(f"{where}: {why} {value!r}" if why == "no such file" else f"{where}: {value!r}: {why}")
    return path
