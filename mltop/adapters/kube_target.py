"""Which Kubernetes cluster to read: kept apart from the adapter so config stays light to import."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KubeTarget:
    """One cluster, named as kubectl names it (its context)."""

    context: str | None = None  # None: the kubeconfig's current context
    kubeconfig: str | None = None  # None: KUBECONFIG, then ~/.kube/config
    in_cluster: bool = False  # the pod's service account, when mltop runs inside the cluster
