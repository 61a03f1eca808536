"""The GPU nodes panel and the pools panel: records in, keyed diffs out. Display only."""

from __future__ import annotations

from collections.abc import Mapping

from rich.text import Text

from mltop import format as fmt
from mltop.keys import key_label
from mltop.model import GpuNode, IdleWarning, Pool
from mltop.safe_text import inert
from mltop.query import Value, node_fields, pool_fields, warning_fields
from mltop.widgets.keyed_table import KeyedTable, sort_bindings

KIND_LABELS = {"idle-node": "idle node", "idle-pool": "idle pool", "ray-idle": "ray idle",
               "low-utilization": "low util", "idle-while-waiting": "idle+waiting", "no-capacity-coming": "no capacity",
               "unusable-gpus": "unusable"}
POOL_KINDS = {"nodepool": "nodepool", "raycluster-workergroup": "ray group", "machinedeployment": "capi md"}


def node_state(node: GpuNode) -> Text:
    if not node.ready:
        return Text("NotReady", style="bold red")
    if not node.schedulable:
        return Text("Cordoned", style="yellow")
    return Text("Ready", style="green")


def allocation(used: float | None, total: float | None) -> Text:
    text = f"{fmt.gpus(used)}/{fmt.gpus(total)}"
    if used is not None and total:
        style = "green" if used >= total else "yellow" if used > 0 else "bold yellow"
        return Text(text, style=style, justify="right")
    return Text(text, justify="right")


class NodesTable(KeyedTable[GpuNode]):
    """Every node with GPU capacity: model, allocation, state."""

    COLUMNS = (
        ("name", "NODE", 0),
        ("pool", "POOL", 12),
        ("model", "MODEL", 14),
        ("alloc", "ALLOC", 7),
        ("free", "FREE", 4),
        ("idle", "IDLE/H", 7),
        ("state", "STATE", 8),
    )
    idle_costs: Mapping[str, float | None] = {}  # node key -> $/h of its idle GPUs (None: no price)
    SHARED = {"name": (10, 40), "pool": (8, 24), "model": (10, 24)}
    SORT_KEYS = {"N": ("name", False), "P": ("pool", False), "M": ("model", False), "A": ("alloc", True),
                 "F": ("free", True), "I": ("idle", True), "S": ("state", False)}
    BINDINGS = sort_bindings(SORT_KEYS)

    def fields(self, node: GpuNode) -> dict[str, Value]:
        return node_fields(node, self.idle_costs.get(node.key))

    def needs(self, node: GpuNode) -> dict[str, int]:
        return {"name": len(short_node_name(node.name)), "pool": len(node.pool or "-"),
                "model": len(short_model(node.gpu_model))}

    def row_token(self, node: GpuNode) -> object:
        return (node, self.idle_costs.get(node.key))

    def cells(self, node: GpuNode, widths: dict[str, int]) -> tuple[Text, ...]:
        idle = self.idle_costs.get(node.key)
        return (
            # Node names differ at their end (ip-10-0-41-17, gke-a100-pool-7f3a-1): cut the middle.
            Text(fmt.clip_middle(short_node_name(node.name), widths["name"])),
            Text(fmt.clip(node.pool or "-", widths["pool"])),
            Text(fmt.clip(short_model(node.gpu_model), widths["model"])),
            allocation(node.gpus_allocated, node.gpus_allocatable),
            Text(fmt.gpus(node.gpus_free), justify="right", style="bold yellow" if node.gpus_free else ""),
            Text("-" if not node.gpus_free else "?" if idle is None else f"{idle:,.2f}", justify="right",
                 style="yellow" if idle else ""),
            node_state(node),
        )


