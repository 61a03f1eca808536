"""Shared fixtures: a real Ray head (session-wide), the demo platform, a fixed clock."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest

from mltop.demo.platform import DemoPlatform

FIXED_NOW = datetime(2026, 11, 28, 12, 0, 0, tzinfo=timezone.utc)
FIXTURES = Path(__file__).resolve().parent / "fixtures"  # copies of ../shared/fixtures (real captures)


def fixed_clock() -> datetime:
    return FIXED_NOW


@pytest.fixture(autouse=True)
def secrets_forgotten_after_each_test():
    """Credentials a test registered for redaction do not redact the next test's screen."""
    from mltop import safe_text

    before = set(safe_text._known_secrets)
    yield
    safe_text._known_secrets.clear()
    safe_text._known_secrets.update(before)


@pytest.fixture(autouse=True)
def audit_log_in_tmp(tmp_path, monkeypatch):
    """Actions taken by tests are audited into the test's own directory, never the user's."""
    path = tmp_path / "audit.jsonl"
    monkeypatch.setenv("MLTOP_AUDIT_LOG", str(path))
    monkeypatch.setenv("MLTOP_SNAPSHOT_DIR", str(tmp_path / "snapshots"))  # `e` writes here in tests
    return path


@pytest.fixture(autouse=True)
def state_db_in_tmp(tmp_path, monkeypatch):
    """The history store (mltop/state_store.py) of each test is its own, never the user's; settings
    a CLI run made (--no-history, --demo) do not leak into the next test."""
    from mltop import state_store

    path = tmp_path / "state.sqlite3"
    monkeypatch.setenv("MLTOP_STATE_DB", str(path))
    monkeypatch.delenv("MLTOP_NO_HISTORY", raising=False)
    monkeypatch.setattr(state_store, "_settings", {"off": False, "demo": False})
    return path


@pytest.fixture
def frozen_demo() -> Iterator[DemoPlatform]:
    """The demo platform with the clock stopped: the opening state, every time."""
    platform = DemoPlatform(clock=fixed_clock, moving=False).start()
    try:
        yield platform
    finally:
        platform.stop()


@pytest.fixture
def live_demo() -> Iterator[DemoPlatform]:
    """The demo platform on the real clock, not moving on its own (tests drive the sim)."""
    platform = DemoPlatform(moving=False).start()
    try:
        yield platform
    finally:
        platform.stop()


# -- a real Ray head --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RayHead:
    url: str
    pid: int
    temp_dir: str
    env: dict[str, str]

    def submit(self, code: str, *, submission_id: str, gpus: float = 0, metadata: dict[str, str] | None = None) -> str:
        body = {
            "entrypoint": f"{sys.executable} -c {shlex_quote(code)}",
            "submission_id": submission_id,
            "entrypoint_num_gpus": gpus,
            "metadata": metadata or {},
        }
        response = httpx.post(f"{self.url}/api/jobs/", json=body, timeout=30)
        response.raise_for_status()
        return response.json()["submission_id"]

    def status(self, submission_id: str) -> str:
        response = httpx.get(f"{self.url}/api/jobs/{submission_id}", timeout=10)
        response.raise_for_status()
        return response.json()["status"]

    def status_by_id(self, submission_id: str) -> str:
        """For ids that do not survive a URL path (`zz/../x`): read from the job list."""
        jobs = httpx.get(f"{self.url}/api/jobs/", timeout=10).json()
        return next(j["status"] for j in jobs if j.get("submission_id") == submission_id)

    def wait_for_id(self, submission_id: str, states: set[str], timeout: float = 90) -> str:
        deadline = time.monotonic() + timeout
        status = ""
        while time.monotonic() < deadline:
            status = self.status_by_id(submission_id)
            if status in states:
                return status
            time.sleep(0.5)
        raise AssertionError(f"{submission_id!r} stayed {status}, wanted one of {states}")

    def wait_for(self, submission_id: str, states: set[str], timeout: float = 90) -> str:
        deadline = time.monotonic() + timeout
        status = ""
        while time.monotonic() < deadline:
            status = self.status(submission_id)
            if status in states:
                return status
            time.sleep(0.5)
        raise AssertionError(f"{submission_id} stayed {status}, wanted one of {states}")


def shlex_quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


@pytest.fixture(scope="session")
def ray_head() -> Iterator[RayHead]:
    """`ray start --head --block` on free ports with 4 logical GPUs; SIGTERM to its own pid at the end.

    Never `ray stop`: that kills every Ray on the machine by process name.
    """
    ray_bin = shutil.which("ray", path=str(Path(sys.executable).parent)) or shutil.which("ray")
    if ray_bin is None:
        pytest.fail("the `ray` command is missing: install the test extra (pip install -e '.[test]')")
    temp_dir = tempfile.mkdtemp(prefix="mltop-ray-")
    home = Path(temp_dir) / "home"
    home.mkdir()
    env = dict(os.environ)
    env.update(
        RAY_AUTH_MODE="disabled",  # 2.60 may turn token auth on by default; the tests ask for none
        RAY_USAGE_STATS_ENABLED="0",
        HOME=str(home),  # no ~/.ray/auth_token from the developer's home
    )
    for var in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS", "RAY_AUTH_TOKEN"):
        env.pop(var, None)
    dashboard_port = free_port()
    args = [
        ray_bin, "start", "--head", "--block",
        "--node-ip-address=127.0.0.1", "--dashboard-host=127.0.0.1",
        f"--port={free_port()}", f"--dashboard-port={dashboard_port}",
        f"--dashboard-agent-listen-port={free_port()}", f"--dashboard-agent-grpc-port={free_port()}",
        f"--ray-client-server-port={free_port()}", f"--metrics-export-port={free_port()}",
        f"--runtime-env-agent-port={free_port()}", f"--node-manager-port={free_port()}",
        f"--object-manager-port={free_port()}",
        "--num-cpus=4", "--num-gpus=4", "--object-store-memory=100000000",
        f"--temp-dir={temp_dir}/ray", "--disable-usage-stats", "--include-dashboard=true",
    ]
    log = open(Path(temp_dir) / "head.log", "wb")
    proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{dashboard_port}"
    deadline = time.monotonic() + 120
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"ray head exited with {proc.returncode}; see {temp_dir}/head.log")
            try:
                if httpx.get(f"{url}/api/version", timeout=2).status_code == 200:
                    # The job agent starts a little after the dashboard; wait for it to take jobs.
                    if httpx.get(f"{url}/api/jobs/", timeout=5).status_code == 200:
                        break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"ray head did not answer within 120s; see {temp_dir}/head.log")
            time.sleep(0.5)
        yield RayHead(url=url, pid=proc.pid, temp_dir=temp_dir, env=env)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        log.close()
        shutil.rmtree(temp_dir, ignore_errors=True)
