"""The demo's Kubeflow Pipelines: a multi-user deployment with two team namespaces, experiments,
a running fine-tune, a scheduled nightly evaluation, a failure, successes, and a run stuck in
CANCELING (a real failure mode: its Argo workflow never acknowledges the terminate).

`seed_kfp` builds the opening state; `KfpScenario.step` keeps runs moving.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta

from mltop.demo.kfp_api import KfpStore

NAMESPACES = ("team-nlp", "team-vision")
# finetune-llama-3-8b-lora's train step creates a RayJob (mltop/demo/kube_rayjobs.py): its id is fixed
# so the RayJob can carry it, as a step copies its pod's `pipeline/runid` label.
FINETUNE_RUN_ID = "3f6c2a9e-5b1d-4e8a-9c07-7a1e2d4b8f10"
MAX_RUNS = 60


def seed_kfp(store: KfpStore, now: datetime) -> None:
    minute = timedelta(minutes=1)
    finetune = store.add_pipeline("llm-finetune-pipeline", "team-nlp")
    evaluate = store.add_pipeline("nightly-eval-pipeline", "team-nlp")
    detector = store.add_pipeline("train-detector-pipeline", "team-vision")
    ft_exp = store.add_experiment("llm-finetune", "team-nlp")
    eval_exp = store.add_experiment("nightly-eval", "team-nlp")
    det_exp = store.add_experiment("detector-training", "team-vision")
    store.add_run("finetune-llama-3-8b-lora", ft_exp["experiment_id"], state="RUNNING", run_id=FINETUNE_RUN_ID,
                  created_at=now - 35 * minute, scheduled_at=now - 35 * minute, pipeline_id=finetune["pipeline_id"],
                  parameters={"base_model": "meta-llama/Llama-3-8B", "lr": 0.0002, "epochs": 3},
                  tasks=[{"display_name": "preprocess", "state": "SUCCEEDED", "pod_name": "finetune-llama-preprocess-7d2"},
                         {"display_name": "train", "state": "RUNNING", "pod_name": "finetune-llama-train-91x"}])
    # Its train step's pod asks for more GPUs than any node has: the run says RUNNING, the step waits
    # (the demo Kubernetes cluster holds that pod, pending; mltop joins the two).
    store.add_run("finetune-mistral-7b", ft_exp["experiment_id"], state="RUNNING",
                  created_at=now - 9 * minute, scheduled_at=now - 9 * minute, pipeline_id=finetune["pipeline_id"],
                  parameters={"base_model": "mistralai/Mistral-7B-v0.3", "gpus": 16},
                  tasks=[{"display_name": "preprocess", "state": "SUCCEEDED",
                          "pod_name": "finetune-mistral-7b-9kq2z-system-container-impl-1198433012"},
                         {"display_name": "train", "state": "PENDING",
                          "pod_name": "finetune-mistral-7b-9kq2z-system-container-impl-2871342712"}])
    store.add_run("eval-nightly-2026-11-28", eval_exp["experiment_id"], state="PENDING",
                  created_at=now - 3 * minute, scheduled_at=now - 3 * minute, pipeline_id=evaluate["pipeline_id"],
                  recurring_run_id="nightly-eval-schedule", parameters={"suite": "mmlu,hellaswag"})
    store.add_run("train-detector-v7", det_exp["experiment_id"], state="FAILED",
                  created_at=now - 80 * minute, scheduled_at=now - 80 * minute, finished_at=now - 52 * minute,
                  pipeline_id=detector["pipeline_id"], error="task 'train' failed: pod OOMKilled (exit code 137)",
                  parameters={"backbone": "resnet101", "batch_size": 64},
                  tasks=[{"display_name": "fetch-data", "state": "SUCCEEDED", "pod_name": "detector-v7-fetch-2kq"},
                         {"display_name": "train", "state": "FAILED", "pod_name": "detector-v7-train-8pz"}])
    stuck = store.add_run("sweep-lr-grid-old", ft_exp["experiment_id"], state="RUNNING",
                          created_at=now - 200 * minute, scheduled_at=now - 200 * minute,
                          pipeline_id=finetune["pipeline_id"])
    store.stuck_canceling.add(stuck["run_id"])
    store.set_state(stuck["run_id"], "CANCELING")
    for day in (1, 2):
        store.add_run(f"eval-nightly-2026-11-{28 - day}", eval_exp["experiment_id"], state="SUCCEEDED",
                      created_at=now - timedelta(days=day), scheduled_at=now - timedelta(days=day),
                      finished_at=now - timedelta(days=day) + 40 * minute, pipeline_id=evaluate["pipeline_id"],
                      recurring_run_id="nightly-eval-schedule")


class KfpScenario:
    """Pending runs start, running ones finish (now and then failing), new ones arrive."""

    def __init__(self, store: KfpStore, clock: Callable[[], datetime], seed: int = 5) -> None:
        self.store = store
        self.clock = clock
        self.rng = random.Random(seed)
        self.steps = 0

    def step(self) -> None:
        self.steps += 1
        now = self.clock()
        for run in list(self.store.runs.values()):
            state = run.get("state")
            age = (now - _created(run)).total_seconds()
            if state == "PENDING" and age > 20:
                self.store.set_state(run["run_id"], "RUNNING")
            elif state == "RUNNING" and run["display_name"].startswith("batch-") and age > 70:
                failed = self.rng.random() < 0.25
                self.store.set_state(run["run_id"], "FAILED" if failed else "SUCCEEDED",
                                     error="task 'score' failed: exit code 1" if failed else None)
        if self.steps % 25 == 0 and len(self.store.runs) < MAX_RUNS:
            experiment = next(iter(self.store.experiments.values()))
            self.store.add_run(f"batch-score-{self.steps}", experiment["experiment_id"], state="PENDING",
                               created_at=now, scheduled_at=now)


def _created(run: dict) -> datetime:
    value = run.get("created_at")
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
