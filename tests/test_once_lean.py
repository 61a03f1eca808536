"""`mltop --once` stays lean: it imports only what the configured sources need, opens no watch,
and builds no TLS settings for servers it speaks plain HTTP to (issue 13). No timings here: what
is checked is what was imported, which requests were made, and which CA bundles were loaded."""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp import web

from mltop.adapters.http import Endpoint, make_client
from mltop.adapters.kube_cache import WatchCache, wait_synced
from mltop.adapters.kube_nodes import node_facts
from mltop.adapters.kube_parse import pod_facts
from mltop.cli import main
from mltop.demo.kfp_scenario import NAMESPACES as KFP_NAMESPACES
from mltop.demo.kube_api import KubeStore, make_kube_app
from mltop.demo.kube_dra import seed_dra
from mltop.demo.kube_scenario import kubeconfig, seed_kube
from mltop.demo.kueue_objects import seed_team_a
from mltop.demo.platform import DEMO_KFP_NAME, DEMO_KFP_TOKEN, DEMO_KUBE_CONTEXT, DEMO_RAY_NAME
from mltop.demo.server import LoopbackServer
from mltop.errors import SourceError
from tests.conftest import FIXED_NOW, fixed_clock

ROOT = Path(__file__).resolve().parent.parent

# Runs the CLI's own main() in a fresh interpreter, then says which modules it imported and how
# many times a CA bundle was loaded into a TLS context (what an unneeded context costs).
WRAPPER = """
import json, ssl, sys
loads = []
for name in ("load_verify_locations", "load_default_certs"):
    def counted(self, *args, _orig=getattr(ssl.SSLContext, name), _name=name, **kwargs):
        loads.append(_name)
        return _orig(self, *args, **kwargs)
    setattr(ssl.SSLContext, name, counted)
from mltop.cli import main
rc = main(["--once", "--json"])
with open(sys.argv[1], "w") as out:
    # (None entries are imports refused on purpose, as mltop.cli refuses httpx's command-line tool.)
    json.dump({"rc": rc, "modules": sorted(k for k, v in sys.modules.items() if v is not None), "ca_loads": loads}, out)
"""


