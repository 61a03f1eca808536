"""Typed configuration: flags, then environment variables, then the TOML file, then defaults.

Every problem becomes one line naming the file, the key and why (ConfigError); the CLI prints
it and exits 2. No Textual here.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from mltop.adapters.http import Endpoint
from mltop.adapters.kfp_endpoint import KfpEndpoint
from mltop.adapters.prometheus_endpoint import PrometheusEndpoint
from mltop.adapters.kube_target import KubeTarget
from mltop.local_files import read_problem, read_regular, why_unreadable

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

DEFAULT_REFRESH = 2.0

COST_KINDS = ("idle-node", "idle-pool", "ray-idle", "low-utilization", "idle-while-waiting", "no-capacity-coming")

# Every remappable key binding, by id. The TUI defines its bindings with these ids; the config
# checks `[keys]` against this list so a typo is reported instead of silently ignored.
BINDING_IDS = {
    "quit": "quit mltop",
    "help": "show every key",
    "filter": "filter the jobs",
    "filter.clear": "clear the filter",
    "jobs.details": "open the selected job's details",
    "jobs.cancel": "cancel the selected job",
    "jobs.retry": "retry the selected failed or cancelled run",
    "pools.scale": "scale the selected pool",
    "warnings.show": "go to the idle-cost warnings",
    "panel.details": "open the selected node's or pool's details",
    "panel.previous": "go to the previous panel",
    "panel.next": "go to the next panel",
    "cursor.down": "move down",
    "cursor.up": "move up",
    "refresh": "refresh every source now",
}


# What a key in a binding may be, as Textual names keys (kept here, not imported: this module
# must not import Textual; tests/test_local_input.py checks these against textual.keys).
# Modifiers in the order Textual writes them in a key event's name ("ctrl+shift+up"):
KEY_MODIFIERS = ("alt", "ctrl", "hyper", "meta", "shift", "super")
NAMED_KEYS = frozenset({
    "escape", "enter", "return", "tab", "space", "backspace", "delete", "insert", "home", "end",
    "pageup", "pagedown", "up", "down", "left", "right", *(f"f{n}" for n in range(1, 25)),
    # Printable ASCII characters, by the name Textual gives them (a lone "?" is also fine; ","
    # separates keys, so it is only ever written "comma").
    "ampersand", "apostrophe", "asterisk", "at", "backslash", "circumflex_accent", "colon", "comma",
    "dollar_sign", "equals_sign", "exclamation_mark", "full_stop", "grave_accent", "greater_than_sign",
    "left_curly_bracket", "left_parenthesis", "left_square_bracket", "less_than_sign", "minus",
    "number_sign", "percent_sign", "plus", "question_mark", "quotation_mark", "right_curly_bracket",
    "right_parenthesis", "right_square_bracket", "semicolon", "slash", "tilde", "underscore",
    "vertical_line",
})


class ConfigError(Exception):
    """One line for the user: where, which key, and why."""


class _Strict(BaseModel):
    # allow_inf_nan=False: TOML has nan and inf, and no setting here means either.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def check_key(key: str) -> None:
    """One key of a binding ("ctrl+k", "question_mark", "?"), as Textual can match it; else ValueError."""
    if len(key) == 1:  # a lone character; Textual turns "?" into "question_mark" itself
        if not key.isprintable():
            raise ValueError(f"{key!r} is not a printable character; name the key (e.g. 'tab')")
        return
    *modifiers, name = key.split("+")
    unknown = [m for m in modifiers if m and m not in KEY_MODIFIERS]
    if unknown:
        raise ValueError(f"{key!r}: unknown modifier {unknown[0]!r}; modifiers: {', '.join(KEY_MODIFIERS)}")
    if "" in modifiers or not name:
        raise ValueError(f"{key!r}: a key is missing next to a '+' (the '+' key itself is 'plus')")
    if len(set(modifiers)) != len(modifiers):
        raise ValueError(f"{key!r}: a modifier is given twice")
    if not (name in NAMED_KEYS or (len(name) == 1 and name.isprintable() and not name.isspace())):
        what = f"{key!r}: {name!r}" if modifiers else repr(key)
        hint = "key names are lower case" if name.lower() in NAMED_KEYS else (
            "use one character or a key name such as escape, enter, tab, space, up, pageup, f1..f24, slash, "
            "question_mark")
        raise ValueError(f"{what} is not a key ({hint})")
    if modifiers != sorted(modifiers):
        # Textual names a key event with its modifiers sorted; "shift+ctrl+up" would never match.
        raise ValueError(f"{key!r}: write the modifiers in this order: {'+'.join([*sorted(modifiers), name])!r}")


def _check_keys(value: str) -> str:
    """A binding's comma-separated keys."""
    if not value.strip():
        raise ValueError("needs at least one key")
    for key in value.split(","):
        key = key.strip()
        if not key:
            raise ValueError(f"{value!r} has an empty key (write ',' as 'comma')")
        check_key(key)
    return value


