"""The demo's story: a Ray cluster with two GPU nodes, a queue that moves, jobs that finish and fail.

`seed_ray` builds the opening state (also what the snapshot tests capture, with a fixed clock);
`RayScenario.step` keeps it moving in the live demo.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime

from mltop.demo.ray_sim import RaySim, SimNode

GPU_MODEL = "NVIDIA A100-SXM4-80GB"
MAX_JOBS = 40  # the demo forgets its oldest finished jobs beyond this, so memory stays flat
MAX_WAITING = 5  # and submits nothing new while this many wait
# The demo cluster lets jobs queue for an hour (RAY_JOB_START_TIMEOUT_SECONDS=3600, a common
# override of Ray's 15 minutes): the 12-GPU job waits 37 more minutes, then fails as Ray fails it.
START_TIMEOUT = 3600.0

# (name, owner, GPUs, run seconds, exit code): the jobs the scenario keeps submitting.
WORKLOAD = [
    ("finetune-llama-8b", "alice", 4, 70, 0),
    ("eval-mmlu", "bob", 1, 25, 0),
    ("sweep-lr[/lr=0.1]", "carol", 2, 40, 0),  # a name with markup brackets, on purpose
    ("train-resnet50", "dave", 2, 55, 1),
    ("embed-corpus", "erin", 1, 30, 0),
    ("pretrain-7b", "alice", 8, 90, 0),
    ("rl-ppo-atari", "frank", 3, 45, 0),
    ("distill-bert", "bob", 2, 35, 2),
]


def make_nodes() -> list[SimNode]:
    return [
        SimNode("a1b2c3d4e5f60718293a4b5c6d7e8f9001122334455667788990aabb", "10.0.0.10", "ray-head",
                gpus=0, cpus=8, is_head=True),
        SimNode("0f1e2d3c4b5a69788796a5b4c3d2e1f00ffeeddccbbaa99887766554", "10.0.0.11", "gpu-worker-1",
                gpus=8, cpus=64, gpu_model=GPU_MODEL),
        SimNode("9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d", "10.0.0.12", "gpu-worker-2",
                gpus=8, cpus=64, gpu_model=GPU_MODEL),
    ]


def seed_ray(sim: RaySim) -> None:
    """The opening state: two running jobs, a long queue head, a failure, a success."""
    now = sim.now_ms()
    minute = 60_000
    py = "python"
    # Jobs are back-dated; the start timeout is held off while they are placed as they were.
    start_timeout, sim.start_timeout = sim.start_timeout, 1e9
    sim.submit(f"{py} train.py --model llama-70b --steps 50000", submission_id="raysubmit_llama70b",
               gpus=8, metadata={"owner": "alice", "job_name": "train-llama-70b"},
               # What teams put in a runtime env, secrets included: `y` shows it with them redacted.
               runtime_env={"env_vars": {"HF_TOKEN": "hf_demoDEMOdemoDEMOdemoDEMO1234", "WANDB_API_KEY": "demo-wandb-key",
                                         "NCCL_DEBUG": "WARN", "TOKENIZERS_PARALLELISM": "false"},
                            "pip": ["transformers==4.46.0"]},
               run_seconds=3 * 3600, submitted_ms=now - 95 * minute)
    sim.submit(f"{py} finetune.py --base mistral-7b", submission_id="raysubmit_mistral_ft",
               gpus=6, metadata={"owner": "bob", "job_name": "finetune-mistral-7b"},
               run_seconds=46 * 60, submitted_ms=now - 40 * minute)  # ends 6 minutes into the demo
    # bob's fine-tune holds 6 GPUs at 3%: a low-utilization warning until it ends (or is stopped).
    sim.jobs["raysubmit_mistral_ft"].utilization = 3.0
    sim.submit(f"{py} pretrain.py --size 13b", submission_id="raysubmit_pretrain13b",
               gpus=12, metadata={"owner": "carol", "job_name": "pretrain-13b"},
               run_seconds=3600, submitted_ms=now - 23 * minute)
    sim.submit(f"{py} eval.py --suite helm", submission_id="raysubmit_eval_helm",
               gpus=4, metadata={"owner": "dave", "job_name": "eval-helm"},
               run_seconds=1800, submitted_ms=now - 6 * minute)
    failed = sim.submit(f"{py} train.py --model vit-h", submission_id="raysubmit_vit_oom",
                        gpus=1, metadata={"owner": "erin", "job_name": "train-vit-h"},
                        run_seconds=120, exit_code=1, submitted_ms=now - 30 * minute)
    failed.logs.append("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB")
    sim.submit(f"{py} tokenize.py --corpus c4", submission_id="raysubmit_tokenize",
               gpus=0, cpus=4, metadata={"owner": "frank", "job_name": "tokenize-c4"},
               run_seconds=300, submitted_ms=now - 50 * minute)
    # The failure and the success ran before the opening moment; running jobs began earlier too.
    for job in sim.jobs.values():
        if job.status == "RUNNING":
            job.started_ms = job.submitted_ms
    sim.start_timeout = start_timeout
    sim.advance()
    set_utilization(sim)


def set_utilization(sim: RaySim, rng: random.Random | None = None) -> None:
    """Busy GPUs run hot, free ones read 0%: what DCGM would show."""
    for node in sim.nodes:
        used = int(sim.gpus_used(node.node_id))
        node.utilization = {
            i: (float(rng.randint(82, 99)) if rng else 93.0) if i < used else 0.0 for i in range(int(node.gpus))
        }


class RayScenario:
    """Keeps the demo cluster moving: submit something every few seconds, forget old jobs."""

    def __init__(self, sim: RaySim, seed: int = 7, every_steps: int = 3) -> None:
        self.sim = sim
        self.rng = random.Random(seed)
        self.every_steps = every_steps
        self.steps = 0
        self.counter = 0

    def step(self) -> None:
        self.steps += 1
        waiting = sum(1 for j in self.sim.jobs.values() if j.status == "PENDING")
        if self.steps % self.every_steps == 0 and waiting < MAX_WAITING:
            name, owner, gpus, seconds, exit_code = WORKLOAD[self.counter % len(WORKLOAD)]
            self.counter += 1
            self.sim.submit(
                f"python {name.split('[')[0]}.py",
                submission_id=f"raysubmit_{name.split('[')[0].replace('-', '_')}_{self.counter}",
                gpus=gpus,
                metadata={"owner": owner, "job_name": name},
                run_seconds=seconds * self.rng.uniform(0.8, 1.3),
                exit_code=exit_code,
            )
        self.sim.advance()
        self._forget_old()
        set_utilization(self.sim, self.rng)

    def _forget_old(self) -> None:
        finished = sorted(
            (j for j in self.sim.jobs.values() if j.end_ms is not None), key=lambda j: j.end_ms or 0
        )
        excess = len(self.sim.jobs) - MAX_JOBS
        for job in finished[: max(0, excess)]:
            del self.sim.jobs[job.submission_id]


def new_ray_sim(clock: Callable[[], datetime] | None = None) -> RaySim:
    sim = RaySim(make_nodes(), clock=clock, start_timeout=START_TIMEOUT) if clock else RaySim(
        make_nodes(), start_timeout=START_TIMEOUT
    )
    seed_ray(sim)
    return sim
