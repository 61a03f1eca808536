"""Cost per team: burn and idle by namespace and Ray job owner, each GPU once, checked against a hand
computation; idle reservations charged to their namespace; the JSON and text report; the view."""

from __future__ import annotations

from datetime import timedelta

import pytest
from rich.text import Text
from textual.app import App
from textual.widgets import DataTable

from mltop.adapters.kube_nodes import gpu_node, node_facts
from mltop.adapters.kube_parse import pod_facts
from mltop.cost import CostPolicy, IdleHistory, TeamCost, evaluate
from mltop.demo import kube_objects as k
from mltop.model import GpuDevice, GpuSample, RayClusterState, RayNode, Snapshot
from mltop.prices import price_book
from mltop.registry import wait_models
from mltop.report import team_json, team_lines
from mltop.tui.teams_view import TeamsScreen
from tests.conftest import FIXED_NOW
from tests.factories import job

NOW = FIXED_NOW
T0 = NOW - timedelta(days=3)
A2, P4D, A100_GPU = 30.0, 32.0, 2.0
BOOK = price_book(instances={"a2-highgpu-8g": A2, "p4d.24xlarge": P4D}, per_gpu={"A100": A100_GPU}, currency="€")
POLICY = CostPolicy(waits_on=wait_models())


def kube_node(payload, pods, allocatable=None):
    if allocatable is not None:
        payload["status"]["allocatable"]["nvidia.com/gpu"] = str(allocatable)
    name = payload["metadata"]["name"]
    facts = [pod_facts(k.pod(pod, ns, gpus=g, node_name=name, created=T0)) for pod, ns, g in pods]
    return gpu_node(node_facts(payload), facts, "prod")


def platform(research_util=2.0):
    a100 = kube_node(k.gke_a100_node("a100-1", "a100-pool", T0), [("train-0", "ml", 4), ("sweep-0", "research", 2)])
    broken = kube_node(k.node("ip-10-0-9-9", labels={"node.kubernetes.io/instance-type": "p4d.24xlarge"}, gpus=8,
                              created=T0), [], allocatable=0)  # its device plugin stopped: 8 unusable GPUs
    ray = RayClusterState(nodes=(RayNode("n1", "10.0.0.5", "ray-host-1", False, True, 4.0, 2.0,
                                         devices=(GpuDevice(0, "NVIDIA A100-SXM4-40GB", 50.0, None, None),)),),
                          demands=())
    samples = tuple(GpuSample("a100-1", str(i), f"u{i}", None, research_util, "research", "sweep-0") for i in (0, 1))
    return Snapshot(generated_at=NOW, sources=(), jobs=(job("j1", cluster="ray-prod", gpus=2, owner="alice"),),
                    ray_clusters=(("ray-prod", ray),), nodes=(a100, broken), gpu_samples=samples)


def teams_after_the_window(snapshot):
    history = IdleHistory()
    evaluate(snapshot, BOOK, POLICY, history, NOW)
    return evaluate(snapshot, BOOK, POLICY, history, NOW + timedelta(minutes=11))


def test_per_team_totals_match_a_hand_computation_and_add_up_to_the_engines_totals():
    report = teams_after_the_window(platform())
    rows = {t.team: t for t in report.teams}
    # a100-1 (30/h, 8 GPUs): ml holds 4, research 2 (at 2%: an idle reservation), 2 unallocated.
    assert (rows["ml"].kind, rows["ml"].gpus, rows["ml"].burn_per_hour, rows["ml"].idle_per_hour) == (
        "namespace", 4, pytest.approx(15.0), 0.0)
    assert (rows["research"].gpus, rows["research"].burn_per_hour, rows["research"].idle_per_hour) == (
        2, pytest.approx(7.5), pytest.approx(7.5))
    # Ray outside Kubernetes: alice's job holds 2 A100s at 2/h each; 2 more are free in Ray.
    assert (rows["alice"].kind, rows["alice"].gpus, rows["alice"].burn_per_hour) == ("owner", 2, pytest.approx(4.0))
    # Nobody's: a100-1's 2 unallocated (7.5), the broken node's 8 unusable (32), Ray's 2 free (4).
    un = rows["unassigned"]
    assert (un.kind, un.gpus, un.burn_per_hour, un.idle_per_hour) == (
        "unassigned", 12, pytest.approx(43.5), pytest.approx(43.5))
    assert sum(t.idle_per_hour for t in report.teams) == pytest.approx(report.idle_rate)
    assert sum(t.burn_per_hour for t in report.teams) == pytest.approx(report.burn_rate)
    assert [t.team for t in report.teams] == ["unassigned", "ml", "research", "alice"]  # by burn


