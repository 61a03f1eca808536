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

from mltop import __version__
from mltop.config import Config, ConfigError, load

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not argparse's usage block
        self.exit(EXIT_USAGE, f"mltop: {message} (see mltop --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="mltop",
        description="A live terminal dashboard for ML platforms: Ray job queues, GPUs, idle cost.",
    )
    p.add_argument("--ray", action="append", metavar="[NAME=]URL",
                   help="a Ray dashboard URL (repeatable); default: the config file, or RAY_ADDRESS if http(s)")
    p.add_argument("--kfp", action="append", metavar="[NAME=]URL",
                   help="a Kubeflow Pipelines API URL (repeatable); default: the config file, or KF_PIPELINES_ENDPOINT")
    p.add_argument("--kfp-namespace", action="append", metavar="NS",
                   help="a namespace to watch on multi-user KFP (repeatable)")
    p.add_argument("--prometheus", action="append", metavar="[NAME=]URL",
                   help="a Prometheus with DCGM exporter metrics, for measured GPU utilization (repeatable)")
    p.add_argument("--kubeconfig", metavar="PATH", help="kubeconfig file (default: KUBECONFIG, then ~/.kube/config)")
    p.add_argument("--context", action="append", metavar="NAME",
                   help="a kubeconfig context to show (repeatable; default: the current context)")
    p.add_argument("--config", metavar="PATH", help="config file (default: the user config path, or MLTOP_CONFIG)")
    p.add_argument("--refresh", type=float, metavar="SECONDS", help="seconds between polls of each source (default 2)")
    p.add_argument("--read-only", action="store_true", help="offer no action that changes anything")
    p.add_argument("--once", action="store_true", help="print one snapshot and exit")
    p.add_argument("--json", action="store_true", help="with --once: print JSON")
    p.add_argument("--demo", action="store_true", help="run against a simulated platform on loopback")
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
        config = load(
            ray_flags=args.ray,
            prometheus_flags=args.prometheus,
            kfp_flags=args.kfp,
            kfp_namespace_flags=args.kfp_namespace,
            context_flags=args.context,
            kubeconfig_flag=args.kubeconfig,
            config_flag=args.config,
            refresh_flag=args.refresh,
            read_only_flag=args.read_only,
        )
    except ConfigError as exc:
        return fail(str(exc))

    platform = None
    if args.demo:
        import mltop.adapters.kube  # noqa: F401  (slow: imported before the temporary kubeconfig exists)
        from mltop.demo.platform import DemoPlatform

        platform = DemoPlatform().start()
        # The demo never talks to a real cluster, whatever the config says.
        # Minutes are long in a demo: warn after one, not fifteen.
        demo_cost = config.cost.model_copy(update={"idle_threshold_minutes": 1.0, "low_utilization_window_minutes": 1.0})
        config = replace(config, ray=platform.ray_endpoints(), kubernetes=platform.kube_targets(),
                         kfp=platform.kfp_endpoints(), cost=demo_cost)
    elif not config.ray and not config.kubernetes and not config.kfp:
        where = config.path or "the config file"
        return fail(f"no source configured: pass --ray URL, --kfp URL or --context NAME, set RAY_ADDRESS, "
                    f"or add [[ray]] to {where} (or try mltop --demo)")
    try:
        sources = make_sources(config)
    except SourceConfigError as exc:
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


class SourceConfigError(Exception):
    """A source that cannot even be set up (a broken kubeconfig, an unknown context)."""


def _http_source(config: Config, kind: str, make, endpoint):
    """A source over HTTP. Its TLS context loads `ca_file` (only ever set in the config file) now:
    a file that is no CA bundle is bad input, one line naming the file and the key."""
    try:
        return make(endpoint)
    except OSError as exc:  # ssl.SSLError included
        if not endpoint.ca_file:
            raise
        raise SourceConfigError(f"{config.path}: {kind}.{endpoint.name}.ca_file: {endpoint.ca_file!r} "
                                f"is not a usable CA bundle ({exc.strerror or exc})") from None


def make_sources(config: Config) -> list:
    from mltop.adapters.ray import RaySource

    sources: list = [_http_source(config, "ray", RaySource, endpoint) for endpoint in config.ray]
    if config.prometheus:
        from mltop.adapters.prometheus import PrometheusSource

        sources += [_http_source(config, "prometheus", PrometheusSource, endpoint) for endpoint in config.prometheus]
    if config.kfp:
        from mltop.adapters.kfp import KfpSource

        sources += [_http_source(config, "kfp", lambda e: KfpSource(e, finished_limit=config.finished_limit), endpoint)
                    for endpoint in config.kfp]
    if config.kubernetes:
        from mltop.adapters.kube import KubeConfigError, KubeSource

        for target in config.kubernetes:
            try:
                sources.append(KubeSource(target))
            except KubeConfigError as exc:
                raise SourceConfigError(str(exc)) from None
    return sources


def run_once(config: Config, sources: list, *, as_json: bool, fail_on_idle: float | None = None) -> int:
    from mltop.config import cost_policy, cost_prices
    from mltop.cost import IdleHistory, evaluate
    from mltop.refresh import poll_all, snapshot_of, utcnow
    from mltop.report import EXIT_IDLE_SPEND, exit_status, render_json, render_text
    from mltop.safe_text import inert  # error lines quote backend text: shown, never obeyed

    quiet_logging()  # the report says what failed, one line per source; library chatter goes to MLTOP_LOG

    async def collect():
        try:
            updates = await poll_all(sources)
        finally:
            for source in sources:
                await source.aclose()
        return snapshot_of(updates, utcnow())

    snapshot = asyncio.run(collect())
    # One look has no history: idle times are lower bounds from what the cluster still shows.
    cost = evaluate(snapshot, cost_prices(config.cost), cost_policy(config.cost), IdleHistory(),
                    snapshot.generated_at)
    render = render_json if as_json else render_text
    sys.stdout.write(render(snapshot, config.finished_limit, cost))
    if not as_json:
        for source in snapshot.sources:
            if not source.ok:
                print(inert(f"mltop: {source.kind}/{source.name}: {source.error}"), file=sys.stderr)
    status = exit_status(snapshot)
    if status == 0 and fail_on_idle is not None and cost.idle_rate > fail_on_idle:
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
    from mltop.tui.app import MltopApp

    quiet_logging()
    app = MltopApp(config, sources)
    app.run()
    return app.return_code or 0
