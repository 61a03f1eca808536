"""CPU of one Kubernetes poll's records after a few pods moved, at N GPU nodes and 10 pods a node.

    python bench/kube_rebuild.py [NODES ...]      (default 1000 5000)

Fills a node and a pod watch cache (mltop.adapters.kube_cache, fed the events a watch would
deliver; no server), builds the records once, then per step moves GPU pods on a few nodes (as the
suite's churn does: two finish, two start, one pends) and times `ClusterRecords` (GpuNodes, node
pools, pending jobs). Median of 50 steps. A benchmark, not a test: compare medians on one machine.
"""

from __future__ import annotations

import statistics
import sys
import time
from datetime import datetime, timezone
from typing import Any

from mltop.adapters.kube_cache import WatchCache
from mltop.adapters.kube_nodes import node_facts
from mltop.adapters.kube_parse import pod_facts
from mltop.adapters.kube_records import ClusterRecords, pods_by_node
from mltop.demo import kube_objects as k

NOW = datetime(2026, 11, 30, 12, tzinfo=timezone.utc)


class NoDra:
    """A cluster without DRA, as kube_dra's view is then."""

    devices = ()

    def shows(self, facts: Any) -> bool:
        return True

    def waiting_job(self, pod: Any, cluster: str) -> None:
        return None


def fed(what: str, to_record: Any, objects: list[dict[str, Any]], **kwargs: Any) -> WatchCache[Any]:
    cache: WatchCache[Any] = WatchCache(what, lambda **_: None, to_record, **kwargs)
    for obj in objects:
        cache._apply({"type": "ADDED", "object": obj})
    if cache._groups is not None:  # as after a list: the groups' change log starts here
        cache._groups.reset(cache._records, cache.version)
    return cache


def main(sizes: list[int]) -> None:
    for count in sizes:
        nodes = fed("nodes", node_facts, [k.gke_a100_node(f"gpu-{i:05d}", f"pool-{i % 100}", NOW)
                                          for i in range(count)])
        pods = fed("pods", pod_facts, [k.pod(f"p-{i}-{j}", "ml", gpus=1 if j < 4 else 0,
                                             node_name=f"gpu-{i:05d}", created=NOW)
                                       for i in range(count) for j in range(10)], group_of=pods_by_node)
        records, dra, took = ClusterRecords("bench"), NoDra(), []
        records(records.versions((nodes, pods)), nodes, pods, dra)
        for step in range(50):
            for j in range(2):
                node = f"gpu-{(step * 7 + j) % count:05d}"
                pods._apply({"type": "DELETED", "object": k.pod(f"p-{(step * 7 + j) % count}-0", "ml", gpus=1,
                                                                 node_name=node, created=NOW)})
                pods._apply({"type": "ADDED", "object": k.pod(f"p-{(step * 7 + j) % count}-0", "ml", gpus=2,
                                                               node_name=node, created=NOW)})
            pods._apply({"type": "ADDED", "object": k.pod(f"pending-{step}", "ml", gpus=1, created=NOW)})
            began = time.thread_time()
            records(records.versions((nodes, pods)), nodes, pods, dra)
            took.append(time.thread_time() - began)
        print(f"{count:>6} GPU nodes, {len(pods):,} pods: a poll's records after a few pods moved "
              f"{statistics.median(took) * 1000:6.2f} ms (median of {len(took)})")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1000, 5000])
