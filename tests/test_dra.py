"""DRA GPUs (resource.k8s.io): ResourceSlices count as a node's GPUs, allocated ResourceClaims as
allocated GPUs, pods waiting on unallocated claims join the queue; a cluster without DRA shows
what it showed before. Against the fake API server, through the official client, as for real."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from mltop.adapters.kube_dra import claim_record, dra_view, slice_record, waiting_job, with_dra
from mltop.adapters.kube_nodes import gpu_node, node_facts
from mltop.adapters.kube_parse import pod_facts
from mltop.demo import kube_dra as d
from mltop.demo import kube_objects as k
from tests.conftest import FIXED_NOW
from tests.kube_helpers import start_fake_cluster

G = "resource.k8s.io"
NO_DRA = {(G, "v1"), (G, "v1beta2"), (G, "v1beta1")}
WAITING_CLAIM = f"{d.WAITING_POD}-gpus-m5r8t"


@pytest.fixture
def cluster(tmp_path):
    fake = start_fake_cluster(tmp_path)
    fake.call(lambda: d.seed_dra(fake.store, FIXED_NOW))
    yield fake
    fake.server.stop()


@pytest.fixture
async def source(cluster):
    src = cluster.source()
    yield src
    await src.aclose()


def api_client(cluster):
    config = client.Configuration()
    config.host = cluster.url
    config.api_key = {"authorization": "Bearer t0ken"}
    return client.ApiClient(config)


def put(cluster, *objs):
    for obj in objs:
        cluster.call(lambda obj=obj: cluster.store.put(obj))


async def fetch_until(source, check, timeout=10.0):
    """Fetch until `check(data)` holds: watches deliver changes a moment after they are made."""
    deadline = time.monotonic() + timeout
    while True:
        data = await source.fetch()
        if check(data) or time.monotonic() > deadline:
            return data
        await asyncio.sleep(0.1)


# -- the fake server speaks DRA as the API server does ------------------------------------------


def test_slices_and_claims_through_the_official_client(cluster):
    custom = client.CustomObjectsApi(api_client(cluster))
    slices = custom.list_cluster_custom_object(G, "v1", "resourceslices", _request_timeout=5)
    assert [s["spec"]["nodeName"] for s in slices["items"]] == [d.DRA_NODE]
    assert len(slices["items"][0]["spec"]["devices"]) == 4
    claims = custom.list_namespaced_custom_object(G, "v1", "research", "resourceclaims", _request_timeout=5)
    assert [c["metadata"]["name"] for c in claims["items"]] == [WAITING_CLAIM]
    held = custom.get_namespaced_custom_object(G, "v1", "rl", "resourceclaims", f"{d.RUNNING_POD}-gpus-7bq2d",
                                               _request_timeout=5)
    assert [r["device"] for r in held["status"]["allocation"]["devices"]["results"]] == ["gpu-0", "gpu-1"]
    # The installed client (30.x) has typed DRA models only for v1alpha2, which no supported cluster serves;
    # if this fails, the client gained typed v1 models: test them here too.
    assert not hasattr(client, "ResourceV1Api")
    cluster.store.unserved |= NO_DRA
    with pytest.raises(ApiException) as err:
        custom.list_cluster_custom_object(G, "v1", "resourceslices", _request_timeout=5)
    assert err.value.status == 404


# -- counting ------------------------------------------------------------------------------------


async def test_a_dra_node_counts_its_devices_claims_and_waiting_pod(source):
    data = await source.fetch()
    nodes = {n.name: n for n in data.nodes}
    assert len(nodes) == 11  # the seeded 10, and the DRA node (no nvidia.com/gpu at all)
    node = nodes[d.DRA_NODE]
    assert (node.gpus_total, node.gpus_allocatable, node.gpus_allocated, node.gpus_free) == (4, 4, 2, 2)
    assert node.dra_gpus == 4 and node.gpu_model == "NVIDIA H100 80GB HBM3"
    assert node.gpu_resource == "gpu.nvidia.com" and node.pool == "h100-dra-pool"
    assert [(p.namespace, p.name, p.gpus, p.phase) for p in node.pods] == [("rl", d.RUNNING_POD, 2, "Running")]
    assert all(n.dra_gpus == 0 for n in data.nodes if n.name != d.DRA_NODE)
    job = next(j for j in data.jobs if j.id == f"research/{d.WAITING_POD}")
    assert job.gpus == 2 and job.message == f"waiting for DRA claim {WAITING_CLAIM} to be allocated"
    assert job.dra_claims == (WAITING_CLAIM,) and job.scheduler_message == d.WAITING_SAYS
    assert f"rl/{d.RUNNING_POD}" not in {j.id for j in data.jobs}
    assert data.skipped == 0
    pool = next(p for p in data.pools if p.name == "h100-dra-pool")
    assert (pool.gpus_total, pool.gpus_allocated) == (4, 2)


async def test_allocating_the_claim_takes_the_pod_out_of_the_queue(cluster, source):
    await source.fetch()
    claim = cluster.call(lambda: cluster.store.get("resource.k8s.io/v1", "ResourceClaim", WAITING_CLAIM, "research"))
    claim["status"] = d.resource_claim(WAITING_CLAIM, "research", 2, node=d.DRA_NODE, devices=("gpu-2", "gpu-3"),
                                       pod=d.WAITING_POD)["status"]
    put(cluster, claim)
    data = await fetch_until(source, lambda data: all(j.id != f"research/{d.WAITING_POD}" for j in data.jobs))
    assert f"research/{d.WAITING_POD}" not in {j.id for j in data.jobs}
    node = next(n for n in data.nodes if n.name == d.DRA_NODE)
    assert (node.gpus_allocated, node.gpus_free) == (4, 0)


def test_a_node_with_both_kinds_counts_its_gpus_once():
    """The rule: a node advertising its vendor's extended resource (nvidia.com/gpu > 0) is counted
    from that resource; the same vendor's DRA devices there add nothing. Another vendor's do."""
    both = k.eks_h100_node("both-1", "h100-ng", FIXED_NOW)
    facts = node_facts(both)
    nvidia = slice_record(d.resource_slice("both-1", 8))
    amd = d.resource_slice("both-1", 2, product="AMD Instinct MI300X")
    amd["metadata"]["name"] = "both-1-amd"
    amd["spec"].update(driver="gpu.amd.com", pool={"name": "both-1-amd", "generation": 1})
    claim = claim_record(d.resource_claim("c", "ml", 2, node="both-1", devices=("gpu-0", "gpu-1"), pod="p"))
    view = dra_view([nvidia], [claim])
    node = with_dra(gpu_node(facts, [], "c1"), facts, view, {})
    assert (node.gpus_total, node.gpus_allocated, node.dra_gpus, node.gpu_resource) == (8, 0, 0, "nvidia.com/gpu")
    assert not view.shows(node_facts(k.cpu_node("cpu-1", "p", FIXED_NOW), keep_all=True))
    node = with_dra(gpu_node(facts, [], "c1"), facts, dra_view([nvidia, slice_record(amd)], []), {})
    assert (node.gpus_total, node.dra_gpus) == (10, 2)
    # nvidia.com/gpu advertised as 0 (no device plugin GPUs): the DRA devices are the GPUs.
    zero = k.node("zero-1", labels={}, resources={"nvidia.com/gpu": 0}, created=FIXED_NOW)
    facts = node_facts(zero, keep_all=True)
    node = with_dra(gpu_node(facts, [], "c1"), facts, dra_view([slice_record(d.resource_slice("zero-1", 4))], []), {})
    assert (node.gpus_total, node.gpu_resource) == (4, "gpu.nvidia.com")


def test_mig_devices_count_as_shares_and_never_past_their_gpu():
    raw = d.resource_slice("mig-1", 1)
    gpu = raw["spec"]["devices"][0]
    uuid = gpu["attributes"]["uuid"]["string"]

    def mig(name, profile, parent):
        return {"name": name, "attributes": {"type": {"string": "mig"}, "profile": {"string": profile},
                                             "parentUUID": {"string": parent},
                                             "productName": {"string": "NVIDIA A100-SXM4-80GB"}}}

    raw["spec"]["devices"] = [mig("mig-0", "3g.40gb", "GPU-A"), mig("mig-1", "1g.10gb", "GPU-A"),
                              mig("mig-2", "7g.80gb", "GPU-B"), mig("mig-3", "3g.40gb", "GPU-B")]
    facts = node_facts(k.cpu_node("mig-1", "p", FIXED_NOW), keep_all=True)
    node = with_dra(gpu_node(facts, [], "c1"), facts, dra_view([slice_record(raw)], []), {})
    assert node.gpus_total == pytest.approx(4 / 7 + 1)  # GPU-B: 7/7, then nothing left for 3/7
    # The whole GPU listed beside its MIG devices (dynamic partitioning): counted once.
    raw["spec"]["devices"] = [gpu, mig("mig-0", "3g.40gb", uuid), mig("mig-1", "3g.40gb", uuid)]
    node = with_dra(gpu_node(facts, [], "c1"), facts, dra_view([slice_record(raw)], []), {})
    assert node.gpus_total == 1


def test_only_gpu_drivers_devices_and_the_newest_generation_count():
    facts = node_facts(k.cpu_node("n-1", "p", FIXED_NOW), keep_all=True)
    old = d.resource_slice("n-1", 8, generation=1)
    old["metadata"]["name"] = "old"
    new = d.resource_slice("n-1", 2, generation=2)
    nic = d.resource_slice("n-1", 4)
    nic["spec"]["driver"] = "rdma.mellanox.com"
    pooled = d.resource_slice("n-1", 4)
    del pooled["spec"]["nodeName"]
    pooled["spec"]["allNodes"] = True
    other_type = d.resource_slice("n-2", 1)
    other_type["spec"]["devices"][0]["attributes"]["type"] = {"string": "vfio"}
    assert slice_record(nic) is None and slice_record(pooled) is None
    assert slice_record(other_type).devices == ()
    node = with_dra(gpu_node(facts, [], "c1"), facts, dra_view([slice_record(old), slice_record(new)], []), {})
    assert node.gpus_total == 2


async def test_v1beta1_clusters_are_read_too(tmp_path):
    """Kubernetes 1.32 serves only v1beta1, where a device's attributes sit under `basic` and a
    claim's request is flat."""
    fake = start_fake_cluster(tmp_path)
    fake.store.unserved |= {(G, "v1"), (G, "v1beta2")}
    beta = "resource.k8s.io/v1beta1"
    put(fake, d.dra_node("beta-1", FIXED_NOW), d.resource_slice("beta-1", 4, api=beta),
        d.resource_claim("held", "ml", 1, api=beta, node="beta-1", devices=("gpu-3",), pod="p-0"),
        d.resource_claim("wants", "ml", 3, api=beta),
        d.dra_pod("p-0", "ml", "held", created=FIXED_NOW, node="beta-1"),
        d.dra_pod("p-1", "ml", "wants", created=FIXED_NOW))
    source = fake.source()
    try:
        data = await source.fetch()
    finally:
        await source.aclose()
        fake.server.stop()
    assert source.dra.version == "v1beta1"
    node = next(n for n in data.nodes if n.name == "beta-1")
    assert (node.gpus_total, node.gpus_allocated, node.gpu_model) == (4, 1, "NVIDIA H100 80GB HBM3")
    job = next(j for j in data.jobs if j.id == "ml/p-1")
    assert job.gpus == 3 and job.dra_claims == ("wants",)


