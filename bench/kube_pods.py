"""What a big cluster costs mltop: time to first sync and memory held, N pods (2% ask for GPUs).

    python bench/kube_pods.py [PODS]

The fake API server runs in this process, so memory is measured with tracemalloc from after the
server is seeded: `held` is what stays allocated once the cache has synced (the records kept),
`peak` includes the transient JSON pages of the list.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import tempfile
import time
import tracemalloc
from datetime import datetime, timezone
from pathlib import Path

from mltop.adapters.kube import KubeSource
from mltop.adapters.kube_target import KubeTarget
from mltop.demo import kube_objects as k
from mltop.demo.kube_api import KubeStore, make_kube_app
from mltop.demo.kube_scenario import kubeconfig
from mltop.demo.server import LoopbackServer

NOW = datetime(2026, 11, 28, 12, tzinfo=timezone.utc)


def seed(store: KubeStore, pods: int) -> None:
    for n in range(50):
        store.put(k.gke_a100_node(f"gpu-{n}", "a100", NOW))
    for i in range(pods):
        gpu = i % 50 == 0
        store.put(k.pod(f"pod-{i}", f"ns-{i % 40}", gpus=1 if gpu else 0,
                        node_name=f"gpu-{(i // 50) % 50}" if gpu else "cpu-1", created=NOW))


async def main(pods: int) -> None:
    store = KubeStore(history_limit=100)
    server = LoopbackServer()
    server.start()
    server.call(lambda: seed(store, pods))
    url = server.serve(make_kube_app(store, token="t"))
    path = Path(tempfile.mkdtemp()) / "kubeconfig"
    path.write_text(json.dumps(kubeconfig(url, "t", "bench")))
    gc.collect()
    tracemalloc.start()
    source = KubeSource(KubeTarget(context="bench", kubeconfig=str(path)), sync_timeout=300)
    start = time.perf_counter()
    data = await source.fetch()
    took = time.perf_counter() - start
    gc.collect()
    held, peak = tracemalloc.get_traced_memory()
    kept = len(source.pods)
    await source.aclose()
    server.stop()
    print(f"{pods} pods: first sync {took:.1f} s, {kept} pod records kept, {len(data.nodes)} GPU nodes; "
          f"held {held / 2**20:.1f} MiB, peak {peak / 2**20:.1f} MiB (includes the server thread's pages)")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 50_000))
