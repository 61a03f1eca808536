"""Dynamic Resource Allocation (DRA) GPUs: ResourceSlices and ResourceClaims (raw JSON dicts) ->
compact records, and what they add to mltop's GPU nodes and queue. Pure functions, no I/O
(`kube_dra_source.py` reads the API). Contract: backend-apis.md C.8; `resource.k8s.io` v1, v1beta2
and v1beta1 (v1beta1 nests a device's attributes under `basic`; the others do not).

What counts as a GPU:
- a slice of a GPU driver, one named `gpu.<vendor>...` (NVIDIA's `gpu.nvidia.com`, AMD's
  `gpu.amd.com`, Intel's `gpu.intel.com`, the example driver's `gpu.example.com`), published for
  one node (`spec.nodeName`; pool-wide slices belong to no node and are not counted);
- of its devices, those with no `type` attribute or `type` "gpu" (one GPU each) or "mig" (its
  share of a GPU, "3g.40gb" = 3/7, as MIG extended resources count); any other type is not a GPU.
  A MIG device whose parent GPU (`parentUUID`) is itself listed is not counted again, nor are the
  shares of one parent GPU counted past one GPU;
- only slices of a pool's newest `generation` (older ones are being replaced).
The model is the device's `productName` (NVIDIA) or `model` attribute, the most common on a node.

No double count: a node that advertises its vendor's extended resource (`nvidia.com/gpu` or
`nvidia.com/mig-*` for `gpu.nvidia.com`, `amd.com/gpu` for `gpu.amd.com`, `gpu.intel.com/i915`
for `gpu.intel.com`) with a capacity or allocatable above 0 is counted from that resource, as
before; that driver's DRA devices on it add nothing (the same GPUs, seen twice).

Allocated: the devices in an allocated claim's `status.allocation.devices.results[]`, each once,
whether or not a pod still reserves the claim (the scheduler holds them either way). The pods in
`status.reservedFor` are the node's GPU pods. A pending, unbound pod whose GPU claim is not
allocated waits in the queue, asking for the claim's requested count (unknown when a request
says `All`, `firstAvailable`, or a count that is not a number).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from mltop.adapters.kube_nodes import NodeFacts
from mltop.adapters.kube_parse import KIND, MIG_SLICES_PER_GPU, PodFacts, Unreadable, _object, _parts, _str, brief
from mltop.adapters.values import integer, mapping, sequence
from mltop.model import GpuNode, GpuPod, Job, JobState

GROUP = "resource.k8s.io"
VERSIONS = ("v1", "v1beta2", "v1beta1")  # newest first: the first one served is read
# The extended resources of the same vendor's device plugin (see "No double count").
VENDOR_RESOURCES = {
    "gpu.nvidia.com": ("nvidia.com/gpu", "nvidia.com/mig-"),
    "gpu.amd.com": ("amd.com/gpu",),
    "gpu.intel.com": ("gpu.intel.com/i915",),
}
MODEL_ATTRIBUTES = ("productName", "model")
MIG_SHARE = re.compile(r"^(\d{1,2})g\.", re.ASCII)
GPU_CLASS = re.compile(r"(^|[.\-])(gpu|mig)([.\-]|$)", re.ASCII)  # gpu.nvidia.com, mig.nvidia.com, nvidia-gpu
MAX_TEXT = 64  # DRA attribute strings are at most 64 characters


def is_gpu_driver(driver: str | None) -> bool:
    return bool(driver) and driver.split(".", 1)[0] == "gpu" and "." in driver


def _clean(value: Any) -> str | None:
    """An attribute string fit to show: control and format characters dropped, clipped."""
    if not isinstance(value, str):
        return None
    shown = "".join(c for c in value if unicodedata.category(c)[0] != "C").strip()
    return shown[:MAX_TEXT] or None


def _attribute(attributes: Mapping[str, Any], driver: str, name: str) -> str | None:
    """A string attribute, named plainly or qualified by the driver's domain."""
    value = attributes.get(name, attributes.get(f"{driver}/{name}"))
    return _clean(mapping(value).get("string"))


