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
    await pilot.pause(0.2)  # let panels whose height follows their rows lay out again


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


def test_why_it_waits_80x24(snap_compare, frozen_demo):
    """The first task of triage, in one key: enter on the longest-waiting job (the start cursor)."""
    async def run_before(pilot):
        await _loaded(pilot)
        await pilot.press("enter")
        await pilot.app.screen.workers.wait_for_complete()
        await pilot.pause()

    assert snap_compare(make_full_app(frozen_demo), terminal_size=(80, 24), run_before=run_before)


def test_warning_pane_80x24(snap_compare, frozen_demo):
    async def run_before(pilot):
        await _loaded(pilot)
        await pilot.press("w", "enter")
        await pilot.pause()

    assert snap_compare(make_full_app(frozen_demo), terminal_size=(80, 24), run_before=run_before)


def make_full_app(platform, **options):
    from mltop.adapters.kube import KubeSource
    from mltop.adapters.ray import RaySource
    from mltop.config import Config
    from mltop.tui.app import MltopApp
    from tests.conftest import fixed_clock

    config = Config(endpoints={"ray": platform.ray_endpoints(), "kubernetes": platform.kube_targets()})
    sources = [RaySource(e, clock=fixed_clock) for e in config.of("ray")]
    sources += [KubeSource(t, clock=fixed_clock) for t in config.of("kubernetes")]
    return MltopApp(config, sources, clock=fixed_clock, start_polling=False, **options)


def test_ray_and_kubernetes_80x24(snap_compare, frozen_demo):
    assert snap_compare(make_full_app(frozen_demo), terminal_size=(80, 24), run_before=_loaded)


def test_ray_and_kubernetes_160x48(snap_compare, frozen_demo):
    assert snap_compare(make_full_app(frozen_demo), terminal_size=(160, 48), run_before=_loaded)


def test_scale_dialog_80x24(snap_compare, frozen_demo):
    async def run_before(pilot):
        from mltop.widgets.infra_tables import PoolsTable

        await _loaded(pilot)
        table = pilot.app.query_one(PoolsTable)
        table.focus()
        table.select_key(next(k for k, p in table.records.items() if p.name == "serve-cluster/inference"))
        await pilot.press("s", "backspace", "2")

    assert snap_compare(make_full_app(frozen_demo), terminal_size=(80, 24), run_before=run_before)


# The same screens on a 16-colour terminal (the terminal's own palette) and with NO_COLOR: every
# state still reads by its word, FAILED stands out by weight (bold, reverse), nothing depends on hue.


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_ray_and_kubernetes_16_colours(snap_compare, frozen_demo, size):
    assert snap_compare(make_full_app(frozen_demo, ansi_colors=True), terminal_size=size, run_before=_loaded)


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_ray_and_kubernetes_no_color(snap_compare, frozen_demo, size, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")  # read (and removed) by the App when it is made
    assert snap_compare(make_full_app(frozen_demo), terminal_size=size, run_before=_loaded)


@pytest.mark.parametrize("size", [(80, 24)], ids=["80x24"])
def test_ray_and_kubernetes_ascii(snap_compare, frozen_demo, size):
    from mltop import format as fmt

    try:
        assert snap_compare(make_full_app(frozen_demo, ascii_only=True), terminal_size=size, run_before=_loaded)
    finally:
        fmt.use_ascii(False)


def test_ray_and_kubernetes_light_theme_80x24(snap_compare, frozen_demo):
    app = make_full_app(frozen_demo)
    app.theme = "textual-light"  # the states keep their words and weights on a light background
    assert snap_compare(app, terminal_size=(80, 24), run_before=_loaded)
