"""Generate mltop/data/gpu_catalog.json from SkyPilot's public catalog (github.com/skypilot-org/skypilot-catalog).

Keeps every GPU instance type of each cloud's `catalogs/v8/<cloud>/vms.csv`: its GPU model and count, and
per region its on-demand price and its spot price (the median over the region's availability zones;
zones never differ in on-demand price). Rows without a GPU (CPU machines, TPUs, Inferentia, Trainium, Gaudi,
FPGAs) are left out, and so are rows with no price at all. Nothing is filled in: a region the catalog
gives no on-demand price for has none here either.

Run from a local copy of the catalog repository (a git directory: commit and date are read from it)
or from a folder of `<cloud>/vms.csv` files (then say which commit and date they are):

    python scripts/gen_prices.py --git-dir /path/to/skypilot-catalog.git
    python scripts/gen_prices.py --catalog DIR --commit SHA --date 2026-11-30 [--commit lambda=SHA ...]

GCP's catalog prices a GPU machine in two parts: the host row (a2-highgpu-1g, g2-standard-8, ...: no
AcceleratorName) prices the machine without its GPUs, and accelerator rows (empty InstanceType,
AcceleratorName A100 / A100-80GB / H100 / H100-MEGA / H200 / B200 / L4, AcceleratorCount n) price n GPUs.
The rule applied here, as SkyPilot's own gcp_catalog.py does: an instance type of a GPU family
(GCP_FAMILIES: a2-highgpu/megagpu -> A100, a2-ultragpu -> A100-80GB, a3-highgpu/edgegpu -> H100,
a3-megagpu -> H100-MEGA, a3-ultragpu -> H200, a4-highgpu -> B200, each "-<n>g" GPUs; g2-standard-N ->
L4, G2_GPUS) costs its host row plus the accelerator row of its GPU and count in the same zone, for
on-demand and spot alike (spot only when both parts have one). A host row with no matching accelerator
row is left out. a4 host rows are listed at 0.0: the catalog puts a4's whole price on its B200 rows.
GPUs that GKE attaches to general-purpose n1 machines (GPU_ONLY: T4, V100, P100, P4) have no host of
their own: they are kept as "<GPU> x<n> (GPU only)" entries with "gpu_only": true, the price of the
GPUs alone, so a node of n1 + T4 is priced by its GPU model (the host's share is not included).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import statistics
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

CLOUDS = ("aws", "azure", "gcp", "lambda", "nebius", "oci", "runpod", "fluidstack", "paperspace", "cudo",
          "vast", "hyperbolic", "do", "shadeform", "verda")
VERSION = "v8"
NOT_GPUS = ("TPU", "INFERENTIA", "TRAINIUM", "GAUDI", "VIRTEX")  # Virtex: AWS f1/f2 FPGAs
OUT = Path(__file__).resolve().parent.parent / "mltop" / "data" / "gpu_catalog.json"
# GCP: instance type prefix -> the accelerator its GPUs are priced as (count: the type's "-<n>g").
GCP_FAMILIES = {"a2-highgpu-": "A100", "a2-megagpu-": "A100", "a2-ultragpu-": "A100-80GB", "a3-highgpu-": "H100",
                "a3-edgegpu-": "H100", "a3-megagpu-": "H100-MEGA", "a3-ultragpu-": "H200", "a4-highgpu-": "B200"}
G2_GPUS = {"4": 1, "8": 1, "12": 1, "16": 1, "32": 1, "24": 2, "48": 4, "96": 8}  # g2-standard-N -> L4 GPUs
GPU_ONLY = ("T4", "V100", "P100", "P4")  # attached to n1 hosts on GCP: priced per GPU, host not included


def _price(text: str | None) -> float | None:
    try:
        value = float(text) if text not in (None, "") else None
    except ValueError:
        return None
    return value if value is not None and value > 0 else None


def _is_gpu(name: str) -> bool:
    return bool(name) and not name.upper().startswith(NOT_GPUS)


def gpu_rows(text: str) -> Iterable[dict[str, str]]:
    """The rows of one vms.csv that are GPU machines with a name and a region."""
    for row in csv.DictReader(io.StringIO(text)):
        if row.get("InstanceType") and row.get("Region") and _is_gpu(row.get("AcceleratorName") or ""):
            yield row


def gcp_gpus(itype: str) -> tuple[str, int] | None:
    """The accelerator a GCP instance type's GPUs are priced as, and how many: ("A100", 1) for a2-highgpu-1g."""
    if itype.startswith("g2-standard-"):
        count = G2_GPUS.get(itype.removeprefix("g2-standard-"))
        return ("L4", count) if count else None
    for prefix, name in GCP_FAMILIES.items():
        if itype.startswith(prefix) and (m := re.match(r"(\d+)g\b", itype.removeprefix(prefix))):
            return name, int(m.group(1))
    return None


