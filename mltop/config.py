"""Typed configuration: flags, then environment variables, then the TOML file, then defaults.

Each backend's part (its `[[section]]`, flags and variables) is declared by the backend in
`mltop/backends/` and found through `mltop.registry`; this module assembles the whole. Every
problem becomes one line naming the file, the key and why (ConfigError); the CLI prints it and
exits 2. No Textual, no adapter.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, Field, ValidationError, create_model, field_validator

from mltop.config_types import ConfigError, Strict
from mltop.keys import BINDINGS, check_keys
from mltop.local_files import read_problem, read_regular
from mltop.registry import Inputs, backends, wait_models

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

__all__ = ["Config", "ConfigError", "CostConfig", "load", "cost_policy", "cost_prices"]

DEFAULT_REFRESH = 2.0

COST_KINDS = ("idle-node", "idle-pool", "ray-idle", "low-utilization", "idle-while-waiting", "no-capacity-coming",
              "unusable-gpus")
BINDING_IDS = {binding_id: spec.description for binding_id, spec in BINDINGS.items()}


Price = Annotated[float, Field(ge=0)]
Keys = Annotated[str, AfterValidator(check_keys)]


class PricesConfig(Strict):
    pools: dict[str, Price] = Field(default_factory=dict)  # pool name -> $/h per node
    instance_types: dict[str, Price] = Field(default_factory=dict)  # instance type -> $/h per node
    gpu_models: dict[str, Price] = Field(default_factory=dict)  # GPU model -> $/h per GPU


class CostConfig(Strict):
    idle_threshold_minutes: float = Field(default=15.0, ge=0)
    low_utilization_percent: float = Field(default=10.0, ge=0, le=100)
    low_utilization_window_minutes: float = Field(default=10.0, ge=0)
    kinds: list[str] = Field(default_factory=lambda: list(COST_KINDS))
    currency: str = "$"
    spot_discount: float = Field(default=0.0, ge=0, lt=1)
    prices: PricesConfig = Field(default_factory=PricesConfig)
    # Which region's list prices the shipped catalog is read in (a node's own zone label wins):
    # `region` for every cloud that has a region of that name, `regions` per cloud ({aws = "us-west-2"}).
    region: str | None = None
    regions: dict[str, str] = Field(default_factory=dict)

    @field_validator("kinds")
    @classmethod
    def _known_kinds(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(COST_KINDS))
        if unknown:
            raise ValueError(f"unknown warning kind {unknown[0]!r}; known: {', '.join(COST_KINDS)}")
        return value


class StateConfig(Strict):
    history: bool = True  # keep idle-since, the day's waste and the audit in the state store


class Settings(Strict):
    """The file's settings that are not a backend's section."""

    refresh: float = Field(default=DEFAULT_REFRESH, ge=0.2, le=3600)
    read_only: bool = False
    finished_limit: int = Field(default=50, ge=0, le=10000)
    stop_patience: float = Field(default=30.0, gt=0, le=3600)
    cost: CostConfig = Field(default_factory=CostConfig)
    keys: dict[str, Keys] = Field(default_factory=dict)
    state: StateConfig = Field(default_factory=StateConfig)

    @field_validator("keys")
    @classmethod
    def _known_bindings(cls, value: dict[str, str]) -> dict[str, str]:
        for binding_id in value:
            if binding_id not in BINDING_IDS:
                raise ValueError(f"unknown binding {binding_id!r}; known: {', '.join(sorted(BINDING_IDS))}")
        return value


_file_models: dict[tuple[Any, ...], type[Settings]] = {}


def file_model() -> type[Settings]:
    """The whole file's model: the settings plus one `[[section]]` list per registered backend."""
    sections = tuple((b.section, b.entry_model) for b in backends() if b.section and b.entry_model)
    if sections not in _file_models:
        fields: dict[str, Any] = {name: (list[model], Field(default_factory=list)) for name, model in sections}
        _file_models[sections] = create_model("FileConfig", __base__=Settings, **fields)
    return _file_models[sections]


