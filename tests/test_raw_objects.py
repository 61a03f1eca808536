"""`y`'s fetch: each backend's object fresh from the demo/test servers, exactly the one asked for,
shown with secret-like values redacted and every character inert."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mltop.adapters.kfp import KfpSource
from mltop.adapters.kube import KubeSource
from mltop.adapters.ray import RaySource
from mltop.errors import NotFound, SourceError
from mltop.model import GpuNode, Job, Pool
from mltop.raw import HasRawObject, render
from tests.conftest import fixed_clock


@pytest.fixture
async def sources(frozen_demo):
    ray = RaySource(frozen_demo.ray_endpoints()[0], clock=fixed_clock)
    kfp = KfpSource(frozen_demo.kfp_endpoints()[0], clock=fixed_clock)
    kube = KubeSource(frozen_demo.kube_targets()[0], clock=fixed_clock)
    yield ray, kfp, kube
    for source in (ray, kfp, kube):
        await source.aclose()


def shown(raw, fmt="yaml") -> str:
    return "\n".join(render(raw, fmt).lines)


def test_every_source_offers_the_raw_view():
    for cls in (RaySource, KfpSource, KubeSource):
        assert issubclass(cls, HasRawObject)


async def test_a_ray_job_is_fetched_fresh_with_its_runtime_env_secrets_redacted(sources):
    ray, _, _ = sources
    job = next(j for j in (await ray.fetch()).jobs if j.id == "raysubmit_llama70b")
    assert ray.raw_refusal(job) is None
    raw = await ray.raw_object(job)
    assert raw.kind == "Ray job" and raw.cluster == "demo" and raw.name == "raysubmit_llama70b"
    assert raw.fetched_at == fixed_clock() and raw.api == "GET /api/jobs/raysubmit_llama70b"
    assert raw.body["submission_id"] == "raysubmit_llama70b"  # the whole JobDetails, as Ray sent it
    assert raw.body["runtime_env"]["env_vars"]["HF_TOKEN"].startswith("hf_")  # kept as sent...
    text = shown(raw)
    assert "hf_demo" not in text and "demo-wandb-key" not in text  # ...shown redacted
    assert "    HF_TOKEN: <redacted>" in text and "    WANDB_API_KEY: <redacted>" in text
    assert "    NCCL_DEBUG: WARN" in text and "    TOKENIZERS_PARALLELISM: 'false'" in text
    assert "2 secret-like values redacted" in render(raw).subtitle
    json_text = shown(raw, "json")
    assert json_text.startswith("{") and '"HF_TOKEN": "<redacted>"' in json_text and "hf_demo" not in json_text


async def test_a_kfp_run_is_fetched_fresh_with_secret_parameters_redacted(frozen_demo, sources):
    _, kfp, _ = sources
    store = frozen_demo.kfp_store
    run = frozen_demo.server.call(lambda: store.add_run(
        "with-secrets", next(iter(store.experiments)), state="PENDING",
        parameters={"hf_token": "plain-looking-value", "lr": 0.1, "db_url": "postgres://ml:hunter2@db/x"}))
    job = next(j for j in (await kfp.fetch()).jobs if j.id == run["run_id"])
    raw = await kfp.raw_object(job)
    assert raw.kind == "KFP run" and raw.body["run_id"] == run["run_id"]
    assert raw.api == f"GET /apis/v2beta1/runs/{run['run_id']}"
    text = shown(raw)
    assert "plain-looking-value" not in text and "hunter2" not in text
    assert "hf_token: <redacted>" in text and "lr: 0.1" in text
    assert "db_url: postgres://***@db/x" in text  # inert() drops a URL's user-info whole
    assert "display_name: with-secrets" in text


async def test_a_pending_pod_shows_env_values_redacted_and_secret_refs_kept(sources):
    _, _, kube = sources
    pod = next(j for j in (await kube.fetch()).jobs if j.id == "ml/finetune-70b-0-q8m4t")
    raw = await kube.raw_object(pod)
    assert raw.kind == "Pod" and raw.name == "ml/finetune-70b-0-q8m4t"
    assert raw.body["metadata"]["name"] == "finetune-70b-0-q8m4t" and raw.body["kind"] == "Pod"
    assert raw.api == "GET /api/v1/namespaces/ml/pods/finetune-70b-0-q8m4t"
    text = shown(raw)
    assert "hf_demoPod" not in text and "value: <redacted>" in text
    assert "name: wandb" in text and "key: api-key" in text  # a valueFrom ref names a Secret: kept
    assert "value: WARN" in text


async def test_nodes_and_pools_show_the_object_behind_them(sources):
    _, _, kube = sources
    data = await kube.fetch()
    node = data.nodes[0]
    raw = await kube.raw_object(node)
    assert raw.kind == "Node" and raw.body["metadata"]["name"] == node.name and raw.name == node.name
    group = next(p for p in data.pools if p.kind == "raycluster-workergroup")
    raw = await kube.raw_object(group)
    rc_name, group_name = group.name.split("/", 1)
    assert raw.kind == "RayCluster" and raw.body["metadata"]["name"] == rc_name
    names = [g["groupName"] for g in raw.body["spec"]["workerGroupSpecs"]]
    assert raw.note == f"worker group {group_name} is spec.workerGroupSpecs[{names.index(group_name)}]"
    md = next(p for p in data.pools if p.kind == "machinedeployment")
    raw = await kube.raw_object(md)
    assert raw.kind == "MachineDeployment" and raw.body["metadata"]["name"] == md.name
    assert raw.api == f"GET /apis/cluster.x-k8s.io/v1beta1/namespaces/{md.namespace}/machinedeployments/{md.name}"
    nodepool = next(p for p in data.pools if p.kind == "nodepool")
    assert "is a label on its nodes" in kube.raw_refusal(nodepool)
    with pytest.raises(SourceError, match="is a label on its nodes"):
        await kube.raw_object(nodepool)


async def test_an_object_gone_since_the_last_poll_is_one_line(frozen_demo, sources):
    _, _, kube = sources
    pod = next(j for j in (await kube.fetch()).jobs if j.id == "ml/finetune-70b-0-q8m4t")
    frozen_demo.server.call(lambda: frozen_demo.kube_store.delete("v1", "Pod", "finetune-70b-0-q8m4t", "ml"))
    with pytest.raises(NotFound, match="Pod ml/finetune-70b-0-q8m4t: not found"):
        await kube.raw_object(pod)


async def test_a_ray_node_is_what_the_dashboard_knows_of_it_and_a_gone_one_is_not_found(sources):
    ray, _, _ = sources
    node = (await ray.fetch()).ray_nodes[0]
    assert ray.raw_refusal(node) is None
    raw = await ray.raw_object(node)
    node_id = node.key.rsplit("/", 1)[1]
    assert raw.kind == "Ray node" and raw.api == f"GET /nodes/{node_id}"
    assert raw.body["msg"] == "Node details fetched." and raw.body["data"]["detail"]["raylet"]["nodeId"] == node_id
    gone = replace(node, key=f"ray/demo/{'ab' * 28}")
    with pytest.raises(NotFound, match="Ray no longer knows node"):  # Ray answers 200 with an empty shell
        await ray.raw_object(gone)


async def test_ray_and_kfp_say_what_they_cannot_show(sources):
    ray, kfp, _ = sources
    pool = Pool(key="k", cluster="c", kind="x", name="p", namespace=None, replicas=1, ready=1, min=None, max=None,
                gpus_per_replica=None)
    assert ray.raw_refusal(pool) == "Ray's dashboard gives no object of its own for pool p"
    assert kfp.raw_refusal(pool) == "KFP gives no object of its own for pool p"
    node = GpuNode(key="ray/demo/n1", cluster="demo", name="n1", pool=None, gpu_model=None,
                   gpu_resource="GPU", gpus_total=1, gpus_allocatable=1, gpus_allocated=0, ready=True, schedulable=True)
    assert kfp.raw_refusal(node) == "KFP gives no object of its own for node n1"


@pytest.mark.parametrize("hostile", ["../raysubmit_llama70b", "a/b?c", "raysubmit_llama70b#x", ".."])
async def test_a_hostile_ray_id_fetches_exactly_that_job(frozen_demo, sources, hostile):
    ray, _, _ = sources
    sim = frozen_demo.ray_sim
    frozen_demo.server.call(lambda: sim.submit("python x.py", submission_id=hostile, gpus=64))
    job = next(j for j in (await ray.fetch()).jobs if j.id == hostile)
    raw = await ray.raw_object(job)
    assert raw.body["submission_id"] == hostile  # never raysubmit_llama70b's


@pytest.mark.parametrize("hostile", ["../victim", "a/b?c", "victim:terminate", "%2E%2E"])
async def test_a_hostile_kfp_run_id_fetches_exactly_that_run(frozen_demo, sources, hostile):
    _, kfp, _ = sources
    store = frozen_demo.kfp_store
    experiment = next(iter(store.experiments))
    frozen_demo.server.call(lambda: store.add_run("victim", experiment, state="PENDING", run_id="victim"))
    frozen_demo.server.call(lambda: store.add_run("attacker", experiment, state="PENDING", run_id=hostile))
    job = Job(key=f"kfp/demo-kfp/{hostile}", source="kfp", cluster="demo-kfp", id=hostile, name="attacker",
              state=None, native_state="PENDING", gpus=None, submitted_at=None, started_at=None, finished_at=None)
    raw = await kfp.raw_object(job)
    assert raw.body["run_id"] == hostile and raw.body["display_name"] == "attacker"


async def test_backend_text_is_shown_inert(frozen_demo, sources):
    ray, _, _ = sources
    sim = frozen_demo.ray_sim
    frozen_demo.server.call(lambda: sim.submit("python x.py \x1b]52;c;aGk=\x07 \x1b[2J", submission_id="evil\u202e1",
                                               metadata={"owner": "m\x9b31m", "job_name": "zero\u200bwidth"}))
    job = next(j for j in (await ray.fetch()).jobs if j.id == "evil\u202e1")
    raw = await ray.raw_object(job)
    for fmt in ("yaml", "json"):
        text = render(raw, fmt)
        for line in (text.title, text.subtitle, *text.lines):
            assert not any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F or c in "\u202e\u200b" for c in line), repr(line)
        body = "\n".join(text.lines)
        assert "\\u202e" in body and "\\u200b" in body and "52;c;aGk=" in body


async def test_an_object_over_the_size_limit_is_refused_not_read(sources, monkeypatch):
    from mltop.adapters import raw_objects
    from mltop.errors import BadResponse

    _, _, kube = sources
    node = (await kube.fetch()).nodes[0]
    monkeypatch.setattr(raw_objects, "KUBE_LIMIT", 1024)  # a real node object is several KiB
    with pytest.raises(BadResponse, match="limit; not read"):
        await kube.raw_object(node)