# -- no DRA, or DRA that cannot be read ----------------------------------------------------------


async def test_a_cluster_without_dra_shows_what_it_showed_before(tmp_path):
    served, plain = start_fake_cluster(tmp_path, context="served"), start_fake_cluster(tmp_path, context="plain")
    plain.store.unserved |= NO_DRA
    sources = [served.source(), plain.source()]
    try:
        with_empty_dra, without = [await s.fetch() for s in sources]
    finally:
        for s, f in zip(sources, (served, plain)):
            await s.aclose()
            f.server.stop()
    assert sources[1].dra.version is None and sources[0].dra.version == "v1"
    assert without.skipped == 0 and without.skip_reason is None
    assert len(without.nodes) == 10 and len(sources[1].nodes) == 10  # CPU-only nodes are not even kept
    rename = lambda data: [repr(x).replace("served", "plain") for x in (*data.nodes, *data.jobs, *data.pools)]  # noqa: E731
    assert rename(with_empty_dra) == rename(without)
    assert all(n.dra_gpus == 0 and not j.dra_claims for n in without.nodes for j in without.jobs)


async def test_dra_served_later_brings_its_node_without_a_restart(tmp_path):
    fake = start_fake_cluster(tmp_path)
    fake.store.unserved |= NO_DRA
    fake.call(lambda: d.seed_dra(fake.store, FIXED_NOW))
    source = fake.source()
    try:
        assert d.DRA_NODE not in {n.name for n in (await source.fetch()).nodes}
        fake.store.unserved.clear()  # the cluster was upgraded (or the feature turned on)
        source.dra._next_probe = 0.0  # the next ask is due (PROBE_TTL) now rather than in five minutes
        data = await source.fetch()
    finally:
        await source.aclose()
        fake.server.stop()
    assert next(n for n in data.nodes if n.name == d.DRA_NODE).gpus_total == 4


