"""Backend text is data: hostile strings through every view are shown, never obeyed by the terminal.

Anyone who can submit a job, label a node or name a pipeline run controls text that mltop draws.
These tests put a corpus of hostile strings into the demo servers (Ray, Kubernetes, KFP), let mltop
read them over HTTP as it reads a real cluster, and check what the screen actually draws (the
compositor's cells, and the bytes a terminal would receive), the `--once` report and its stderr.
"""

from __future__ import annotations

import json
import os
import re
import sys
import unicodedata
from dataclasses import replace
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.text import Text
from textual.containers import VerticalScroll

from mltop.adapters.http import Endpoint
from mltop.adapters.kfp import KfpSource
from mltop.adapters.kube import KubeSource
from mltop.adapters.ray import RaySource
from mltop.cli import main
from mltop.config import Config
from mltop.dashboard import dashboard_for
from mltop.demo import kube_objects as k
from mltop.demo.ray_dashboard import Faults
from mltop.demo.ray_dashboard import make_app as make_ray_dashboard
from mltop.demo.scenario import new_ray_sim
from mltop.demo.server import LoopbackServer
from mltop.model import SourceHealth
from mltop.refresh import poll_all
from mltop.report import render_json, render_text
from mltop.safe_text import inert
from mltop.tui.app import MltopApp
from mltop.tui.confirm import ConfirmCancel
from mltop.tui.details import JobDetailsScreen
from mltop.tui.infra_details import InfraDetailsScreen
from mltop.tui.scale import ScaleDialog
from mltop.widgets.infra_tables import NodesTable, PoolsTable, WarningsTable
from mltop.widgets.jobs_table import JobsTable
from mltop.widgets.source_status import source_line
from tests.conftest import FIXED_NOW, fixed_clock

CORPUS = {
    "osc52": "\x1b]52;c;aGVsbG8=\x07",  # writes the operator's clipboard
    "osc0": "\x1b]0;pwned\x07",  # sets the window title
    "clear": "\x1b[2J",  # blanks the screen
    "sgr": "\x1b[31mred\x1b[0m",  # colours, and shifts every column after it
    "csi8": "\x9b2J",  # the 8-bit CSI: some terminals obey it as ESC [
    "bel": "ding\x07",
    "bs": "abc\x08\x08\x08xyz",
    "cr": "safe\rEVIL",
    "del": "del\x7f",
    "nul": "nul\x00",
    "rlo": "txt\u202eexe.sh",  # right-to-left override: one id made to read as another
    "lri": "a\u2066b",
    "zwsp": "zero\u200bwidth",
    "bom": "\ufeffbom",
    "surrogate": "lone\ud800",
    "close": "[/]",  # closes a markup tag that is not open: MarkupError if parsed
    "markup": "[bold red]x[/]",
    "link": "[link=http://x]y[/link]",
    "path": "zz/../victim",
    "long": "\x1b]0;long\x07" + "L" * 4990,
}
# How each one must look on screen: its visible form, as far as a narrow cell shows it.
VISIBLE = {
    "osc52": r"\x1b]52;c;aGVsbG8=\x07",
    "osc0": r"\x1b]0;pwned\x07",
    "clear": r"\x1b[2J",
    "sgr": r"\x1b[31mred\x1b[0m",
    "csi8": r"\x9b2J",
    "bel": r"ding\x07",
    "bs": r"abc\x08\x08\x08xyz",
    "cr": r"safe\x0dEVIL",
    "del": r"del\x7f",
    "nul": r"nul\x00",
    "rlo": r"txt\u202eexe.sh",
    "lri": r"a\u2066b",
    "zwsp": r"zero\u200bwidth",
    "bom": r"\ufeffbom",
    "surrogate": r"lone\ud800",
    "close": "[/]",
    "markup": "[bold red]x[/]",
    "link": "[link=http://x]y[/link]",
    "path": "zz/../victim",
    "long": r"\x1b]0;long\x07LLLL",
}
HOSTILE_RAY_ID = "raysubmit_[/]\x1b]0;id\x07"
HOSTILE_LOG_JOB = "raysubmit_hostile_log"
HOSTILE_MD = "md-\x1b]0;md\x07[/]"
HOSTILE_ERROR = "\x1b]52;c;ZXJy\x07\x1b[2J[/] server error\u202e"


