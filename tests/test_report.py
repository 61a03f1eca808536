"""`mltop --once`: the JSON schema, the text table, exit codes; Textual never imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from mltop.adapters.http import Endpoint
from mltop.adapters.ray import RaySource
from mltop.config import Config
from mltop.dashboard import dashboard_for
from mltop.refresh import poll_all
from mltop.report import exit_status, render_text, to_json
from tests.conftest import FIXED_NOW, fixed_clock

JOB_KEYS = {"key", "source", "cluster", "id", "name", "state", "native_state", "gpus", "queued_seconds",
            "started_at", "finished_at", "owner", "message"}
SOURCE_KEYS = {"kind", "name", "ok", "error", "latency_ms"}


async def snapshot_for(endpoints):
    """The dashboard's view after one poll of each source, as --once renders it."""
    sources = [RaySource(e, clock=fixed_clock) for e in endpoints]
    updates = await poll_all(sources, clock=fixed_clock)
    for s in sources:
        await s.aclose()
    dashboard = dashboard_for(sources, Config())
    for update in updates:
        dashboard.update(update)
    return dashboard.view(FIXED_NOW)


async def test_json_schema_against_the_demo(frozen_demo):
    snap = await snapshot_for(frozen_demo.ray_endpoints())
    report = to_json(snap)
    assert set(report) == {"generated_at", "sources", "jobs", "nodes", "pools", "warnings", "cost", "queues", "teams"}
    assert report["queues"] == []  # Kueue's ClusterQueues: none without a Kubernetes source
    assert report["generated_at"] == "2026-11-28T12:00:00Z"
    assert report["pools"] == []
    assert {(n["origin"], n["name"], n["gpus_total"]) for n in report["nodes"]} == {
        ("ray", "gpu-worker-1", 8), ("ray", "gpu-worker-2", 8)}  # Ray's GPU nodes; the head has none
    assert all(n["price_per_hour"] for n in report["nodes"])  # A100s with telemetry: Ray's own price
    assert all(w["cluster"] == "demo" for w in report["warnings"])
    assert SOURCE_KEYS <= set(report["sources"][0]) and report["sources"][0]["ok"]
    for j in report["jobs"]:
        assert JOB_KEYS <= set(j)
    first = report["jobs"][0]
    assert (first["id"], first["state"], first["gpus"], first["queued_seconds"]) == (
        "raysubmit_pretrain13b", "PENDING", 12.0, 23 * 60.0)
    assert first["started_at"] is None and first["finished_at"] is None
    assert [j["state"] for j in report["jobs"]] == ["PENDING", "PENDING", "RUNNING", "RUNNING", "FAILED", "SUCCEEDED"]
    cluster = report["sources"][0]["cluster"]
    assert cluster["gpus_total"] == 16 and cluster["gpus_used"] == 14
    assert {d["count"] for d in cluster["pending_demands"]} == {1}
    assert exit_status(snap) == 0


async def test_text_table_and_exit_2_when_nothing_answers(frozen_demo):
    dead = Endpoint(name="dead", url="http://127.0.0.1:9", timeout=2)
    snap = await snapshot_for((*frozen_demo.ray_endpoints(), dead))
    text = render_text(snap)
    assert "ray/demo: ok" in text and "ray/dead: ERROR: " in text
    assert "raysubmit_pretrain13b" in text and "23m" in text
    assert exit_status(snap) == 0  # one source answered
    only_dead = await snapshot_for((dead,))
    assert exit_status(only_dead) == 2


def cli(*args):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "MLTOP_"))}
    env["MLTOP_CONFIG"] = os.devnull
    return subprocess.run([sys.executable, "-m", "mltop", *args], capture_output=True, text=True, timeout=60, env=env)


def test_demo_once_json_runs_end_to_end():
    out = cli("--demo", "--once", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["sources"][0]["name"] == "demo" and report["jobs"]


def test_once_with_no_reachable_source_exits_2_with_one_line_per_source():
    out = cli("--once", "--ray", "http://127.0.0.1:9")
    assert out.returncode == 2
    assert out.stderr.startswith("mltop: ray/127.0.0.1:9: ") and "Traceback" not in out.stderr


def test_once_never_imports_textual():
    code = (
        "import sys, runpy; sys.argv=['mltop','--demo','--once','--json'];"
        "import contextlib, io\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try: runpy.run_module('mltop', run_name='__main__')\n"
        "    except SystemExit: pass\n"
        "print('textual' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "MLTOP_CONFIG": os.devnull})
    assert out.stdout.strip().splitlines()[-1] == "False", out.stderr


WARNING_KEYS = {"kind", "target", "cluster", "idle_gpus", "idle_since", "idle_since_is_lower_bound", "cost_per_hour",
                "wasted", "remedy", "message"}


def test_warnings_prices_and_fail_on_idle():
    out = cli("--demo", "--once", "--json")
    report = json.loads(out.stdout)
    assert report["warnings"] and all(WARNING_KEYS <= set(w) for w in report["warnings"])
    rates = [w["cost_per_hour"] or 0 for w in report["warnings"]]
    assert rates == sorted(rates, reverse=True)
    h100 = next(n for n in report["nodes"] if n["pool"] == "h100-ng")
    assert h100["price_per_hour"] == 55.04 and h100["idle_gpus"] == 8
    assert all("price_per_hour" in p and "idle_gpus" in p for p in report["pools"])
    assert report["cost"]["idle_per_hour"] > 50
    assert cli("--demo", "--once", "--json", "--fail-on-idle", "100000").returncode == 0
    over = cli("--demo", "--once", "--fail-on-idle", "1")
    assert over.returncode == 3 and "idle GPU spend $" in over.stderr
    assert cli("--once", "--fail-on-idle", "1", "--demo", "--json").returncode == 3
    assert cli("--fail-on-idle", "1").returncode == 2  # goes with --once