def test_an_idle_reservation_is_charged_to_its_namespace_only_after_the_window_and_only_when_low():
    history = IdleHistory()
    first = {t.team: t for t in evaluate(platform(), BOOK, POLICY, history, NOW).teams}
    assert first["research"].idle_per_hour == 0.0  # under 10% for less than the window: not yet idle
    busy = {t.team: t for t in teams_after_the_window(platform(research_util=80.0)).teams}
    assert busy["research"].idle_per_hour == 0.0 and busy["research"].burn_per_hour == pytest.approx(7.5)


def test_kuberay_pods_charge_rays_free_gpus_to_the_pods_namespace_not_to_the_job_owner():
    a100 = kube_node(k.gke_a100_node("a100-1", "a100-pool", T0), [("rc-worker-abc", "team-nlp", 8)])
    ray = RayClusterState(nodes=(RayNode("n1", "10.0.0.5", "rc-worker-abc", False, True, 8.0, 6.0, devices=(
        GpuDevice(0, "NVIDIA A100-SXM4-40GB", 50.0, None, None),)),), demands=())
    snapshot = Snapshot(generated_at=NOW, sources=(), jobs=(job("j1", cluster="rc", gpus=6, owner="bob"),),
                        ray_clusters=(("rc", ray),), nodes=(a100,))
    report = evaluate(snapshot, BOOK, POLICY, IdleHistory(), NOW)
    (team,) = report.teams
    assert (team.team, team.kind, team.gpus, team.burn_per_hour) == ("team-nlp", "namespace", 8, pytest.approx(A2))
    # Ray's 2 free GPUs (at Ray's per-GPU A100 price), held by the pod: team-nlp's idle reservation.
    assert team.idle_per_hour == pytest.approx(2 * A100_GPU) == pytest.approx(report.idle_rate)


def test_unpriced_teams_say_unknown_never_zero():
    bare = kube_node(k.node("bare-1", labels={}, gpus=4, created=T0), [("p", "ml", 4)])
    report = evaluate(Snapshot(generated_at=NOW, sources=(), jobs=(), nodes=(bare,)), BOOK, POLICY, IdleHistory(), NOW)
    (team,) = report.teams
    assert team.team == "ml" and team.burn_per_hour is None
    assert team_json(team) == {"team": "ml", "kind": "namespace", "gpus": 4, "burn_per_hour": None,
                               "idle_per_hour": 0.0}


def test_json_fields_and_the_text_section():
    report = teams_after_the_window(platform())
    rows = [team_json(t) for t in report.teams]
    assert all(set(r) == {"team", "kind", "gpus", "burn_per_hour", "idle_per_hour"} for r in rows)
    assert rows[2] == {"team": "research", "kind": "namespace", "gpus": 2, "burn_per_hour": 7.5, "idle_per_hour": 7.5}
    lines = team_lines(report)
    assert lines[1].startswith("COST BY TEAM")
    assert "- research (namespace): 2 GPUs, €7.50/h, idle €7.50/h" in lines


async def test_teams_screen_lists_teams_by_burn_inert_and_esc_goes_back():
    teams = (TeamCost("ml", "namespace", 4, 15.0, 0.0), TeamCost("[bold]x[/", "owner", 1, None, None),
             TeamCost("unassigned", "unassigned", 12, 43.5, 43.5))
    app = App()
    async with app.run_test(size=(100, 30)) as pilot:
        app.push_screen(TeamsScreen(teams, "€"))
        await pilot.pause()
        table = app.screen.query_one("#team-costs", DataTable)
        cells = [[c.plain if isinstance(c, Text) else c for c in table.get_row_at(i)] for i in range(table.row_count)]
        assert [row[0] for row in cells] == ["unassigned", "ml", "[bold]x[/"]  # unknown price last, shown as text
        assert cells[0][3:] == ["€43.50", "€43.50", "100%"] and cells[2][3:] == ["unknown", "unknown", "-"]
        await pilot.press("escape")
        assert not isinstance(app.screen, TeamsScreen)