@dataclass(frozen=True)
class DraDevice:
    driver: str
    pool: str
    name: str
    share: float  # of one physical GPU
    model: str | None
    uuid: str | None
    parent: str | None  # a MIG device's GPU (its uuid)

    @property
    def key(self) -> tuple[str, str, str]:
        return self.driver, self.pool, self.name


@dataclass(frozen=True)
class SliceRecord:
    name: str
    node: str
    driver: str
    pool: str
    generation: int
    devices: tuple[DraDevice, ...]


def _device(raw: Any, driver: str, pool: str) -> DraDevice | None:
    raw = mapping(raw)
    name = _str(raw.get("name"))
    body = mapping(raw.get("basic")) if isinstance(raw.get("basic"), dict) else raw  # v1beta1 nests it
    attributes = mapping(body.get("attributes"))
    kind = _attribute(attributes, driver, "type")
    if name is None or kind not in (None, "gpu", "mig"):
        return None
    share = 1.0
    if kind == "mig":
        match = MIG_SHARE.match(_attribute(attributes, driver, "profile") or "")
        share = min(1.0, int(match.group(1)) / MIG_SLICES_PER_GPU) if match else 1 / MIG_SLICES_PER_GPU
    model = next((m for a in MODEL_ATTRIBUTES if (m := _attribute(attributes, driver, a))), None)
    return DraDevice(driver, pool, name, share, model, _attribute(attributes, driver, "uuid"),
                     _attribute(attributes, driver, "parentUUID") if kind == "mig" else None)


def slice_record(obj: Any) -> SliceRecord | None:
    """A node's GPU slice; None for other drivers and for slices not published for one node.
    Unreadable when the object has no usable shape or its devices are not a list."""
    _, spec, _, name = _parts(obj, "ResourceSlice")
    driver, node = _str(spec.get("driver")), _str(spec.get("nodeName"))
    if not is_gpu_driver(driver) or node is None:
        return None
    pool = _object(spec.get("pool"), f"ResourceSlice {name}: pool")
    pool_name = _str(pool.get("name")) or ""
    devices = spec.get("devices")
    if devices is not None and not isinstance(devices, list):
        raise Unreadable(f"ResourceSlice {name}: devices is not a list: {brief(devices)}")
    found = (_device(d, driver, pool_name) for d in devices or ())
    return SliceRecord(name, node, driver, pool_name, integer(pool.get("generation")) or 0,
                       tuple(d for d in found if d is not None))


@dataclass(frozen=True)
class ClaimRecord:
    namespace: str
    name: str
    wants_gpus: bool  # some request names a GPU device class
    gpus: float | None  # devices its GPU requests ask for; None: not said as a number
    allocated: tuple[tuple[str, str, str], ...] | None  # (driver, pool, device); None: not allocated
    reserved_for: tuple[str, ...] = ()  # pod names (the claim's namespace)


def _request(raw: Any) -> tuple[bool, float | None]:
    """(asks for GPUs, how many; None unknown) of one claim request."""
    raw = mapping(raw)
    if isinstance(raw.get("firstAvailable"), list):
        alternatives = [mapping(r).get("deviceClassName") for r in raw["firstAvailable"]]
        return any(isinstance(c, str) and GPU_CLASS.search(c) for c in alternatives), None
    exact = mapping(raw.get("exactly")) if isinstance(raw.get("exactly"), dict) else raw  # v1beta1: flat
    device_class = exact.get("deviceClassName")
    if not isinstance(device_class, str) or not GPU_CLASS.search(device_class):
        return False, None
    if (exact.get("allocationMode") or "ExactCount") != "ExactCount":
        return True, None  # "All": as many as the node has
    count = exact.get("count", 1)
    return True, float(n) if (n := integer(count, minimum=1)) is not None else None


