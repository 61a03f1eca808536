"""The fake KFP API against the official SDK: every answer must parse as a real one does.

Two references: the generated `kfp_server_api` models (each body is deserialized through
`ApiClient.deserialize` and also walked key by key, because the generated deserializer silently
drops keys it does not know), and a real `kfp.Client` driving the fake over HTTP.

Sync tests on purpose: the SDK blocks, and the server runs in LoopbackServer's thread. Time is an
injected clock the tests move by hand, so cancellation needs no sleeps.
"""

from __future__ import annotations

import base64
import json
import re
import urllib.parse
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import kfp
import kfp_server_api
import pytest
from kfp_server_api.exceptions import ApiException

from mltop.demo.kfp_api import KfpStore, make_kfp_app
from mltop.demo.server import LoopbackServer

TOKEN = "kfp-s3cret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
T0 = datetime(2026, 11, 28, 12, 0, 0, tzinfo=timezone.utc)
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
RFC3339_SECONDS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


class Clock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class FakeResponse:
    """What ApiClient.deserialize reads: the body text in `.data` (it json.loads it)."""

    data: str


API = kfp_server_api.ApiClient()


def deserialize(body: str, model: str) -> Any:
    assert_fits_model(json.loads(body), model)
    return API.deserialize(FakeResponse(body), model)


def assert_fits_model(data: Any, type_name: str, path: str = "$") -> None:
    """Every key is one the generated model knows, every enum value an allowed one, every time whole-second RFC3339."""
    if type_name.startswith("list["):
        assert isinstance(data, list), path
        for i, item in enumerate(data):
            assert_fits_model(item, type_name[5:-1], f"{path}[{i}]")
    elif type_name.startswith("dict("):
        assert isinstance(data, dict), path
        inner = type_name[type_name.index(",") + 1:-1].strip()
        for key, item in data.items():
            assert_fits_model(item, inner, f"{path}.{key}")
    elif type_name == "object":
        pass
    elif type_name == "str":
        assert isinstance(data, str), f"{path}: {data!r} is not a string (int64 travels as a string)"
    elif type_name == "int":
        assert isinstance(data, int) and not isinstance(data, bool), path
    elif type_name == "bool":
        assert isinstance(data, bool), path
    elif type_name == "datetime":
        assert isinstance(data, str) and RFC3339_SECONDS.match(data), f"{path}: {data!r}"
    else:
        klass = getattr(kfp_server_api.models, type_name)
        if not klass.openapi_types:  # an enum
            assert data in klass.allowable_values, f"{path}: {data!r} not in {klass.allowable_values}"
            return
        assert isinstance(data, dict), path
        known = {json_key: attr for attr, json_key in klass.attribute_map.items()}
        if type_name != "ProtobufAny":  # an Any carries its message's own fields next to @type
            assert not set(data) - set(known), f"{path}: {type_name} has no {set(data) - set(known)}"
        for key, item in data.items():
            if key in known:
                assert_fits_model(item, klass.openapi_types[known[key]], f"{path}.{key}")


# -- a served store ---------------------------------------------------------------------------------


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    srv = LoopbackServer()
    try:
        yield srv
    finally:
        srv.stop()


def serve(server: LoopbackServer, store: KfpStore) -> str:
    return server.serve(make_kfp_app(store))


def seed(store: KfpStore) -> dict[str, Any]:
    """A small realistic platform: one pipeline, two experiments, runs in every interesting state."""
    pipeline = store.add_pipeline("llm-finetune")
    exp = store.add_experiment("finetune", namespace="team-a")
    other = store.add_experiment("eval", namespace="team-b")
    runs = {}

    def run(name: str, minutes_ago: int, state: str, **kw: Any) -> None:
        runs[name] = store.add_run(name, kw.pop("experiment_id", exp["experiment_id"]), state=state,
                                   created_at=T0 - timedelta(minutes=minutes_ago), **kw)

    run("train-a", 50, "RUNNING", pipeline_id=pipeline["pipeline_id"], parameters={"lr": 0.0003, "epochs": 3},
        tasks=[{"display_name": "train", "state": "RUNNING", "pod_name": "train-a-system-container-impl-1"},
               {"display_name": "prep", "state": "SUCCEEDED", "pod_name": "train-a-system-container-impl-0"}])
    run("train-b", 40, "PENDING")
    run("train-c", 30, "FAILED", finished_at=T0 - timedelta(minutes=20), error="OOMKilled: trainer exceeded 80Gi")
    run("train-d", 20, "SUCCEEDED", finished_at=T0 - timedelta(minutes=5))
    run("train-e", 10, "RUNNING", storage_state="ARCHIVED")
    run("eval-a", 5, "RUNNING", experiment_id=other["experiment_id"])
    return {"pipeline": pipeline, "exp": exp, "other": other, "runs": runs}


