"""Import contracts: every layer imports only the layers below it.

    cli            -> anything
    tui            -> widgets, dashboard, report, actions, registry, config, keys, ... (never adapters)
    widgets        -> dashboard, model, format, keys, safe_text (never tui)
    dashboard, report -> cost, jobs, refresh, registry, config, keys, model, ...
    backends       -> adapters (to build a source), config_types, registry
    cost, jobs, refresh, actions, config, registry, keys, format, prices, scaling -> model and each other
    adapters       -> model, errors, safe_text, local_files, scaling, and their own helpers
    model          -> nothing of mltop

The graph is read from the source (every import statement, at any depth, so a lazy import inside a
function counts too), like import-linter does. Plus: in a fresh interpreter, the headless modules
do not load Textual at all. (Rich is loaded as a side effect of importing httpx, whose optional
CLI pulls it in, so sys.modules cannot judge Rich; the source check does.)
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import mltop

PACKAGE = Path(mltop.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module `path` imports, as absolute dotted names (relative imports resolved)."""
    tree = ast.parse(path.read_text())
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # `from pkg import module`
    return found


MODULES = {module_name(p): imports_of(p) for p in sorted(PACKAGE.rglob("*.py"))}


def under(name: str, *prefixes: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def mltop_imports(module: str) -> set[str]:
    return {name for name in MODULES[module] if under(name, "mltop") and name in MODULES}


UI = ("mltop.tui", "mltop.widgets")
HEADLESS = [m for m in MODULES if not under(m, *UI, "mltop.cli", "mltop.__main__")]

# module (prefix) -> what it may not import (prefixes)
FORBIDDEN = {
    "mltop.widgets": ("mltop.tui", "mltop.adapters", "mltop.backends", "mltop.cli"),
    "mltop.tui": ("mltop.adapters", "mltop.backends", "mltop.cli"),
    "mltop.dashboard": UI + ("mltop.adapters", "mltop.backends", "mltop.cli"),
    "mltop.report": UI + ("mltop.adapters", "mltop.backends", "mltop.cli"),
    "mltop.summary": UI + ("mltop.dashboard", "mltop.report", "mltop.adapters", "mltop.backends", "mltop.cli"),
    "mltop.cost": UI + ("mltop.dashboard", "mltop.report", "mltop.config", "mltop.registry", "mltop.adapters",
                        "mltop.backends", "mltop.refresh", "mltop.jobs", "mltop.cli"),
    "mltop.jobs": UI + ("mltop.dashboard", "mltop.report", "mltop.cost", "mltop.adapters", "mltop.backends",
                        "mltop.cli"),
    "mltop.refresh": UI + ("mltop.dashboard", "mltop.report", "mltop.adapters", "mltop.backends", "mltop.cli"),
    "mltop.actions": UI + ("mltop.dashboard", "mltop.report", "mltop.adapters", "mltop.backends", "mltop.cli"),
    # config knows backends only through the registry, which finds them by name at run time
    "mltop.config": UI + ("mltop.adapters", "mltop.backends", "mltop.dashboard", "mltop.report", "mltop.cli"),
    "mltop.config_types": UI + ("mltop.adapters", "mltop.backends", "mltop.config", "mltop.registry"),
    "mltop.registry": UI + ("mltop.adapters", "mltop.backends", "mltop.config", "mltop.dashboard", "mltop.cli"),
    "mltop.keys": UI + ("mltop.adapters", "mltop.backends", "mltop.config", "mltop.registry"),
    "mltop.backends": UI + ("mltop.dashboard", "mltop.report", "mltop.cli"),
    "mltop.model": ("mltop",),
}
# Adapters: only the model and their own helpers.
ADAPTER_ALLOWED = ("mltop.adapters", "mltop.model", "mltop.errors", "mltop.safe_text", "mltop.local_files",
                   "mltop.scaling")


@pytest.mark.parametrize("module", sorted(MODULES))
def test_each_module_imports_only_the_layers_below_it(module):
    imported = mltop_imports(module) - {module}
    for prefix, forbidden in FORBIDDEN.items():
        if under(module, prefix):
            bad = {name for name in imported if under(name, *forbidden) and not under(name, prefix)}
            assert not bad, f"{module} imports {sorted(bad)}, a layer it may not use"
    if under(module, "mltop.adapters"):
        bad = {name for name in imported if not under(name, *ADAPTER_ALLOWED)}
        assert not bad, f"adapter {module} imports {sorted(bad)}; adapters use only the model and their own helpers"


@pytest.mark.parametrize("module", sorted(m for m in HEADLESS))
def test_no_headless_module_imports_textual_or_rich(module):
    ui = {name for name in MODULES[module] if name.split(".")[0] in ("textual", "rich")}
    assert not ui, f"{module} imports {sorted(ui)}: only mltop.tui and mltop.widgets may"


@pytest.mark.parametrize("module", ["mltop.cli", "mltop.dashboard", "mltop.report", "mltop.config", "mltop.cost",
                                    "mltop.backends", "mltop.adapters.kube", "mltop.demo.platform"])
def test_the_report_path_does_not_load_textual(module):
    code = f"import sys, {module}; print('textual' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_the_contracts_can_fail():
    """A contract that names no real module checks nothing: every prefix must match something."""
    for prefix in (*FORBIDDEN, *ADAPTER_ALLOWED):
        assert any(under(m, prefix) for m in MODULES), prefix
    assert "mltop.widgets.jobs_table" in MODULES and "mltop.model" in mltop_imports("mltop.widgets.jobs_table")


MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


@pytest.mark.parametrize("path", sorted(p for p in PACKAGE.rglob("*.py") if "demo" not in p.parts),
                         ids=lambda p: module_name(p))
def test_modules_and_functions_stay_small(path):
    """A newcomer reads a module in one sitting and a function on one screen (the demo's
    simulated servers are exempt: they mirror real APIs route by route)."""
    source = path.read_text()
    assert source.count("\n") <= MAX_MODULE_LINES, f"{path.name}: {source.count(chr(10))} lines"
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            assert length <= MAX_FUNCTION_LINES, f"{path.name}: {node.name} is {length} lines"
