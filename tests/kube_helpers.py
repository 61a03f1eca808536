"""A fake Kubernetes API server on loopback, seeded like the demo, and a kubeconfig for it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from mltop.adapters.kube import KubeSource
from mltop.adapters.kube_target import KubeTarget
from mltop.demo.kube_api import KubeStore, make_kube_app
from mltop.demo.kube_scenario import kubeconfig, seed_kube
from mltop.demo.server import LoopbackServer
from tests.conftest import FIXED_NOW, fixed_clock

TOKEN = "t0ken"


@dataclass
class FakeCluster:
    store: KubeStore
    server: LoopbackServer
    url: str
    kubeconfig: str
    context: str

    def call(self, fn):
        return self.server.call(fn)

    def source(self, **kwargs) -> KubeSource:
        return KubeSource(KubeTarget(context=self.context, kubeconfig=self.kubeconfig), clock=fixed_clock, **kwargs)


def start_fake_cluster(tmp_path: Path, *, seed: bool = True, context: str = "test-ctx",
                       bookmark_seconds: float = 1.0) -> FakeCluster:
    store = KubeStore(clock=fixed_clock)
    server = LoopbackServer()
    server.start()
    if seed:
        server.call(lambda: seed_kube(store, FIXED_NOW))
    url = server.serve(make_kube_app(store, token=TOKEN, bookmark_seconds=bookmark_seconds))
    path = tmp_path / f"kubeconfig-{context}"
    path.write_text(json.dumps(kubeconfig(url, TOKEN, context)))
    return FakeCluster(store, server, url, str(path), context)
