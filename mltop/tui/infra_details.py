"""`enter` on a GPU node or a pool: what it holds, from the records already fetched."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from rich.console import Group
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from mltop import format as fmt
from mltop.model import GpuNode, Pool
from mltop.prices import Price
from mltop.safe_text import inert
from mltop.widgets.facts import boxed_table, facts_grid


def cell(value: object) -> Text:
    """A table cell from backend text: inert, and a Text (a str cell would be parsed as markup)."""
    return Text(inert(value))


def ray_node_view(node: GpuNode, now: datetime) -> Group:
    """A Ray node: Ray's logical GPUs, and its telemetry where it has any. No pods, no taints."""
    age = (now - node.created_at).total_seconds() if node.created_at else None
    util = ("not reported (logical GPUs, or no telemetry)" if node.gpu_utilization is None
            else f"{node.gpu_utilization:.0f}% (mean over its GPUs)")
    role = node.conditions[0][0] if node.conditions else "Ray node"  # "Ray head" or "Ray worker"
    if node.pool not in (None, "ray", "ray head"):
        role += f", node type {node.pool}"
    facts = facts_grid([
        ("node", f"{node.cluster}/{node.name}"),
        ("Ray node id", node.key.split("/", 2)[-1]),
        ("address", node.address or "-"),
        ("role", role),
        ("GPU", node.gpu_model or "unknown model"),
        ("GPUs", f"{fmt.gpus(node.gpus_total)} total, {fmt.gpus(node.gpus_allocated)} held by tasks and actors, "
                 f"{fmt.gpus(node.gpus_free)} free"),
        ("utilization", util),
        ("state", ("ALIVE" if node.ready else "not alive") + ("" if node.schedulable or not node.ready else ", draining")),
        ("instance", node.instance_type or "-"),
        ("up for", fmt.long_duration(age)),
        ("labels", ", ".join(f"{k}={v}" for k, v in node.labels) or "none"),
    ])
    return Group(facts, Text(""), Text("Ray's GPUs are counted by Ray's own accounting: a KubeRay pod's GPUs are "
                                       "also its Kubernetes node's, and are not counted twice.", style="dim"))


def price_text(price: Price, currency: str = "$") -> str:
    """The node's price and where it came from: the user's config, OpenCost, or the catalog."""
    if price.per_hour is None:
        return f"unknown: {price.basis}"
    return f"{currency}{price.per_hour:,.2f}/h, {price.basis}; source: {price.source}"


def node_view(node: GpuNode, now: datetime, price: Price | None = None, currency: str = "$") -> Group:
    if node.origin == "ray":
        return ray_node_view(node, now)
    age = (now - node.created_at).total_seconds() if node.created_at else None
    facts = facts_grid([
        ("node", f"{node.cluster}/{node.name}"),
        ("pool", node.pool or "-"),
        ("GPU", f"{node.gpu_model or 'unknown model'} ({node.gpu_resource})"),
        ("GPUs", f"{fmt.gpus(node.gpus_total)} total, {fmt.gpus(node.gpus_allocatable)} allocatable, "
                 f"{fmt.gpus(node.gpus_allocated)} allocated, {fmt.gpus(node.gpus_free)} free"),
        *([("DRA", f"{fmt.gpus(node.dra_gpus)} GPUs from ResourceSlices; pods get them through ResourceClaims")]
          if node.dra_gpus else []),
        ("sharing", node.sharing or "none"),
        ("state", ("Ready" if node.ready else "NotReady") + ("" if node.schedulable else ", cordoned")),
        ("instance", f"{node.instance_type or '-'} in {node.zone or '-'}, {node.capacity_type or 'capacity type unknown'}"),
        ("age", fmt.long_duration(age)),
        ("taints", ", ".join(node.taints) or "none"),
        *([("price", price_text(price, currency))] if price is not None else []),
    ])
    pods = boxed_table("Pods holding GPUs", expand=False)
    for column in ("namespace", "pod", "GPUs", "phase", "owner"):
        pods.add_column(column)
    for p in node.pods:
        pods.add_row(cell(p.namespace), cell(p.name), fmt.gpus(p.gpus), cell(p.phase), cell(p.owner or "-"))
    if not node.pods:
        pods.add_row("-", "(none: every GPU on this node is idle)", "", "", "")
    conditions = boxed_table("Conditions", expand=False)
    for column in ("type", "status", "message"):
        conditions.add_column(column)
    for ctype, status, message in node.conditions:
        conditions.add_row(cell(ctype), cell(status), cell(message))
    return Group(facts, Text(""), pods, Text(""), conditions)


def pool_view(pool: Pool) -> Group:
    facts = facts_grid([
        ("pool", f"{pool.cluster}/{pool.name}"),
        ("kind", pool.kind + (f" in namespace {pool.namespace}" if pool.namespace else "")),
        ("replicas", f"{fmt.count(pool.replicas)} ({fmt.count(pool.ready)} ready)"),
        ("range", "-" if pool.kind == "nodepool" else f"{fmt.count(pool.min, '0')} .. {fmt.count(pool.max, 'no limit')}"),
        ("GPUs each", fmt.gpus(pool.gpus_per_replica)),
        ("GPUs", "-" if pool.gpus_total is None else
         f"{fmt.gpus(pool.gpus_total)} total, {fmt.gpus(pool.gpus_allocated)} allocated, {fmt.gpus(pool.gpus_idle)} idle"),
        ("model", pool.gpu_model or "-"),
        ("autoscaled", "yes" if pool.autoscaled else "no"),
        ("scaling", "s scales it" if pool.scalable else f"not from here: {pool.why_not_scalable}"),
    ])
    members = boxed_table("Nodes" if pool.kind == "nodepool" else "Workers")
    members.add_column("name")
    for name in pool.members:
        members.add_row(cell(name))
    if not pool.members:
        members.add_row("(none)")
    return Group(facts, Text(""), members)


class InfraDetailsScreen(Screen[None]):
    BINDINGS = [Binding("escape,q", "app.pop_screen", "Back")]

    def __init__(self, record: GpuNode | Pool, clock: Callable[[], datetime], price: Price | None = None,
                 currency: str = "$") -> None:
        super().__init__()
        self.record = record
        self.clock = clock
        self.price = price  # the node's price and its source, when the dashboard priced it
        self.currency = currency

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="details"):
            if isinstance(self.record, GpuNode):
                yield Static(node_view(self.record, self.clock(), self.price, self.currency), id="body")
            else:
                yield Static(pool_view(self.record), id="body")
        yield Footer()

    def on_mount(self) -> None:
        kind = "Node" if isinstance(self.record, GpuNode) else "Pool"
        # A Text title is taken as-is; a str one would be parsed as markup.
        self.query_one("#details").border_title = Text(inert(f"{kind} {self.record.cluster}/{self.record.name}"))
