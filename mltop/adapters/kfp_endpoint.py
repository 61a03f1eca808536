"""Where a Kubeflow Pipelines deployment lives: kept apart so config stays light to import."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KfpEndpoint:
    """One KFP deployment and how to authenticate to it."""

    name: str
    url: str
    namespaces: tuple[str, ...] = ()  # required when the server is multi-user
    token: str | None = None
    token_file: str | None = None  # re-read when it changes (projected service-account tokens rotate)
    cookie: str | None = None  # a raw Cookie header value: Dex / oauth2-proxy sessions
    header: tuple[str, str] | None = None  # any named header, e.g. ("kubeflow-userid", "alice@example.com")
    ca_file: str | None = None
    verify_tls: bool = True
    timeout: float = 10.0
