"""The backends mltop knows, each declared in one place: a new backend is one module that calls
`register()`, and config, CLI, demo and report pick it up from here. No Textual, no adapter.

A backend says how it is configured (its `[[section]]` model, its flags and environment
variables, and how they resolve into endpoints), how a source is built from an endpoint (the
adapter is imported only then), what it is called and what its jobs are called, which actions it
offers (by binding id), and how the demo platform serves it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BUILTIN = "mltop.backends"  # the package whose import registers the built-in backends


@dataclass(frozen=True)
class SourceFlag:
    """A command-line flag a backend reads (`dest` is its key in `Inputs.flags`)."""

    option: str  # "--ray"
    dest: str  # "ray"
    help: str
    metavar: str | None = None
    repeatable: bool = True  # action="append"; else a single value


@dataclass(frozen=True)
class Inputs:
    """What a backend resolves its endpoints from, in precedence order: flags, environment, file."""

    flags: Mapping[str, Any]  # every flag by dest (None when not given)
    env: Mapping[str, str]
    entries: list[Any]  # its validated `[[section]]` entries from the config file
    path: Path  # the config file, for messages
    settings: Any = None  # the whole validated file (for settings another section holds)


@dataclass(frozen=True)
class Backend:
    kind: str  # the source kind, as in keys ("ray/prod") and the report
    display_name: str  # "Ray", "Kubeflow Pipelines"
    job_noun: str  # what its jobs are called: "job", "run", "pod"
    resolve: Callable[[Inputs], tuple[Any, ...]]  # flags/env/file -> endpoints (ConfigError if bad)
    build: Callable[[Any, Any], Any]  # (endpoint, Config) -> Source
    # The same for one snapshot (`--once`): a source that starts no background work (watches)
    # it will never use. None: `build` serves both.
    build_once: Callable[[Any, Any], Any] | None = None
    section: str | None = None  # its `[[section]]` in the config file
    entry_model: type | None = None  # the pydantic model of one entry
    flags: tuple[SourceFlag, ...] = ()
    env: tuple[str, ...] = ()  # the environment variables it reads
    actions: frozenset[str] = frozenset()  # binding ids of the actions its sources can carry out
    demo: Callable[[Any], tuple[Any, ...]] | None = None  # DemoPlatform -> endpoints
    # How the cost engine explains why its waiting jobs wait: "nodes" (Kubernetes scheduling:
    # labels, taints, free GPUs per node), "ray-cluster" (the Ray cluster the job is in), or None.
    waits_on: str | None = None
    order: int = 50  # where its sources come in lists (lower first)


_backends: dict[str, Backend] = {}
_loaded = False


def register(backend: Backend) -> Backend:
    """Add (or replace) a backend; returns it, so a module can keep a handle."""
    _backends[backend.kind] = backend
    return backend


def unregister(kind: str) -> None:
    _backends.pop(kind, None)


def backends() -> list[Backend]:
    """Every known backend, built-ins first loaded on first use."""
    global _loaded
    if not _loaded:
        _loaded = True
        importlib.import_module(BUILTIN)  # by name: this module stays below the backends
    return sorted(_backends.values(), key=lambda b: (b.order, b.kind))


def backend(kind: str) -> Backend | None:
    backends()
    return _backends.get(kind)


def wait_models() -> tuple[tuple[str, str], ...]:
    """(kind, how its waiting jobs are explained) for every backend that says (see Backend.waits_on)."""
    return tuple((b.kind, b.waits_on) for b in backends() if b.waits_on)


# Row sources that are not backends of their own: the KubeRay RayJobs a Kubernetes source lists.
ROW_SOURCES = {"kuberay": ("KubeRay", "RayJob")}  # kind -> (display name, job noun)


def display_name(kind: str) -> str:
    found = backend(kind)
    return found.display_name if found else ROW_SOURCES.get(kind, (kind, ""))[0]


def job_noun(kind: str) -> str:
    found = backend(kind)
    return found.job_noun if found else ROW_SOURCES.get(kind, ("", "job"))[1]
