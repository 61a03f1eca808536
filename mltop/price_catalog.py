"""The shipped price table (mltop/data/gpu_catalog.json, generated from SkyPilot's catalog by
scripts/gen_prices.py): list prices of GPU instance types by cloud and region. No I/O but reading
that file; no Textual.

Which region: the node's own (from its zone label, when the table lists that region for its instance
type), else the region chosen for its cloud (`[cost] region` / `[cost.regions]`, defaults below). An
instance type the table lists only in other regions is priced at the median on-demand price of those
regions, and the price says which region it came from. One the table lists nowhere has no price.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

# The region each cloud is priced in when neither the node nor the config says (see the README).
DEFAULT_REGIONS = {"aws": "us-east-1", "gcp": "us-central1", "azure": "eastus", "lambda": "us-east-1",
                   "nebius": "eu-north1", "oci": "us-ashburn-1"}
ZONE_SUFFIX = re.compile(r"(-[a-z]|[a-z]|-\d)$")  # us-east-1a, us-central1-a, eastus-1 -> the region
# OKE (Oracle) labels a node's zone with the short name of its availability domain, in capitals:
# "<REGION>-AD-<n>" (EU-FRANKFURT-1-AD-2 is in eu-frankfurt-1), except in Ashburn (US-ASHBURN-AD-<n>) and
# Phoenix (PHX-AD-<n>). Source: docs.oracle.com/iaas/Content/ContEng/Reference/contengsupportedlabelsusecases.htm
# ("topology.kubernetes.io/zone"); oracle/oci-cloud-controller-manager pkg/cloudprovider/providers/oci/zones.go
# sets the zone to the instance's availability domain without its tenancy prefix ("Uocm:PHX-AD-1" -> "PHX-AD-1").
OCI_AD = re.compile(r"^(?P<region>[A-Za-z0-9-]+)-AD-\d+$")
OCI_AD_REGIONS = {"US-ASHBURN": "us-ashburn-1", "PHX": "us-phoenix-1"}  # the two exceptions, by the same doc


@dataclass(frozen=True)
class CatalogPrice:
    on_demand: float | None
    spot: float | None
    cloud: str
    region: str
    source: str  # "catalog: skypilot aws us-east-1 (commit 00148f2af367, 2026-11-30)"
    note: str = ""  # "listed only in other regions: price from eu-west-1"


@dataclass(frozen=True)
class Catalog:
    clouds: Mapping[str, Mapping[str, dict]] = field(default_factory=dict)  # cloud -> instance type -> entry
    commit: str = ""
    date: str = ""
    commits: Mapping[str, str] = field(default_factory=dict)  # cloud -> commit, where it differs

    def label(self, cloud: str, region: str) -> str:
        commit = (self.commits.get(cloud) or self.commit)[:12]
        return f"catalog: skypilot {cloud} {region} (commit {commit}, {self.date[:10]})"

    def find(self, instance_type: str) -> tuple[str, dict] | None:
        for cloud, types in self.clouds.items():
            if instance_type in types:
                return cloud, types[instance_type]
        return None

    def price(self, instance_type: str, *, zone: str | None, regions: Mapping[str, str]) -> CatalogPrice | None:
        found = self.find(instance_type)
        if found is None:
            return None
        cloud, entry = found
        listed: dict[str, list] = entry["regions"]
        for region in (*zone_regions(zone), regions.get(cloud) or DEFAULT_REGIONS.get(cloud)):
            if region and region in listed and listed[region][0] is not None:
                on_demand, spot = listed[region]
                return CatalogPrice(on_demand, spot, cloud, region, self.label(cloud, region))
        priced = sorted((p[0], r) for r, p in listed.items() if p[0] is not None)
        if not priced:
            return None
        on_demand, region = priced[(len(priced) - 1) // 2]  # the (lower) median of the regions that list it
        wanted = regions.get(cloud) or DEFAULT_REGIONS.get(cloud) or "the chosen region"
        return CatalogPrice(on_demand, listed[region][1], cloud, region, self.label(cloud, region),
                            f"not listed in {wanted}: " + (f"median of the {len(priced)} regions listing it, {region}"
                                                           if len(priced) > 1 else f"listed only in {region}"))

    def per_gpu(self, model: str, canonical, regions: Mapping[str, str]) -> tuple[float, str, str] | None:
        """The lowest per-GPU on-demand price of `model` (canonical name) in each cloud's chosen region:
        (price, instance type, label). Same model and memory first; else the same model under any
        memory (AWS lists an 80 GB H100 as plain H100). None when nothing with that GPU is priced there."""
        exact, bare = [], []
        for cloud, types in self.clouds.items():
            region = regions.get(cloud) or DEFAULT_REGIONS.get(cloud)
            for itype, entry in types.items():
                on_demand = entry["regions"].get(region, [None])[0] if region else None
                listed = canonical(entry["gpu"]) or ""
                if on_demand is None or not entry["gpus"]:
                    continue
                offer = (on_demand / entry["gpus"], itype, self.label(cloud, region))
                if listed == model:
                    exact.append(offer)
                elif listed.split("-")[0] == model.split("-")[0]:
                    bare.append(offer)
        return min(exact or bare, default=None)


def zone_regions(zone: str | None) -> tuple[str, ...]:
    """Regions a zone label may name: itself, and with its zone suffix cut (us-east-1a -> us-east-1); an
    OCI availability domain names its region (US-ASHBURN-AD-1 -> us-ashburn-1, UK-LONDON-1-AD-2 -> uk-london-1)."""
    if not zone:
        return ()
    if m := OCI_AD.match(zone):
        region = m.group("region")
        return zone, OCI_AD_REGIONS.get(region.upper(), region.lower())
    cut = ZONE_SUFFIX.sub("", zone)
    return (zone, cut) if cut != zone else (zone,)


@lru_cache(maxsize=1)
def shipped_catalog() -> Catalog:
    data = json.loads(resources.files("mltop.data").joinpath("gpu_catalog.json").read_text())
    return Catalog(clouds=data["clouds"], commit=data.get("commit", ""), date=data.get("date", ""),
                   commits=data.get("commits", {}))