UNSAFE_CATEGORIES = {"Cc", "Cf", "Cs", "Zl", "Zp"}  # controls, format characters, surrogates, separators


def unsafe(text: str) -> set[str]:
    """The characters in `text` that must not reach a terminal: those `inert` would change, and
    (so that a broken `inert` cannot hide them) every control, format and surrogate code point."""
    return {ch for ch in set(text)
            if ch != "\n" and (inert(ch) != ch or unicodedata.category(ch) in UNSAFE_CATEGORIES)}


# -- the sanitiser itself ---------------------------------------------------------------------


def test_inert_changes_every_control_format_and_surrogate_code_point():
    missed = [hex(cp) for cp in range(sys.maxunicode + 1)
              if unicodedata.category(chr(cp)) in UNSAFE_CATEGORIES and inert(chr(cp)) == chr(cp)]
    assert missed == []


def test_inert_leaves_ordinary_text_alone():
    for text in ("raysubmit_pretrain13b", "llm-pretrain-1-x7k2p", "NVIDIA-A100-SXM4-40GB", "日本語 é ✓"):
        assert inert(text) == text


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_inert_output_never_holds_an_unsafe_character(text):
    once = inert(text)
    assert unsafe(once) == set() and "\n" not in once
    assert unsafe(inert(once)) == set()
    assert unsafe(inert(text, multiline=True)) == set()


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E)))
def test_inert_keeps_printable_ascii(text):
    if "://" not in text and "bearer" not in text.lower():
        assert inert(text) == text


# -- the hostile platform -----------------------------------------------------------------------


def seed_ray(platform) -> None:
    """Ray jobs whose name, owner, entrypoint, message and log lines are hostile."""
    sim = platform.ray_sim

    def seed() -> None:
        for i, (tag, text) in enumerate(CORPUS.items()):
            # 64 GPUs never fit: every one waits, at the top of the queue.
            job = sim.submit(f"python {tag}.py {text}", submission_id=f"raysubmit_h{i:02d}_{tag}", gpus=64,
                             metadata={"name": f"{tag}:{text}", "owner": text})
            job.message = f"{tag} says {text}"  # what Ray reports about the job
        # One with a hostile id (`[/` in an id once crashed the details screen).
        sim.submit("python x.py", submission_id=HOSTILE_RAY_ID, gpus=64, metadata={"name": "hostile-id-job"})
        # One that ran and failed, with a hostile entrypoint and log: its details show them all.
        failed = sim.submit("python evil.py " + " ".join(CORPUS.values()), submission_id=HOSTILE_LOG_JOB, gpus=0,
                            metadata={"name": "hostile-log-job", "owner": CORPUS["osc52"]}, run_seconds=0, exit_code=1)
        failed.logs.extend(f"log {tag}: {text}" for tag, text in CORPUS.items())
        sim.advance()  # its run time is over: it fails, quoting the last log lines in its message

    platform.server.call(seed)


def seed_kube(platform) -> None:
    """Nodes whose pool and GPU model labels, condition messages and taints are hostile; pods whose
    owners and scheduler messages are; and a MachineDeployment with a hostile name."""
    store = platform.kube_store
    hour = timedelta(hours=1)

    def seed() -> None:
        for i, (tag, text) in enumerate(CORPUS.items()):
            name = f"hostile-node-{i:02d}"
            node = k.node(name, gpus=8, created=FIXED_NOW - 5 * hour,
                          labels={"karpenter.sh/nodepool": f"{tag}:{text}", **k.gfd_labels(f"{tag}:{text}", 8, 40960)},
                          taints=[{"key": "evil", "value": text, "effect": "NoSchedule"}])
            node["status"]["conditions"][1]["message"] = f"{tag} condition {text}"
            store.put(node)
            store.put(k.pod(f"hostile-pod-{i:02d}", "ml", gpus=1, node_name=name, created=FIXED_NOW - hour,
                            owner=("Job", f"{tag}:{text}")))
            store.put(k.pod(f"hostile-pending-{i:02d}", "ml", gpus=1, created=FIXED_NOW - hour,
                            owner=("Job", f"{tag}:{text}"), unschedulable_message=f"{tag} scheduler {text}"))
        store.put(k.machine_deployment(HOSTILE_MD, "capi", replicas=1, ready=1, min_size=0, max_size=4,
                                       gpus_per_machine=4, created=FIXED_NOW - 24 * hour))

    platform.server.call(seed)