def claim_record(obj: Any) -> ClaimRecord | None:
    """A claim asking for GPUs or holding GPU devices; None otherwise."""
    meta, spec, status, name = _parts(obj, "ResourceClaim")
    namespace = _str(meta.get("namespace")) or "default"
    asks = [_request(r) for r in sequence(mapping(spec.get("devices")).get("requests"))]
    gpu_asks = [n for wants, n in asks if wants]
    gpus = None if not gpu_asks or any(n is None for n in gpu_asks) else sum(n for n in gpu_asks if n is not None)
    allocation = status.get("allocation")
    allocated = None
    if isinstance(allocation, dict):
        results = (mapping(r) for r in sequence(mapping(allocation.get("devices")).get("results")))
        allocated = tuple((r["driver"], r["pool"], r["device"]) for r in results
                          if all(isinstance(r.get(k), str) for k in ("driver", "pool", "device"))
                          and is_gpu_driver(r["driver"]))
    if not gpu_asks and not allocated:
        return None
    reserved = tuple(n for r in sequence(status.get("reservedFor"))
                     if mapping(r).get("resource", "pods") == "pods" and (n := _str(mapping(r).get("name"))))
    return ClaimRecord(namespace, name, bool(gpu_asks), gpus, allocated, reserved)


@dataclass
class DraView:
    """The DRA GPUs of one poll: devices per node, and who holds which."""

    devices: dict[str, list[DraDevice]] = field(default_factory=dict)  # node name -> its GPU devices
    claims: dict[tuple[str, str], ClaimRecord] = field(default_factory=dict)
    holder: dict[tuple[str, str, str], ClaimRecord] = field(default_factory=dict)  # device -> claim
    pods: dict[tuple[str, str], PodFacts] = field(default_factory=dict)  # (namespace, name) -> pod

    def shows(self, node: NodeFacts) -> bool:
        """Whether the node is a GPU node: extended GPU resources above 0, or DRA GPUs."""
        return any(amount for _, amount in (*node.capacity, *node.allocatable)) or has_dra_gpus(self, node)

    def node(self, gpu_node: GpuNode, facts: NodeFacts) -> GpuNode:
        return with_dra(gpu_node, facts, self, self.pods)

    def waiting_job(self, pod: PodFacts, cluster: str) -> Job | None:
        return waiting_job(pod, self, cluster)


def dra_view(slices: Iterable[SliceRecord], claims: Iterable[ClaimRecord], pods: Iterable[PodFacts] = ()) -> DraView:
    slices = list(slices)
    newest: dict[tuple[str, str], int] = {}
    for s in slices:
        newest[(s.driver, s.pool)] = max(newest.get((s.driver, s.pool), 0), s.generation)
    # The pods by name serve only nodes with DRA devices (with_dra): none without slices, which is
    # most clusters that serve DRA at all (indexing 7,000 GPU pods on every rebuild: ~5 ms).
    view = DraView(pods={(p.namespace, p.name): p for p in pods} if slices else {})
    for s in sorted(slices, key=lambda s: s.name):
        if s.generation == newest[(s.driver, s.pool)]:
            view.devices.setdefault(s.node, []).extend(s.devices)
    for claim in sorted(claims, key=lambda c: (c.namespace, c.name)):
        view.claims[(claim.namespace, claim.name)] = claim
        for key in claim.allocated or ():
            view.holder.setdefault(key, claim)
    return view


