"""The watch cache against the fake API server: list, watch, bookmarks, 410, reconnects, deletes."""

from __future__ import annotations

import time

import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from mltop.adapters.kube_cache import WatchCache, wait_synced
from mltop.adapters.kube_nodes import node_facts
from mltop.adapters.kube_parse import pod_facts
from mltop.demo import kube_objects as k
from tests.conftest import FIXED_NOW
from tests.kube_helpers import start_fake_cluster


def eventually(check, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    assert check()


@pytest.fixture
def cluster(tmp_path):
    fake = start_fake_cluster(tmp_path, seed=False, bookmark_seconds=0.2)
    yield fake
    fake.server.stop()


@pytest.fixture
def core(cluster):
    api = k8s_config.new_client_from_config(config_file=cluster.kubeconfig, context=cluster.context)
    yield k8s.CoreV1Api(api)
    api.close()


def names(cache):
    return sorted(r.name for r in cache.snapshot())


def test_list_then_watch_adds_modifies_and_deletes(cluster, core):
    cluster.call(lambda: cluster.store.put(k.gke_a100_node("a1", "p", FIXED_NOW)))
    cache = WatchCache("nodes", core.list_node, node_facts, watch_seconds=5)
    cache.start()
    wait_synced([cache], 5)
    assert names(cache) == ["a1"]
    cluster.call(lambda: cluster.store.put(k.eks_h100_node("h1", "ng", FIXED_NOW)))
    eventually(lambda: names(cache) == ["a1", "h1"])
    cordoned = k.gke_a100_node("a1", "p", FIXED_NOW)
    cordoned["spec"]["unschedulable"] = True
    cluster.call(lambda: cluster.store.put(cordoned))
    eventually(lambda: next(r for r in cache.snapshot() if r.name == "a1").unschedulable)
    cluster.call(lambda: cluster.store.delete("v1", "Node", "h1"))
    eventually(lambda: names(cache) == ["a1"])
    assert cache.lists == 1
    cache.stop()


def test_bookmarks_move_the_resource_version_without_changes(cluster, core):
    cluster.call(lambda: cluster.store.put(k.gke_a100_node("a1", "p", FIXED_NOW)))
    cache = WatchCache("pods", core.list_pod_for_all_namespaces, pod_facts, watch_seconds=5)
    cache.start()
    wait_synced([cache], 5)
    start = cache.resource_version
    # Changes to another kind advance the global version; the pods watch learns it from bookmarks.
    cluster.call(lambda: cluster.store.put(k.eks_h100_node("h1", "ng", FIXED_NOW)))
    eventually(lambda: cache.resource_version != start)
    assert int(cache.resource_version) == cluster.call(lambda: cluster.store.resource_version)
    cache.stop()


def test_410_relists_and_a_server_ended_watch_reconnects(cluster, core):
    cluster.call(lambda: cluster.store.put(k.gke_a100_node("a1", "p", FIXED_NOW)))
    cache = WatchCache("nodes", core.list_node, node_facts, watch_seconds=5)
    cache.start()
    wait_synced([cache], 5)
    # The server ends every watch: the cache reconnects from where it was, without a re-list.
    cluster.call(cluster.store.end_watches)
    eventually(lambda: cache.watches >= 2)
    cluster.call(lambda: cluster.store.put(k.gke_a100_node("a2", "p", FIXED_NOW)))
    eventually(lambda: names(cache) == ["a1", "a2"])
    assert cache.lists == 1
    # History compacted while a change and a delete happen out of sight: 410, so re-list.
    def out_of_sight():
        cluster.store.end_watches()
        cluster.store.delete("v1", "Node", "a1")
        cluster.store.put(k.gke_a100_node("a3", "p", FIXED_NOW))
        cluster.store.compact()
    cache.resource_version = "1"  # as if the watch had fallen far behind
    cluster.call(out_of_sight)
    eventually(lambda: names(cache) == ["a2", "a3"])
    assert cache.lists >= 2
    cache.stop()


def test_only_gpu_and_ray_pods_are_kept(cluster, core):
    def seed():
        for i in range(300):
            cluster.store.put(k.pod(f"web-{i}", "web", node_name="cpu-1", created=FIXED_NOW))
        cluster.store.put(k.pod("train", "ml", gpus=1, node_name="a1", created=FIXED_NOW))
    cluster.call(seed)
    cache = WatchCache("pods", core.list_pod_for_all_namespaces, pod_facts, page_size=50, watch_seconds=5)
    cache.start()
    wait_synced([cache], 10)
    assert names(cache) == ["train"]  # 301 pods listed in 7 pages, one kept
    cache.stop()


def test_an_unreachable_server_is_an_error_not_a_hang(tmp_path):
    fake = start_fake_cluster(tmp_path, seed=False)
    api = k8s_config.new_client_from_config(config_file=fake.kubeconfig, context=fake.context)
    fake.server.stop()
    cache = WatchCache("nodes", k8s.CoreV1Api(api).list_node, node_facts)
    cache.start()
    with pytest.raises(Exception) as info:
        wait_synced([cache], 3)
    assert "nodes" in str(info.value)
    cache.stop()


def pods_by_node_cache(cluster, core, placed):
    """A started, synced pod cache grouped by node, after putting `placed` (pod name -> node)."""
    from mltop.adapters.kube_records import pods_by_node

    for name, node in placed.items():
        put_pod(cluster, name, node)
    cache = WatchCache("pods", core.list_pod_for_all_namespaces, pod_facts, watch_seconds=5, group_of=pods_by_node)
    cache.start()
    wait_synced([cache], 5)
    return cache


def put_pod(cluster, name, node):
    cluster.call(lambda: cluster.store.put(k.pod(name, "ml", gpus=1, node_name=node, created=FIXED_NOW)))


def test_pods_are_kept_by_node_and_each_node_says_when_its_pods_changed(cluster, core):
    from mltop.adapters.kube_records import UNBOUND

    def put(name, node):
        put_pod(cluster, name, node)

    cache = pods_by_node_cache(cluster, core, {"p1": "n1", "p2": "n1", "p3": None})
    try:
        def group(name):
            return sorted(p.name for p in cache.group(name))

        assert group("n1") == ["p1", "p2"] and group(UNBOUND) == ["p3"] and group("n2") == []
        first = cache.group_versions()
        assert set(first) == {"n1", UNBOUND}
        put("p3", "n2")  # the scheduler binds it
        eventually(lambda: group("n2") == ["p3"])
        moved = cache.group_versions()
        assert UNBOUND not in moved and moved["n1"] == first["n1"]  # n1's pods did not change
        cluster.call(lambda: cluster.store.delete("v1", "Pod", "p2", "ml"))
        eventually(lambda: group("n1") == ["p1"])
        assert cache.group_versions()["n1"] > moved["n1"] and cache.group_versions()["n2"] == moved["n2"]
        cluster.call(lambda: cluster.store.delete("v1", "Pod", "p1", "ml"))
        eventually(lambda: "n1" not in cache.group_versions())  # no pods: no group
        assert sorted(p.name for p in cache.snapshot()) == ["p3"]
    finally:
        cache.stop()


def test_a_reader_is_told_which_groups_changed_since_it_last_looked(cluster, core, monkeypatch):
    from mltop.adapters import record_groups
    from mltop.adapters.kube_records import UNBOUND

    def put(name, node):
        put_pod(cluster, name, node)

    cache = pods_by_node_cache(cluster, core, {"p1": "n1", "p2": None})
    try:
        seen = cache.version
        assert cache.groups_changed_since(seen) == {}
        assert cache.groups_changed_since(seen - 1) is None  # before the list: nobody can say
        put("p2", "n2")  # bound: it leaves the unbound group for n2's
        eventually(lambda: cache.groups_changed_since(seen) == {UNBOUND: -1, "n2": cache.group_versions().get("n2")})
        seen = cache.version
        put("p3", "n1")
        eventually(lambda: list(cache.groups_changed_since(seen) or ()) == ["n1"])
        assert cache.groups_changed_since(cache.version) == {}
        # The log is bounded: a reader from before what it still holds is told to look at everything.
        monkeypatch.setattr(record_groups, "LOG_LIMIT", 4)
        old = cache.version
        for i in range(6):
            put(f"q{i}", f"m{i}")
        eventually(lambda: len(cache.group("m5")) == 1)
        assert cache.groups_changed_since(old) is None
        assert set(cache.groups_changed_since(cache.version - 1) or ()) == {"m5"}
    finally:
        cache.stop()


def test_server_json_reads_what_the_stdlib_reads_and_fails_as_it_fails():
    """fast_json.loads (watch events, list pages) answers as json.loads does: msgspec where the
    JSON is strict, the stdlib for the rest; what neither reads raises what json.loads raises."""
    import json
    import math

    from mltop.adapters import fast_json

    for body in (b'{"a": [1, 2.5, "\\u00e9", null, true], "b": {"c": 123456789012345678901234567890}}',
                 '{"a": "\\ud800"}'.encode(), '[1, "é"]'.encode("utf-16"), '{"x": 1}'):
        assert fast_json.loads(body) == json.loads(body)
    nan, inf = fast_json.loads(b"[NaN, 1e400]")
    assert math.isnan(nan) and inf == math.inf
    for junk in (b"", b"{", b"[1,]", b"\xff\xfe\xfa", b"1" * 5000):
        with pytest.raises(ValueError):
            fast_json.loads(junk)
    with pytest.raises(RecursionError):
        fast_json.loads(b"[" * 100_000 + b"]" * 100_000)