def seed_kfp(platform) -> dict[str, str]:
    """KFP runs whose display names, errors, tasks and parameters are hostile, in hostile
    experiments. Returns the run id of each corpus entry."""
    store = platform.kfp_store
    ids = {}
    for i, (tag, text) in enumerate(CORPUS.items()):
        experiment = store.add_experiment(f"{tag} experiment {text}", namespace="team-nlp")
        run = store.add_run(f"{tag}:{text}", experiment["experiment_id"], state="PENDING" if i % 2 else "FAILED",
                            created_at=FIXED_NOW - timedelta(minutes=i + 1), error=f"{tag} error {text}",
                            tasks=[{"display_name": f"{tag} task {text}", "state": "FAILED"}],
                            parameters={"p": text})
        ids[tag] = run["run_id"]
    return ids


@pytest.fixture
def broken_ray():
    """A Ray dashboard that answers everything with a 500 and a hostile body."""
    server = LoopbackServer()
    server.start()
    sim = server.call(lambda: new_ray_sim(fixed_clock))
    faults = Faults()
    faults.status, faults.body = 500, HOSTILE_ERROR
    url = server.serve(make_ray_dashboard(sim, faults=faults))
    yield url
    server.stop()


@pytest.fixture
def hostile(frozen_demo, broken_ray):
    seed_ray(frozen_demo)
    seed_kube(frozen_demo)
    runs = seed_kfp(frozen_demo)
    return frozen_demo, broken_ray, runs


BROKEN_NAME = "broken\x1b]0;cfg\x07"  # a source name from a config file is text too


def make_app(platform, broken_url):
    broken = Endpoint(name=BROKEN_NAME, url=broken_url, timeout=5)
    config = Config(endpoints={"ray": (*platform.ray_endpoints(), broken), "kubernetes": platform.kube_targets(),
                               "kfp": platform.kfp_endpoints()})
    sources = [RaySource(e, clock=fixed_clock) for e in config.of("ray")]
    sources += [KubeSource(t, clock=fixed_clock) for t in config.of("kubernetes")]
    sources += [KfpSource(e, clock=fixed_clock) for e in config.of("kfp")]
    return MltopApp(config, sources, clock=fixed_clock, start_polling=False)


# -- what the screen draws ----------------------------------------------------------------------

# The only escape sequences Textual itself writes for a frame: colours and cursor moves.
TEXTUAL_SEQUENCES = re.compile(r"\x1b\[[0-9;]*m|\x1b\[[0-9]+;[0-9]+H")


def drawn(app) -> tuple[str, str]:
    """(cells, raw): the text of every cell of the current screen (modal backgrounds included),
    and the bytes a terminal would be sent for it, as Textual renders a frame to its driver."""
    update = app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    cells = "\n".join("".join(seg.text for strip in line for seg in strip if not seg.control)
                      for line in update.strips)
    return cells, update.render_segments(app.console)


class Screenshots:
    """Everything drawn over several frames (scroll positions, screens), checked together."""

    def __init__(self, app) -> None:
        self.app = app
        self.cells: list[str] = []

    async def take(self, pilot) -> str:
        await pilot.pause()
        cells, raw = drawn(self.app)
        assert unsafe(cells) == set(), f"drawn unsafe characters {unsafe(cells)}"
        leftover = TEXTUAL_SEQUENCES.sub("", raw)
        assert unsafe(leftover) == set(), f"the terminal would be sent {unsafe(leftover)}: {leftover[:300]!r}"
        self.cells.append(cells)
        return cells

    async def every_row(self, pilot, table) -> None:
        """A frame per page of a table, so rows below the fold are drawn too."""
        table.focus()
        page = max(1, table.scrollable_content_region.height - 2)
        rows = list(range(0, table.row_count, page)) + [table.row_count - 1]
        for row in rows:
            table.move_cursor(row=row, animate=False)
            await self.take(pilot)

    async def every_line(self, pilot, scroller) -> None:
        """A frame per page of a scrolling view."""
        await pilot.pause()
        page = max(1, scroller.scrollable_content_region.height - 1)
        for y in range(0, int(scroller.max_scroll_y) + page, page):
            scroller.scroll_to(y=y, animate=False)
            await self.take(pilot)

    @property
    def text(self) -> str:
        return "\n".join(self.cells)


