"""Ray: clusters reached through their dashboard's HTTP API."""

from __future__ import annotations

from typing import Any

from mltop.adapters.http_endpoint import Endpoint
from mltop.config_types import HttpSourceConfig, default_name, local_file, unique_names, url_flags
from mltop.registry import Backend, Inputs, SourceFlag, register


class RaySourceConfig(HttpSourceConfig):
    """A Ray dashboard: nothing beyond the common HTTP settings."""


def resolve(inputs: Inputs) -> tuple[Endpoint, ...]:
    """--ray flags replace everything; else an http(s) RAY_ADDRESS; else the file's [[ray]].

    RAY_AUTH_TOKEN applies to every cluster that does not carry its own token in the file (a
    token written into one cluster's entry is for that cluster only).
    """
    env_token = inputs.env.get("RAY_AUTH_TOKEN") or None
    specs: list[tuple[str | None, str, RaySourceConfig | None]]
    if inputs.flags.get("ray"):
        specs = [(name, url, None) for name, url in url_flags("--ray", inputs.flags["ray"])]
    elif inputs.env.get("RAY_ADDRESS", "").startswith(("http://", "https://")):
        specs = [(None, url, None) for _, url in url_flags("RAY_ADDRESS", [inputs.env["RAY_ADDRESS"]])]
    else:
        specs = [(s.name, s.url, s) for s in inputs.entries]
    names = unique_names([name or default_name(url) for name, url, _ in specs])
    endpoints = []
    for name, (_, url, spec) in zip(names, specs):
        if spec is None:
            endpoints.append(Endpoint(name=name, url=url, token=env_token))
        else:
            endpoints.append(Endpoint(
                name=name, url=url, token=spec.token or env_token,
                ca_file=local_file(spec.ca_file, f"{inputs.path}: ray.{name}.ca_file"),
                verify_tls=spec.verify_tls, timeout=spec.timeout,
            ))
    return tuple(endpoints)


def build(endpoint: Endpoint, config: Any) -> Any:
    from mltop.adapters.ray import RaySource

    return RaySource(endpoint)


BACKEND = register(Backend(
    kind="ray",
    display_name="Ray",
    job_noun="job",
    resolve=resolve,
    build=build,
    section="ray",
    entry_model=RaySourceConfig,
    flags=(SourceFlag("--ray", "ray", "a Ray dashboard URL (repeatable); default: the config file, or RAY_ADDRESS "
                      "if http(s)", metavar="[NAME=]URL"),),
    env=("RAY_ADDRESS", "RAY_AUTH_TOKEN"),
    actions=frozenset({"jobs.cancel", "jobs.details"}),
    waits_on="ray-cluster",
    demo=lambda platform: platform.ray_endpoints() + platform.chain_ray_endpoints(),
    order=10,
))