@dataclass(frozen=True)
class Config:
    endpoints: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)  # by backend kind
    refresh: float = DEFAULT_REFRESH
    read_only: bool = False
    finished_limit: int = 50
    stop_patience: float = 30.0
    keymap: Mapping[str, str] = field(default_factory=dict)
    path: Path | None = None  # the file read, if any
    cost: CostConfig = field(default_factory=lambda: CostConfig())
    history: bool = True  # --no-history, MLTOP_NO_HISTORY=1 or [state] history = false: off

    def of(self, kind: str) -> tuple[Any, ...]:
        """The endpoints configured for one backend."""
        return tuple(self.endpoints.get(kind, ()))

    @property
    def has_sources(self) -> bool:
        return any(self.endpoints.values())


def default_config_path() -> Path:
    from platformdirs import user_config_path  # imported here: only needed when no path is given

    return user_config_path("mltop", appauthor=False) / "config.toml"


def read_file(path: Path, explicit: bool) -> Settings:
    model = file_model()
    if str(path) == os.devnull:
        return model()  # MLTOP_CONFIG=/dev/null: the usual way to say "no config file"
    try:
        data = read_regular(path)  # a FIFO or device is refused, never waited on
    except (FileNotFoundError, NotADirectoryError):
        if explicit:
            raise ConfigError(f"{path}: no such config file") from None
        return model()
    except OSError as exc:
        raise ConfigError(f"{path}: {read_problem(exc)}") from None
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start} is {data[exc.start]:#04x})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    try:
        return model.model_validate(raw)
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


def load(
    flags: Mapping[str, Any] | None = None,
    *,
    config_flag: str | None = None,
    refresh_flag: float | None = None,
    read_only_flag: bool = False,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Resolve the configuration. `flags` holds every backend flag by its dest (`{"ray": [...]}`).
    Raises ConfigError with one line for the user."""
    env = os.environ if environ is None else environ
    flags = flags or {}
    explicit = config_flag or env.get("MLTOP_CONFIG")
    path = Path(explicit).expanduser() if explicit else default_config_path()
    file = read_file(path, explicit=bool(explicit))
    endpoints = {}
    for b in backends():
        entries = list(getattr(file, b.section, None) or []) if b.section else []
        endpoints[b.kind] = b.resolve(Inputs(flags=flags, env=env, entries=entries, path=path, settings=file))
    if refresh_flag is not None and not (math.isfinite(refresh_flag) and 0.2 <= refresh_flag <= 3600):
        raise ConfigError("--refresh: must be between 0.2 and 3600 seconds")
    env_read_only = env.get("MLTOP_READ_ONLY", "").lower() in ("1", "true", "yes", "on")
    no_history = bool(flags.get("no_history")) or env.get("MLTOP_NO_HISTORY", "").lower() in ("1", "true", "yes", "on")
    return Config(
        endpoints=endpoints,
        refresh=refresh_flag if refresh_flag is not None else file.refresh,
        read_only=read_only_flag or env_read_only or file.read_only,
        finished_limit=file.finished_limit,
        stop_patience=file.stop_patience,
        keymap=dict(file.keys),
        path=path if path.exists() else None,
        cost=file.cost,
        history=file.state.history and not no_history,
    )


def cost_policy(cost: CostConfig):  # -> mltop.cost.CostPolicy
    from datetime import timedelta

    from mltop.cost import CostPolicy

    return CostPolicy(
        idle_threshold=timedelta(minutes=cost.idle_threshold_minutes),
        low_utilization_percent=cost.low_utilization_percent,
        low_utilization_window=timedelta(minutes=cost.low_utilization_window_minutes),
        kinds=frozenset(cost.kinds),
        waits_on=wait_models(),
    )


def cost_prices(cost: CostConfig):  # -> mltop.prices.PriceBook
    from mltop.prices import price_book

    return price_book(pools=cost.prices.pools, instances=cost.prices.instance_types, per_gpu=cost.prices.gpu_models,
                      spot_discount=cost.spot_discount, currency=cost.currency, region=cost.region,
                      regions=cost.regions)
