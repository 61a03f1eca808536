"""Where an HTTP backend (a Ray dashboard) lives and how to reach it: kept apart from the client
(mltop.adapters.http) so config stays light to import; a Kubernetes-only `--once` never loads httpx."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Endpoint:
    """Where one backend lives and how to authenticate to it."""

    name: str
    url: str
    token: str | None = None
    ca_file: str | None = None
    verify_tls: bool = True
    timeout: float = 10.0
