"""mltop as a terminal program over SSH: signals and ctrl+c give the terminal back."""

from __future__ import annotations

import signal

import pytest

from mltop.config import Config
from mltop.tui.app import MltopApp
from tests.pty_app import PtyApp
from tests.test_snapshots import make_full_app

LEAVE_ALT_SCREEN = b"\x1b[?1049l"
MOUSE_OFF = b"\x1b[?1000l"
CURSOR_ON = b"\x1b[?25h"


@pytest.mark.timeout(90)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=lambda s: s.name)
def test_a_signal_restores_the_terminal_and_ends_the_process(sig, tmp_path):
    app = PtyApp(["--demo"], env={"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)})
    try:
        assert app.wait_for(b"demo-k8s", 30), app.output[-2000:]
        assert b"\x1b[?1049h" in app.output  # it took the alternate screen
        drawn = len(app.output)
        app.proc.send_signal(sig)
        elapsed = app.exited_within(10.0)
        assert elapsed is not None, "mltop did not exit"
        restore = app.output[drawn:]
        for sequence in (LEAVE_ALT_SCREEN, MOUSE_OFF, CURSOR_ON):
            assert sequence in restore, (sequence, restore[-500:])
        assert app.proc.returncode == 128 + sig
    finally:
        app.close()


async def test_ctrl_c_quits_like_q():
    app = MltopApp(Config(), [], start_polling=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("ctrl+c")
        await pilot.pause()
    assert app.return_code == 0 and not app.is_running


async def test_quitting_asks_again_only_while_an_action_is_in_flight():
    app = MltopApp(Config(), [], start_polling=False)
    async with app.run_test(size=(80, 24)) as pilot:
        app.runner.in_flight.add("ray/prod/raysubmit_1")
        await pilot.press("q")
        await pilot.pause()
        assert app.is_running
        assert any("press again to quit" in n.message for n in app._notifications)
        await pilot.press("q")
        await pilot.pause()
    assert not app.is_running


async def test_every_size_and_a_resize_sequence_keep_columns_and_selection(frozen_demo):
    from mltop.widgets.jobs_table import JobsTable

    app = make_full_app(frozen_demo)
    async with app.run_test(size=(100, 30)) as pilot:
        await app.refresh_now()
        await pilot.pause()
        table = app.query_one(JobsTable)
        assert table.cursor_row == 0  # the start cursor is on the first row of the queue
        await pilot.press("j", "j")
        chosen = table.selected_key
        for width, height in [(160, 48), (80, 24), (100, 30), (60, 20), (79, 24), (160, 48), (80, 24)]:
            await pilot.resize_terminal(width, height)
            await pilot.pause()
            notice = app.screen.query_one("#too-small")
            if width < 80 or height < 24:
                assert notice.display and f"this one is {width}x{height}" in str(notice.render())
                continue
            assert not notice.display
            titles = [str(c.label) for c in table.columns.values()]
            assert {"ID", "NAME", "STATE", "GPUS", "WAIT/RUN", "OWNER"} <= set(titles), (width, titles)
            used = sum(c.width + 2 for c in table.columns.values())  # cell padding
            assert used <= width - 2, (width, used)  # nothing lost off the right edge
            assert table.selected_key == chosen  # the selection survives every resize
            assert table.size.height >= 9  # the queue keeps 8 rows and its header, 80x24 included
            assert isinstance(app.focused, JobsTable)


async def test_panels_keep_their_size_when_the_focus_moves(frozen_demo):

    app = make_full_app(frozen_demo)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.refresh_now()
        await pilot.pause()
        panels = ["#jobs-panel", "#warnings-panel", "#nodes-panel", "#pools-panel", "#sources", "#summary"]
        before = [app.screen.query_one(p).region for p in panels]
        for key in ("tab", "tab", "tab", "w"):
            await pilot.press(key)
            await pilot.pause()
            assert [app.screen.query_one(p).region for p in panels] == before, key


async def test_a_view_that_finishes_while_quitting_removes_the_panels_is_dropped(frozen_demo):
    """Quitting removes the panels while the derive thread may still finish a view: it is dropped,
    not raised (a NoMatches here once failed the test above at its teardown)."""
    from mltop.widgets.source_status import SourceStatus

    app = make_full_app(frozen_demo)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.refresh_now()
        await app.main.query_one(SourceStatus).remove()  # what quitting does to every panel
        app._draw(with_cost=True)
        await app.derived()
        await pilot.pause()
    assert app.return_code in (None, 0)


async def test_home_end_and_the_palette_do_what_help_says(frozen_demo):
    from mltop.tui.commands import MltopCommands
    from mltop.widgets.infra_tables import PoolsTable
    from mltop.widgets.jobs_table import JobsTable

    app = make_full_app(frozen_demo)
    async with app.run_test(size=(160, 48)) as pilot:
        await app.refresh_now()
        await pilot.pause()
        table = app.query_one(JobsTable)
        await pilot.press("end")
        assert table.cursor_row == table.row_count - 1
        await pilot.press("home")
        assert table.cursor_row == 0
        provider = MltopCommands(app.screen)
        offered = [c[0] for c in provider._allowed()]
        assert "cancel_job" in offered and "scale_pool" not in offered  # scoped to the selection
        app.query_one(PoolsTable).focus()
        await pilot.pause()
        offered = [c[0] for c in provider._allowed()]
        assert "scale_pool" in offered and "cancel_job" not in offered


@pytest.mark.parametrize("env, unicode", [
    ({"LANG": "en_US.UTF-8"}, True), ({"LANG": "C.UTF-8"}, True), ({"LC_ALL": "de_DE.utf8", "LANG": "C"}, True),
    ({"LANG": "C"}, False), ({"LANG": "POSIX"}, False), ({}, False), ({"LANG": "en_US.ISO-8859-1"}, False),
    ({"LANG": "C", "LC_CTYPE": "C.UTF-8"}, False),  # Python's own PEP 538 coercion, not the terminal's
    ({"LC_ALL": "C", "LANG": "en_US.UTF-8"}, False),  # LC_ALL wins, as in every C program
])
def test_which_locales_get_unicode(env, unicode):
    from mltop.format import unicode_locale

    assert unicode_locale(env) is unicode


@pytest.mark.timeout(60)
def test_a_non_utf8_locale_gets_an_ascii_screen(tmp_path):
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("LC_")}
    env.update(LANG="C", HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path), TERM="xterm-256color")
    app = PtyApp(["--demo"], env=env, cols=80, rows=24, inherit_env=False)
    try:
        assert app.wait_for(b"demo-k8s", 30), app.output[-1000:]
        app.read(2.0)
        drawn = app.output
        assert b"Jobs:" in drawn, drawn[-500:]
        assert not [b for b in drawn if b >= 0x80], "non-ASCII bytes drawn: " + repr(
            bytes(b for b in drawn if b >= 0x80)[:40])
        app.type("q")
        assert app.exited_within(10.0) is not None
    finally:
        app.close()


async def test_column_widths_follow_the_rows_whichever_source_answers_first(frozen_demo):
    """Widths come from the rows shown, not from the order sources answered in."""
    from mltop.widgets.jobs_table import JobsTable

    widths = []
    for order in (("ray", "kubernetes"), ("kubernetes", "ray")):
        app = make_full_app(frozen_demo)
        async with app.run_test(size=(160, 48)) as pilot:
            for kind in order:
                await next(loop for key, loop in app.loops.items() if key.startswith(kind)).run_once()
                await pilot.pause()
            table = app.query_one(JobsTable)
            widths.append({key: column.width for key, column in table.columns.items()})
    assert widths[0] == widths[1]


async def test_colon_commands_jump_filter_show_the_audit_and_quit(frozen_demo, audit_log_in_tmp):
    from textual.widgets import Input

    from mltop.tui.command_line import AuditScreen, parse
    from mltop.widgets.infra_tables import PoolsTable, WarningsTable
    from mltop.widgets.jobs_table import JobsTable

    assert parse(":bogus").startswith("no command 'bogus'") and parse(":ctx").startswith(":ctx needs a name")
    app = make_full_app(frozen_demo)
    async with app.run_test(size=(160, 48)) as pilot:
        await app.refresh_now()
        await pilot.pause()

        async def command(text):
            await pilot.press("colon")
            box = app.screen.query_one("#command", Input)
            assert box.has_focus
            box.value = text
            await pilot.press("enter")
            await pilot.pause()

        await command("pools")
        assert isinstance(app.focused, PoolsTable)
        await command("warnings")
        assert isinstance(app.focused, WarningsTable)
        await command("ctx demo-k8s")  # the queue narrowed to one Kubernetes context
        table = app.query_one(JobsTable)
        assert isinstance(app.focused, JobsTable) and table.records
        assert all(job.cluster == "demo-k8s" for job in table.records.values())
        await pilot.press("escape")
        await command("nope")
        assert any("no command 'nope'" in n.message for n in app._notifications)
        await command("audit")
        assert isinstance(app.screen, AuditScreen)
        await pilot.press("escape")
        await command("q")
    assert not app.is_running


@pytest.mark.timeout(60)
def test_a_dropped_session_leaves_nothing_running(tmp_path):
    """The terminal itself is gone (the pty's other end closed, as when SSH drops), then SIGHUP."""
    import os
    import time

    app = PtyApp(["--demo"], env={"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)})
    try:
        assert app.wait_for(b"demo-k8s", 30)
        os.close(app.master)
        app.master = os.open(os.devnull, os.O_RDONLY)  # so close() has something to close
        app.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while app.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert app.proc.poll() is not None, "mltop was still running 10 s after its terminal went away"
    finally:
        app.close()