def _sum(host: str | None, gpus: str | None) -> str | None:
    """Host + accelerator price, or None when either part has none (a 0.0 host counts: a4 is priced on its GPUs)."""
    try:
        total = float(host or "nan") + float(gpus or "nan")
    except ValueError:
        return None
    return None if total != total or not float(gpus or 0) > 0 else str(round(total, 6))


def gcp_rows(text: str) -> Iterable[dict[str, str]]:
    """GCP's rows joined (see the module docstring): GPU-family hosts priced with their accelerators, and
    the GPU-only accelerators of n1 machines as "<GPU> x<n> (GPU only)" rows."""
    rows = list(csv.DictReader(io.StringIO(text)))
    accel = {(r["AcceleratorName"], int(float(r["AcceleratorCount"] or 0)), r["AvailabilityZone"]): r
             for r in rows if not r.get("InstanceType") and _is_gpu(r.get("AcceleratorName") or "")}
    for row in rows:
        itype, found = row.get("InstanceType"), None
        if itype and (gpus := gcp_gpus(itype)) and (found := accel.get((*gpus, row["AvailabilityZone"]))):
            yield {**row, "AcceleratorName": gpus[0], "AcceleratorCount": str(gpus[1]),
                   "Price": _sum(row.get("Price"), found.get("Price")),
                   "SpotPrice": _sum(row.get("SpotPrice"), found.get("SpotPrice"))}
    for (name, count, _), row in accel.items():
        if name in GPU_ONLY and row.get("Region"):
            yield {**row, "InstanceType": f"{name} x{count} (GPU only)", "gpu_only": "1"}


def cloud_table(text: str, cloud: str = "") -> dict[str, dict]:
    """instance type -> {"gpu", "gpus", "regions": {region: [on-demand or None, spot or None]}}."""
    seen: dict[str, dict] = {}
    prices: dict[tuple[str, str], tuple[list[float], list[float]]] = {}
    for row in gcp_rows(text) if cloud == "gcp" else gpu_rows(text):
        itype = row["InstanceType"]
        gpus = float(row.get("AcceleratorCount") or 0)
        seen.setdefault(itype, {"gpu": row["AcceleratorName"], "gpus": int(gpus) if gpus.is_integer() else gpus,
                                **({"gpu_only": True} if row.get("gpu_only") else {})})
        on_demand, spot = prices.setdefault((itype, row["Region"]), ([], []))
        if (p := _price(row.get("Price"))) is not None:
            on_demand.append(p)
        if (s := _price(row.get("SpotPrice"))) is not None:
            spot.append(s)
    table: dict[str, dict] = {}
    for (itype, region), (on_demand, spot) in sorted(prices.items()):
        if not on_demand and not spot:
            continue
        entry = table.setdefault(itype, {**seen[itype], "regions": {}})
        entry["regions"][region] = [max(on_demand) if on_demand else None,
                                    round(statistics.median(spot), 6) if spot else None]
    return table


