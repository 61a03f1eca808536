"""The derived view at 5,000 GPU nodes: the same queue, warnings, totals and reasons as a plain
reference computation, however it was made cheap (memoised prices, per-cluster indexes, costs
summed once per idle set, an evaluation skipped when nothing changed), and the screen built from it
off the UI thread, with capped tables that still reach every record through the filter."""

from __future__ import annotations

import asyncio
import math
from dataclasses import replace
from datetime import timedelta

from mltop.config import Config
from mltop.dashboard import COST_CHANGED_MAX_SECONDS, COST_REFRESH_MAX_SECONDS, COST_REFRESH_SECONDS, Dashboard
from mltop.jobs import order_jobs
from mltop.model import GpuNode, JobState, SourceData, SourceHealth
from mltop.cost.policy import CostPolicy
from mltop.prices import canonical_model, price_book
from mltop.refresh import SourceUpdate
from mltop.registry import wait_models
from mltop.tui.app import MltopApp
from mltop.waiting import phrase, scheduler_reasons, insufficient
from mltop.widgets.infra_tables import NodesTable
from mltop.widgets.keyed_table import KeyedTable
from tests.conftest import FIXED_NOW, fixed_clock
from tests.test_cost_at_size import random_cluster, reference_reason

NOW = FIXED_NOW
SAID = "0/5000 nodes are available: 4990 Insufficient nvidia.com/gpu, 10 node(s) had untolerated taint {a: b}."


def health(ok: bool = True) -> SourceHealth:
    return SourceHealth("kubernetes", "c", ok, None, 1.0, NOW, NOW)


def cluster(pending: int = 200):
    """5,000 nodes (about one in seven with free GPUs); pods that mostly cannot run anywhere idle:
    too big for any node, or asking for a GPU no idle node has, besides some that fit."""
    nodes, jobs = random_cluster(7, count=5000, pending=pending)
    asks = (("accelerator", "b200"),)
    jobs = [replace(j, scheduler_message=SAID, gpus=16 if i % 4 == 0 else j.gpus,
                    placement=asks if i % 4 in (1, 2) else j.placement) for i, j in enumerate(jobs)]
    return nodes, jobs


def dashboard_with(nodes, jobs) -> Dashboard:
    dash = Dashboard(["kubernetes/c"], prices=price_book(), policy=CostPolicy(waits_on=wait_models()))
    dash.update(SourceUpdate("kubernetes/c", health(), SourceData(jobs=tuple(jobs), nodes=tuple(nodes))))
    return dash


def plain_price(node: GpuNode) -> float | None:
    """The node's price asked afresh (no memo): the catalog's per-GPU price of its model."""
    fresh = price_book()
    return fresh._price(pool=node.pool, instance_type=node.instance_type, gpu_model=node.gpu_model,
                        gpus=node.gpus_total, spot=False, zone=node.zone, cluster=None).per_hour


def plain_short(job, nodes) -> str | None:
    """The REASON column as it was computed before: scanning every node of the cluster per pod."""
    parsed = scheduler_reasons(job.scheduler_message)
    _, reason = max(parsed[1], key=lambda r: r[0])
    resource = insufficient(reason)
    free = [n.gpus_free for n in nodes if n.gpu_resource == resource]
    if free and max(free) < job.gpus:
        return f"needs {job.gpus:g} GPU, max free {max(free):g}"
    return phrase(reason)


def test_queue_warnings_totals_and_reasons_at_5000_nodes_match_the_plain_computation():
    nodes, jobs = cluster()
    view = dashboard_with(nodes, jobs).view(NOW)
    # The queue: mltop's order of the same jobs.
    assert [j.key for j in view.jobs] == [j.key for j in order_jobs(jobs)]
    # Why each waits (idle-while-waiting), as the per-pod reference says.
    said = {w.target: w.message for w in view.cost.warnings if w.kind == "idle-while-waiting"}
    expected = {j.key: m for j in jobs if (m := reference_reason(j, nodes)) is not None}
    assert said == expected and len(said) > 20
    # Totals: every node's price, and the price of its free share (capacity = allocatable here: no
    # unusable GPUs; a NotReady node's free GPUs are idle all the same).
    prices = {n.key: plain_price(n) for n in nodes}
    assert all(p is not None for p in prices.values())
    assert math.isclose(view.cost.burn_rate, sum(prices.values()), rel_tol=1e-9)
    idle = sum(prices[n.key] * n.gpus_free / n.gpus_total for n in nodes)
    assert math.isclose(view.cost.idle_rate, idle, rel_tol=1e-9)
    assert view.cost.node_idle_costs == {n.key: prices[n.key] * n.gpus_free / n.gpus_total for n in nodes}
    # Each warning's dollars: the sum over the idle GPUs it names, priced afresh.
    for w in view.cost.warnings:
        if w.kind == "idle-while-waiting":
            assert w.cost_per_hour is not None and w.cost_per_hour > 0
    # The REASON column, indexed once per view, says what scanning every node says.
    assert view.short_reasons == {j.key: plain_short(j, nodes) for j in jobs}
    assert canonical_model("NVIDIA-H100-80GB-HBM3") == "H100-80GB"