def get(url: str, path: str, headers: dict[str, str] | None = AUTH, **params: Any) -> httpx.Response:
    return httpx.get(url + path, params=params, headers=headers or {})


def post(url: str, path: str, headers: dict[str, str] | None = AUTH) -> httpx.Response:
    return httpx.post(url + path, headers=headers or {})


def filter_json(*predicates: dict[str, Any]) -> str:
    return json.dumps({"predicates": list(predicates)})


# -- bodies against the generated models ------------------------------------------------------------


def test_list_runs_body_fits_the_generated_models(server, clock):
    store = KfpStore(clock, token=TOKEN)
    world = seed(store)
    url = serve(server, store)

    resp = get(url, "/apis/v2beta1/runs", sort_by="created_at")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("application/json")
    listing = deserialize(resp.text, "V2beta1ListRunsResponse")
    assert listing.total_size == 6 and listing.next_page_token is None  # omitted on the last page
    by_name = {r.display_name: r for r in listing.runs}
    assert [r.display_name for r in listing.runs] == ["train-a", "train-b", "train-c", "train-d", "train-e", "eval-a"]

    running = by_name["train-a"]
    assert running.state == "RUNNING"
    assert running.finished_at == EPOCH  # unfinished: the epoch, not absent
    assert running.created_at == T0 - timedelta(minutes=50)
    assert running.service_account == "pipeline-runner"
    assert running.pipeline_version_reference.pipeline_id == world["pipeline"]["pipeline_id"]
    assert running.pipeline_version_reference.pipeline_version_id == world["pipeline"]["pipeline_version_id"]
    assert running.runtime_config.parameters == {"lr": 0.0003, "epochs": 3}
    assert [s.state for s in running.state_history] == ["PENDING", "RUNNING"]
    tasks = running.run_details.task_details
    assert [(t.display_name, t.state) for t in tasks] == [("train", "RUNNING"), ("prep", "SUCCEEDED")]
    assert tasks[0].child_tasks[0].pod_name == "train-a-system-container-impl-1"
    assert tasks[0].end_time == EPOCH and tasks[1].end_time > EPOCH
    assert tasks[0].run_id == running.run_id and tasks[0].task_id
    assert running.run_details.pipeline_run_context_id  # int64 as a string

    failed = by_name["train-c"]
    assert failed.state == "FAILED"
    assert failed.error.message == "OOMKilled: trainer exceeded 80Gi"
    assert failed.finished_at == T0 - timedelta(minutes=20)
    assert [s.state for s in failed.state_history] == ["PENDING", "RUNNING", "FAILED"]
    assert failed.state_history[-1].error.message == "OOMKilled: trainer exceeded 80Gi"

    pending = by_name["train-b"]
    assert [s.state for s in pending.state_history] == ["PENDING"]
    assert pending.run_details is None and pending.runtime_config is None and pending.error is None
    assert pending.pipeline_spec  # a run from a package carries its IR instead of a version reference
    assert by_name["train-e"].storage_state == "ARCHIVED"  # archived runs are listed unless filtered out

    raw = json.loads(resp.text)["runs"][1]
    assert {"created_at", "scheduled_at", "finished_at"} <= set(raw)  # always emitted
    assert "runtime_config" not in raw and "run_details" not in raw and "error" not in raw  # empty: omitted