def _counted(node: NodeFacts, devices: list[DraDevice]) -> list[tuple[DraDevice, float]]:
    """The devices that count on this node, each with the GPUs it adds (see the module's rules)."""
    if not devices:
        return []  # most nodes: no DRA devices (this runs for every node of every rebuild)
    advertised = {r for r, amount in (*node.capacity, *node.allocatable) if amount > 0}
    gpus = {d.uuid for d in devices if d.parent is None and d.uuid}
    used: Counter[str] = Counter()
    out, seen = [], set()
    for d in devices:
        prefixes = VENDOR_RESOURCES.get(d.driver, ())
        if d.key in seen or any(r.startswith(p) for r in advertised for p in prefixes):
            continue
        seen.add(d.key)
        share = d.share
        if d.parent is not None:
            if d.parent in gpus:
                continue  # its whole GPU is listed (and counted) already
            share = max(0.0, min(share, 1.0 - used[d.parent]))
            used[d.parent] += share
        out.append((d, share))
    return out


def has_dra_gpus(view: DraView, node: NodeFacts) -> bool:
    return bool(_counted(node, view.devices.get(node.name, [])))


def with_dra(gpu_node: GpuNode, facts: NodeFacts, view: DraView, pods: Mapping[tuple[str, str], PodFacts]) -> GpuNode:
    """The node with its DRA GPUs added: totals, allocation, model, and the pods holding them."""
    counted = _counted(facts, view.devices.get(facts.name, []))
    if not counted:
        return gpu_node
    total = sum(share for _, share in counted)
    held: dict[tuple[str, str], float] = {}
    allocated = 0.0
    for device, share in counted:
        claim = view.holder.get(device.key)
        if claim is not None:
            allocated += share
            held[(claim.namespace, claim.name)] = held.get((claim.namespace, claim.name), 0.0) + share
    holders = [GpuPod(ns, pod, gpus, p.phase if p else "Unknown", p.owner if p else None)
               for (ns, claim), gpus in held.items() for pod in view.claims[(ns, claim)].reserved_for
               for p in [pods.get((ns, pod))]]
    models = Counter(d.model for d, _ in counted if d.model)
    plain = gpu_node.gpus_total == 0  # no extended GPU resource: the DRA driver is how pods ask
    return replace(
        gpu_node,
        gpus_total=gpu_node.gpus_total + total,
        gpus_allocatable=gpu_node.gpus_allocatable + total,
        gpus_allocated=(gpu_node.gpus_allocated or 0.0) + allocated,
        gpu_model=gpu_node.gpu_model or (models.most_common(1)[0][0] if models else None),
        gpu_resource=counted[0][0].driver if plain else gpu_node.gpu_resource,
        pods=tuple(sorted((*gpu_node.pods, *holders), key=lambda p: (p.namespace, p.name))),
        dra_gpus=total,
    )


def waiting_job(pod: PodFacts, view: DraView, cluster: str) -> Job | None:
    """An unbound pending pod waiting for a GPU claim to be allocated, as a queue row. Pods that
    also ask for extended GPU resources are queued as before (kube_parse.pending_job)."""
    if pod.node_name is not None or pod.phase != "Pending" or pod.requests or not pod.claims:
        return None
    waiting = [c for _, name in pod.claims if name and (c := view.claims.get((pod.namespace, name)))
               and c.wants_gpus and c.allocated is None]
    if not waiting:
        return None
    names = ", ".join(c.name for c in waiting)
    gpus = None if any(c.gpus is None for c in waiting) else sum(c.gpus or 0.0 for c in waiting)
    return Job(
        key=f"{KIND}/{cluster}/{pod.namespace}/{pod.name}", source=KIND, cluster=cluster,
        id=f"{pod.namespace}/{pod.name}", name=pod.owner.split("/", 1)[1] if pod.owner else pod.name,
        state=JobState.PENDING, native_state="Pending", gpus=gpus, submitted_at=pod.created_at,
        started_at=None, finished_at=None, owner=pod.owner,
        message=f"waiting for DRA claim{'s' if len(waiting) > 1 else ''} {names} to be allocated",
        kind="Pod", namespace=pod.namespace, placement=pod.placement, tolerates=pod.tolerates,
        dra_claims=tuple(c.name for c in waiting),
    )
