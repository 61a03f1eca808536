"""Following logs without the TUI: the bounded buffer, the follower's states, the fake API
server's pod log endpoint (through the official client, as a contract), mltop's pod log and Ray
log streams against the fake servers. The real Ray head: tests/test_logs_ray_real.py."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from dataclasses import replace
from datetime import timedelta

import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from mltop.adapters.http import Endpoint
from mltop.adapters.ray import RaySource
from mltop.demo import kube_objects as k
from mltop.errors import NotYet, SourceError
from mltop.logs import KFP_NO_LOG, LogBuffer, LogFollower, why_no_log
from mltop.model import Job, JobState
from tests.conftest import FIXED_NOW
from tests.kube_helpers import start_fake_cluster

POD = ("ml", "llm-pretrain-1-x7k2p")  # running on a node in the seeded cluster
PENDING = ("research", "sweep-lr-3-b2d9f")  # waiting for GPUs: on no node


@pytest.fixture
def cluster(tmp_path):
    fake = start_fake_cluster(tmp_path)
    yield fake
    fake.server.stop()


def core(cluster) -> k8s.CoreV1Api:
    return k8s.CoreV1Api(k8s_config.new_client_from_config(config_file=cluster.kubeconfig, persist_config=False))


def pod_job(namespace: str, name: str, **changes) -> Job:
    job = Job(key=f"kubernetes/test-ctx/{namespace}/{name}", source="kubernetes", cluster="test-ctx",
              id=f"{namespace}/{name}", name=name, state=JobState.RUNNING, native_state="Running", gpus=1,
              submitted_at=None, started_at=None, finished_at=None, kind="Pod", namespace=namespace)
    return replace(job, **changes)


def write(cluster, lines, *, pod=POD, start=0, container="main") -> None:
    for i, text in enumerate(lines):
        cluster.store.pod_logs.append(*pod, text, container=container, at=FIXED_NOW + timedelta(seconds=start + i))


async def until(condition, timeout: float = 10.0, message=lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting {message()}"
        await asyncio.sleep(0.05)


@contextlib.contextmanager
def _nothing():
    yield


class Following:
    """A follower running as the screen runs it, cancelled at the end."""

    def __init__(self, stream, max_lines: int = 10_000) -> None:
        self.buffer = LogBuffer(max_lines)
        self.follower = LogFollower(stream, self.buffer, backoff=(0.2, 0.5))
        self.task: asyncio.Task | None = None

    async def __aenter__(self) -> "Following":
        self.task = asyncio.create_task(self.follower.run())
        return self

    async def __aexit__(self, *exc) -> None:
        assert self.task is not None
        self.task.cancel()
        started = time.monotonic()
        with pytest.raises(asyncio.CancelledError) if not self.task.done() else _nothing():
            await self.task
        assert time.monotonic() - started < 0.5  # stopping never waits on the network

    @property
    def lines(self) -> list[str]:
        return list(self.buffer.lines)


# -- the buffer ---------------------------------------------------------------------------------


def test_buffer_keeps_the_newest_lines_and_counts_the_dropped():
    buffer = LogBuffer(max_lines=5)
    buffer.feed("".join(f"line {i}\n" for i in range(12)))
    assert list(buffer.lines) == [f"line {i}" for i in range(7, 12)]
    assert buffer.dropped == 7 and len(buffer) == 5
    assert buffer.feed("line 12\n") == 1 and buffer.dropped == 8


def test_buffer_joins_lines_split_across_chunks_and_keeps_the_unfinished_one():
    buffer = LogBuffer()
    buffer.feed("epo")
    buffer.feed("ch 1\nepoch 2 progr")
    assert list(buffer.lines) == ["epoch 1"] and buffer.partial_shown == "epoch 2 progr"
    buffer.feed("ess\r 50%\r100%\n")  # a progress bar: what a terminal would show last
    assert list(buffer.lines) == ["epoch 1", "100%"]
    buffer.feed("no newline at the end")
    buffer.flush()
    assert buffer.lines[-1] == "no newline at the end" and buffer.partial == ""


def test_buffer_makes_every_line_inert_and_cuts_huge_ones():
    buffer = LogBuffer()
    buffer.feed("a \x1b]52;c;ZXZpbA==\x07 b [red]x[/red] \u202e\tc\n" + "y" * 10_000 + "\n")
    assert buffer.lines[0] == "a \\x1b]52;c;ZXZpbA==\\x07 b [red]x[/red] \\u202e c"
    assert len(buffer.lines[1]) == 4_000 and buffer.lines[1].endswith("…")


def test_buffer_find_wraps_both_ways_and_ignores_case():
    buffer = LogBuffer()
    buffer.feed("ok\nERROR one\nok\nerror two\nok\n")
    assert buffer.find("error", 0) == 1
    assert buffer.find("error", 1) == 3
    assert buffer.find("error", 3) == 1  # wraps
    assert buffer.find("error", 1, backwards=True) == 3
    assert buffer.find("missing", 0) is None and buffer.find("", 0) is None


# -- the follower's states -------------------------------------------------------------------


class Scripted:
    """A stream that plays a script: text, NotYet, errors, and then the end."""

    title = "scripted"
    end_reason = "the script ended"

    def __init__(self, *attempts) -> None:
        self.attempts = list(attempts)

    async def chunks(self):
        for item in self.attempts.pop(0):
            if isinstance(item, Exception):
                raise item
            yield item


async def test_follower_waits_fails_retries_and_ends_saying_so():
    stream = Scripted([NotYet("container is waiting to start")], ["", "a\n", SourceError("connection reset")],
                      ["", "b\nc"])
    seen = []
    buffer = LogBuffer()
    follower = LogFollower(stream, buffer, backoff=(0.01,), on_change=lambda: seen.append(follower.state.kind))
    await asyncio.wait_for(follower.run(), 5)
    assert list(buffer.lines) == ["a", "b", "c"]  # the unfinished last line is kept when the log ends
    assert follower.state.kind == "ended" and follower.state.message == "stream ended: the script ended"
    kinds = [k for i, k in enumerate(seen) if i == 0 or seen[i - 1] != k]
    assert kinds == ["waiting", "following", "failed", "following", "ended"]


async def test_a_failure_that_lasts_keeps_its_first_time():
    stream = Scripted(*[[SourceError("no route to host")]] * 3, [])
    follower = LogFollower(stream, LogBuffer(), backoff=(0.05,))
    states = []
    follower.on_change = lambda: states.append(follower.state)
    await asyncio.wait_for(follower.run(), 5)
    failed = [s for s in states if s.kind == "failed"]
    assert len({s.since for s in failed}) == 1 and len(failed) >= 3  # the age of the trouble grows
    assert all(s.retry_at is None or s.retry_at > s.since for s in failed)


def test_why_no_log_says_it_plainly():
    job = pod_job(*POD)
    assert why_no_log(job, None) == "its source is no longer configured"
    assert why_no_log(replace(job, source="kfp"), object()) == KFP_NO_LOG
    assert "do not serve logs" in why_no_log(job, object())


# -- the fake API server's log endpoint, through the official client --------------------------


def test_pod_log_endpoint_answers_as_the_api_server_does(cluster):
    write(cluster, [f"line {i}" for i in range(5)])
    api = core(cluster)
    assert api.read_namespaced_pod_log(POD[1], POD[0]) == "".join(f"line {i}\n" for i in range(5))
    assert api.read_namespaced_pod_log(POD[1], POD[0], tail_lines=2) == "line 3\nline 4\n"
    stamped = api.read_namespaced_pod_log(POD[1], POD[0], tail_lines=1, timestamps=True)
    assert stamped == "2026-11-28T12:00:04Z line 4\n"  # RFC3339Nano: no fraction when it is zero
    assert api.read_namespaced_pod_log(PENDING[1], PENDING[0]) == ""  # on no node: no log location, empty
    with pytest.raises(ApiException) as missing:
        api.read_namespaced_pod_log("no-such-pod", "ml")
    assert missing.value.status == 404
    assert json.loads(missing.value.body) == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                              "message": 'pods "no-such-pod" not found', "reason": "NotFound",
                                              "details": {"name": "no-such-pod", "kind": "pods"}, "code": 404}
    with pytest.raises(ApiException) as wrong:
        api.read_namespaced_pod_log(POD[1], POD[0], container="sidecar")
    assert json.loads(wrong.value.body)["message"] == f"container sidecar is not valid for pod {POD[1]}"


def test_a_container_not_started_is_a_400_with_the_kubelets_sentence(cluster):
    pod = k.pod("starting-0", "ml", gpus=1, node_name="gke-a100-pool-7f3a-1", phase="Pending", created=FIXED_NOW)
    pod["status"]["containerStatuses"] = [{"name": "main", "ready": False, "restartCount": 0, "image": "x",
                                           "imageID": "", "state": {"waiting": {"reason": "ContainerCreating"}}}]
    cluster.call(lambda: cluster.store.put(pod))
    with pytest.raises(ApiException) as waiting:
        core(cluster).read_namespaced_pod_log("starting-0", "ml", follow=True)
    assert waiting.value.status == 400
    assert json.loads(waiting.value.body) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "reason": "BadRequest", "code": 400,
        "message": 'container "main" in pod "starting-0" is waiting to start: ContainerCreating'}


def test_several_containers_need_a_name(cluster):
    pod = k.pod("two-0", "ml", gpus=1, node_name="gke-a100-pool-7f3a-1", created=FIXED_NOW)
    pod["spec"]["containers"].append({"name": "sidecar", "image": "busybox"})
    cluster.call(lambda: cluster.store.put(pod))
    write(cluster, ["from the sidecar"], pod=("ml", "two-0"), container="sidecar")
    api = core(cluster)
    with pytest.raises(ApiException) as ambiguous:
        api.read_namespaced_pod_log("two-0", "ml")
    assert json.loads(ambiguous.value.body)["message"] == \
        "a container name must be specified for pod two-0, choose one of: [main sidecar]"
    assert api.read_namespaced_pod_log("two-0", "ml", container="sidecar") == "from the sidecar\n"


def test_follow_streams_lines_written_later_and_ends_with_the_container(cluster):
    write(cluster, ["before"])
    response = core(cluster).read_namespaced_pod_log(POD[1], POD[0], follow=True, _preload_content=False,
                                                     _request_timeout=(5, 10))
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.extend(response.stream(1024)), daemon=True)
    reader.start()
    time.sleep(0.3)
    write(cluster, ["after 1", "after 2"], start=1)
    deadline = time.monotonic() + 5
    while b"after 2" not in b"".join(received) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert b"".join(received) == b"before\nafter 1\nafter 2\n"  # chunked: each arrived while the stream stayed open
    assert reader.is_alive()

    def finish() -> None:
        pod = cluster.store.get("v1", "Pod", POD[1], POD[0])
        pod["status"]["phase"] = "Succeeded"
        cluster.store.put(pod)

    cluster.call(finish)
    reader.join(timeout=5)
    assert not reader.is_alive()  # the container stopped: the follow ended


# -- mltop's pod log stream ---------------------------------------------------------------------


async def test_pod_log_follows_and_shows_hostile_text_inert(cluster):
    write(cluster, ["old 1", "old 2"])
    source = cluster.source()
    try:
        async with Following(source.log_stream(pod_job(*POD))) as following:
            await until(lambda: following.lines == ["old 1", "old 2"])
            assert following.follower.state.kind == "following"
            write(cluster, ["new \x1b]0;pwned\x07 [bold]x"], start=2)
            await until(lambda: len(following.lines) == 3)
            assert following.lines[2] == "new \\x1b]0;pwned\\x07 [bold]x"
    finally:
        await source.aclose()


async def test_pod_log_reconnects_after_a_dropped_stream_without_repeating_lines(cluster):
    write(cluster, ["one", "two"])
    source = cluster.source()
    try:
        async with Following(source.log_stream(pod_job(*POD))) as following:
            await until(lambda: following.lines == ["one", "two"])
            logs = cluster.store.pod_logs
            logs.closing = True  # the API server ends every open follow, as a restart would
            logs.wake()
            await asyncio.sleep(0.5)
            logs.closing = False
            write(cluster, ["three"], start=2)
            await until(lambda: following.lines[-1:] == ["three"])
            await asyncio.sleep(1.5)
            write(cluster, ["four"], start=3)
            await until(lambda: following.lines[-1:] == ["four"])
            assert following.lines == ["one", "two", "three", "four"]  # reopened from the last line's time
    finally:
        await source.aclose()


async def test_pod_log_of_a_pending_pod_waits_with_the_reason(cluster):
    source = cluster.source()
    try:
        async with Following(source.log_stream(pod_job(*PENDING))) as following:
            await until(lambda: following.follower.state.kind == "waiting")
            message = following.follower.state.message
            assert message.startswith(f"pod {PENDING[0]}/{PENDING[1]} is not on a node yet (0/10 nodes are available")
            # It is placed and its container starts: the log begins.
            bound = cluster.store.get("v1", "Pod", PENDING[1], PENDING[0])
            bound["spec"]["nodeName"] = "gke-a100-pool-7f3a-1"
            bound["status"] = {"phase": "Pending", "containerStatuses": [
                {"name": "main", "ready": False, "restartCount": 0, "image": "nvcr.io/nvidia/pytorch:24.08-py3",
                 "imageID": "", "state": {"waiting": {"reason": "ContainerCreating"}}}]}
            cluster.call(lambda: cluster.store.put(bound))
            await until(lambda: "is waiting to start" in following.follower.state.message, message=lambda: following.follower.state)
            assert following.follower.state.message == \
                f'container "main" in pod "{PENDING[1]}" is waiting to start: ContainerCreating'
            bound["status"] = {"phase": "Running"}
            write(cluster, ["started"], pod=PENDING)
            cluster.call(lambda: cluster.store.put(bound))
            await until(lambda: following.lines == ["started"])
    finally:
        await source.aclose()


async def test_pod_log_of_a_deleted_pod_ends_and_bounded_buffer_drops(cluster):
    write(cluster, [f"l{i}" for i in range(50)])
    source = cluster.source()
    try:
        async with Following(source.log_stream(pod_job(*POD)), max_lines=10) as following:
            await until(lambda: following.buffer.dropped == 40)
            assert following.lines == [f"l{i}" for i in range(40, 50)]
            cluster.call(lambda: cluster.store.delete("v1", "Pod", POD[1], POD[0]))
            await until(lambda: following.follower.state.kind == "ended")
            assert following.follower.state.message == f"stream ended: the pod {POD[0]}/{POD[1]} is gone"
    finally:
        await source.aclose()


async def test_pod_log_of_an_unknown_pod_is_an_error_shown_and_retried(cluster):
    source = cluster.source()
    try:
        async with Following(source.log_stream(pod_job("ml", "gone-pod"))) as following:
            await until(lambda: following.follower.state.kind == "failed")
            assert "not found" in following.follower.state.message
            assert following.follower.state.retry_at is not None
    finally:
        await source.aclose()


# -- Ray, against the demo dashboard (the real head: test_logs_ray_real.py) -----------------------


async def test_ray_log_follows_the_demo_dashboards_tail(live_demo):
    live_demo.server.call(lambda: setattr(live_demo.ray_sim, "progress_every", 0.1))
    source = RaySource(live_demo.ray_endpoints()[0])
    try:
        data = await source.fetch()
        job = next(j for j in data.jobs if j.id == "raysubmit_mistral_ft")  # running
        assert source.why_no_log(job) is None
        async with Following(source.log_stream(job)) as following:
            await until(lambda: len(following.lines) > 10, message=lambda: following.follower.state)
            def total() -> int:
                return following.buffer.dropped + len(following.buffer)

            count = total()
            await until(lambda: total() > count + 5)  # it keeps coming
            assert following.lines[-1].startswith("step ") and "samples/s" in following.lines[-1]
    finally:
        await source.aclose()


async def test_ray_log_of_an_unknown_job_is_shown_as_not_found(live_demo):
    source = RaySource(live_demo.ray_endpoints()[0])
    try:
        data = await source.fetch()
        job = replace(next(iter(data.jobs)), id="raysubmit_nobody")
        async with Following(source.log_stream(job)) as following:
            await until(lambda: following.follower.state.kind == "failed")
            assert following.follower.state.message == "demo: log of job raysubmit_nobody: Ray does not know this job (404)"
    finally:
        await source.aclose()


async def test_ray_log_with_a_wrong_token_is_unauthorized(live_demo):
    source = RaySource(Endpoint(name="demo", url=live_demo.ray_url))
    live_demo.ray_faults.status, live_demo.ray_faults.body = 403, "Forbidden: Invalid authentication token"
    try:
        job = pod_job("x", "y", source="ray", id="raysubmit_eval_helm", kind="SUBMISSION")
        async with Following(source.log_stream(job)) as following:
            await until(lambda: following.follower.state.kind == "failed")
            assert "forbidden (403)" in following.follower.state.message
    finally:
        live_demo.ray_faults.status = None
        await source.aclose()


async def test_a_quiet_ray_stream_is_checked_not_failed_until_the_head_stops_answering(live_demo, monkeypatch):
    from mltop.adapters import ray_logs

    monkeypatch.setattr(ray_logs, "QUIET", 0.3)
    source = RaySource(live_demo.ray_endpoints()[0])
    try:
        data = await source.fetch()
        job = next(j for j in data.jobs if j.id == "raysubmit_eval_helm")  # waiting for GPUs: Ray sends nothing
        async with Following(source.log_stream(job)) as following:
            await until(lambda: following.follower.state.kind == "following")
            await asyncio.sleep(1.5)  # several quiet periods: each time the head answered
            assert following.follower.state.kind == "following" and not following.lines
            live_demo.ray_faults.status, live_demo.ray_faults.body = 503, "upstream unavailable"
            await until(lambda: following.follower.state.kind == "failed")
            assert following.follower.state.message == \
                "demo: log of job raysubmit_eval_helm: the log is quiet and the head does not answer (HTTP 503)"
    finally:
        live_demo.ray_faults.status = None
        await source.aclose()


async def test_ray_reconnects_skip_what_earlier_connections_delivered(live_demo):
    live_demo.server.call(lambda: setattr(live_demo.ray_sim, "progress_every", 1.0))
    source = RaySource(live_demo.ray_endpoints()[0])
    try:
        job = next(j for j in (await source.fetch()).jobs if j.id == "raysubmit_mistral_ft")
        stream = source.log_stream(job)
        received = ""
        for frames in (1, 2, 3):  # three connections that break after a few frames each
            chunks = stream.chunks()
            taken = 0
            async for text in chunks:
                received += text
                taken += bool(text)
                if taken == frames:
                    break
            await chunks.aclose()
        lines = received.splitlines()
        assert lines[:2] == ["Runtime env is setting up.",
                             "Running entrypoint for job raysubmit_mistral_ft: python finetune.py --base mistral-7b"]
        steps = [int(line.split()[1].rstrip(":")) for line in lines[2:]]
        assert steps == list(range(0, 10 * len(steps), 10))  # every line once, in order, none skipped
        assert len(lines) == 2 + 10 * 6 - 2  # six frames of 10 lines
    finally:
        await source.aclose()