async def test_forbidden_dra_is_said_and_the_rest_still_shows(cluster):
    cluster.store.denied_verbs.add(("list", "resourceslices"))
    source = cluster.source()
    try:
        data = await source.fetch()
    finally:
        await source.aclose()
    assert len(data.nodes) == 10 and data.skipped == 1
    assert "forbidden (403)" in data.skip_reason and "DRA GPUs not counted" in data.skip_reason


# -- hostile data ----------------------------------------------------------------------------------


async def test_hostile_slices_and_claims_cost_one_field_or_one_item(cluster, source):
    evil = d.resource_slice("evil-1", 2)
    evil["metadata"]["name"] = "evil"
    evil["spec"]["devices"][0]["attributes"]["productName"] = {"string": "H100\x1b[2J\x07\u202e\r\nboom" + "x" * 500}
    evil["spec"]["devices"][1]["attributes"] = ["not", "a", "map"]
    broken = d.resource_slice("evil-1", 2)
    broken["metadata"]["name"] = "broken"
    broken["spec"]["devices"] = {"gpu-0": {}}
    nan = d.resource_claim("nan-claim", "ml", 1)
    nan["spec"]["devices"]["requests"][0]["exactly"]["count"] = "NaN"
    huge = d.resource_claim("huge-claim", "ml", 1)
    huge["spec"]["devices"]["requests"][0]["exactly"]["count"] = "1e999"
    junk_alloc = d.resource_claim("junk", "ml", 1, node="evil-1", devices=("gpu-0",), pod="p-ok")
    junk_alloc["status"]["allocation"]["devices"]["results"].append({"driver": 7, "pool": None, "device": ["x"]})
    junk_alloc["status"]["reservedFor"].append({"resource": "pods", "name": {"$ne": 1}})
    put(cluster, d.dra_node("evil-1", FIXED_NOW), evil, broken, nan, huge, junk_alloc,
        d.dra_pod("p-nan", "ml", "nan-claim", created=FIXED_NOW), d.dra_pod("p-huge", "ml", "huge-claim", created=FIXED_NOW),
        {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaim",
         "metadata": {"name": "shapeless", "namespace": "ml"}, "spec": "junk"})
    data = await fetch_until(source, lambda data: any(n.name == "evil-1" for n in data.nodes))
    node = next(n for n in data.nodes if n.name == "evil-1")
    assert node.gpus_total == 2 and node.gpus_allocated == 1
    assert node.gpu_model and len(node.gpu_model) <= 64
    assert all(ord(c) >= 32 and c not in "\u202e\x7f" for c in node.gpu_model)
    assert [p.name for p in node.pods] == ["p-ok"]
    jobs = {j.id: j for j in data.jobs}
    assert jobs["ml/p-nan"].gpus is None and jobs["ml/p-huge"].gpus is None  # unknown, not NaN or 1e999
    assert data.skipped == 2  # the slice whose devices are not a list, the claim whose spec is not an object
    json.dumps([n.gpus_total for n in data.nodes])  # every count is a finite number