def test_single_resources_fit_the_generated_models(server, clock):
    store = KfpStore(clock, token=TOKEN)
    world = seed(store)
    url = serve(server, store)
    run_id = world["runs"]["train-d"]["run_id"]

    run = deserialize(get(url, f"/apis/v2beta1/runs/{run_id}").text, "V2beta1Run")
    assert run.run_id == run_id and run.state == "SUCCEEDED"
    assert run.finished_at == T0 - timedelta(minutes=5)
    assert run.to_dict() == deserialize(json.dumps(store.get_run(run_id)), "V2beta1Run").to_dict()

    exps = deserialize(get(url, "/apis/v2beta1/experiments").text, "V2beta1ListExperimentsResponse")
    assert exps.total_size == 2
    assert {e.display_name: e.namespace for e in exps.experiments} == {"finetune": "team-a", "eval": "team-b"}
    exp = deserialize(get(url, f"/apis/v2beta1/experiments/{world['exp']['experiment_id']}").text, "V2beta1Experiment")
    assert exp.storage_state == "AVAILABLE"
    assert exp.last_run_created_at == T0 - timedelta(minutes=10)  # its newest run

    pipeline = deserialize(get(url, f"/apis/v2beta1/pipelines/{world['pipeline']['pipeline_id']}").text,
                           "V2beta1Pipeline")
    assert pipeline.display_name == "llm-finetune" and pipeline.created_at == T0

    health = get(url, "/apis/v2beta1/healthz", headers=None)  # public
    assert json.loads(health.text) == {"commit_sha": json.loads(health.text)["commit_sha"], "tag_name": "2.14.0",
                                       "multi_user": False, "pipeline_store": "database"}
    # The hand-written handler says more than the swagger model knows; the model ignores the rest.
    assert API.deserialize(FakeResponse(health.text), "V2beta1GetHealthzResponse").multi_user is False
    assert set(json.loads(get(url, "/apis/v1beta1/healthz", headers=None).text)) == {
        "commit_sha", "tag_name", "multi_user"}


@pytest.mark.parametrize("version, legacy", [("2.5.0", True), ("2.14.0", False), ("2.17.0", False)])
def test_error_body_follows_the_version(server, clock, version, legacy):
    store = KfpStore(clock, version=version)
    url = serve(server, store)
    resp = get(url, "/apis/v2beta1/runs/no-such-run")
    assert resp.status_code == 404
    body = resp.json()
    assert ("error" in body) is legacy
    assert body["code"] == 5
    assert body["message"] == ("Failed to get a run: Failed to fetch run no-such-run: "
                               "ResourceNotFoundError: Run no-such-run not found")
    if legacy:
        assert body["error"] == body["message"]
    # grpc-gateway v1's extra `error` is not in the model (swagger `runtimeError` is gone from the client)
    status = deserialize(json.dumps({k: v for k, v in body.items() if k != "error"}), "GoogleRpcStatus")
    assert status.code == 5 and status.details[0].type == "type.googleapis.com/google.rpc.Status"
    # the full body (with `error`) still deserializes: the generated model ignores the extra key
    assert API.deserialize(FakeResponse(resp.text), "GoogleRpcStatus").message == body["message"]


# -- kfp.Client against the fake --------------------------------------------------------------------