Price = Annotated[float, Field(ge=0)]
Keys = Annotated[str, AfterValidator(_check_keys)]


class HttpSourceConfig(_Strict):
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


class RaySourceConfig(HttpSourceConfig):
    """A Ray dashboard: nothing beyond the common HTTP settings."""


class KfpSourceConfig(HttpSourceConfig):
    namespaces: list[str] = Field(default_factory=list)
    token_file: str | None = None
    cookie: str | None = None  # raw Cookie header, e.g. "oauth2_proxy_kubeflow=..."
    header_name: str | None = None
    header_value: str | None = None


class PrometheusSourceConfig(HttpSourceConfig):
    window_minutes: float = Field(default=10.0, gt=0, le=24 * 60)  # utilization is averaged over this


class KubeSourceConfig(_Strict):
    context: str | None = None  # default: the kubeconfig's current context
    kubeconfig: str | None = None  # default: KUBECONFIG, then ~/.kube/config
    in_cluster: bool = False  # use the pod's service account (mltop running inside the cluster)


class PricesConfig(_Strict):
    pools: dict[str, Price] = Field(default_factory=dict)  # pool name -> $/h per node
    instance_types: dict[str, Price] = Field(default_factory=dict)  # instance type -> $/h per node
    gpu_models: dict[str, Price] = Field(default_factory=dict)  # GPU model -> $/h per GPU


class CostConfig(_Strict):
    idle_threshold_minutes: float = Field(default=15.0, ge=0)
    low_utilization_percent: float = Field(default=10.0, ge=0, le=100)
    low_utilization_window_minutes: float = Field(default=10.0, ge=0)
    kinds: list[str] = Field(default_factory=lambda: list(COST_KINDS))
    currency: str = "$"
    spot_discount: float = Field(default=0.0, ge=0, lt=1)
    prices: PricesConfig = Field(default_factory=PricesConfig)

    @field_validator("kinds")
    @classmethod
    def _known_kinds(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(COST_KINDS))
        if unknown:
            raise ValueError(f"unknown warning kind {unknown[0]!r}; known: {', '.join(COST_KINDS)}")
        return value


class FileConfig(_Strict):
    refresh: float = Field(default=DEFAULT_REFRESH, ge=0.2, le=3600)
    read_only: bool = False
    finished_limit: int = Field(default=50, ge=0, le=10000)
    stop_patience: float = Field(default=30.0, gt=0, le=3600)
    ray: list[RaySourceConfig] = Field(default_factory=list)
    kubernetes: list[KubeSourceConfig] = Field(default_factory=list)
    kfp: list[KfpSourceConfig] = Field(default_factory=list)
    prometheus: list[PrometheusSourceConfig] = Field(default_factory=list)
    cost: CostConfig = Field(default_factory=CostConfig)
    keys: dict[str, Keys] = Field(default_factory=dict)

    @field_validator("keys")
    @classmethod
    def _known_bindings(cls, value: dict[str, str]) -> dict[str, str]:
        for binding_id in value:
            if binding_id not in BINDING_IDS:
                raise ValueError(f"unknown binding {binding_id!r}; known: {', '.join(sorted(BINDING_IDS))}")
        return value


@dataclass(frozen=True)
class Config:
    ray: tuple[Endpoint, ...] = ()
    kubernetes: tuple[KubeTarget, ...] = ()
    kfp: tuple[KfpEndpoint, ...] = ()
    prometheus: tuple[PrometheusEndpoint, ...] = ()
    refresh: float = DEFAULT_REFRESH
    read_only: bool = False
    finished_limit: int = 50
    stop_patience: float = 30.0
    keymap: Mapping[str, str] = field(default_factory=dict)
    path: Path | None = None  # the file read, if any
    cost: CostConfig = field(default_factory=lambda: CostConfig())


def check_http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{value!r} is not an http(s) URL")
    return value.rstrip("/")


def default_config_path() -> Path:
    from platformdirs import user_config_path  # imported here: only needed when no path is given

    return user_config_path("mltop", appauthor=False) / "config.toml"