def test_the_same_data_is_not_evaluated_again_until_the_clock_matters():
    nodes, jobs = cluster(pending=50)
    dash = dashboard_with(nodes, jobs)
    first = dash.view(NOW).cost
    # The interval: 10 s, longer where an evaluation costs more than half a percent of a core over it.
    assert COST_REFRESH_SECONDS <= dash.cost_every <= COST_REFRESH_MAX_SECONDS
    soon = NOW + timedelta(seconds=COST_REFRESH_SECONDS / 2)
    assert dash.view(soon).cost is first  # same records: the last evaluation stands
    before = NOW + timedelta(seconds=dash.cost_every - 0.5)
    assert dash.view(before).cost is first
    later = NOW + timedelta(seconds=dash.cost_every + 1)
    at_later = dash.view(later).cost
    assert at_later is not first  # the clock alone can cross an idle threshold
    changed = [replace(nodes[0], gpus_allocated=0.0), *nodes[1:]]
    dash.update(SourceUpdate("kubernetes/c", health(), SourceData(jobs=tuple(jobs), nodes=tuple(changed))))
    # New data is evaluated at once, or, where an evaluation is slow, once its share of a core allows.
    assert dash.cost_every_changed <= COST_CHANGED_MAX_SECONDS
    if dash.cost_every_changed:
        held = dash.view(later + timedelta(seconds=dash.cost_every_changed / 2))
        assert held.cost is at_later and held.nodes[0] is not None  # the figures wait; the records are new
        later += timedelta(seconds=dash.cost_every_changed + 0.01)
    again = dash.view(later)
    assert again.cost is not first and again.cost is not None
    assert again.cost.node_idle_costs[changed[0].key] == plain_price(changed[0])  # all 8 (or 4, 1) now idle


class Cluster5000:
    """A source holding 5,000 GPU nodes, the last of them the only one named `needle`."""

    kind = "kubernetes"
    name = "c"
    key = "kubernetes/c"

    def __init__(self) -> None:
        nodes, _ = random_cluster(3, count=5000, pending=0)
        self.nodes = [replace(n, gpus_allocated=n.gpus_total) for n in nodes[:-1]]  # none free: ...
        self.nodes.append(replace(nodes[-1], name="zz-needle", gpus_allocated=nodes[-1].gpus_total))  # ... order by name

    async def fetch(self) -> SourceData:
        return SourceData(nodes=tuple(self.nodes))

    async def aclose(self) -> None:
        pass


