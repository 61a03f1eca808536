"""Kubernetes: GPU nodes, pending GPU pods, node pools, KubeRay worker groups, MachineDeployments."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mltop.adapters.kube_target import KubeTarget
from mltop.config_types import ConfigError, Strict, local_file
from mltop.registry import Backend, Inputs, SourceFlag, register


class KubeSourceConfig(Strict):
    context: str | None = None  # default: the kubeconfig's current context
    kubeconfig: str | None = None  # default: KUBECONFIG, then ~/.kube/config
    in_cluster: bool = False  # use the pod's service account (mltop running inside the cluster)


def resolve(inputs: Inputs) -> tuple[KubeTarget, ...]:
    """Flags, then the file's [[kubernetes]] entries, then what kubectl would use by itself.
    Paths in KUBECONFIG, and a colon-separated `kubeconfig`, are checked when the source is made."""
    contexts, kubeconfig = inputs.flags.get("context"), inputs.flags.get("kubeconfig")
    local_file(kubeconfig, "--kubeconfig")
    if contexts:
        return tuple(KubeTarget(context=c, kubeconfig=kubeconfig) for c in contexts)
    if kubeconfig:
        return (KubeTarget(kubeconfig=kubeconfig),)
    if inputs.entries:
        for i, k in enumerate(inputs.entries):
            if k.kubeconfig and os.pathsep not in k.kubeconfig:
                local_file(k.kubeconfig, f"{inputs.path}: kubernetes.{i}.kubeconfig")
        return tuple(KubeTarget(k.context, k.kubeconfig, k.in_cluster) for k in inputs.entries)
    default = Path(inputs.env.get("HOME", "~")).expanduser() / ".kube" / "config"
    if inputs.env.get("KUBECONFIG") or default.is_file():
        return (KubeTarget(),)
    if inputs.env.get("KUBERNETES_SERVICE_HOST"):
        return (KubeTarget(in_cluster=True),)
    return ()


class SourceSetupError(ConfigError):
    """A cluster that cannot even be set up (a broken kubeconfig, an unknown context)."""


def build(target: KubeTarget, config: Any, *, watch: bool = True) -> Any:
    from mltop.adapters.kube import KubeSource
    from mltop.adapters.kube_config import KubeConfigError

    try:
        return KubeSource(target, watch=watch)
    except KubeConfigError as exc:
        raise SourceSetupError(str(exc)) from None


BACKEND = register(Backend(
    kind="kubernetes",
    display_name="Kubernetes",
    job_noun="pod",
    resolve=resolve,
    build=build,
    build_once=lambda target, config: build(target, config, watch=False),  # paged lists only, no watch
    section="kubernetes",
    entry_model=KubeSourceConfig,
    flags=(
        SourceFlag("--kubeconfig", "kubeconfig", "kubeconfig file (default: KUBECONFIG, then ~/.kube/config)",
                   metavar="PATH", repeatable=False),
        SourceFlag("--context", "context", "a kubeconfig context to show (repeatable; default: the current context)",
                   metavar="NAME"),
    ),
    env=("KUBECONFIG", "KUBERNETES_SERVICE_HOST"),
    actions=frozenset({"pools.scale", "jobs.details", "jobs.cancel"}),  # cancel: KubeRay RayJobs (delete)
    waits_on="nodes",
    demo=lambda platform: platform.kube_targets(),
    order=20,
))
