"""Serve one benchmark workload on loopback, in a process of its own (its CPU is not mltop's).

    python bench/workloads.py NAME

Prints one JSON line: the URLs, the kubeconfig path, the KFP namespaces and this process's pid.
Then reads commands on stdin, one a line: `churn on` / `churn off` (a few pods, jobs and runs
change every CHURN_SECONDS, so a refresh has real deltas to apply); end of input stops it.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fast_lists  # noqa: E402  (bench/ is not a package)
import seed  # noqa: E402

from mltop.demo import kube_objects as k  # noqa: E402
from mltop.demo.kfp_api import KfpStore, make_kfp_app  # noqa: E402
from mltop.demo.kube_api import KubeStore, make_kube_app  # noqa: E402
from mltop.demo.kube_scenario import kubeconfig  # noqa: E402
from mltop.demo.ray_dashboard import make_app  # noqa: E402
from mltop.demo.ray_sim import utcnow  # noqa: E402
from mltop.demo.server import LoopbackServer  # noqa: E402

TOKEN = "bench-token"  # in the kubeconfig; the fake does not check it (see _kube)
CHURN_SECONDS = 2.0


@dataclass(frozen=True)
class Workload:
    name: str
    title: str
    kube: tuple[int, int] | None = None  # (GPU nodes, pods)
    ray_jobs: int = 0
    kfp_runs: int = 0


WORKLOADS = {w.name: w for w in (
    Workload("small", "small (Ray + KFP + Kubernetes, demo-sized)", kube=(0, 0), ray_jobs=-1, kfp_runs=-1),
    Workload("kube-1k", "Kubernetes 1,000 GPU nodes / 10,000 pods", kube=(1000, 10_000)),
    Workload("kube-5k", "Kubernetes 5,000 GPU nodes / 50,000 pods", kube=(5000, 50_000)),
    Workload("ray-10k", "Ray 10,000 jobs", ray_jobs=10_000),
    Workload("kfp-200k", "KFP 200,000 runs in a namespace", kfp_runs=200_000),
    Workload("large-all", "all three at the largest sizes (kube-5k + ray-10k + kfp-200k)",
             kube=(5000, 50_000), ray_jobs=10_000, kfp_runs=200_000),
)}


def scaled(w: Workload) -> Workload:
    """The --quick sizes: a tenth of each (a fortieth of the KFP runs); the small one as it is."""
    if w.name == "small":
        return w
    kube = (w.kube[0] // 10, w.kube[1] // 10) if w.kube else None
    return Workload(w.name, w.title, kube=kube, ray_jobs=w.ray_jobs // 10, kfp_runs=w.kfp_runs // 40)


class Served:
    """The servers of one workload and the churn that moves them."""

    def __init__(self, workload: Workload) -> None:
        self.workload = workload
        self.server = LoopbackServer()
        self.churn = threading.Event()
        self.steps: list[Callable[[], None]] = []
        self.info: dict = {"pid": os.getpid()}
        self.tmp = tempfile.mkdtemp(prefix="mltop-bench-")
        self.rng = random.Random(3)

    def start(self) -> dict:
        w = self.workload
        self.server.start()
        if w.kube is not None:
            self._kube(*w.kube)
        if w.ray_jobs:
            self._ray(w.ray_jobs)
        if w.kfp_runs:
            self._kfp(w.kfp_runs)
        self.server.every(CHURN_SECONDS, self._step)
        return self.info

    def _step(self) -> None:
        if self.churn.is_set():
            for step in self.steps:
                step()

    def _kube(self, nodes: int, pods: int) -> None:
        fast_lists.install_kube()  # keyed by resourceVersion: right whoever writes
        store = KubeStore(history_limit=20_000)
        if nodes:
            bound: list[tuple[str, str, str, int]] = []
            self.server.call(lambda: bound.extend(seed.seed_kube(store, nodes, pods)))
            moved: list[tuple[str, str, str, int]] = []
            self.steps.append(lambda: kube_churn(store, self.rng, bound, moved))
        else:
            from mltop.demo.kube_scenario import KubeScenario, seed_kube

            self.server.call(lambda: seed_kube(store, seed.NOW))
            self.steps.append(KubeScenario(store, utcnow).step)
        # No token check: kubectl sends no bearer token over plain http (mltop's kubeconfig carries one).
        app = make_kube_app(store)
        add_discovery(app)
        url = self.server.serve(app)
        path = Path(self.tmp) / "kubeconfig"
        path.write_text(json.dumps(kubeconfig(url, TOKEN, "bench")))
        self.info.update(kube_url=url, kubeconfig=str(path))

    def _ray(self, jobs: int) -> None:
        if jobs > 0:
            sim = self.server.call(lambda: seed.seed_ray(jobs))
            self.steps.append(lambda: ray_churn(sim))
        else:
            from mltop.demo.scenario import RayScenario, new_ray_sim

            sim = self.server.call(new_ray_sim)
            self.steps.append(RayScenario(sim).step)
        self.info["ray_url"] = self.server.serve(make_app(sim))

    def _kfp(self, runs: int) -> None:
        store = KfpStore(multi_user=True)
        if runs > 0:
            generation, frozen = [0], set()  # bumped by every change: cached lists are never stale
            fast_lists.install_kfp(generation, frozen)
            self.server.call(lambda: seed.seed_kfp(store, runs))
            # The seeded finished runs: kfp_churn changes only active runs and its own.
            frozen.update(i for i, r in store.runs.items() if r["state"] in ("SUCCEEDED", "FAILED"))
            self.steps.append(lambda: kfp_churn(store, self.rng, generation))
            namespaces = [seed.KFP_NAMESPACE]
        else:
            from mltop.demo.kfp_scenario import NAMESPACES, KfpScenario, seed_kfp

            self.server.call(lambda: seed_kfp(store, seed.NOW))
            self.steps.append(KfpScenario(store, utcnow).step)
            namespaces = list(NAMESPACES)
        self.info.update(kfp_url=self.server.serve(make_kfp_app(store)), kfp_namespaces=namespaces)

    def stop(self) -> None:
        self.server.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


def add_discovery(app: web.Application) -> None:
    """The discovery documents kubectl reads before `get nodes` / `get pods` (the fake serves none)."""
    core = {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}
    resources = {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
        {"name": "nodes", "singularName": "node", "namespaced": False, "kind": "Node", "verbs": ["get", "list", "watch"],
         "shortNames": ["no"]},
        {"name": "pods", "singularName": "pod", "namespaced": True, "kind": "Pod", "verbs": ["get", "list", "watch"],
         "shortNames": ["po"]},
    ]}

    def answer(body: dict) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handler(_: web.Request) -> web.Response:
            return web.json_response(body)
        return handler

    app.router.add_get("/api", answer(core))
    app.router.add_get("/api/v1", answer(resources))
    app.router.add_get("/apis", answer({"kind": "APIGroupList", "apiVersion": "v1", "groups": []}))


def kube_churn(store: KubeStore, rng: random.Random, bound: list[tuple[str, str, str, int]],
               moved: list[tuple[str, str, str, int]]) -> None:
    """Five pods finish and five new ones start; one GPU pod turns up pending; two running GPU pods
    finish, freeing their nodes' GPUs, and the two that finished a tick ago are followed by new ones
    on the same nodes (so every tick changes what four GPU nodes hold, as jobs come and go)."""
    tick = int(time.time())
    for i in range(5):
        name = f"churn-{tick}-{i}"
        store.put(k.pod(name, "team-churn", node_name=f"gpu-000-{i:02d}", created=utcnow(), owner=("Job", name)))
    for old in store.list("v1", "Pod", "team-churn")[:-10]:
        store.delete("v1", "Pod", old["metadata"]["name"], "team-churn")
    store.put(k.pod(f"churn-gpu-{tick}", "team-churn", gpus=rng.choice((1, 8)), created=utcnow(),
                    owner=("Job", f"churn-gpu-{tick}")))
    for j, (namespace, _, node, gpus) in enumerate(moved):  # the nodes freed a tick ago take new pods
        name = f"train-r{tick}-{j}"
        store.put(k.pod(name, namespace, gpus=gpus, node_name=node, created=utcnow(), owner=("Job", name)))
        bound.append((namespace, name, node, gpus))
    moved[:] = [bound.pop(rng.randrange(len(bound))) for _ in range(min(2, len(bound)))]
    for namespace, name, _, _ in moved:
        store.delete("v1", "Pod", name, namespace)


def ray_churn(sim: seed.BenchRaySim) -> None:
    """Two running jobs finish, two waiting ones start, two new ones wait."""
    now = sim.now_ms()
    running = [j for j in sim.jobs.values() if j.status == "RUNNING"][:2]
    pending = [j for j in sim.jobs.values() if j.status == "PENDING"][:2]
    for job, waiting in zip(running, pending):
        job.status, job.end_ms, job.message = "SUCCEEDED", now, "Job finished successfully."
        waiting.status, waiting.started_ms, waiting.node_id = "RUNNING", now, job.node_id
        sim.made = getattr(sim, "made", len(sim.jobs)) + 1
        waiting.ray_job_id, waiting.message = f"{sim.made:08x}", "Job is currently running."
        job.node_id = None
    for _ in range(2):
        n = getattr(sim, "made", len(sim.jobs))
        sim.made = n + 1
        sim.jobs[f"raysubmit_{n:06d}"] = seed.make_job(sim, n, "PENDING", now, None)
    # As many of the oldest finished jobs go: the list stays the size it was seeded at, so a long
    # run (bench/soak.py) measures mltop at a steady size, not a payload that grows by the hour.
    finished = sorted((j.end_ms or 0, key) for key, j in sim.jobs.items() if j.status in ("SUCCEEDED", "FAILED", "STOPPED"))
    for _, key in finished[:2]:
        del sim.jobs[key]
    sim.stamp = getattr(sim, "stamp", 0) + 1


def kfp_churn(store: KfpStore, rng: random.Random, generation: list[int]) -> None:
    """Two active runs finish, two new ones are submitted."""
    generation[0] += 1
    active = [r["run_id"] for r in store.runs.values() if r["state"] in ("RUNNING", "PENDING")]
    for run_id in rng.sample(active, min(2, len(active))):
        store.set_state(run_id, "SUCCEEDED")
    experiment = next(iter(store.experiments))
    for _ in range(2):
        store.add_run(f"churn-{len(store.runs)}", experiment, state="PENDING")


def main() -> None:
    name = sys.argv[1]
    workload = WORKLOADS[name]
    if "--quick" in sys.argv:
        workload = scaled(workload)
    served = Served(workload)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # stopped by the suite: still remove the kubeconfig
    try:
        print(json.dumps(served.start()), flush=True)
        for line in sys.stdin:
            command = line.strip()
            if command == "churn on":
                served.churn.set()
            elif command == "churn off":
                served.churn.clear()
            print(json.dumps({"ok": command}), flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        served.stop()


if __name__ == "__main__":
    main()
