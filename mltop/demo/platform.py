"""`mltop --demo`: start the simulated platform on loopback and say where each source lives."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from mltop.adapters.http import Endpoint
from mltop.adapters.kfp_endpoint import KfpEndpoint
from mltop.adapters.kube_target import KubeTarget
from mltop.demo.kfp_api import KfpStore, make_kfp_app
from mltop.demo.kfp_scenario import NAMESPACES as KFP_NAMESPACES
from mltop.demo.kfp_scenario import KfpScenario, seed_kfp
from mltop.demo.kube_api import KubeStore, make_kube_app
from mltop.demo.kube_dra import seed_dra
from mltop.demo.kube_rayjobs import CHAIN_RAY_CLUSTER, chain_ray_sim, seed_kfp_rayjob, seed_rayjobs
from mltop.demo.kube_scenario import KubeScenario, kubeconfig, seed_kfp_step, seed_kube, seed_unusable
from mltop.demo.kueue_objects import seed_queued_rayjob, seed_team_a
from mltop.demo.ray_dashboard import Faults, make_app
from mltop.demo.ray_sim import RaySim, utcnow
from mltop.demo.scenario import RayScenario, new_ray_sim
from mltop.demo.server import LoopbackServer

DEMO_RAY_NAME = "demo"
DEMO_KUBE_CONTEXT = "demo-k8s"
DEMO_KUBE_TOKEN = "demo-token"  # the demo API server checks it, as a real one checks yours
DEMO_KFP_NAME = "demo-kfp"
DEMO_KFP_TOKEN = "demo-kfp-token"
STEP_SECONDS = 1.0


@dataclass
class DemoPlatform:
    """The demo cluster(s), served over HTTP on 127.0.0.1. `moving=False` freezes the story."""

    clock: Callable[[], datetime] | None = None
    moving: bool = True
    server: LoopbackServer = field(default_factory=LoopbackServer)
    ray_sim: RaySim | None = None
    ray_faults: Faults = field(default_factory=Faults)
    ray_url: str = ""
    chain_sim: RaySim | None = None  # the RayCluster of the RayJob a KFP step made (mltop/chain.py)
    chain_ray_url: str = ""
    kube_store: KubeStore | None = None
    kube_url: str = ""
    kubeconfig_path: str = ""
    kfp_store: KfpStore | None = None
    kfp_url: str = ""
    _tmp: str = ""

    def start(self) -> "DemoPlatform":
        clock = self.clock or utcnow
        self.server.start()
        self.ray_sim = self.server.call(lambda: new_ray_sim(self.clock))
        self.ray_url = self.server.serve(make_app(self.ray_sim, faults=self.ray_faults))
        self.chain_sim = self.server.call(lambda: chain_ray_sim(self.clock))
        self.chain_ray_url = self.server.serve(make_app(self.chain_sim))
        store = KubeStore(clock=clock)
        self.kube_store = store
        self.server.call(lambda: seed_kube(store, clock()))
        self.server.call(lambda: seed_kfp_step(store, clock()))  # KFP runs its steps on this cluster
        self.server.call(lambda: seed_dra(store, clock()))  # a DRA GPU node (resource.k8s.io/v1)
        self.server.call(lambda: seed_unusable(store, clock()))  # a node whose device plugin stopped
        self.server.call(lambda: seed_rayjobs(store, clock()))  # KubeRay RayJobs: one running, one waiting
        self.server.call(lambda: seed_kfp_rayjob(store, clock()))  # ...and one a KFP step made (mltop/chain.py)
        self.server.call(lambda: seed_team_a(store, clock()))  # Kueue: a ClusterQueue near its GPU quota
        self.server.call(lambda: seed_queued_rayjob(store, clock()))  # and a RayJob it holds for quota
        self.kube_url = self.server.serve(make_kube_app(store, token=DEMO_KUBE_TOKEN))
        kfp = KfpStore(clock=clock, multi_user=True, token=DEMO_KFP_TOKEN)
        self.kfp_store = kfp
        self.server.call(lambda: seed_kfp(kfp, clock()))
        self.kfp_url = self.server.serve(make_kfp_app(kfp))
        # The Kubernetes client takes its settings from a kubeconfig file, read once when each
        # source is made; the CLI calls remove_files() as soon as its sources exist.
        self._tmp = tempfile.mkdtemp(prefix="mltop-demo-")
        path = Path(self._tmp) / "kubeconfig"
        try:
            path.write_text(json.dumps(kubeconfig(self.kube_url, DEMO_KUBE_TOKEN, DEMO_KUBE_CONTEXT)))
        except BaseException:
            self.remove_files()
            raise
        self.kubeconfig_path = str(path)
        if self.moving:
            self.ray_sim.progress_every = 2.0  # running jobs write progress lines: `l` has a log to follow
            ray_scenario = RayScenario(self.ray_sim)
            kube_scenario = KubeScenario(store, clock)
            kfp_scenario = KfpScenario(kfp, clock)

            def step() -> None:
                ray_scenario.step()
                kube_scenario.step()
                kfp_scenario.step()

            self.server.every(STEP_SECONDS, step)
        return self

    def ray_endpoints(self) -> tuple[Endpoint, ...]:
        return (Endpoint(name=DEMO_RAY_NAME, url=self.ray_url),)

    def chain_ray_endpoints(self) -> tuple[Endpoint, ...]:
        """The dashboard of the RayCluster a KFP step's RayJob runs on: `mltop --demo` watches it too, so
        the run, its RayJob and its Ray job show as one row (its own tests leave it out)."""
        return (Endpoint(name=CHAIN_RAY_CLUSTER, url=self.chain_ray_url),)

    def kfp_endpoints(self) -> tuple[KfpEndpoint, ...]:
        return (KfpEndpoint(name=DEMO_KFP_NAME, url=self.kfp_url, namespaces=KFP_NAMESPACES, token=DEMO_KFP_TOKEN),)

    def kube_targets(self) -> tuple[KubeTarget, ...]:
        return (KubeTarget(context=DEMO_KUBE_CONTEXT, kubeconfig=self.kubeconfig_path),)

    def remove_files(self) -> None:
        """Remove the temporary kubeconfig (and its directory). Sources made before keep working."""
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = ""

    def stop(self) -> None:
        self.server.stop()
        self.remove_files()

    def __enter__(self) -> "DemoPlatform":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
