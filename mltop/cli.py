"""Entry point: flags -> Config -> the TUI, or the one-shot report.

Bad input is one line on stderr and exit status 2, never a traceback. The one-shot report path
never imports Textual (it starts faster and runs where no terminal is attached).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
from collections.abc import Sequence
from dataclasses import replace
from typing import NoReturn

# httpx imports its optional command-line tool whenever click and rich are installed (Textual
# brings rich): click, rich and pygments, a tenth of a second and several MiB that mltop never
# uses, `--once` included. A None entry makes that one import fail, which httpx expects (the
# `httpx[cli]` extra absent). Nothing else changes: rich stays importable for the TUI.
sys.modules.setdefault("httpx._main", None)  # type: ignore[assignment]

from mltop import __version__  # noqa: E402  (after the line above, which must precede any import of httpx)
from mltop.config import Config, ConfigError, load  # noqa: E402
from mltop.registry import backends  # noqa: E402

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not argparse's usage block
        self.exit(EXIT_USAGE, f"mltop: {message} (see mltop --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="mltop",
        description="A live terminal dashboard for ML platforms: Ray job queues, GPUs, idle cost.",
    )
    for backend in backends():  # each backend's own flags, as it declares them
        for flag in backend.flags:
            p.add_argument(flag.option, dest=flag.dest, action="append" if flag.repeatable else "store",
                           metavar=flag.metavar, help=flag.help)
    p.add_argument("--config", metavar="PATH", help="config file (default: the user config path, or MLTOP_CONFIG)")
    p.add_argument("--refresh", type=float, metavar="SECONDS", help="seconds between polls of each source (default 2)")
    p.add_argument("--read-only", action="store_true", help="offer no action that changes anything")
    p.add_argument("--once", action="store_true", help="print one snapshot and exit")
    p.add_argument("--json", action="store_true", help="with --once: print JSON")
    p.add_argument("--demo", action="store_true", help="run against a simulated platform on loopback")
    p.add_argument("--no-history", action="store_true",
                   help="keep no history across runs (idle-since, today's waste, audit copy in the state store)")
    p.add_argument("--fail-on-idle", type=float, metavar="PER_HOUR",
                   help="with --once: exit 3 when idle GPU spend exceeds this many dollars (currency units) per hour")
    p.add_argument("--version", action="version", version=f"mltop {__version__}")
    return p


def fail(message: str) -> int:
    # One line, whatever the message quotes (a library's multi-line error, a value with a newline).
    print("mltop: " + " ".join(message.splitlines()), file=sys.stderr)
    return EXIT_USAGE


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.json and not args.once:
        return fail("--json goes with --once")
    if args.fail_on_idle is not None and not args.once:
        return fail("--fail-on-idle goes with --once")
    if args.fail_on_idle is not None and not (math.isfinite(args.fail_on_idle) and args.fail_on_idle >= 0):
        return fail(f"--fail-on-idle: takes a finite number >= 0, not {args.fail_on_idle}")
    try:
        config = load(vars(args), config_flag=args.config, refresh_flag=args.refresh, read_only_flag=args.read_only)
    except ConfigError as exc:
        return fail(str(exc))
    from mltop import state_store

    if not config.history:
        state_store.disable()
    platform = None
    if args.demo:
        import mltop.adapters.kube  # noqa: F401  (slow: imported before the temporary kubeconfig exists)
        from mltop.demo.platform import DemoPlatform

        platform = DemoPlatform().start()
        state_store.use_demo()  # the demo's history goes to demo-state.sqlite3, never the user's store
        # The demo never talks to a real cluster, whatever the config says.
        # Minutes are long in a demo: warn after one, not fifteen.
        demo_cost = config.cost.model_copy(update={"idle_threshold_minutes": 1.0, "low_utilization_window_minutes": 1.0})
        demo = {b.kind: b.demo(platform) for b in backends() if b.demo is not None}
        config = replace(config, endpoints=demo, cost=demo_cost)
    elif not _has_work(config):
        where = config.path or "the config file"
        return fail(f"no source configured: pass --ray URL, --kfp URL or --context NAME, set RAY_ADDRESS, "
                    f"or add [[ray]] to {where} (or try mltop --demo)")
    try:
        sources = make_sources(config, once=args.once)
    except ConfigError as exc:
        if platform is not None:
            platform.stop()
        return fail(str(exc))
    finally:
        if platform is not None:
            # Each source has read the demo's kubeconfig already: removing it now means no kind
            # of exit, SIGKILL included, leaves the temporary directory behind.
            platform.remove_files()
    try:
        if args.once:
            return run_once(config, sources, as_json=args.json, fail_on_idle=args.fail_on_idle)
        return run_tui(config, sources)
    except KeyboardInterrupt:
        return 130
    finally:
        if platform is not None:
            platform.stop()


def _has_work(config: Config) -> bool:
    """Something to show besides measurements: a source with jobs, nodes or pools."""
    return any(config.of(b.kind) for b in backends() if b.actions)


def make_sources(config: Config, *, once: bool = False) -> list:
    """One source per configured endpoint, each built by its backend (which imports its adapter,
    so only the configured sources' libraries are ever imported); for one snapshot when `once`."""
    sources: list = []
    for backend in backends():
        build = (backend.build_once or backend.build) if once else backend.build
        for endpoint in config.of(backend.kind):
            try:
                sources.append(build(endpoint, config))
            except OSError as exc:  # ssl.SSLError included: a CA file that is no CA bundle
                ca_file = getattr(endpoint, "ca_file", None)
                if not ca_file:
                    raise
                raise ConfigError(f"{config.path}: {backend.kind}.{endpoint.name}.ca_file: {ca_file!r} "
                                  f"is not a usable CA bundle ({exc.strerror or exc})") from None
    return sources


def run_once(config: Config, sources: list, *, as_json: bool, fail_on_idle: float | None = None) -> int:
    from mltop.dashboard import dashboard_for
    from mltop.refresh import poll_all, utcnow
    from mltop.report import EXIT_IDLE_SPEND, exit_status, render_json, render_text
    from mltop.safe_text import inert  # error lines quote backend text: shown, never obeyed

    quiet_logging()  # the report says what failed, one line per source; library chatter goes to MLTOP_LOG

    async def collect():
        try:
            return await poll_all(sources)
        finally:
            for source in sources:
                await source.aclose()

    dashboard = dashboard_for(sources, config)
    for update in asyncio.run(collect()):
        dashboard.update(update)
    # Idle times come from the state store when an earlier run saw them begin (exact), else they
    # are lower bounds from what the cluster still shows. Open, read, write, close.
    try:
        view = dashboard.view(utcnow())
    finally:
        dashboard.close()
    if (note := dashboard.take_history_note()) is not None:
        print(inert(f"mltop: {note}"), file=sys.stderr)
    render = render_json if as_json else render_text
    sys.stdout.write(render(view, config.keymap))
    if not as_json:
        for line in view.sources:
            if not line.health.ok:
                print(inert(f"mltop: {line.key}: {line.health.error}"), file=sys.stderr)
    status = exit_status(view)
    cost = view.cost
    if status == 0 and fail_on_idle is not None and cost is not None and cost.idle_rate > fail_on_idle:
        print(inert(f"mltop: idle GPU spend {cost.currency}{cost.idle_rate:,.2f}/h is over {cost.currency}{fail_on_idle:,.2f}/h"),
              file=sys.stderr)
        return EXIT_IDLE_SPEND
    return status


def quiet_logging() -> None:
    """Nothing may write to the terminal the TUI draws on: log to MLTOP_LOG, or nowhere.

    (urllib3 warns on every retry, and the root logger's last-resort handler prints to stderr.)
    """
    import logging
    import os

    from mltop.safe_text import inert

    class InertFormatter(logging.Formatter):
        """Log lines quote URLs, server bodies and job names: credentials redacted, control
        characters made visible (a log read with `cat` or `tail -f` is a terminal too)."""

        def format(self, record: logging.LogRecord) -> str:
            return inert(super().format(record), multiline=True)

    path = os.environ.get("MLTOP_LOG")
    try:
        handler: logging.Handler = logging.FileHandler(path) if path else logging.NullHandler()
    except OSError as exc:
        raise SystemExit(fail(f"MLTOP_LOG: cannot write {path!r} ({exc.strerror or exc})")) from None
    handler.setFormatter(InertFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO if path else logging.WARNING, handlers=[handler], force=True)


def run_tui(config: Config, sources: list) -> int:
    import os

    from mltop.format import unicode_locale
    from mltop.tui.app import MltopApp

    quiet_logging()
    app = MltopApp(config, sources, ascii_only=not unicode_locale(os.environ))
    app.run()
    return app.return_code or 0
