"""The fake Kubernetes API against the official client: every answer must parse as a real one does.

Sync tests on purpose: the official client blocks, and the server runs in LoopbackServer's thread.
Watches replay history after a resourceVersion, so most watch tests change the store first and
watch afterwards, with no threads and no sleeps.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from mltop.demo.kube_api import KubeStore, make_kube_app
from mltop.demo.server import LoopbackServer

TOKEN = "s3cret-token"
CREATED = datetime(2026, 11, 28, 12, 0, 0, tzinfo=timezone.utc)
RAY = ("ray.io", "v1", "rayclusters")
CAPI = ("cluster.x-k8s.io", "v1beta1", "machinedeployments")
MIN_SIZE = "cluster.x-k8s.io/cluster-api-autoscaler-node-group-min-size"
MAX_SIZE = "cluster.x-k8s.io/cluster-api-autoscaler-node-group-max-size"


# -- realistic objects ----------------------------------------------------------------------------


def gpu_node(name: str, *, gpus: int = 8, pool: str = "h100", ready: bool = True) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {
            "kubernetes.io/hostname": name, "node.kubernetes.io/instance-type": "p5.48xlarge",
            "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3", "pool": pool}},
        "spec": {"providerID": f"aws:///us-east-1a/i-{name}"},
        "status": {
            "capacity": {"cpu": "192", "memory": "2097152Mi", "nvidia.com/gpu": str(gpus), "pods": "110"},
            "allocatable": {"cpu": "191500m", "memory": "2090000Mi", "nvidia.com/gpu": str(gpus), "pods": "110"},
            "conditions": [
                {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory",
                 "lastHeartbeatTime": "2026-11-28T11:59:00Z", "lastTransitionTime": "2026-11-01T00:00:00Z"},
                {"type": "Ready", "status": "True" if ready else "False", "reason": "KubeletReady",
                 "message": "kubelet is posting ready status", "lastHeartbeatTime": "2026-11-28T11:59:00Z",
                 "lastTransitionTime": "2026-11-01T00:00:00Z"},
            ],
            "nodeInfo": {"kubeletVersion": "v1.31.0", "containerRuntimeVersion": "containerd://1.7.20",
                         "architecture": "amd64", "bootID": "b", "kernelVersion": "6.1", "kubeProxyVersion": "",
                         "machineID": "m", "operatingSystem": "linux", "osImage": "Ubuntu 22.04", "systemUUID": "u"},
        },
    }


def gpu_pod(name: str, namespace: str = "ml", *, node: str | None = None, gpus: int = 1,
            phase: str | None = None, team: str = "research") -> dict[str, Any]:
    phase = phase or ("Running" if node else "Pending")
    spec: dict[str, Any] = {
        "containers": [{"name": "trainer", "image": "rayproject/ray-ml:2.60.0-gpu",
                        "resources": {"requests": {"cpu": "8", "nvidia.com/gpu": str(gpus)},
                                      "limits": {"nvidia.com/gpu": str(gpus)}}}],
        "restartPolicy": "Never", "schedulerName": "default-scheduler",
    }
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": {"app": "trainer", "team": team}},
            "spec": spec, "status": {"phase": phase, "qosClass": "Burstable"}}


def ray_cluster(name: str, namespace: str = "ml", *, replicas: int = 2) -> dict[str, Any]:
    group = {"groupName": "gpu-workers", "replicas": replicas, "minReplicas": 0, "maxReplicas": 8,
             "rayStartParams": {}, "template": {"spec": {"containers": [
                 {"name": "ray-worker", "image": "rayproject/ray:2.60.0-gpu",
                  "resources": {"limits": {"nvidia.com/gpu": "8"}}}]}}}
    return {"apiVersion": "ray.io/v1", "kind": "RayCluster",
            "metadata": {"name": name, "namespace": namespace, "labels": {"team": "research"}},
            "spec": {"rayVersion": "2.60.0", "enableInTreeAutoscaling": True,
                     "headGroupSpec": {"rayStartParams": {"dashboard-host": "0.0.0.0"},
                                       "template": {"spec": {"containers": [{"name": "ray-head"}]}}},
                     "workerGroupSpecs": [group]},
            "status": {"state": "ready", "availableWorkerReplicas": replicas, "desiredGPU": str(8 * replicas)}}


def machine_deployment(name: str, namespace: str = "capi", *, replicas: int = 2) -> dict[str, Any]:
    return {"apiVersion": "cluster.x-k8s.io/v1beta1", "kind": "MachineDeployment",
            "metadata": {"name": name, "namespace": namespace, "annotations": {MIN_SIZE: "0", MAX_SIZE: "10"}},
            "spec": {"clusterName": "gpu-cluster", "replicas": replicas,
                     "selector": {"matchLabels": {"cluster.x-k8s.io/deployment-name": name}},
                     "template": {"spec": {"clusterName": "gpu-cluster", "version": "v1.31.0"}}},
            "status": {"replicas": replicas, "readyReplicas": replicas, "phase": "Running",
                       "selector": f"cluster.x-k8s.io/deployment-name={name}"}}


# -- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def loopback() -> Iterator[LoopbackServer]:
    server = LoopbackServer()
    server.start()
    yield server
    server.stop()


@dataclass
class Kube:
    server: LoopbackServer
    store: KubeStore
    url: str
    api: client.ApiClient

    def put(self, obj: dict[str, Any]) -> dict[str, Any]:
        return self.server.call(lambda: self.store.put(obj))

    def delete(self, *args: Any) -> None:
        self.server.call(lambda: self.store.delete(*args))

    def client(self, token: str | None = TOKEN, content_type: str | None = None) -> client.ApiClient:
        return make_client(self.url, token, content_type)


def make_client(url: str, token: str | None = TOKEN, content_type: str | None = None) -> client.ApiClient:
    config = client.Configuration(host=url)
    config.verify_ssl = False
    if token:
        config.api_key = {"authorization": f"Bearer {token}"}
    api = client.ApiClient(config)
    if content_type:
        # v30's patch methods hard-code merge-patch; a default header (it wins) sends another type.
        api.set_default_header("Content-Type", content_type)
    return api


@pytest.fixture
def kube(loopback: LoopbackServer) -> Iterator[Kube]:
    store = KubeStore(clock=lambda: CREATED)
    for obj in (gpu_node("gpu-a"), gpu_node("gpu-b"), gpu_node("cpu-a", gpus=0, pool="cpu"),
                gpu_pod("train-0", node="gpu-a", gpus=8), gpu_pod("train-1", node="gpu-b", gpus=4),
                gpu_pod("pending-0"), gpu_pod("done-0", node="gpu-a", phase="Succeeded"),
                gpu_pod("notebook", "alice", node="gpu-b", team="infra"),
                ray_cluster("rc-1"), machine_deployment("md-h100")):
        store.put(obj)
    url = loopback.serve(make_kube_app(store, token=TOKEN, bookmark_seconds=0.2))
    kube = Kube(loopback, store, url, make_client(url))
    yield kube
    kube.server.call(store.end_watches)
    kube.api.close()


def status_body(exc: ApiException) -> dict[str, Any]:
    return json.loads(exc.body)


# -- reads ----------------------------------------------------------------------------------------


def test_version(kube: Kube) -> None:
    info = client.VersionApi(kube.api).get_code()
    assert (info.major, info.minor, info.git_version) == ("1", "31", "v1.31.0")


def test_list_nodes_parses_into_models(kube: Kube) -> None:
    nodes = client.CoreV1Api(kube.api).list_node()
    assert isinstance(nodes, client.V1NodeList)
    assert nodes.metadata.resource_version == str(kube.store.resource_version)
    assert [n.metadata.name for n in nodes.items] == ["cpu-a", "gpu-a", "gpu-b"]
    node = nodes.items[1]
    assert isinstance(node, client.V1Node)
    assert node.status.capacity["nvidia.com/gpu"] == "8" and node.status.allocatable["nvidia.com/gpu"] == "8"
    assert node.metadata.labels["pool"] == "h100"
    assert [c.type for c in node.status.conditions if c.status == "True"] == ["Ready"]
    assert node.metadata.creation_timestamp == CREATED and node.metadata.uid


def test_store_semantics() -> None:
    store = KubeStore(clock=lambda: CREATED)
    first = store.put(gpu_node("n1"))
    assert first["metadata"]["resourceVersion"] == "1" and first["metadata"]["creationTimestamp"] == "2026-11-28T12:00:00Z"
    first["metadata"]["labels"]["pool"] = "mutated"  # a copy: the store must not see this
    second = store.put({**gpu_node("n1"), "spec": {"unschedulable": True}})
    assert second["metadata"]["uid"] == first["metadata"]["uid"] and second["metadata"]["resourceVersion"] == "2"
    assert second["metadata"]["generation"] == 2
    assert store.get("v1", "Node", "n1")["metadata"]["labels"]["pool"] == "h100"
    store.delete("v1", "Node", "n1")
    assert store.resource_version == 3 and store.get("v1", "Node", "n1") is None and store.list("v1", "Node") == []


def test_missing_node_is_a_404_status(kube: Kube) -> None:
    with pytest.raises(ApiException) as err:
        client.CoreV1Api(kube.api).read_node("nope")
    assert err.value.status == 404
    body = status_body(err.value)
    assert body == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": 'nodes "nope" not found', "reason": "NotFound",
                    "details": {"name": "nope", "kind": "nodes"}, "code": 404}


def test_unknown_path_and_method_are_statuses(kube: Kube) -> None:
    with pytest.raises(ApiException) as err:
        kube.api.call_api("/apis/ray.io/v1/namespaces/ml/rayservices", "GET", auth_settings=["BearerToken"],
                          response_type="object")
    assert err.value.status == 404 and status_body(err.value)["reason"] == "NotFound"
    with pytest.raises(ApiException) as err:
        client.CoreV1Api(kube.api).patch_namespaced_pod("train-0", "ml", {"metadata": {"labels": {"x": "y"}}})
    assert err.value.status == 405 and status_body(err.value)["kind"] == "Status"


def test_read_namespaced_pod(kube: Kube) -> None:
    core = client.CoreV1Api(kube.api)
    pod = core.read_namespaced_pod("train-0", "ml")
    assert isinstance(pod, client.V1Pod)
    assert pod.spec.node_name == "gpu-a" and pod.status.phase == "Running"
    assert pod.spec.containers[0].resources.requests["nvidia.com/gpu"] == "8"
    with pytest.raises(ApiException) as err:
        core.read_namespaced_pod("train-0", "alice")  # right name, wrong namespace
    assert err.value.status == 404


def test_pod_field_and_label_selectors(kube: Kube) -> None:
    core = client.CoreV1Api(kube.api)

    def names(**kwargs: Any) -> list[str]:
        return [p.metadata.name for p in core.list_pod_for_all_namespaces(**kwargs).items]

    assert names(field_selector="spec.nodeName=gpu-a") == ["done-0", "train-0"]
    assert names(field_selector="spec.nodeName=") == ["pending-0"]
    assert names(field_selector="status.phase!=Running,status.phase!=Succeeded") == ["pending-0"]
    assert names(field_selector="metadata.namespace=alice") == ["notebook"]
    assert names(field_selector="spec.nodeName=gpu-b", label_selector="team=research") == ["train-1"]
    assert names(label_selector="team!=research") == ["notebook"]
    assert names(label_selector="team in (infra, ops)") == ["notebook"]
    assert names(label_selector="!app") == [] and len(names(label_selector="app")) == 5
    assert [p.metadata.name for p in core.list_namespaced_pod("alice").items] == ["notebook"]
    assert [n.metadata.name for n in core.list_node(field_selector="metadata.name=gpu-b").items] == ["gpu-b"]
    with pytest.raises(ApiException) as err:
        names(field_selector="spec.containers=x")
    assert err.value.status == 400 and status_body(err.value)["reason"] == "BadRequest"
    with pytest.raises(ApiException) as err:
        core.list_node(field_selector="spec.nodeName=x")  # a pod field, not a node one
    assert err.value.status == 400


def test_paging_is_a_consistent_snapshot(kube: Kube) -> None:
    core = client.CoreV1Api(kube.api)
    first = core.list_pod_for_all_namespaces(limit=2)
    rv = first.metadata.resource_version
    assert [p.metadata.name for p in first.items] == ["notebook", "done-0"] and first.metadata._continue
    # Changes after the first page do not show up in the later ones.
    kube.delete("v1", "Pod", "pending-0", "ml")
    kube.put(gpu_pod("late-0"))
    second = core.list_pod_for_all_namespaces(limit=2, _continue=first.metadata._continue)
    third = core.list_pod_for_all_namespaces(limit=2, _continue=second.metadata._continue)
    assert [p.metadata.name for p in second.items + third.items] == ["pending-0", "train-0", "train-1"]
    assert second.metadata.resource_version == third.metadata.resource_version == rv
    assert third.metadata._continue is None
    with pytest.raises(ApiException) as err:
        core.list_pod_for_all_namespaces(limit=2, _continue="not-a-token")
    assert err.value.status == 400
    kube.server.call(kube.store.compact)
    with pytest.raises(ApiException) as err:
        core.list_pod_for_all_namespaces(limit=2, _continue=first.metadata._continue)
    body = status_body(err.value)
    assert err.value.status == 410 and body["reason"] == "Expired"
    assert body["message"].startswith("The provided continue parameter is too old")


# -- custom objects -------------------------------------------------------------------------------


def test_custom_object_reads(kube: Kube) -> None:
    custom = client.CustomObjectsApi(kube.api)
    rc = custom.get_namespaced_custom_object(*RAY[:2], "ml", RAY[2], "rc-1")
    assert rc["spec"]["workerGroupSpecs"][0]["replicas"] == 2 and rc["metadata"]["resourceVersion"]
    listed = custom.list_namespaced_custom_object(*RAY[:2], "ml", RAY[2])
    assert listed["kind"] == "RayClusterList" and listed["apiVersion"] == "ray.io/v1"
    assert [i["metadata"]["name"] for i in listed["items"]] == ["rc-1"]
    everywhere = custom.list_cluster_custom_object(*CAPI)
    assert everywhere["kind"] == "MachineDeploymentList" and len(everywhere["items"]) == 1
    with pytest.raises(ApiException) as err:
        custom.get_namespaced_custom_object(*RAY[:2], "ml", RAY[2], "nope")
    assert status_body(err.value)["details"] == {"name": "nope", "group": "ray.io", "kind": "rayclusters"}


def test_merge_patch_replaces_lists_and_null_deletes(kube: Kube) -> None:
    custom = client.CustomObjectsApi(kube.api)
    before = kube.store.resource_version
    worker = ray_cluster("x")["spec"]["workerGroupSpecs"][0]
    patched = custom.patch_namespaced_custom_object(
        *RAY[:2], "ml", RAY[2], "rc-1",
        {"metadata": {"labels": {"team": None, "owner": "bob"}},
         "spec": {"workerGroupSpecs": [{**worker, "replicas": 4}]}, "status": {"state": "hacked"}})
    assert patched["metadata"]["labels"] == {"owner": "bob"}
    assert [g["replicas"] for g in patched["spec"]["workerGroupSpecs"]] == [4]
    assert patched["status"]["state"] == "ready"  # status belongs to the status subresource
    assert int(patched["metadata"]["resourceVersion"]) == before + 1 and patched["metadata"]["generation"] == 2


def test_json_patch_with_escaped_pointers(kube: Kube) -> None:
    api = kube.client(content_type="application/json-patch+json")
    custom = client.CustomObjectsApi(api)
    patched = custom.patch_namespaced_custom_object(*RAY[:2], "ml", RAY[2], "rc-1", [
        {"op": "test", "path": "/spec/workerGroupSpecs/0/replicas", "value": 2},
        {"op": "replace", "path": "/spec/workerGroupSpecs/0/replicas", "value": 3},
        {"op": "add", "path": "/metadata/annotations", "value": {}},
        {"op": "add", "path": "/metadata/annotations/mltop.io~1paused", "value": "true"},
        {"op": "add", "path": "/metadata/annotations/a~0b", "value": "tilde"},
        {"op": "remove", "path": "/metadata/labels/team"},
        {"op": "add", "path": "/spec/workerGroupSpecs/-", "value": {"groupName": "cpu", "replicas": 1}},
    ])
    api.close()
    assert [g["replicas"] for g in patched["spec"]["workerGroupSpecs"]] == [3, 1]
    assert patched["metadata"]["annotations"] == {"mltop.io/paused": "true", "a~b": "tilde"}
    assert "labels" not in patched["metadata"] or "team" not in patched["metadata"]["labels"]
    assert kube.store.get("ray.io/v1", "RayCluster", "rc-1", "ml") == patched


def test_failed_json_patch_test_is_422(kube: Kube) -> None:
    api = kube.client(content_type="application/json-patch+json")
    rv = kube.store.resource_version
    with pytest.raises(ApiException) as err:
        client.CustomObjectsApi(api).patch_namespaced_custom_object(*RAY[:2], "ml", RAY[2], "rc-1", [
            {"op": "replace", "path": "/spec/workerGroupSpecs/0/replicas", "value": 9},
            {"op": "test", "path": "/spec/rayVersion", "value": "1.0"}])
    api.close()
    body = status_body(err.value)
    assert err.value.status == 422 and body["reason"] == "Invalid"
    assert "test operation" in body["details"]["causes"][0]["message"]
    assert kube.store.resource_version == rv  # all or nothing


def test_list_body_sent_as_merge_patch_is_rejected(kube: Kube) -> None:
    # v30 sends application/merge-patch+json whatever the body; a JSON patch list needs the header override.
    with pytest.raises(ApiException) as err:
        client.CustomObjectsApi(kube.api).patch_namespaced_custom_object(
            *RAY[:2], "ml", RAY[2], "rc-1", [{"op": "replace", "path": "/spec/rayVersion", "value": "2.61.0"}])
    assert err.value.status == 400


def test_strategic_merge_patch_on_a_crd_is_415(kube: Kube) -> None:
    api = kube.client(content_type="application/strategic-merge-patch+json")
    with pytest.raises(ApiException) as err:
        client.CustomObjectsApi(api).patch_namespaced_custom_object(
            *RAY[:2], "ml", RAY[2], "rc-1", {"spec": {"rayVersion": "2.61.0"}})
    api.close()
    body = status_body(err.value)
    assert err.value.status == 415 and body["reason"] == "UnsupportedMediaType"
    assert "application/merge-patch+json" in body["message"]


def test_replace_checks_resource_version(kube: Kube) -> None:
    custom = client.CustomObjectsApi(kube.api)
    rc = custom.get_namespaced_custom_object(*RAY[:2], "ml", RAY[2], "rc-1")
    kube.put({**rc, "spec": {**rc["spec"], "rayVersion": "2.61.0"}})  # someone else wins the race
    rc["spec"]["workerGroupSpecs"][0]["replicas"] = 5
    with pytest.raises(ApiException) as err:
        custom.replace_namespaced_custom_object(*RAY[:2], "ml", RAY[2], "rc-1", rc)
    body = status_body(err.value)
    assert err.value.status == 409 and body["reason"] == "Conflict"
    assert body["message"] == ('Operation cannot be fulfilled on rayclusters.ray.io "rc-1": the object has been '
                               "modified; please apply your changes to the latest version and try again")
    fresh = custom.get_namespaced_custom_object(*RAY[:2], "ml", RAY[2], "rc-1")
    fresh["spec"]["workerGroupSpecs"][0]["replicas"] = 5
    done = custom.replace_namespaced_custom_object(*RAY[:2], "ml", RAY[2], "rc-1", fresh)
    assert done["spec"]["workerGroupSpecs"][0]["replicas"] == 5 and done["spec"]["rayVersion"] == "2.61.0"
    assert int(done["metadata"]["resourceVersion"]) > int(fresh["metadata"]["resourceVersion"])
    with pytest.raises(ApiException) as err:  # a patch can carry the precondition too
        custom.patch_namespaced_custom_object(*RAY[:2], "ml", RAY[2], "rc-1",
                                              {"metadata": {"resourceVersion": fresh["metadata"]["resourceVersion"]}})
    assert err.value.status == 409


def test_machine_deployment_scale(kube: Kube) -> None:
    custom = client.CustomObjectsApi(kube.api)
    scale = custom.get_namespaced_custom_object_scale(*CAPI[:2], "capi", CAPI[2], "md-h100")
    assert scale["apiVersion"] == "autoscaling/v1" and scale["kind"] == "Scale"
    assert scale["spec"] == {"replicas": 2}
    assert scale["status"] == {"replicas": 2, "selector": "cluster.x-k8s.io/deployment-name=md-h100"}
    rv = kube.store.resource_version
    after = custom.patch_namespaced_custom_object_scale(*CAPI[:2], "capi", CAPI[2], "md-h100",
                                                        {"spec": {"replicas": 5}})
    assert after["spec"]["replicas"] == 5 and after["metadata"]["resourceVersion"] == str(rv + 1)
    md = kube.store.get("cluster.x-k8s.io/v1beta1", "MachineDeployment", "md-h100", "capi")
    assert md["spec"]["replicas"] == 5 and md["metadata"]["annotations"][MAX_SIZE] == "10"
    with pytest.raises(ApiException) as err:  # a stale Scale is a conflict like any other write
        custom.replace_namespaced_custom_object_scale(*CAPI[:2], "capi", CAPI[2], "md-h100", scale)
    assert err.value.status == 409
    with pytest.raises(ApiException) as err:
        custom.get_namespaced_custom_object_scale(*RAY[:2], "ml", RAY[2], "rc-1")  # RayCluster has no scale
    assert err.value.status == 404


# -- access ---------------------------------------------------------------------------------------


def test_missing_or_wrong_token_is_401(kube: Kube) -> None:
    for token in (None, "wrong"):
        api = kube.client(token=token)
        with pytest.raises(ApiException) as err:
            client.CoreV1Api(api).list_node()
        api.close()
        assert err.value.status == 401 and status_body(err.value)["reason"] == "Unauthorized"


def test_denied_verbs_are_403(kube: Kube) -> None:
    kube.store.denied_verbs.add(("patch", "rayclusters"))
    custom = client.CustomObjectsApi(kube.api)
    with pytest.raises(ApiException) as err:
        custom.patch_namespaced_custom_object(*RAY[:2], "ml", RAY[2], "rc-1", {"spec": {"rayVersion": "x"}})
    body = status_body(err.value)
    assert err.value.status == 403 and body["reason"] == "Forbidden"
    assert body["message"] == ('rayclusters.ray.io "rc-1" is forbidden: User "demo" cannot patch resource '
                               '"rayclusters" in API group "ray.io" in the namespace "ml"')
    assert custom.get_namespaced_custom_object(*RAY[:2], "ml", RAY[2], "rc-1")  # reads still work


def test_self_subject_access_review(kube: Kube) -> None:
    seen: list[dict[str, Any]] = []

    def access(attrs: dict[str, Any]) -> bool:
        seen.append(attrs)
        return attrs["verb"] != "patch"

    kube.store.access = access
    authz = client.AuthorizationV1Api(kube.api)

    def review(verb: str) -> client.V1SelfSubjectAccessReview:
        attrs = client.V1ResourceAttributes(group="ray.io", resource="rayclusters", verb=verb, namespace="ml")
        body = client.V1SelfSubjectAccessReview(spec=client.V1SelfSubjectAccessReviewSpec(resource_attributes=attrs))
        return authz.create_self_subject_access_review(body)

    assert review("get").status.allowed is True
    denied = review("patch")
    assert denied.status.allowed is False and denied.spec.resource_attributes.verb == "patch"
    assert seen[0] == {"group": "ray.io", "resource": "rayclusters", "verb": "get", "namespace": "ml"}


def test_default_access_follows_denied_verbs(kube: Kube) -> None:
    kube.store.denied_verbs.add(("patch", "machinedeployments/scale"))
    assert kube.store.access({"verb": "patch", "resource": "machinedeployments", "subresource": "scale"}) is False
    assert kube.store.access({"verb": "get", "resource": "machinedeployments"}) is True


# -- watches --------------------------------------------------------------------------------------


def test_watch_sees_changes_after_the_list_in_order(kube: Kube) -> None:
    core = client.CoreV1Api(kube.api)
    rv = core.list_node().metadata.resource_version
    kube.put(gpu_node("gpu-c"))
    kube.put(gpu_node("gpu-c", ready=False))
    kube.put(gpu_pod("other"))  # another kind: not in this watch
    kube.delete("v1", "Node", "gpu-c")
    seen = []
    for event in watch.Watch().stream(core.list_node, resource_version=rv, allow_watch_bookmarks=True,
                                      timeout_seconds=3):
        seen.append(event)
        if len(seen) == 3:
            break
    assert [e["type"] for e in seen] == ["ADDED", "MODIFIED", "DELETED"]
    assert all(isinstance(e["object"], client.V1Node) for e in seen)
    assert seen[1]["object"].status.conditions[1].status == "False"
    assert seen[2]["object"].metadata.resource_version == str(kube.store.resource_version)


def test_bookmarks_pass_through_raw_and_the_stream_ends_on_timeout(kube: Kube) -> None:
    core = client.CoreV1Api(kube.api)
    rv = core.list_node().metadata.resource_version
    kube.put(gpu_pod("other"))  # moves the global RV without a Node event
    w = watch.Watch()
    started = time.monotonic()
    events = list(w.stream(core.list_node, resource_version=rv, allow_watch_bookmarks=True, timeout_seconds=1))
    assert 0.9 < time.monotonic() - started < 2.5
    assert len(events) >= 3 and {e["type"] for e in events} == {"BOOKMARK"}
    # The client hands bookmarks over undecoded and does not take their RV for its own.
    assert events[0]["object"] == {"kind": "Node", "apiVersion": "v1",
                                   "metadata": {"resourceVersion": str(kube.store.resource_version)}}
    assert w.resource_version == rv


def test_watch_from_zero_lists_then_follows(kube: Kube) -> None:
    custom = client.CustomObjectsApi(kube.api)
    stream = watch.Watch().stream(custom.list_namespaced_custom_object, *RAY[:2], "ml", RAY[2],
                                  resource_version="0", timeout_seconds=3)
    first = next(stream)
    assert first["type"] == "ADDED" and first["object"]["metadata"]["name"] == "rc-1"
    kube.put(ray_cluster("rc-1", replicas=3))
    second = next(stream)
    stream.close()
    assert second["type"] == "MODIFIED" and second["object"]["spec"]["workerGroupSpecs"][0]["replicas"] == 3


def test_watch_from_a_compacted_rv_raises_410(kube: Kube) -> None:
    core = client.CoreV1Api(kube.api)
    rv = core.list_node().metadata.resource_version
    kube.put(gpu_node("gpu-c"))
    kube.server.call(kube.store.compact)
    with pytest.raises(ApiException) as err:  # with timeout_seconds the client does not retry
        list(watch.Watch().stream(core.list_node, resource_version=rv, timeout_seconds=3))
    assert err.value.status == 410 and "too old resource version" in err.value.reason
    with pytest.raises(ApiException) as err:  # without, it retries once from the same RV, then gives up
        list(watch.Watch().stream(core.list_node, resource_version=rv))
    assert err.value.status == 410


def test_history_overflow_expires_old_watches(loopback: LoopbackServer) -> None:
    store = KubeStore(history_limit=2)
    for i in range(4):
        store.put(gpu_node(f"n{i}"))
    url = loopback.serve(make_kube_app(store))
    api = make_client(url, token=None)
    core = client.CoreV1Api(api)
    with pytest.raises(ApiException) as err:
        list(watch.Watch().stream(core.list_node, resource_version="1", timeout_seconds=2))
    assert err.value.status == 410 and "too old resource version: 1 (2)" in err.value.reason
    stream = watch.Watch().stream(core.list_node, resource_version="2", timeout_seconds=2)
    assert [next(stream)["object"].metadata.name for _ in range(2)] == ["n2", "n3"]
    stream.close()
    api.close()


def test_field_selector_watch_sends_deleted_when_a_pod_leaves(kube: Kube) -> None:
    core = client.CoreV1Api(kube.api)
    unscheduled = core.list_pod_for_all_namespaces(field_selector="spec.nodeName=")
    assert [p.metadata.name for p in unscheduled.items] == ["pending-0"]
    kube.put(gpu_pod("pending-0", node="gpu-a"))  # the scheduler binds it
    kube.put(gpu_pod("pending-1"))
    kube.put(gpu_pod("train-0", node="gpu-a", phase="Failed"))  # never matched: not sent
    events = []
    for event in watch.Watch().stream(core.list_pod_for_all_namespaces, field_selector="spec.nodeName=",
                                      resource_version=unscheduled.metadata.resource_version, timeout_seconds=3):
        events.append((event["type"], event["object"].metadata.name, event["object"].spec.node_name))
        if len(events) == 2:
            break
    assert events == [("DELETED", "pending-0", "gpu-a"), ("ADDED", "pending-1", None)]


def test_end_watches_makes_the_client_reconnect(kube: Kube) -> None:
    core = client.CoreV1Api(kube.api)
    rv = core.list_node().metadata.resource_version
    kube.put(gpu_node("gpu-c"))
    stream = watch.Watch().stream(core.list_node, resource_version=rv)  # no timeout: the client resumes
    assert next(stream)["object"].metadata.name == "gpu-c"
    kube.server.call(kube.store.end_watches)
    kube.put(gpu_node("gpu-d"))
    event = next(stream)  # arrives over a new connection, resumed from gpu-c's RV
    stream.close()
    assert (event["type"], event["object"].metadata.name) == ("ADDED", "gpu-d")