def test_pod_claims_from_templates_and_junk():
    pod = d.dra_pod("p", "ml", "p-gpus-x", created=FIXED_NOW)
    pod["spec"]["resourceClaims"] += [{"name": "direct", "resourceClaimName": "shared"}, {"name": "later",
                                      "resourceClaimTemplateName": "t"}, "junk", {"name": 5}]
    facts = pod_facts(pod)
    assert facts.claims == (("gpus", "p-gpus-x"), ("direct", "shared"), ("later", ""))
    view = dra_view([], [claim_record(d.resource_claim("shared", "ml", 2))])
    job = waiting_job(facts, view, "c1")
    assert job.dra_claims == ("shared",) and job.gpus == 2  # p-gpus-x and "later" are not there to read yet
    assert pod_facts(k.pod("cpu-only", "ml", created=FIXED_NOW)) is None  # no claims, no GPUs: not kept


# -- what --once --json says ---------------------------------------------------------------------


def test_once_json_carries_the_dra_fields(cluster):
    env = {k_: v for k_, v in os.environ.items() if not k_.startswith(("RAY_", "MLTOP_", "KUBE"))}
    env["MLTOP_CONFIG"] = os.devnull
    out = subprocess.run([sys.executable, "-m", "mltop", "--once", "--json", "--kubeconfig", cluster.kubeconfig,
                          "--context", cluster.context], capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    node = next(n for n in report["nodes"] if n["name"] == d.DRA_NODE)
    assert (node["gpus_total"], node["gpus_allocated"], node["gpus_free"], node["dra_gpus"]) == (4, 2, 2, 4)
    assert node["gpu_model"] == "NVIDIA H100 80GB HBM3" and node["gpu_resource"] == "gpu.nvidia.com"
    assert node["price_per_hour"] and node["idle_gpus"] == 2  # the idle-cost engine prices its DRA GPUs
    job = next(j for j in report["jobs"] if j["id"] == f"research/{d.WAITING_POD}")
    assert job["dra_claims"] == [WAITING_CLAIM] and job["gpus"] == 2
    assert job["message"] == f"waiting for DRA claim {WAITING_CLAIM} to be allocated"
    assert all(n["dra_gpus"] == 0 for n in report["nodes"] if n["name"] != d.DRA_NODE)


async def test_claims_that_cannot_be_read_leave_the_slices_counted_and_later_polls_quick(cluster):
    cluster.store.denied_verbs.add(("list", "resourceclaims"))
    source = cluster.source()
    try:
        data = await source.fetch()
        started = time.monotonic()
        again = await source.fetch()
        took = time.monotonic() - started
    finally:
        await source.aclose()
    node = next(n for n in data.nodes if n.name == d.DRA_NODE)
    assert (node.gpus_total, node.gpus_allocated, node.pods) == (4, 0, ())  # no claims read: none allocated
    assert data.skipped == 1 and "DRA GPUs may be missing" in data.skip_reason
    assert "resourceclaims" in data.skip_reason and "forbidden" in data.skip_reason
    assert again.skipped == 1 and took < 5  # not the sync timeout (15 s) on every poll
