"""The headless core never imports Textual or Rich.

Checked two ways: in a fresh interpreter per module, `textual` must not be loaded at all; and no
headless source file has an import of `textual` or `rich`. (Rich itself does get loaded as a side
effect of importing httpx, whose optional CLI pulls it in, so sys.modules cannot judge Rich.)
"""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import mltop
import mltop.adapters
import mltop.demo

PACKAGE = Path(mltop.__file__).parent
HEADLESS = ["mltop.model", "mltop.config", "mltop.refresh", "mltop.report", "mltop.jobs", "mltop.format",
            "mltop.errors", "mltop.cli"]
HEADLESS += [f"mltop.adapters.{m.name}" for m in pkgutil.iter_modules(mltop.adapters.__path__)]
HEADLESS += [f"mltop.demo.{m.name}" for m in pkgutil.iter_modules(mltop.demo.__path__)]


@pytest.mark.parametrize("module", HEADLESS)
def test_headless_module_does_not_load_textual(module):
    code = f"import sys, {module}; print('textual' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("module", [m for m in HEADLESS if m != "mltop.cli"])  # cli starts the TUI, lazily
def test_headless_source_has_no_ui_import(module):
    path = PACKAGE.parent / (module.replace(".", "/") + ".py")
    tree = ast.parse(path.read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
    ui = {name for name in imported if name.split(".")[0] in ("textual", "rich")}
    ui |= {name for name in imported if name.startswith(("mltop.tui", "mltop.widgets"))}
    assert not ui, f"{path} imports {ui}"