async def test_a_5000_node_table_holds_the_first_rows_says_so_and_the_filter_reaches_the_rest():
    app = MltopApp(Config(), [Cluster5000()], clock=fixed_clock, start_polling=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await app.refresh_now()
        await pilot.pause()
        nodes = app.query_one(NodesTable)
        assert nodes.row_count == KeyedTable.ROW_LIMIT and nodes.total_rows == 5000
        title = str(app.query_one("#nodes-panel").border_title)
        assert f"first {KeyedTable.ROW_LIMIT:,} of 5,000 shown" in title
        assert "zz-needle" not in {n.name for n in nodes.records.values()}  # past the cap: not a row
        needle = next(n.key for n in app.main.view.nodes if n.name == "zz-needle")
        assert nodes.select_key(needle) and nodes.selected.name == "zz-needle"  # "go to" reaches past the cap
        assert nodes.row_count == KeyedTable.ROW_LIMIT + 1
        nodes.focus()
        await pilot.press("slash", *"zz-needle", "enter")
        assert [n.name for n in nodes.records.values()] == ["zz-needle"]
        assert "first" not in str(app.query_one("#nodes-panel").border_title)
        # The view was derived off the UI thread and applied: the summary counts all 5,000 nodes.
        assert app.main.view is not None and len(app.main.view.nodes) == 5000
        assert all(j.state is not JobState.PENDING for j in app.main.view.jobs)


async def test_a_failing_derivation_is_said_once_and_the_next_one_recovers(monkeypatch):
    app = MltopApp(Config(), [Cluster5000()], clock=fixed_clock, start_polling=False)
    said: list[str] = []
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()  # started: its first, empty view is drawn
        monkeypatch.setattr(app, "say", lambda message, **kw: said.append(message))
        real = app.dashboard.view
        monkeypatch.setattr(app.dashboard, "view", lambda *a, **k: 1 / 0)
        for _ in range(3):
            await app.refresh_now()
            await pilot.pause()
        assert len([s for s in said if "could not work out the screen" in s]) == 1
        monkeypatch.setattr(app.dashboard, "view", real)
        await app.refresh_now()
        await pilot.pause()
        assert app.main.view is not None and len(app.main.view.nodes) == 5000


def test_reasons_kept_from_the_last_view_are_those_worked_out_afresh_poll_after_poll(monkeypatch):
    """The REASON texts a view keeps from the last one (same record, same cluster, same most free
    GPUs) and the most free GPUs read off the sorted nodes are, every poll, what working them out
    from scratch gives, while nodes fill and empty (the cluster's most free GPUs move: 8, 4, 2) and
    pods change their asks or start."""
    import random

    from mltop.dashboard import View
    from mltop.waiting import most_free

    CAPS = (None, None, 4, 4, None, None, 2, 2)
    rng = random.Random(11)
    base, jobs = cluster(pending=300)
    base = base[:400]
    dash = dashboard_with(base, jobs)
    worked_out = []
    plain_short = View.waiting_short
    monkeypatch.setattr(View, "waiting_short", lambda view, job: worked_out.append(job) or plain_short(view, job))
    for poll in range(24):
        for i in rng.sample(range(len(base)), 6):  # GPU pods leave nodes and take others
            node = base[i]
            base[i] = replace(node, gpus_allocated=rng.choice((0, node.gpus_total, node.gpus_total / 2)))
        for i in rng.sample(range(len(jobs)), 5):  # pods change what they ask for, or start
            jobs[i] = replace(jobs[i], gpus=rng.choice((1, 4, 8, 16)), state=rng.choice(
                (JobState.PENDING, JobState.PENDING, JobState.RUNNING)))
        cap = CAPS[poll % len(CAPS)]  # at most this many free on any node, this poll
        nodes = [n if cap is None or n.gpus_free <= cap else replace(n, gpus_allocated=n.gpus_allocatable - cap)
                 for n in base]
        dash.update(SourceUpdate("kubernetes/c", health(), SourceData(jobs=tuple(jobs), nodes=tuple(nodes))))
        view = dash.view(NOW + timedelta(seconds=2 * poll), with_cost=False)
        worked_out.clear()
        kept = view.short_reasons
        reused = len(view.jobs) - len(worked_out)
        assert kept == {j.key: short for j in view.jobs if (short := plain_short(view, j))}
        assert view._most_free == {"c": most_free(view.nodes)}
        assert any(f"max free {cap}" in text for text in kept.values()) if cap else True
        if poll and cap == CAPS[(poll - 1) % len(CAPS)]:
            assert reused > 250  # the same most free GPUs: most texts were kept, not worked out again


def test_a_node_is_built_again_only_when_its_record_or_its_pods_change():
    from mltop.adapters.kube_nodes import GpuNodes, node_facts
    from mltop.adapters.kube_parse import pod_facts
    from mltop.demo import kube_objects as k

    build = GpuNodes("c")
    node = node_facts(k.gke_a100_node("gpu-1", "a100", NOW))
    pods = [pod_facts(k.pod("train", "ml", gpus=2, node_name="gpu-1", created=NOW))]
    asked: list[str] = []

    def pods_of(items, version):
        return lambda name: asked.append(name) or (list(items), version)

    first = build(node, 7, pods_of(pods, 7))
    assert first.gpus_allocated == 2 and asked == ["gpu-1"]
    assert build(node, 7, pods_of(pods, 7)) is first and asked == ["gpu-1"]  # unchanged: not even asked
    more = [*pods, pod_facts(k.pod("eval", "ml", gpus=1, node_name="gpu-1", created=NOW))]
    assert build(node, 9, pods_of(more, 9)).gpus_allocated == 3  # a pod came
    assert build(node, -1, pods_of([], -1)).gpus_allocated == 0  # they went
    relabelled = node_facts(k.gke_a100_node("gpu-1", "other-pool", NOW))
    assert build(relabelled, -1, pods_of([], -1)).pool == "other-pool"  # the node's own record changed
    # The count read with the pods is the one remembered: a pod that came after the caller read
    # the counts is in the node, and the node is built again when the caller sees the new count.
    came = build(node, -1, pods_of(pods, 12))
    assert came.gpus_allocated == 2 and build(node, -1, pods_of([], -1)).gpus_allocated == 0
    build.keep_only([])
    assert build._seen == {}  # a node that is gone is forgotten


async def test_a_poll_with_no_watch_event_hands_back_the_same_records_and_an_event_shows_at_once(tmp_path):
    from mltop.demo import kube_objects as k
    from tests.kube_helpers import start_fake_cluster

    fake = start_fake_cluster(tmp_path)
    source = fake.source()
    try:
        first = await source.fetch()
        second = await source.fetch()
        assert second.nodes and all(a is b for a, b in zip(first.nodes, second.nodes))  # nothing rebuilt
        node = first.nodes[0]
        fake.call(lambda: fake.store.put(k.pod("late", "ml", gpus=1, node_name=node.name, created=NOW)))
        for _ in range(100):  # the watch delivers a moment later: poll until it has
            data = await source.fetch()
            now_node = next(n for n in data.nodes if n.key == node.key)
            if now_node.gpus_allocated != node.gpus_allocated:
                break
            await asyncio.sleep(0.05)
        assert now_node.gpus_allocated == node.gpus_allocated + 1
        assert any(p.name == "late" for p in now_node.pods)
    finally:
        await source.aclose()
        fake.server.stop()


async def test_nodes_rebuilt_from_the_changes_alone_match_a_full_rebuild(tmp_path):
    """Pods bound, moved, deleted and added across many polls: the nodes and node pools the source
    builds from the pod cache's changes alone are, every time, those a build from scratch gives."""
    import random

    from mltop.adapters.kube_records import ClusterRecords
    from mltop.demo import kube_objects as k
    from tests.kube_helpers import start_fake_cluster

    fake = start_fake_cluster(tmp_path)
    source = fake.source()
    rng = random.Random(3)

    def from_scratch():
        versions = source._records.versions((source.nodes, source.pods, source.dra.slices, source.dra.claims))
        dra, _ = source.dra.view(5, source.pods.snapshot())
        _, nodes, _, pools = ClusterRecords(source.name)(versions, source.nodes, source.pods, dra)
        return nodes, pools

    try:
        names = [n.name for n in (await source.fetch()).nodes]
        placed: dict[str, tuple[str | None, int]] = {}
        ours = {f"p{i}" for i in range(12)}
        for step in range(25):
            for _ in range(rng.randrange(1, 4)):
                pod = f"p{rng.randrange(12)}"
                if pod in placed and rng.random() < 0.3:
                    fake.call(lambda pod=pod: fake.store.delete("v1", "Pod", pod, "ml"))
                    del placed[pod]
                else:
                    node, gpus = rng.choice([*names, None]), rng.choice((1, 2))
                    placed[pod] = (node, gpus)
                    fake.call(lambda pod=pod, node=node, gpus=gpus: fake.store.put(
                        k.pod(pod, "ml", gpus=gpus, node_name=node, created=NOW)))
            written = fake.call(lambda: fake.store.resource_version)
            for _ in range(200):  # the watch delivers a moment later
                if int(source.pods.resource_version or 0) >= written:
                    break
                await asyncio.sleep(0.02)
            else:
                raise AssertionError("the watch did not deliver")
            held = {p.name: (p.node_name, dict(p.requests).get("nvidia.com/gpu"))
                    for p in source.pods.snapshot() if p.namespace == "ml" and p.name in ours}
            assert held == placed
            data = await source.fetch()
            nodes, pools = from_scratch()
            assert list(data.nodes) == nodes, step
            assert [p for p in data.pools if p.kind == "nodepool"] == pools, step
        assert source._records._index is not None  # the polls above took the path from the changes
    finally:
        await source.aclose()
        fake.server.stop()


def test_the_nodes_title_counts_kubernetes_and_ray_nodes_apart():
    from mltop.tui.dashboard_screen import nodes_title

    nodes, jobs = cluster(pending=10)
    ray = (replace(nodes[0], key="ray/c/r1", name="r1", origin="ray"),)
    dash = dashboard_with(nodes[:5], jobs)
    dash.update(SourceUpdate("kubernetes/c", health(), SourceData(jobs=tuple(jobs), nodes=tuple(nodes[:5]), ray_nodes=ray)))
    view = dash.view(NOW)
    assert view.ray_nodes == 1
    assert nodes_title(view).startswith("GPU nodes: 5 K8s, ") and "; 1 Ray, " in nodes_title(view)