def once_in_subprocess(tmp_path: Path, config: str) -> dict:
    path = tmp_path / "mltop.toml"
    path.write_text(config)
    env = {k: v for k, v in os.environ.items()
           if k not in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "RAY_ADDRESS", "KF_PIPELINES_ENDPOINT")}
    env.update(MLTOP_CONFIG=str(path), MLTOP_STATE_DB=str(tmp_path / "state.sqlite3"), HOME=str(tmp_path))
    result = tmp_path / "result.json"
    done = subprocess.run([sys.executable, "-c", WRAPPER, str(result)], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["sources"], done.stdout  # it did report
    return json.loads(result.read_text())


def roots(modules: list[str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


def ray_config(demo) -> str:
    return f'[[ray]]\nname = "{DEMO_RAY_NAME}"\nurl = "{demo.ray_url}"\n'


def kfp_config(demo) -> str:
    return (f'[[kfp]]\nname = "{DEMO_KFP_NAME}"\nurl = "{demo.kfp_url}"\ntoken = "{DEMO_KFP_TOKEN}"\n'
            f"namespaces = {json.dumps(list(KFP_NAMESPACES))}\n")


def kube_config(demo) -> str:
    return f'[[kubernetes]]\ncontext = "{DEMO_KUBE_CONTEXT}"\nkubeconfig = "{demo.kubeconfig_path}"\n'


@pytest.mark.parametrize("which", ["ray", "kfp"])
def test_once_against_an_http_backend_imports_neither_kubernetes_nor_the_tui(frozen_demo, tmp_path, which):
    config = ray_config(frozen_demo) if which == "ray" else kfp_config(frozen_demo)
    result = once_in_subprocess(tmp_path, config)
    assert result["rc"] in (0, 1)
    imported = roots(result["modules"])
    # kubernetes: a third of a second and tens of MiB; aiohttp: only to follow a Ray log;
    # textual/rich: the TUI (rich also came with httpx's own command-line tool).
    assert not imported & {"kubernetes", "textual", "rich", "aiohttp", "click", "pygments"}
    assert f"mltop.adapters.{which}" in result["modules"]
    other = "kfp" if which == "ray" else "ray"
    assert f"mltop.adapters.{other}" not in result["modules"]  # an unconfigured backend's adapter is never loaded


def test_once_against_kubernetes_alone_imports_no_http_client_nor_the_tui(frozen_demo, tmp_path):
    result = once_in_subprocess(tmp_path, kube_config(frozen_demo))
    assert result["rc"] in (0, 1)
    imported = roots(result["modules"])
    assert "kubernetes" in imported
    assert not imported & {"httpx", "httpcore", "textual", "rich", "aiohttp"}  # Ray/KFP's client, the TUI


def test_once_over_plain_http_loads_no_ca_bundle(frozen_demo, tmp_path):
    """Ray, KFP and Kubernetes, all over http://: no TLS context is given any CA to trust."""
    result = once_in_subprocess(tmp_path, ray_config(frozen_demo) + kfp_config(frozen_demo) + kube_config(frozen_demo))
    assert result["rc"] in (0, 1)
    assert "kubernetes" in roots(result["modules"])  # configured, so imported
    assert result["ca_loads"] == []


def test_an_http_client_builds_no_tls_context_and_weakens_nothing(monkeypatch):
    monkeypatch.setattr(ssl, "create_default_context", lambda *a, **k: pytest.fail("TLS context built for http"))
    clients = [make_client(Endpoint(name=n, url=f"http://127.0.0.1:1/{n}", verify_tls=v))
               for n, v in (("a", True), ("b", False))]
    contexts = {id(c._transport._pool._ssl_context) for c in clients}
    assert len(contexts) == 1  # one shared context, made once
    context = clients[0]._transport._pool._ssl_context
    # Were a request to go out over TLS through it, it would need a verified certificate, and
    # with no CA loaded none can be: nothing is trusted, nothing weakened.
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.cert_store_stats()["x509_ca"] == 0


def test_https_clients_still_verify():
    client = make_client(Endpoint(name="s", url="https://127.0.0.1:1"))
    context = client._transport._pool._ssl_context
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.cert_store_stats()["x509_ca"] > 0  # the CA bundle is loaded: certificates are checked


# -- Kubernetes without watches ----------------------------------------------------------------


class RecordingCluster:
    """The fake API server, seeded with nodes, pods, DRA and Kueue, keeping every request's path and query."""

    def __init__(self, tmp_path: Path) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []
        store = KubeStore(clock=fixed_clock)
        self.server = LoopbackServer()
        self.server.start()
        for seed in (seed_kube, seed_dra, seed_team_a):
            self.server.call(lambda seed=seed: seed(store, FIXED_NOW))
        app = make_kube_app(store, token="t0ken")
        self.pod_list_delay = 0.0  # seconds each page of the pods list takes (a big cluster's list)

        @web.middleware
        async def record(request: web.Request, handler):
            self.requests.append((request.path, dict(request.query)))
            if request.path == "/api/v1/pods" and request.query.get("watch", "").lower() not in ("1", "true"):
                await asyncio.sleep(self.pod_list_delay)
            return await handler(request)

        app.middlewares.insert(0, record)
        url = self.server.serve(app)
        self.kubeconfig = tmp_path / "kubeconfig"
        self.kubeconfig.write_text(json.dumps(kubeconfig(url, "t0ken", "lean")))

    def watches(self) -> list[str]:
        return [path for path, query in self.requests if query.get("watch", "").lower() in ("1", "true")]

    def lists_of(self, path: str) -> list[dict[str, str]]:
        return [query for p, query in self.requests if p == path]


@pytest.fixture
def recording_cluster(tmp_path):
    cluster = RecordingCluster(tmp_path)
    try:
        yield cluster
    finally:
        cluster.server.stop()


def test_once_against_kubernetes_lists_and_opens_no_watch(recording_cluster, capsys):
    rc = main(["--once", "--json", "--kubeconfig", str(recording_cluster.kubeconfig), "--context", "lean"])
    report = json.loads(capsys.readouterr().out)
    assert rc in (0, 1)
    assert report["nodes"] and report["sources"][0]["ok"]
    assert recording_cluster.watches() == []
    # Nodes, pods, DRA slices and claims, Kueue's objects: each listed (in pages), none watched.
    for suffix in ("/api/v1/nodes", "/api/v1/pods", "/resourceslices", "/resourceclaims", "/workloads",
                   "/localqueues", "/clusterqueues"):
        lists = [q for p, q in recording_cluster.requests if p.endswith(suffix)]
        assert lists and all(q.get("limit") for q in lists), (suffix, recording_cluster.requests)


def test_the_live_source_still_watches(recording_cluster, tmp_path):
    from mltop.adapters.kube import KubeSource
    from mltop.adapters.kube_target import KubeTarget

    source = KubeSource(KubeTarget(context="lean", kubeconfig=str(recording_cluster.kubeconfig)), clock=fixed_clock)

    async def poll():
        try:
            return await source.fetch()
        finally:
            await source.aclose()

    assert asyncio.run(poll()).nodes
    assert source.nodes.watch and source.pods.watch  # the caches a live source keeps current


def test_one_snapshot_waits_for_a_slow_list_that_the_live_screen_reports_as_not_yet_answered(
        recording_cluster, capsys, monkeypatch):
    """A 50,000-pod list is 100 pages: the live screen says "no answer yet" after its sync timeout
    and lists on, but `--once` has no next poll, so it waits for the list (to its own deadline)."""
    from mltop.adapters import kube
    from mltop.adapters.kube_target import KubeTarget

    recording_cluster.pod_list_delay = 1.5
    monkeypatch.setattr(kube, "SYNC_TIMEOUT", 0.5)
    monkeypatch.setattr(kube, "ONCE_SYNC_TIMEOUT", 20.0)

    live = kube.KubeSource(KubeTarget(context="lean", kubeconfig=str(recording_cluster.kubeconfig)), clock=fixed_clock)

    async def first_poll():
        try:
            return await live.fetch()
        finally:
            await live.aclose()

    with pytest.raises(SourceError, match="pods: no answer from the API server yet"):
        asyncio.run(first_poll())
    rc = main(["--once", "--json", "--kubeconfig", str(recording_cluster.kubeconfig), "--context", "lean"])
    report = json.loads(capsys.readouterr().out)
    assert rc in (0, 1) and report["sources"][0]["ok"], report["sources"]
    assert report["nodes"] and report["jobs"]


@pytest.mark.parametrize("page_size", [1, 3, 500])
def test_a_cache_without_watch_lists_what_a_watching_one_does_in_the_same_pages(recording_cluster, page_size):
    from kubernetes import client as k8s
    from kubernetes import config as k8s_config

    api = k8s_config.new_client_from_config(config_file=str(recording_cluster.kubeconfig), context="lean")
    core = k8s.CoreV1Api(api)
    try:
        once = [WatchCache("nodes", core.list_node, node_facts, page_size=page_size, watch=False),
                WatchCache("pods", core.list_pod_for_all_namespaces, pod_facts, page_size=page_size, watch=False)]
        for cache in once:
            cache.start()
        wait_synced(once, 60)
        live = [WatchCache("nodes", core.list_node, node_facts, page_size=page_size),
                WatchCache("pods", core.list_pod_for_all_namespaces, pod_facts, page_size=page_size)]
        for cache in live:
            cache.start()
        wait_synced(live, 60)
        for a, b in zip(once, live):
            assert sorted(map(repr, a.snapshot())) == sorted(map(repr, b.snapshot()))
            assert a.watches == 0 and a.finished.wait(10) and a.error is None
            b.stop()
    finally:
        api.close()
    pages = recording_cluster.lists_of("/api/v1/nodes")
    assert all(q["limit"] == str(page_size) for q in pages if q.get("watch", "").lower() != "true")
    if page_size < len(once[0]):
        assert any("continue" in q for q in pages)  # paged with continue tokens, as the real API server pages


def test_a_failed_list_without_watch_is_told_at_once(tmp_path):
    """No watch means no retry: the reader is told the list failed, not left to wait for a sync."""
    from kubernetes import client as k8s

    from tests.conftest import free_port

    configuration = k8s.Configuration(host=f"http://127.0.0.1:{free_port()}")
    api = k8s.ApiClient(configuration)
    try:
        cache = WatchCache("c: nodes", k8s.CoreV1Api(api).list_node, node_facts, watch=False)
        cache.start()
        # A deadline far beyond any test run: were the cache to retry, this would end with
        # "no answer from the API server yet" at the deadline, not with the list's own failure.
        with pytest.raises(SourceError, match="cannot reach the API server"):
            wait_synced([cache], 3600)
        assert cache.finished.is_set() and cache.watches == 0
    finally:
        api.close()