def _git(git_dir: str, *args: str) -> str:
    return subprocess.run(["git", f"--git-dir={git_dir}", *args], check=True, capture_output=True,
                          text=True).stdout


def from_git(git_dir: str, clouds: Iterable[str]) -> tuple[dict[str, str], str, str]:
    commit, date = _git(git_dir, "log", "-1", "--format=%H %cI").split()
    texts = {}
    for cloud in clouds:
        try:
            texts[cloud] = _git(git_dir, "show", f"HEAD:catalogs/{VERSION}/{cloud}/vms.csv")
        except subprocess.CalledProcessError:
            continue  # the catalog does not cover this cloud
    return texts, commit, date


def from_folder(folder: str, clouds: Iterable[str]) -> dict[str, str]:
    root = Path(folder)
    return {c: (root / c / "vms.csv").read_text() for c in clouds if (root / c / "vms.csv").is_file()}


def build(texts: dict[str, str], commit: str, date: str, commits: dict[str, str] | None = None) -> dict:
    """`commit`: the catalog's commit; `commits`: a cloud's file taken from another commit, when so."""
    clouds = {cloud: table for cloud, text in sorted(texts.items()) if (table := cloud_table(text, cloud))}
    return {
        "source": "skypilot-catalog",
        "url": "https://github.com/skypilot-org/skypilot-catalog",
        "path": f"catalogs/{VERSION}/<cloud>/vms.csv",
        "commit": commit,
        "date": date,
        "commits": {c: sha for c, sha in sorted((commits or {}).items()) if c in clouds},
        "about": "USD per hour, Linux; per region [on-demand, spot (median over zones)]; null: the catalog "
                 "gives none. Generated by scripts/gen_prices.py; do not edit by hand.",
        "clouds": clouds,
    }


def dump(table: dict) -> str:
    """One line per instance type, so a refresh reads as a small diff."""
    head = {k: v for k, v in table.items() if k != "clouds"}
    lines = ["{"] + [f"  {json.dumps(k)}: {json.dumps(v)}," for k, v in head.items()] + ['  "clouds": {']
    for i, (cloud, types) in enumerate(table["clouds"].items()):
        lines.append(f"    {json.dumps(cloud)}: {{")
        items = list(types.items())
        lines += [f"      {json.dumps(t)}: {json.dumps(e)}" + ("," if j < len(items) - 1 else "")
                  for j, (t, e) in enumerate(items)]
        lines.append("    }" + ("," if i < len(table["clouds"]) - 1 else ""))
    return "\n".join(lines + ["  }", "}"]) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--git-dir", help="a clone (or bare copy) of skypilot-catalog")
    where.add_argument("--catalog", help="a folder holding <cloud>/vms.csv")
    parser.add_argument("--commit", action="append", default=[],
                        help="with --catalog: the catalog commit those files are from; CLOUD=SHA for one cloud's "
                             "file taken from another commit (repeatable)")
    parser.add_argument("--date", help="with --catalog: that commit's date")
    parser.add_argument("--clouds", default=",".join(CLOUDS))
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args(argv)
    clouds = [c for c in args.clouds.split(",") if c]
    if args.git_dir:
        texts, commit, date = from_git(args.git_dir, clouds)
    else:
        if not args.commit:
            parser.error("--catalog needs --commit (and --date): the table must say which catalog it is")
        plain = [c for c in args.commit if "=" not in c]
        commit = plain[0] if plain else "see commits"
        texts, date = from_folder(args.catalog, clouds), args.date or "unknown"
    per_cloud = dict(c.split("=", 1) for c in args.commit if "=" in c)
    table = build(texts, commit, date, per_cloud)
    if not table["clouds"]:
        print("no GPU instance types found: nothing written", file=sys.stderr)
        return 1
    Path(args.out).write_text(dump(table))
    counts = ", ".join(f"{c} {len(t)}" for c, t in table["clouds"].items())
    print(f"{args.out}: {counts} GPU instance types, catalog commit {commit[:12]} ({date})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