class PoolsTable(KeyedTable[Pool]):
    """Node pools, KubeRay worker groups and MachineDeployments; `s` scales the scalable ones."""

    COLUMNS = (
        ("name", "POOL", 0),
        ("kind", "KIND", 9),
        ("ready", "READY", 7),  # 100/100: a pool of a hundred nodes must not read "100/1"
        ("range", "MIN..MAX", 8),
        ("gpus", "GPU/R", 5),
        ("idle", "IDLE", 4),
        ("cost", "IDLE/H", 7),
        ("scale", "S", 1),
    )
    idle_costs: Mapping[str, float | None] = {}  # pool key -> $/h of its idle GPUs (None: unknown)
    SHARED = {"name": (12, 48)}
    SORT_KEYS = {"N": ("name", False), "K": ("kind", False), "D": ("ready", True), "X": ("range", True),
                 "U": ("gpus", True), "I": ("idle", True), "H": ("cost", True)}
    BINDINGS = sort_bindings(SORT_KEYS)

    def fields(self, pool: Pool) -> dict[str, Value]:
        return pool_fields(pool, self.idle_costs.get(pool.key))

    def needs(self, pool: Pool) -> dict[str, int]:
        return {"name": len(pool.name)}

    def row_token(self, pool: Pool) -> object:
        return (pool, self.idle_costs.get(pool.key))

    def cells(self, pool: Pool, widths: dict[str, int]) -> tuple[Text, ...]:
        cost = self.idle_costs.get(pool.key)
        bounds = "-" if pool.kind == "nodepool" else f"{fmt.count(pool.min, '0')}..{fmt.count(pool.max, fmt.INFINITY)}"
        idle = pool.gpus_idle
        return (
            Text(fmt.clip_middle(pool.name, widths["name"])),
            Text(POOL_KINDS.get(pool.kind) or fmt.clip(pool.kind, widths["kind"]), style="dim"),
            Text(fmt.clip(f"{fmt.count(pool.ready)}/{fmt.count(pool.replicas)}", 7), justify="right"),
            Text(bounds + (" A" if pool.autoscaled and pool.kind != "nodepool" else "")),
            Text(fmt.gpus(pool.gpus_per_replica), justify="right"),
            Text("-" if idle is None else fmt.gpus(idle), justify="right", style="bold yellow" if idle else ""),
            Text("-" if not idle else "?" if cost is None else f"{cost:,.2f}", justify="right",
                 style="yellow" if cost else ""),
            Text("s" if pool.scalable else fmt.DOT, style="cyan" if pool.scalable else "dim"),
        )


def short_model(model: str | None) -> str:
    """NVIDIA-A100-SXM4-40GB -> A100-SXM4-40GB: the vendor prefix costs columns and says little.

    Inert: the model is a node label anyone who can label nodes controls, and the summary line
    shows this too."""
    if not model:
        return "-"
    for prefix in ("NVIDIA-", "NVIDIA ", "nvidia-tesla-", "nvidia-", "Tesla-"):  # "NVIDIA A100-...": Ray's telemetry
        if model.startswith(prefix):
            return inert(model[len(prefix):])
    return inert(model)


CLOUD_SUFFIXES = (".ec2.internal", ".compute.internal", ".internal")


def short_node_name(name: str) -> str:
    """ip-10-0-77-5.ec2.internal -> ip-10-0-77-5: the cloud's DNS suffix is the same on every node."""
    for suffix in CLOUD_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


class WarningsTable(KeyedTable[IdleWarning]):
    """Idle-cost warnings, most expensive first; enter shows the whole warning (and goes on to its target), the remedy key fixes it."""

    COLUMNS = (
        ("cost", "$/H", 8),
        ("kind", "KIND", 13),
        ("message", "WHAT", 0),
        ("since", "IDLE", 7),
        ("key", "FIX", 6),
    )
    currency = "$"
    now = None
    keymap: dict[str, str] = {}  # the user's remapped keys: the FIX column shows the key in force
    SORT_KEYS = {"H": ("cost", True), "K": ("kind", False), "W": ("message", False), "I": ("since", True)}
    BINDINGS = sort_bindings(SORT_KEYS)

    def fields(self, warning: IdleWarning) -> dict[str, Value]:
        return warning_fields(warning, self.now)

    def key_of(self, record: IdleWarning) -> str:
        return f"{record.kind}|{record.target}"

    def row_token(self, w: IdleWarning) -> object:
        # What the cells show, not the whole warning: its `wasted` grows at every evaluation, and
        # rebuilding 1,000 rows' cells for it was ~100 ms a poll at 5,000 nodes.
        return (w.cost_per_hour, w.kind, w.cluster, w.message, self._since(w), w.remedy_action,
                self.currency, self.keymap.get(w.remedy_action or ""))

    def _since(self, w: IdleWarning) -> str:
        return "-" if w.idle_since is None or self.now is None else (
            (">=" if w.idle_since_is_lower_bound else "") + fmt.short_duration((self.now - w.idle_since).total_seconds()))

    def cells(self, w: IdleWarning, widths: dict[str, int]) -> tuple[Text, ...]:
        cost = "unknown" if w.cost_per_hour is None else f"{self.currency}{w.cost_per_hour:,.2f}"
        since = self._since(w)
        return (
            Text(cost, justify="right", style="bold red" if (w.cost_per_hour or 0) >= 10 else "yellow"),
            Text(KIND_LABELS.get(w.kind) or fmt.clip(w.kind, widths["kind"]), style="dim"),
            Text(fmt.clip(f"{w.cluster}: {w.message}", widths["message"])),
            Text(since),
            Text(inert(key_label(w.remedy_action, self.keymap) or "-"), style="cyan" if w.remedy_action else "dim"),
        )