@pytest.fixture
def sdk_env(monkeypatch, tmp_path):
    """Nothing from the developer's machine: no KF_PIPELINES_* variables, no ~/.config/kfp/context.json."""
    for name in ("KF_PIPELINES_ENDPOINT", "KF_PIPELINES_UI_ENDPOINT", "KF_PIPELINES_IAP_OAUTH2_CLIENT_ID",
                 "KF_PIPELINES_APP_OAUTH2_CLIENT_ID", "KF_PIPELINES_APP_OAUTH2_CLIENT_SECRET",
                 "KF_PIPELINES_SA_TOKEN_PATH", "KF_PIPELINES_DEFAULT_EXPERIMENT_NAME",
                 "KF_PIPELINES_OVERRIDE_EXPERIMENT_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    # The path is computed when kfp is imported, so HOME alone would not move it.
    monkeypatch.setattr(kfp.Client, "_LOCAL_KFP_CONTEXT", str(tmp_path / ".config" / "kfp" / "context.json"))


def make_client(url: str, **kw: Any) -> kfp.Client:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # "only works with KFP v2.0.0-beta.2 and later"
        return kfp.Client(host=url, existing_token=TOKEN, **kw)


def test_kfp_client_lists_pages_terminates_and_retries(server, clock, sdk_env):
    store = KfpStore(clock, token=TOKEN, multi_user=True)
    world = seed(store)
    extra = store.add_run("train-f", world["exp"]["experiment_id"], state="RUNNING",
                          created_at=T0 - timedelta(minutes=1))
    url = serve(server, store)
    client = make_client(url, namespace="team-a")  # a namespace other than 'kubeflow': no healthz call

    active = filter_json({"key": "state", "operation": "IN", "string_values": {"values": ["RUNNING", "PENDING"]}})
    first = client.list_runs(page_size=2, filter=active, sort_by="created_at desc", namespace="team-a")
    assert [r.display_name for r in first.runs] == ["train-f", "train-e"]
    assert first.total_size == 4 and first.next_page_token
    # The token alone continues the listing (repeating an IN filter would be refused, see below).
    second = client.list_runs(page_token=first.next_page_token, page_size=2, namespace="team-a")
    assert [r.display_name for r in second.runs] == ["train-b", "train-a"]
    assert second.next_page_token is None and second.total_size == 4

    run_id = extra["run_id"]
    assert client.get_run(run_id).state == "RUNNING"
    assert client.terminate_run(run_id) == {}
    canceling = client.get_run(run_id)
    assert canceling.state == "CANCELING" and canceling.finished_at == EPOCH
    clock.advance(store.cancel_seconds - 0.5)
    assert client.get_run(run_id).state == "CANCELING"
    clock.advance(1)
    canceled = client.get_run(run_id)
    assert canceled.state == "CANCELED"
    assert canceled.finished_at == T0 + timedelta(seconds=store.cancel_seconds)
    assert [s.state for s in canceled.state_history] == ["PENDING", "RUNNING", "CANCELED"]

    failed_id = world["runs"]["train-c"]["run_id"]
    client._run_api.run_service_retry_run(run_id=failed_id)  # the SDK has no retry_run
    retried = client.get_run(failed_id)
    assert retried.state == "RUNNING" and retried.finished_at == EPOCH and retried.error is None
    assert [s.state for s in retried.state_history] == ["PENDING", "RUNNING", "FAILED", "RUNNING"]

    exps = client.list_experiments(namespace="team-a")
    assert [e.display_name for e in exps.experiments] == ["finetune"]
    assert client.get_experiment(experiment_id=world["exp"]["experiment_id"]).namespace == "team-a"
    assert client.get_experiment(experiment_name="finetune", namespace="team-a").experiment_id == \
        world["exp"]["experiment_id"]


def test_kfp_client_repeated_criteria_with_a_page_token(server, clock, sdk_env):
    store = KfpStore(clock, token=TOKEN)
    seed(store)
    url = serve(server, store)
    client = make_client(url)  # default namespace: the constructor asks healthz whether it is multi-user
    assert client.get_kfp_healthz().multi_user is False

    # Only string scalars survive the token's JSON round trip, so this filter may be repeated.
    visible = filter_json({"key": "storage_state", "operation": "NOT_EQUALS", "string_value": "ARCHIVED"})
    first = client.list_runs(page_size=3, filter=visible, sort_by="created_at desc")
    assert first.total_size == 5
    rest = client.list_runs(page_size=3, filter=visible, sort_by="created_at desc", page_token=first.next_page_token)
    names = [r.display_name for r in first.runs + rest.runs]
    assert names == ["eval-a", "train-d", "train-c", "train-b", "train-a"]

    # An IN (list) filter never equals its JSON-decoded self: real servers answer 400 here.
    active = filter_json({"key": "state", "operation": "IN", "string_values": {"values": ["RUNNING", "PENDING"]}})
    first = client.list_runs(page_size=1, filter=active)
    with pytest.raises(ApiException) as caught:
        client.list_runs(page_size=1, filter=active, page_token=first.next_page_token)
    assert caught.value.status == 400
    assert "page token does not match the supplied sort by and/or filtering criteria" in caught.value.body
    # A different sort with the token is refused too.
    with pytest.raises(ApiException) as caught:
        client.list_runs(page_size=3, filter=visible, sort_by="created_at", page_token=first.next_page_token)
    assert caught.value.status == 400


# -- listing semantics ------------------------------------------------------------------------------


def test_paging_walks_every_run_once_in_the_default_order(server, clock):
    store = KfpStore(clock)
    exp = store.add_experiment("many")
    # Equal creation times tie-break on run_id, so the walk must still be exact.
    for i in range(7):
        store.add_run(f"r{i}", exp["experiment_id"], created_at=T0 - timedelta(minutes=i // 2))
    url = serve(server, store)
    seen, token = [], ""
    while True:
        page = get(url, "/apis/v2beta1/runs", page_size=3, page_token=token).json()
        assert page["total_size"] == 7
        seen += page["runs"]
        token = page.get("next_page_token", "")
        if not token:
            break
    assert len(seen) == 7 and len({r["run_id"] for r in seen}) == 7
    keys = [(r["created_at"], r["run_id"]) for r in seen]
    assert keys == sorted(keys)  # default: created_at ascending, then id
    decoded = json.loads(base64.b64decode(get(url, "/apis/v2beta1/runs", page_size=1).json()["next_page_token"]))
    assert decoded["SortByFieldName"] == "CreatedAtInSec" and decoded["Filter"] is None


def test_page_size_is_capped_and_defaulted(server, clock):
    store = KfpStore(clock)
    exp = store.add_experiment("bulk")
    for i in range(205):
        store.add_run(f"r{i:03}", exp["experiment_id"])
    url = serve(server, store)
    assert len(get(url, "/apis/v2beta1/runs", page_size=1000).json()["runs"]) == 200
    assert len(get(url, "/apis/v2beta1/runs").json()["runs"]) == 20


def test_filters_sort_keys_and_value_spellings(server, clock):
    store = KfpStore(clock)
    world = seed(store)
    url = serve(server, store)

    def names(*predicates: dict[str, Any], **params: Any) -> list[str]:
        resp = get(url, "/apis/v2beta1/runs", filter=filter_json(*predicates), sort_by="name", **params)
        assert resp.status_code == 200, resp.text
        return [r["display_name"] for r in resp.json().get("runs", [])]

    assert names({"key": "display_name", "operation": "IS_SUBSTRING", "string_value": "TRAIN"}) == [
        "train-a", "train-b", "train-c", "train-d", "train-e"]  # LIKE ignores case
    assert names({"key": "created_at", "operation": 3, "timestampValue": "2026-11-28T11:35:00Z"},
                 {"key": "storage_state", "operation": "NOT_EQUALS", "stringValue": "ARCHIVED"}) == [
        "eval-a", "train-d"]  # numeric operation, camelCase values, ANDed
    assert names({"key": "status", "operation": "EQUALS", "string_value": "Failed"}) == ["train-c"]  # v1 alias
    assert names({"key": "finished_at", "operation": "EQUALS", "long_value": "0"},
                 {"key": "experiment_id", "operation": "EQUALS", "string_value": world["exp"]["experiment_id"]}) == [
        "train-a", "train-b", "train-e"]  # unfinished runs finish at 0
    assert names({"key": "state", "operation": "IN", "stringValues": {"values": ["FAILED", "SUCCEEDED"]}}) == [
        "train-c", "train-d"]
    assert names(experiment_id=world["other"]["experiment_id"]) == ["eval-a"]
    ordered = get(url, "/apis/v2beta1/runs", sort_by="STATE desc").json()["runs"]
    assert [r["state"] for r in ordered] == sorted((r["state"] for r in ordered), reverse=True)


def test_filter_value_is_url_decoded_twice(server, clock):
    store = KfpStore(clock)
    exp = store.add_experiment("x")
    store.add_run("llm sft", exp["experiment_id"])
    store.add_run("llm+sft", exp["experiment_id"])
    url = serve(server, store)

    plus = filter_json({"key": "display_name", "operation": "EQUALS", "string_value": "llm+sft"})
    once = get(url, "/apis/v2beta1/runs", filter=plus).json()  # httpx encodes once: the server decodes twice
    assert [r["display_name"] for r in once["runs"]] == ["llm sft"]
    twice = get(url, "/apis/v2beta1/runs", filter=urllib.parse.quote(plus, safe="")).json()
    assert [r["display_name"] for r in twice["runs"]] == ["llm+sft"]
    percent = get(url, "/apis/v2beta1/runs", filter=filter_json(
        {"key": "display_name", "operation": "EQUALS", "string_value": "100%"}))
    assert percent.status_code == 400 and "invalid URL escape" in percent.json()["message"]


def test_archive_unarchive_and_delete(server, clock):
    store = KfpStore(clock)
    world = seed(store)
    url = serve(server, store)
    run_id = world["runs"]["train-d"]["run_id"]
    assert post(url, f"/apis/v2beta1/runs/{run_id}:archive").json() == {}
    assert store.get_run(run_id)["storage_state"] == "ARCHIVED"
    assert post(url, f"/apis/v2beta1/runs/{run_id}:unarchive").json() == {}
    assert store.get_run(run_id)["storage_state"] == "AVAILABLE"
    assert httpx.delete(f"{url}/apis/v2beta1/runs/{run_id}").json() == {}
    assert get(url, f"/apis/v2beta1/runs/{run_id}").status_code == 404
    assert post(url, f"/apis/v2beta1/runs/{run_id}:archive").status_code == 404
    assert post(url, f"/apis/v2beta1/runs/{run_id}:explode").status_code == 404


def test_stuck_canceling_and_state_changes(server, clock):
    store = KfpStore(clock, cancel_seconds=1)
    world = seed(store)
    url = serve(server, store)
    stuck = world["runs"]["train-a"]["run_id"]
    store.stuck_canceling.add(stuck)
    assert post(url, f"/apis/v2beta1/runs/{stuck}:terminate").status_code == 200
    clock.advance(3600)
    assert get(url, f"/apis/v2beta1/runs/{stuck}").json()["state"] == "CANCELING"
    assert [s["state"] for s in store.get_run(stuck)["state_history"]] == ["PENDING", "RUNNING"]  # no entry

    pending = world["runs"]["train-b"]["run_id"]
    store.set_state(pending, "RUNNING")
    clock.advance(60)
    store.set_state(pending, "FAILED", error="ImagePullBackOff")
    run = get(url, f"/apis/v2beta1/runs/{pending}").json()
    assert run["finished_at"] == "2026-11-28T13:01:00Z" and run["error"]["message"] == "ImagePullBackOff"
    assert [(s["state"], s["update_time"]) for s in run["state_history"][1:]] == [
        ("RUNNING", "2026-11-28T13:00:00Z"), ("FAILED", "2026-11-28T13:01:00Z")]


# -- errors -----------------------------------------------------------------------------------------


def test_bad_list_requests_answer_400(server, clock):
    store = KfpStore(clock)
    seed(store)
    url = serve(server, store)
    token = get(url, "/apis/v2beta1/runs", page_size=1, sort_by="created_at").json()["next_page_token"]

    cases = {
        "The page size should be greater than 0. Got -1": {"page_size": -1},
        "page token does not match the supplied sort by and/or filtering criteria": {
            "page_token": token, "sort_by": "created_at desc"},
        "Invalid package token": {"page_token": "not-base64!"},
        'Invalid sorting field: "colour" on listable type Run': {"sort_by": "colour"},
        "Received invalid sort by format": {"sort_by": "created_at sideways"},
        'no support for filtering on unrecognized field "colour"': {
            "filter": filter_json({"key": "colour", "operation": "EQUALS", "string_value": "red"})},
        "failed to parse valid filter": {"filter": "{not json"},
        "cannot use IN operator with scalar type string": {
            "filter": filter_json({"key": "state", "operation": "IN", "string_value": "RUNNING"})},
        "Error using Filter.Predicate.Operation": {
            "filter": filter_json({"key": "state", "operation": 0, "string_value": "RUNNING"})},
    }
    for message, params in cases.items():
        resp = get(url, "/apis/v2beta1/runs", **params)
        assert resp.status_code == 400, (message, resp.text)
        status = deserialize(resp.text, "GoogleRpcStatus")
        assert status.code == 3 and message in status.message, (message, status.message)
        assert status.message.startswith("Failed to create list options: ")
    # the same token with matching (or no) criteria is fine
    assert get(url, "/apis/v2beta1/runs", page_token=token, sort_by="CREATED_AT asc").status_code == 200


def test_multi_user_requires_a_namespace(server, clock):
    store = KfpStore(clock, multi_user=True)
    world = seed(store)
    url = serve(server, store)
    resp = get(url, "/apis/v2beta1/runs")
    assert resp.status_code == 400
    assert "A run cannot have an empty namespace in multi-user mode" in resp.json()["message"]
    assert resp.json()["message"].startswith("Failed to list runs: ")
    assert get(url, "/apis/v2beta1/experiments").status_code == 400
    in_b = get(url, "/apis/v2beta1/runs", namespace="team-b").json()["runs"]
    assert [r["display_name"] for r in in_b] == ["eval-a"]
    by_exp = get(url, "/apis/v2beta1/runs", experiment_id=world["exp"]["experiment_id"]).json()
    assert by_exp["total_size"] == 5
    assert json.loads(get(url, "/apis/v2beta1/healthz").text)["multi_user"] is True
    # single-user mode ignores the namespace
    single = KfpStore(clock)
    seed(single)
    assert get(serve(server, single), "/apis/v2beta1/runs", namespace="nowhere").json()["total_size"] == 6


def test_terminate_and_retry_preconditions(server, clock):
    store = KfpStore(clock)
    world = seed(store)
    url = serve(server, store)
    done = world["runs"]["train-d"]["run_id"]
    resp = post(url, f"/apis/v2beta1/runs/{done}:terminate")
    assert resp.status_code == 400 and resp.json()["details"][0]["message"] == (
        f"Failed to terminate a run {done}. Row not found")
    running = world["runs"]["train-a"]["run_id"]
    resp = post(url, f"/apis/v2beta1/runs/{running}:retry")
    assert resp.status_code == 409 and resp.json()["code"] == 10  # Aborted, as BadRequestError maps
    assert "Workflow must be Failed/Error to retry" in resp.json()["message"]
    assert post(url, "/apis/v2beta1/runs/nope:terminate").status_code == 404


def test_authentication(server, clock, sdk_env):
    store = KfpStore(clock, token=TOKEN, cookie="authservice_session=abc", header=("kubeflow-userid", "me@x.io"))
    seed(store)
    url = serve(server, store)
    full = {**AUTH, "Cookie": "theme=dark; authservice_session=abc", "kubeflow-userid": "me@x.io"}
    assert get(url, "/apis/v2beta1/runs", headers=full).status_code == 200
    for missing in ("Authorization", "Cookie", "kubeflow-userid"):
        partial = {k: v for k, v in full.items() if k != missing}
        resp = get(url, "/apis/v2beta1/runs", headers=partial)
        assert resp.status_code == 401 and deserialize(resp.text, "GoogleRpcStatus").code == 16, missing
    assert get(url, "/apis/v2beta1/runs", headers={**full, "Authorization": "Bearer wrong"}).status_code == 401
    assert get(url, "/apis/v2beta1/healthz", headers=None).status_code == 200  # public

    tokened = KfpStore(clock, token=TOKEN)
    tokened_url = serve(server, tokened)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        anonymous = kfp.Client(host=tokened_url, namespace="team-a")
    with pytest.raises(ApiException) as caught:
        anonymous.list_runs()
    assert caught.value.status == 401


def test_v1_only_server(server, clock):
    store = KfpStore(clock, version="1.8.5", v1_only=True, token=TOKEN)
    world = seed(store)
    url = serve(server, store)
    assert get(url, "/apis/v2beta1/healthz", headers=None).status_code == 404
    assert get(url, "/apis/v2beta1/runs").status_code == 404
    health = get(url, "/apis/v1beta1/healthz", headers=None)
    assert health.status_code == 200 and health.json()["tag_name"] == "1.8.5"
    runs = get(url, "/apis/v1beta1/runs", **{"resource_reference_key.type": "EXPERIMENT",
                                             "resource_reference_key.id": world["exp"]["experiment_id"],
                                             "sort_by": "name"}).json()
    assert runs["total_size"] == 5
    assert [(r["name"], r["status"]) for r in runs["runs"]] == [
        ("train-a", "Running"), ("train-b", "Pending"), ("train-c", "Failed"), ("train-d", "Succeeded"),
        ("train-e", "Running")]
    first = runs["runs"][0]
    assert first["id"] == world["runs"]["train-a"]["run_id"] and first["storage_state"] == "STORAGESTATE_AVAILABLE"
    assert first["finished_at"] == "1970-01-01T00:00:00Z"
    assert runs["runs"][2]["error"] == "OOMKilled: trainer exceeded 80Gi"
    v1_filter = filter_json({"key": "name", "op": "EQUALS", "string_value": "train-b"})
    assert [r["name"] for r in get(url, "/apis/v1beta1/runs", filter=v1_filter).json()["runs"]] == ["train-b"]
