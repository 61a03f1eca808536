"""`mltop --demo`: start the simulated platform on loopback and say where each source lives."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from mltop.adapters.http import Endpoint
from mltop.demo.ray_dashboard import Faults, make_app
from mltop.demo.ray_sim import RaySim
from mltop.demo.scenario import RayScenario, new_ray_sim
from mltop.demo.server import LoopbackServer

DEMO_RAY_NAME = "demo"
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

    def start(self) -> "DemoPlatform":
        self.server.start()
        self.ray_sim = self.server.call(lambda: new_ray_sim(self.clock))
        self.ray_url = self.server.serve(make_app(self.ray_sim, faults=self.ray_faults))
        if self.moving:
            scenario = RayScenario(self.ray_sim)
            self.server.every(STEP_SECONDS, scenario.step)
        return self

    def ray_endpoints(self) -> tuple[Endpoint, ...]:
        return (Endpoint(name=DEMO_RAY_NAME, url=self.ray_url),)

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self) -> "DemoPlatform":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