def assert_visible(text: str, *tags: str) -> None:
    missing = [tag for tag in tags if VISIBLE[tag] not in text]
    assert missing == [], f"not shown in their visible form: {missing}"


async def loaded(app, pilot) -> None:
    await app.refresh_now()
    await pilot.pause()


def select(table, key_part: str) -> None:
    table.focus()
    key = next(key for key in table.records if key_part in key)
    table.select_key(key)


async def test_the_screen_reader_sees_ordinary_text(frozen_demo):
    """The extraction the other tests rely on sees cell text: without it they could not fail."""
    config = Config(endpoints={"ray": frozen_demo.ray_endpoints()})
    app = MltopApp(config, [RaySource(e, clock=fixed_clock) for e in config.of("ray")], clock=fixed_clock,
                   start_polling=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(app, pilot)
        cells, raw = drawn(app)
        assert "raysubmit_pretrain13b" in cells and "pretrain-13b" in cells and "ray/demo" in cells
        assert "raysubmit_pretrain13b" in raw
        # A raw control character in a cell is seen: put one in a row as a widget bug would.
        table = app.query_one(JobsTable)
        table.update_cell_at((0, 2), Text("\x1b]0;x\x07"))
        await pilot.pause()
        cells, raw = drawn(app)
        assert "\x1b" in cells and "\x1b]0;x" in TEXTUAL_SEQUENCES.sub("", raw)


async def test_main_screen_shows_hostile_text_inert(hostile):
    platform, broken_url, _ = hostile
    app = make_app(platform, broken_url)
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(app, pilot)
        shots = Screenshots(app)
        first = await shots.take(pilot)
        # The failing source's line quotes its hostile name and error body, inert.
        assert r"ray/broken\x1b]0;cfg\x07" in first and r"\x1b]52;c;ZXJy\x07\x1b[2J[/] server error" in first
        assert "ray/demo" in first and "kubernetes/demo-k8s" in first and "kfp/demo-kfp" in first
        for table in (app.query_one(JobsTable), app.query_one(WarningsTable), app.query_one(NodesTable),
                      app.query_one(PoolsTable)):
            await shots.every_row(pilot, table)
        text = shots.text
        assert_visible(text, *CORPUS)  # every hostile job name and owner, node pool and model
        assert "raysubmit_h00_osc52" in text and "hostile-node-00" in text
        assert r"md-\x1b]0;md\x07[/]" in text  # the MachineDeployment's pool row
        await pilot.press("question_mark")  # the keys screen, over all of it
        assert "Keys" in await shots.take(pilot)


async def test_ray_job_details_show_hostile_text_inert(hostile):
    platform, broken_url, _ = hostile
    app = make_app(platform, broken_url)
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(app, pilot)
        shots = Screenshots(app)
        select(app.query_one(JobsTable), "raysubmit_[/]")
        await pilot.press("enter")
        screen = app.screen
        assert isinstance(screen, JobDetailsScreen) and screen.job.id == HOSTILE_RAY_ID
        await screen.workers.wait_for_complete()
        await shots.every_line(pilot, screen.query_one(VerticalScroll))
        text = shots.text
        assert r"Job demo/raysubmit_[/]\x1b]0;id\x07" in text  # the border title
        assert re.search(r"│ id +raysubmit_\[/\]\\x1b\]0;id\\x07 ", text)  # the facts
        # A failed job: its hostile entrypoint, message (the last log lines) and log tail.
        await pilot.press("escape")
        select(app.query_one(JobsTable), HOSTILE_LOG_JOB)
        await pilot.press("enter")
        screen = app.screen
        assert isinstance(screen, JobDetailsScreen) and screen.job.id == HOSTILE_LOG_JOB
        await screen.workers.wait_for_complete()
        shots = Screenshots(app)
        await shots.every_line(pilot, screen.query_one(VerticalScroll))
        text = shots.text
        assert "log tail" in text and "log osc52: " + VISIBLE["osc52"] in text  # the log, line by line
        assert "log markup: [bold red]x[/]" in text
        assert_visible(text, *CORPUS)
        # A pending job: its hostile name, owner, entrypoint and message in the facts.
        await pilot.press("escape")
        select(app.query_one(JobsTable), "raysubmit_h16_markup")
        await pilot.press("enter")
        await app.screen.workers.wait_for_complete()
        shots = Screenshots(app)
        await shots.every_line(pilot, app.screen.query_one(VerticalScroll))
        assert "markup:[bold red]x[/]" in shots.text and "markup says [bold red]x[/]" in shots.text


async def test_kfp_run_details_show_hostile_text_inert(hostile):
    platform, broken_url, runs = hostile
    app = make_app(platform, broken_url)
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(app, pilot)
        for tag in ("osc52", "close", "rlo", "long"):
            select(app.query_one(JobsTable), runs[tag])
            await pilot.press("enter")
            screen = app.screen
            assert isinstance(screen, JobDetailsScreen)
            await screen.workers.wait_for_complete()
            shots = Screenshots(app)
            await shots.every_line(pilot, screen.query_one(VerticalScroll))
            text = shots.text
            for shown in (f"{tag}:", f"{tag} error ", f"{tag} task "):  # name, error, state history
                # (the long one wraps: that it is drawn inert is what `take` checked)
                assert shown + VISIBLE[tag] in text or tag == "long" and shown in text, shown
            await pilot.press("escape")


async def test_cancel_confirmation_shows_hostile_text_inert(hostile):
    platform, broken_url, runs = hostile
    app = make_app(platform, broken_url)
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(app, pilot)
        # A Ray job and a waiting KFP run to stop, a failed KFP run to retry.
        for key_part, tag, key in (("raysubmit_h00_osc52", "osc52", "ctrl+d"), (runs["close"], "close", "ctrl+d"),
                                   (runs["markup"], "markup", "R")):
            select(app.query_one(JobsTable), key_part)
            await pilot.press(key)
            assert isinstance(app.screen, ConfirmCancel)
            text = await Screenshots(app).take(pilot)
            assert f"{tag}:{VISIBLE[tag]}" in text
            if key_part in runs.values():
                assert f"{tag} experiment {VISIBLE[tag]}" in text
            await pilot.press("n")
            assert not isinstance(app.screen, ConfirmCancel)


async def test_node_and_pool_details_and_scale_dialog_show_hostile_text_inert(hostile):
    platform, broken_url, _ = hostile
    app = make_app(platform, broken_url)
    async with app.run_test(size=(160, 48), notifications=True) as pilot:
        await loaded(app, pilot)
        for i, tag in ((0, "osc52"), (15, "close"), (18, "path"), (19, "long")):
            select(app.query_one(NodesTable), f"hostile-node-{i:02d}")
            await pilot.press("enter")
            assert isinstance(app.screen, InfraDetailsScreen)
            shots = Screenshots(app)
            await shots.every_line(pilot, app.screen.query_one(VerticalScroll))
            text = shots.text
            # Pool and GPU model, the pod's owner, the Ready condition's message, the taint.
            for shown in (f"pool      {tag}:", f"GPU       {tag}:", f"Job/{tag}:", f"{tag} condition ", "evil="):
                assert shown + VISIBLE[tag] in text or tag == "long" and shown in text, shown
            await pilot.press("escape")
        pools = app.query_one(PoolsTable)
        select(pools, "sgr:")
        await pilot.press("enter")
        assert isinstance(app.screen, InfraDetailsScreen)
        text = await Screenshots(app).take(pilot)
        assert "sgr:" + VISIBLE["sgr"] in text and "hostile-node-03" in text
        await pilot.press("escape")
        select(app.query_one(PoolsTable), "/capi/md-")
        await pilot.press("s")
        assert isinstance(app.screen, ScaleDialog)
        await pilot.press("backspace", "3")
        text = await Screenshots(app).take(pilot)
        assert r"Scale md-\x1b]0;md\x07[/]" in text and r"MachineDeployment capi/md-\x1b]0;md\x07[/]" in text
        # Scale it: the notification that quotes the server's answer names the pool, inert.
        await pilot.press("enter")
        assert not isinstance(app.screen, ScaleDialog)
        await app.workers.wait_for_complete()
        text = await Screenshots(app).take(pilot)
        assert r"MachineDeployment capi/md-\x1b]0;md\x07[/]: replicas" in text


# -- the status line and the report ---------------------------------------------------------------


def test_a_healthy_source_line_says_how_many_items_were_skipped():
    health = SourceHealth("ray", "demo", True, None, 12.0, FIXED_NOW, FIXED_NOW, skipped=3,
                          skip_reason="job: status " + CORPUS["osc52"])
    line = source_line(health, None, FIXED_NOW, stale_after=30)
    assert r"3 items skipped (bad data: job: status \x1b]52;c;aGVsbG8=\x07)" in line.plain
    assert unsafe(line.plain) == set()
    span = next(s for s in line.spans if "skipped" in line.plain[s.start:s.end])
    assert "yellow" in str(span.style)
    one = source_line(replace(health, skipped=1, skip_reason=None), None, FIXED_NOW, stale_after=30)
    assert "1 item skipped (bad data)" in one.plain
    assert "skipped" not in source_line(replace(health, skipped=0), None, FIXED_NOW, stale_after=30).plain


async def hostile_snapshot(platform, broken_url):
    sources = [RaySource(e, clock=fixed_clock) for e in (*platform.ray_endpoints(),
                                                          Endpoint(name=BROKEN_NAME, url=broken_url, timeout=5))]
    sources += [KubeSource(t, clock=fixed_clock) for t in platform.kube_targets()]
    sources += [KfpSource(e, clock=fixed_clock) for e in platform.kfp_endpoints()]
    try:
        updates = await poll_all(sources, clock=fixed_clock)
    finally:
        for source in sources:
            await source.aclose()
    dashboard = dashboard_for(sources, replace(Config(), finished_limit=200))
    for update in updates:
        dashboard.update(update)
    return dashboard.view(FIXED_NOW)


def with_skips(view, skipped, reason):
    lines = tuple(replace(line, health=replace(line.health, skipped=skipped, skip_reason=reason))
                  if line.health.ok else line for line in view.sources)
    return replace(view, sources=lines)


async def test_text_report_is_inert(hostile):
    platform, broken_url, _ = hostile
    snapshot = await hostile_snapshot(platform, broken_url)
    assert snapshot.cost.warnings
    text = render_text(snapshot)
    assert unsafe(text) == set(), unsafe(text)
    assert r"ray/broken\x1b]0;cfg\x07: ERROR: " in text and r"\x1b]52;c;ZXJy\x07\x1b[2J[/]" in text
    for tag in ("osc52", "osc0", "clear", "csi8", "rlo", "close", "path", "surrogate"):
        assert f"{tag}:{VISIBLE[tag]}"[:28] in text, tag  # names, clipped to their column
    # With skipped items, the source's line says so; the JSON carries the count and the reason.
    text = render_text(with_skips(snapshot, 2, "node: " + CORPUS["osc0"]))
    assert r"ray/demo: ok" in text and r"2 items skipped (bad data: node: \x1b]0;pwned\x07)" in text
    assert unsafe(text) == set()


async def test_json_report_carries_skipped_items_and_escapes_control_characters(hostile):
    platform, broken_url, _ = hostile
    snapshot = await hostile_snapshot(platform, broken_url)
    out = render_json(with_skips(snapshot, 4, "bad \x1b[2J"))
    assert unsafe(out) == set()  # json.dumps escapes every control character itself
    sources = json.loads(out)["sources"]
    assert all("skipped" in s and "skip_reason" in s for s in sources)
    ok = next(s for s in sources if s["ok"])
    assert (ok["skipped"], ok["skip_reason"]) == (4, "bad \x1b[2J")  # data in JSON stays the data


def test_once_prints_a_hostile_source_error_inert(broken_ray, capsys, monkeypatch):
    monkeypatch.setenv("MLTOP_CONFIG", os.devnull)
    for var in [v for v in os.environ if v.startswith(("RAY_", "MLTOP_")) and v != "MLTOP_CONFIG"]:
        monkeypatch.delenv(var)
    status = main(["--once", "--ray", broken_ray])
    captured = capsys.readouterr()
    assert status == 2
    assert captured.err.startswith("mltop: ray/") and r"\x1b]52;c;ZXJy\x07\x1b[2J[/] server error" in captured.err
    assert unsafe(captured.err) == set() and unsafe(captured.out) == set()
