"""Kubeflow Pipelines: runs through the KFP REST API v2beta1."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from mltop.adapters.kfp_endpoint import KfpEndpoint
from mltop.config_types import ConfigError, HttpSourceConfig, default_name, local_file, unique_names, url_flags
from mltop.registry import Backend, Inputs, SourceFlag, register


class KfpSourceConfig(HttpSourceConfig):
    namespaces: list[str] = Field(default_factory=list)
    token_file: str | None = None
    cookie: str | None = None  # raw Cookie header, e.g. "oauth2_proxy_kubeflow=..."
    header_name: str | None = None
    header_value: str | None = None


def resolve(inputs: Inputs) -> tuple[KfpEndpoint, ...]:
    """--kfp flags, else KF_PIPELINES_ENDPOINT, else the file's [[kfp]] entries."""
    token_file = inputs.env.get("KF_PIPELINES_SA_TOKEN_PATH") or None
    namespaces = inputs.flags.get("kfp_namespace")
    specs = url_flags("--kfp", inputs.flags.get("kfp"))
    if not specs and inputs.env.get("KF_PIPELINES_ENDPOINT"):
        specs = url_flags("KF_PIPELINES_ENDPOINT", [inputs.env["KF_PIPELINES_ENDPOINT"]])
    if specs:
        names = unique_names([name or default_name(url) for name, url in specs])
        return tuple(KfpEndpoint(name=n, url=u, namespaces=tuple(namespaces or ()), token_file=token_file)
                     for n, (_, u) in zip(names, specs))
    path = inputs.path
    names = unique_names([k.name or default_name(k.url) for k in inputs.entries])
    out = []
    for name, k in zip(names, inputs.entries):
        if (k.header_name is None) != (k.header_value is None):
            raise ConfigError(f"{path}: kfp.{name}: header_name and header_value go together")
        own_token_file = local_file(k.token_file, f"{path}: kfp.{name}.token_file")
        out.append(KfpEndpoint(
            name=name, url=k.url, namespaces=tuple(namespaces or k.namespaces), token=k.token,
            token_file=own_token_file or (None if k.token else token_file), cookie=k.cookie,
            header=(k.header_name, k.header_value) if k.header_name and k.header_value else None,
            ca_file=local_file(k.ca_file, f"{path}: kfp.{name}.ca_file"), verify_tls=k.verify_tls, timeout=k.timeout,
        ))
    return tuple(out)


def build(endpoint: KfpEndpoint, config: Any) -> Any:
    from mltop.adapters.kfp import KfpSource

    return KfpSource(endpoint, finished_limit=config.finished_limit)


BACKEND = register(Backend(
    kind="kfp",
    display_name="Kubeflow Pipelines",
    job_noun="run",
    resolve=resolve,
    build=build,
    section="kfp",
    entry_model=KfpSourceConfig,
    flags=(
        SourceFlag("--kfp", "kfp", "a Kubeflow Pipelines API URL (repeatable); default: the config file, or "
                   "KF_PIPELINES_ENDPOINT", metavar="[NAME=]URL"),
        SourceFlag("--kfp-namespace", "kfp_namespace", "a namespace to watch on multi-user KFP (repeatable)",
                   metavar="NS"),
    ),
    env=("KF_PIPELINES_ENDPOINT", "KF_PIPELINES_SA_TOKEN_PATH"),
    actions=frozenset({"jobs.cancel", "jobs.retry", "jobs.details"}),
    demo=lambda platform: platform.kfp_endpoints(),
    order=30,
))