def read_file(path: Path, explicit: bool) -> FileConfig:
    if str(path) == os.devnull:
        return FileConfig()  # MLTOP_CONFIG=/dev/null: the usual way to say "no config file"
    try:
        data = read_regular(path)  # a FIFO or device is refused, never waited on
    except (FileNotFoundError, NotADirectoryError):
        if explicit:
            raise ConfigError(f"{path}: no such config file") from None
        return FileConfig()
    except OSError as exc:
        raise ConfigError(f"{path}: {read_problem(exc)}") from None
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start} is {data[exc.start]:#04x})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    try:
        return FileConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_first_problem(path, exc)) from None


def _first_problem(path: Path, exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "(top level)"
    if err["type"] == "extra_forbidden":
        why = "unknown key"
    else:
        why = str(err["msg"]).removeprefix("Value error, ")
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{path}: {where}: {why}{more}"


def parse_ray_flag(value: str) -> tuple[str | None, str]:
    """`--ray URL` or `--ray NAME=URL`."""
    name, sep, url = value.partition("=")
    if sep and "://" not in name:
        return name.strip() or None, url.strip()
    return None, value.strip()


def default_name(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or url
    return f"{host}:{parts.port}" if parts.port and parts.port != 8265 else host


def _unique(names: list[str]) -> list[str]:
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


def kube_targets(
    contexts: list[str] | None, kubeconfig: str | None, file: FileConfig, env: Mapping[str, str], path: Path
) -> tuple[KubeTarget, ...]:
    """Flags, then the file's [[kubernetes]] entries, then what kubectl would use by itself.
    Paths in KUBECONFIG, and a colon-separated `kubeconfig`, are checked when the source is made."""
    local_file(kubeconfig, "--kubeconfig")
    if contexts:
        return tuple(KubeTarget(context=c, kubeconfig=kubeconfig) for c in contexts)
    if kubeconfig:
        return (KubeTarget(kubeconfig=kubeconfig),)
    if file.kubernetes:
        for i, k in enumerate(file.kubernetes):
            if k.kubeconfig and os.pathsep not in k.kubeconfig:
                local_file(k.kubeconfig, f"{path}: kubernetes.{i}.kubeconfig")
        return tuple(KubeTarget(k.context, k.kubeconfig, k.in_cluster) for k in file.kubernetes)
    default = Path(env.get("HOME", "~")).expanduser() / ".kube" / "config"
    if env.get("KUBECONFIG") or default.is_file():
        return (KubeTarget(),)
    if env.get("KUBERNETES_SERVICE_HOST"):
        return (KubeTarget(in_cluster=True),)
    return ()


def kfp_endpoints(
    flags: list[str] | None, namespaces: list[str] | None, file: FileConfig, env: Mapping[str, str], path: Path
) -> tuple[KfpEndpoint, ...]:
    """--kfp flags, else KF_PIPELINES_ENDPOINT, else the file's [[kfp]] entries."""
    token_file = env.get("KF_PIPELINES_SA_TOKEN_PATH") or None
    specs: list[tuple[str | None, str]] = []
    if flags:
        for flag in flags:
            name, url = parse_ray_flag(flag)
            try:
                specs.append((name, check_http_url(url)))
            except ValueError as exc:
                raise ConfigError(f"--kfp: {exc}") from None
    elif env.get("KF_PIPELINES_ENDPOINT"):
        try:
            specs.append((None, check_http_url(env["KF_PIPELINES_ENDPOINT"])))
        except ValueError as exc:
            raise ConfigError(f"KF_PIPELINES_ENDPOINT: {exc}") from None
    if specs:
        names = _unique([name or default_name(url) for name, url in specs])
        return tuple(KfpEndpoint(name=n, url=u, namespaces=tuple(namespaces or ()), token_file=token_file)
                     for n, (_, u) in zip(names, specs))
    names = _unique([k.name or default_name(k.url) for k in file.kfp])
    out = []
    for name, k in zip(names, file.kfp):
        if (k.header_name is None) != (k.header_value is None):
            raise ConfigError(f"{path}: kfp.{name}: header_name and header_value go together")
        own_token_file = local_file(k.token_file, f"{path}: kfp.{name}.token_file")
        ca_file = local_file(k.ca_file, f"{path}: kfp.{name}.ca_file")
        out.append(KfpEndpoint(
            name=name, url=k.url, namespaces=tuple(namespaces or k.namespaces), token=k.token,
            token_file=own_token_file or (None if k.token else token_file), cookie=k.cookie,
            header=(k.header_name, k.header_value) if k.header_name and k.header_value else None,
            ca_file=ca_file, verify_tls=k.verify_tls, timeout=k.timeout,
        ))
    return tuple(out)


def prometheus_endpoints(
    flags: list[str] | None, file: FileConfig, window: float, path: Path
) -> tuple[PrometheusEndpoint, ...]:
    if flags:
        out = []
        for flag in flags:
            name, url = parse_ray_flag(flag)
            try:
                url = check_http_url(url)
            except ValueError as exc:
                raise ConfigError(f"--prometheus: {exc}") from None
            out.append(PrometheusEndpoint(name=name or default_name(url), url=url, window_seconds=int(window * 60)))
        return tuple(out)
    out = []
    for p in file.prometheus:
        name = p.name or default_name(p.url)
        out.append(PrometheusEndpoint(name=name, url=p.url, window_seconds=int(p.window_minutes * 60), token=p.token,
                                      ca_file=local_file(p.ca_file, f"{path}: prometheus.{name}.ca_file"),
                                      verify_tls=p.verify_tls))
    return tuple(out)


def load(
    *,
    ray_flags: list[str] | None = None,
    prometheus_flags: list[str] | None = None,
    kfp_flags: list[str] | None = None,
    kfp_namespace_flags: list[str] | None = None,
    context_flags: list[str] | None = None,
    kubeconfig_flag: str | None = None,
    config_flag: str | None = None,
    refresh_flag: float | None = None,
    read_only_flag: bool = False,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Resolve the configuration. Raises ConfigError with one line for the user."""
    env = os.environ if environ is None else environ
    explicit = config_flag or env.get("MLTOP_CONFIG")
    path = Path(explicit).expanduser() if explicit else default_config_path()
    file = read_file(path, explicit=bool(explicit))

    env_token = env.get("RAY_AUTH_TOKEN") or None
    specs: list[tuple[str | None, str, RaySourceConfig | None]] = []
    if ray_flags:
        for flag in ray_flags:
            name, url = parse_ray_flag(flag)
            try:
                specs.append((name, check_http_url(url), None))
            except ValueError as exc:
                raise ConfigError(f"--ray: {exc}") from None
    elif env.get("RAY_ADDRESS", "").startswith(("http://", "https://")):
        try:
            specs.append((None, check_http_url(env["RAY_ADDRESS"]), None))
        except ValueError as exc:
            raise ConfigError(f"RAY_ADDRESS: {exc}") from None
    else:
        specs = [(s.name, s.url, s) for s in file.ray]

    names = _unique([name or default_name(url) for name, url, _ in specs])
    endpoints = []
    for name, (_, url, spec) in zip(names, specs):
        if spec is None:
            endpoints.append(Endpoint(name=name, url=url, token=env_token))
        else:
            # A token written into one cluster's own entry is for that cluster only, so it
            # beats the one global RAY_AUTH_TOKEN; entries without one take the variable.
            endpoints.append(
                Endpoint(
                    name=name,
                    url=url,
                    token=spec.token or env_token,
                    ca_file=local_file(spec.ca_file, f"{path}: ray.{name}.ca_file"),
                    verify_tls=spec.verify_tls,
                    timeout=spec.timeout,
                )
            )

    if refresh_flag is not None and not (math.isfinite(refresh_flag) and 0.2 <= refresh_flag <= 3600):
        raise ConfigError("--refresh: must be between 0.2 and 3600 seconds")
    env_read_only = env.get("MLTOP_READ_ONLY", "").lower() in ("1", "true", "yes", "on")
    return Config(
        ray=tuple(endpoints),
        kubernetes=kube_targets(context_flags, kubeconfig_flag, file, env, path),
        kfp=kfp_endpoints(kfp_flags, kfp_namespace_flags, file, env, path),
        prometheus=prometheus_endpoints(prometheus_flags, file, file.cost.low_utilization_window_minutes or 10.0, path),
        refresh=refresh_flag if refresh_flag is not None else file.refresh,
        read_only=read_only_flag or env_read_only or file.read_only,
        finished_limit=file.finished_limit,
        stop_patience=file.stop_patience,
        keymap=dict(file.keys),
        path=path if path.exists() else None,
        cost=file.cost,
    )


def cost_policy(cost: CostConfig):  # -> mltop.cost.CostPolicy
    from datetime import timedelta

    from mltop.cost import CostPolicy

    return CostPolicy(
        idle_threshold=timedelta(minutes=cost.idle_threshold_minutes),
        low_utilization_percent=cost.low_utilization_percent,
        low_utilization_window=timedelta(minutes=cost.low_utilization_window_minutes),
        kinds=frozenset(cost.kinds),
    )


def cost_prices(cost: CostConfig):  # -> mltop.prices.PriceBook
    from mltop.prices import price_book

    return price_book(pools=cost.prices.pools, instances=cost.prices.instance_types, per_gpu=cost.prices.gpu_models,
                      spot_discount=cost.spot_discount, currency=cost.currency)
