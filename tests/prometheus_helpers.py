"""A real Prometheus for the tests: it scrapes an exporter served on loopback every second, and the
fixture yields its URL once a query returns the expected number of series."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from mltop.demo.server import LoopbackServer
from tests.conftest import free_port


@contextmanager
def real_prometheus(exposition: Callable[[], str], *, job: str, ready_query: str, series: int) -> Iterator[str]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("the `prometheus` binary is missing: install Debian's prometheus package "
                    "(apt-get install prometheus), as .ci/run does")
    exporter = LoopbackServer()
    app = web.Application()

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(text=exposition(), content_type="text/plain")

    app.router.add_get("/metrics", metrics)
    target = exporter.serve(app).removeprefix("http://")
    workdir = Path(tempfile.mkdtemp(prefix=f"mltop-{job}-"))
    (workdir / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"scrape_configs:\n  - job_name: {job}\n    honor_labels: true\n    static_configs:\n"
        f"      - targets: ['{target}']\n")
    port = free_port()
    proc = subprocess.Popen(
        [binary, f"--config.file={workdir / 'prometheus.yml'}", f"--storage.tsdb.path={workdir / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=open(workdir / "prometheus.log", "wb"))
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                body = httpx.get(f"{url}/api/v1/query", params={"query": ready_query}, timeout=2).json()
                if len(body["data"]["result"]) == series:
                    break
            except (httpx.HTTPError, KeyError, ValueError):
                pass  # not up yet, or not scraped yet: asked again below until the deadline
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"prometheus did not scrape the exporter; see {workdir / 'prometheus.log'}")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        exporter.stop()
        shutil.rmtree(workdir, ignore_errors=True)
