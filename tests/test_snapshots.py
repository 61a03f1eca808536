"""SVG snapshots of the main screens at 80x24 and 160x48; baselines live in screenshots/.

Deterministic: the demo's clock and the app's clock are fixed, polling is manual, workers finish
before the capture. Update baselines with `pytest tests/test_snapshots.py --snapshot-update` and
look at every changed SVG before committing it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pytest_textual_snapshot import SVGImageExtension

from tests.test_tui import make_app, select

SCREENSHOTS = Path(__file__).resolve().parents[1] / "screenshots"


@pytest.fixture(autouse=True)
def baselines_in_screenshots(monkeypatch):
    monkeypatch.setattr(SVGImageExtension, "dirname", classmethod(lambda cls, *, test_location: str(SCREENSHOTS)))


async def _loaded(pilot):
    await pilot.app.refresh_now()
    await pilot.pause()


def test_main_80x24(snap_compare, frozen_demo):
    assert snap_compare(make_app(frozen_demo), terminal_size=(80, 24), run_before=_loaded)


def test_main_160x48(snap_compare, frozen_demo):
    assert snap_compare(make_app(frozen_demo), terminal_size=(160, 48), run_before=_loaded)


def test_confirm_cancel_80x24(snap_compare, frozen_demo):
    async def run_before(pilot):
        await _loaded(pilot)
        select(pilot.app, "raysubmit_llama70b")
        await pilot.press("ctrl+d")

    assert snap_compare(make_app(frozen_demo), terminal_size=(80, 24), run_before=run_before)


def test_details_160x48(snap_compare, frozen_demo):
    async def run_before(pilot):
        await _loaded(pilot)
        select(pilot.app, "raysubmit_vit_oom")
        await pilot.press("enter")
        await pilot.app.screen.workers.wait_for_complete()
        await pilot.pause()

    assert snap_compare(make_app(frozen_demo), terminal_size=(160, 48), run_before=run_before)
