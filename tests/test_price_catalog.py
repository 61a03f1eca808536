"""Prices from SkyPilot's catalog (the generator, against a slice of the real catalog kept in
tests/fixtures/skypilot), the region they are read in, and the order sources win in: the user's
config, then the cluster's own prices (OpenCost, through a real Prometheus), then the catalog."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from mltop.adapters.prometheus import PrometheusSource
from mltop.adapters.prometheus_endpoint import PrometheusEndpoint
from mltop.config import cost_prices, load
from mltop.cost import CostPolicy, IdleHistory, evaluate
from mltop.model import GpuNode, NodeCost, Snapshot
from mltop.price_catalog import Catalog, shipped_catalog
from mltop.prices import Price, canonical_model, price_book
from mltop.registry import wait_models
from mltop.report import node_json
from tests.conftest import FIXED_NOW
from tests.prometheus_helpers import real_prometheus

ROOT = Path(__file__).resolve().parent.parent
SLICE = ROOT / "tests" / "fixtures" / "skypilot"
AWS_COMMIT = "00148f2af3672e2229b4f7bf8157d5a3f36e3c35"  # the catalog commit the slice was copied from


def generator():
    spec = importlib.util.spec_from_file_location("gen_prices", ROOT / "scripts" / "gen_prices.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def slice_catalog() -> Catalog:
    gen = generator()
    table = gen.build(gen.from_folder(str(SLICE), gen.CLOUDS), AWS_COMMIT, "2026-11-30")
    return Catalog(clouds=table["clouds"], commit=table["commit"], date=table["date"])


def node(name, *, itype="p5.48xlarge", model="NVIDIA-H100-80GB-HBM3", zone=None, pool="pool-a", free=8):
    return GpuNode(key=f"kubernetes/prod/{name}", cluster="prod", name=name, pool=pool, gpu_model=model,
                   gpu_resource="nvidia.com/gpu", gpus_total=8, gpus_allocatable=8, gpus_allocated=8 - free,
                   ready=True, schedulable=True, instance_type=itype, zone=zone, capacity_type="on-demand")


# --- the generator, on real catalog rows -----------------------------------------------------------------

def test_the_generator_keeps_gpu_machines_with_their_gpus_and_prices_by_region():
    aws = generator().cloud_table((SLICE / "aws" / "vms.csv").read_text())
    assert "a1.large" not in aws  # a CPU machine
    assert aws["p5.48xlarge"]["gpu"] == "H100" and aws["p5.48xlarge"]["gpus"] == 8
    # Zones folded into their region: one on-demand price, the spot price the median over the zones.
    assert aws["g4dn.xlarge"]["regions"]["us-east-1"] == [0.526, 0.2039]
    assert aws["p5.48xlarge"]["regions"]["us-east-1"] == [55.04, 21.1543]
    assert aws["p5.48xlarge"]["regions"]["ap-northeast-2"] == [75.9552, None]  # no spot price listed: none
    assert aws["p5e.48xlarge"]["regions"]["us-east-2"] == [None, pytest.approx(40.8658)]  # spot only, as listed


def test_gcp_machines_cost_their_host_plus_their_accelerators_zone_by_zone():
    gcp = generator().cloud_table((SLICE / "gcp" / "vms.csv").read_text(), "gcp")
    # a2-highgpu-1g: host 0.73948 (spot 0.36975) + one A100 2.93391 (spot 1.4341), as the CSV lists them.
    assert gcp["a2-highgpu-1g"] == {"gpu": "A100", "gpus": 1, "regions": {"us-central1": [3.67339, 1.80385]}}
    assert gcp["a3-highgpu-1g"]["regions"]["us-central1"] == [5.38327, 3.35377]  # + one H100
    assert gcp["g2-standard-8"]["gpu"] == "L4" and gcp["g2-standard-8"]["regions"]["us-central1"] == [0.85362, 0.34057]
    # a4's host rows are listed at 0.0: the B200 rows carry its whole price.
    assert gcp["a4-highgpu-8g"]["gpus"] == 8 and gcp["a4-highgpu-8g"]["regions"]["us-central1"] == [90.216, 32.6064]
    # GPUs attached to n1 machines are kept on their own, flagged: the price of the GPUs alone.
    assert gcp["T4 x1 (GPU only)"] == {"gpu": "T4", "gpus": 1, "gpu_only": True,
                                     "regions": {"us-central1": [0.35, 0.175]}}
    # A host with no accelerator row in its zone, a CPU machine, a TPU, an unattached H100-MEGA row: left out.
    assert set(gcp) == {"a2-highgpu-1g", "a3-highgpu-1g", "a4-highgpu-8g", "g2-standard-8", "T4 x1 (GPU only)"}


def test_azure_rows_are_read_by_their_column_names_with_one_price_per_region():
    # Azure's vms.csv has its own column order and no AvailabilityZone: one row per region.
    azure = generator().cloud_table((SLICE / "azure" / "vms.csv").read_text(), "azure")
    assert azure["Standard_NC24ads_A100_v4"]["gpu"] == "A100-80GB" and azure["Standard_NC24ads_A100_v4"]["gpus"] == 1
    assert azure["Standard_NC24ads_A100_v4"]["regions"]["eastus"] == [3.673, 0.444433]
    assert len(azure["Standard_NC24ads_A100_v4"]["regions"]) == 7
    # A CPU machine, a row that names no GPU (NC A10 v4) and a GPU row with neither price: left out.
    assert set(azure) == {"Standard_NC24ads_A100_v4", "Standard_NC4as_T4_v3", "Standard_ND96isr_H100_v5"}


def test_oci_rows_fold_availability_domains_into_their_region():
    # OCI's vms.csv lists a shape once per availability domain (us-ashburn-1: US-ASHBURN-AD-1..3), at the
    # same price; bare-metal and A10 shapes have no spot price, the older VM.GPU2/VM.GPU3 shapes have one.
    oci = generator().cloud_table((SLICE / "oci" / "vms.csv").read_text(), "oci")
    # BM.GPU.H100.8,H100,8,224,2048,"{...}",80,,us-ashburn-1,US-ASHBURN-AD-1 (and AD-2, AD-3, EU-FRANKFURT-1-AD-1)
    assert oci["BM.GPU.H100.8"] == {"gpu": "H100", "gpus": 8, "regions": {"eu-frankfurt-1": [80.0, None],
                                                                          "us-ashburn-1": [80.0, None]}}
    assert oci["VM.GPU.A10.1"] == {"gpu": "A10", "gpus": 1, "regions": {"us-ashburn-1": [2.0, None]}}
    # VM.GPU3.1,V100,1,12,90,"{...}",2.95,1.475,us-phoenix-1,PHX-AD-1 (and PHX-AD-2)
    assert oci["VM.GPU3.1"]["regions"] == {"us-phoenix-1": [2.95, 1.475]}
    assert set(oci) == {"BM.GPU.H100.8", "VM.GPU.A10.1", "VM.GPU3.1"}  # the CPU shape (VM.Standard.E4.Flex) is left out


def test_gcp_instance_types_name_their_gpus():
    gcp_gpus = generator().gcp_gpus
    assert gcp_gpus("a2-megagpu-16g") == ("A100", 16) and gcp_gpus("a2-ultragpu-8g") == ("A100-80GB", 8)
    assert gcp_gpus("a3-edgegpu-8g-nolssd") == ("H100", 8) and gcp_gpus("a3-megagpu-8g") == ("H100-MEGA", 8)
    assert gcp_gpus("a3-ultragpu-8g") == ("H200", 8) and gcp_gpus("g2-standard-48") == ("L4", 4)
    assert gcp_gpus("n1-standard-8") is None and gcp_gpus("g2-standard-7") is None


def test_the_generator_records_the_catalog_commit_and_date_from_git(tmp_path):
    repo = tmp_path / "skypilot-catalog"
    (repo / "catalogs" / "v8" / "aws").mkdir(parents=True)
    shutil.copy(SLICE / "aws" / "vms.csv", repo / "catalogs" / "v8" / "aws" / "vms.csv")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "catalog"], check=True, env={"GIT_COMMITTER_DATE": "2026-11-29T10:00:00Z",
                                                                     "GIT_AUTHOR_DATE": "2026-11-29T10:00:00Z"})
    sha = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    out = tmp_path / "table.json"
    assert generator().main(["--git-dir", str(repo / ".git"), "--out", str(out)]) == 0
    table = json.loads(out.read_text())
    assert table["source"] == "skypilot-catalog" and table["commit"] == sha
    assert table["date"].startswith("2026-11-29T10:00:00")
    assert set(table["clouds"]) == {"aws"} and table["clouds"]["aws"]["p4d.24xlarge"]["gpu"] == "A100"


def test_the_generator_will_not_write_a_table_that_does_not_say_which_catalog_it_is(tmp_path, capsys):
    with pytest.raises(SystemExit):
        generator().main(["--catalog", str(SLICE), "--out", str(tmp_path / "t.json")])
    assert "--commit" in capsys.readouterr().err and not (tmp_path / "t.json").exists()


# --- the shipped table -----------------------------------------------------------------------------------

COMMON = {  # the GPU types each cloud's table must price (canonical model names)
    "aws": {"T4", "A10G", "L4", "A100", "A100-80GB", "H100", "H200", "B200"},
    "gcp": {"T4", "L4", "A100", "A100-80GB", "H100", "H200", "B200"},  # GKE: a2, a3, g2, a4 families
    # From a fork's copy of the catalog (tests/fixtures/skypilot/SOURCE.md), which lists no H200 (ND H200 v5).
    "azure": {"T4", "A10", "A100", "A100-80GB", "H100", "V100"},  # NCasT4 v3, NVadsA10 v5, ND A100 v4, NC/ND H100 v5, NCv3
    "lambda": {"A6000", "H100", "B200"},
    "oci": {"A10", "A100", "A100-80GB", "H100", "H200", "L40S", "B200"},  # VM.GPU.A10, BM.GPU4.8, BM.GPU.A100-v2.8, ...
}


def shipped() -> dict:
    return json.loads((ROOT / "mltop" / "data" / "gpu_catalog.json").read_text())


def test_the_shipped_table_says_where_it_came_from_and_covers_the_common_gpus():
    data = shipped()
    assert data["source"] == "skypilot-catalog" and data["date"]
    assert data["commit"] or data["commits"]
    assert {"aws", "azure", "gcp", "lambda", "nebius", "oci"} <= set(data["clouds"])
    assert set(data["clouds"]) == set(data["commits"])
    for cloud, types in data["clouds"].items():
        models = {canonical_model(e["gpu"]) for e in types.values()}
        missing = COMMON.get(cloud, set()) - models
        assert not missing, f"{cloud}: the table prices no {sorted(missing)}"
        for itype, entry in types.items():  # every entry priced somewhere, with its GPUs
            assert entry["gpus"] > 0 and any(p is not None for r in entry["regions"].values() for p in r), itype


def test_the_shipped_table_has_each_clouds_gpu_instance_types():
    clouds = shipped()["clouds"]
    sizes = {"g4dn": ("xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "metal"),
             "g5": ("xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge", "48xlarge"),
             "g5g": ("xlarge", "2xlarge", "4xlarge", "8xlarge", "16xlarge", "metal"),
             "g7e": ("2xlarge", "4xlarge", "8xlarge", "12xlarge", "24xlarge", "48xlarge"),
             "gr6": ("4xlarge", "8xlarge"), "p3": ("2xlarge", "8xlarge", "16xlarge")}
    sizes["g6"] = sizes["g6e"] = sizes["g5"]
    assert {f"{family}.{size}" for family, names in sizes.items() for size in names} | {
        "p3dn.24xlarge", "p4d.24xlarge", "p4de.24xlarge", "p5.48xlarge", "p5.4xlarge", "p5e.48xlarge",
        "p5en.48xlarge", "p6-b200.48xlarge", "p6-b300.48xlarge"} <= set(clouds["aws"])
    assert {entry["gpu"] for entry in clouds["aws"].values()} == {
        "T4", "T4g", "A10G", "L4", "L40S", "RTX PRO Server 6000", "V100", "V100-32GB", "A100", "A100-80GB", "H100",
        "H200", "B200", "B300"}  # g6f/gr6f (a fraction of an L4) were not copied: see SOURCE.md
    # catalogs/v8/aws/vms.csv, g5.xlarge us-east-1: 1.006 on demand, spot 0.4507/0.4246/0.436/0.4259/0.4364 by zone.
    assert clouds["aws"]["g5.xlarge"]["regions"]["us-east-1"] == [1.006, 0.436]
    assert clouds["lambda"]["gpu_8x_h100_sxm5"]["regions"]["us-east-1"] == [31.92, None]
    assert clouds["nebius"]["gpu-h200-sxm_8gpu-128vcpu-1600gb"]["regions"]["eu-north1"] == [28.0, 11.6]
    assert {"a2-highgpu-1g", "a2-highgpu-8g", "a2-megagpu-16g", "a2-ultragpu-8g", "a3-highgpu-8g", "a3-megagpu-8g",
            "a3-edgegpu-8g", "a3-ultragpu-8g", "a4-highgpu-8g", "g2-standard-4", "g2-standard-96",
            "T4 x1 (GPU only)", "V100 x8 (GPU only)"} <= set(clouds["gcp"])
    # p4d, p5 and p6-b200 in every region the catalog lists them, us-east-1 among them.
    assert len(clouds["aws"]["p4d.24xlarge"]["regions"]) == 12 and len(clouds["aws"]["p5.48xlarge"]["regions"]) == 12
    assert set(clouds["aws"]["p6-b200.48xlarge"]["regions"]) == {"us-east-1", "us-east-2", "us-west-2"}


AZURE_COMMIT = "20291d7eda23e6f420cd9586558cf0bc4051851c"  # coopslarhette/skypilot-catalog, a fork: see SOURCE.md


def test_the_shipped_table_has_azures_gpu_families_at_the_csvs_prices():
    data = shipped()
    azure = data["clouds"]["azure"]
    assert data["commits"]["azure"] == AZURE_COMMIT
    assert {"Standard_NC4as_T4_v3", "Standard_NC8as_T4_v3", "Standard_NC16as_T4_v3", "Standard_NC64as_T4_v3",
            "Standard_NV36ads_A10_v5", "Standard_NV36adms_A10_v5", "Standard_NV72ads_A10_v5",
            "Standard_NC24ads_A100_v4", "Standard_NC48ads_A100_v4", "Standard_NC96ads_A100_v4",
            "Standard_ND96asr_v4", "Standard_ND96amsr_A100_v4", "Standard_NC40ads_H100_v5",
            "Standard_NC80adis_H100_v5", "Standard_ND96isr_H100_v5", "Standard_NC6s_v3", "Standard_NC12s_v3",
            "Standard_NC24s_v3", "Standard_NC24rs_v3", "Standard_ND40rs_v2"} <= set(azure)
    assert {canonical_model(azure[t]["gpu"]) for t in ("Standard_NC4as_T4_v3", "Standard_NV36ads_A10_v5",
                                                        "Standard_ND96asr_v4", "Standard_NC24ads_A100_v4",
                                                        "Standard_NC40ads_H100_v5", "Standard_NC6s_v3")} == {
        "T4", "A10", "A100", "A100-80GB", "H100", "V100"}
    # catalogs/v8/azure/vms.csv (the fork, at AZURE_COMMIT), one row per region:
    # Standard_NC24ads_A100_v4,A100-80GB,1,24.0,220,A100-80GB,3.673,0.444433,eastus,V2
    assert azure["Standard_NC24ads_A100_v4"] == {"gpu": "A100-80GB", "gpus": 1, "regions": {
        "centralus": [4.15, 0.4565], "eastus": [3.673, 0.444433], "eastus2": [3.673, 0.47749],
        "southcentralus": [4.408, 0.57304], "westus": [4.775, 0.647968], "westus2": [3.673, 0.615962],
        "westus3": [3.673, 0.40403]}}
    # Standard_NV36ads_A10_v5,A10,1,36.0,440,A10,3.2,0.8,eastus,"V1,V2"
    assert azure["Standard_NV36ads_A10_v5"]["regions"]["eastus"] == [3.2, 0.8]


def test_an_aks_node_is_priced_by_its_vm_size_in_its_zones_region():
    book = price_book(catalog=shipped_catalog())
    a100 = book.price(pool=None, instance_type="Standard_NC24ads_A100_v4", zone="eastus-1",
                      gpu_model="NVIDIA-A100-PCIE-80GB", gpus=1)
    assert a100.per_hour == 3.673
    assert a100.source == f"catalog: skypilot azure eastus (commit {AZURE_COMMIT[:12]}, 2026-11-30)"
    west = book.price(pool=None, instance_type="Standard_NC24ads_A100_v4", zone="westus-2",
                      gpu_model="NVIDIA-A100-PCIE-80GB", gpus=1)
    assert west.per_hour == 4.775 and "azure westus" in west.source


OCI_COMMIT = "0588751183820cf2dab5c8a89447e8aac9f73fd5"  # skypilot-org/skypilot-catalog: see SOURCE.md


def test_the_shipped_table_has_ocis_gpu_shapes_in_every_region_at_the_csvs_prices():
    data = shipped()
    oci = data["clouds"]["oci"]
    assert data["commits"]["oci"] == OCI_COMMIT
    assert {"BM.GPU.A10.4", "BM.GPU.A100-v2.8", "BM.GPU.B200.8", "BM.GPU.H100.8", "BM.GPU.H200.8", "BM.GPU.L40S.4",
            "BM.GPU4.8", "BM.GPU3.8", "VM.GPU.A10.1", "VM.GPU.A10.2", "VM.GPU3.1"} <= set(oci)
    assert len(oci) == 21 and all(len(e["regions"]) == 44 for e in oci.values())  # every shape in every region
    # catalogs/v8/oci/vms.csv: BM.GPU.H100.8,H100,8,224,2048,"{...}",80,,us-ashburn-1,US-ASHBURN-AD-1
    assert oci["BM.GPU.H100.8"]["regions"]["us-ashburn-1"] == [80.0, None]
    assert oci["BM.GPU.A100-v2.8"]["gpu"] == "A100-80GB" and oci["BM.GPU4.8"]["gpu"] == "A100"
    assert oci["VM.GPU3.1"]["regions"]["us-phoenix-1"] == [2.95, 1.475]


def oke_node(zone: str) -> dict:
    """A GPU node as OKE registers it: its shape as the instance type (oci-cloud-controller-manager's
    InstanceType returns the instance's Shape), its availability domain's short name as the zone, and the
    region as the OCI API gives it (`iad` and `phx` for Ashburn and Phoenix, else the region's name)."""
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "10.0.10.23", "creationTimestamp": "2026-11-29T10:00:00Z", "labels": {
                "node.kubernetes.io/instance-type": "BM.GPU.H100.8",
                "beta.kubernetes.io/instance-type": "BM.GPU.H100.8",
                "topology.kubernetes.io/zone": zone, "failure-domain.beta.kubernetes.io/zone": zone,
                "topology.kubernetes.io/region": {"US-ASHBURN-AD-2": "iad", "PHX-AD-1": "phx"}.get(zone, zone[:-5].lower()),
                "oci.oraclecloud.com/fault-domain": "FAULT-DOMAIN-1",
                "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}},
            "spec": {"providerID": "ocid1.instance.oc1.iad.example"},
            "status": {"capacity": {"nvidia.com/gpu": "8"}, "allocatable": {"nvidia.com/gpu": "8"},
                       "conditions": [{"type": "Ready", "status": "True"}]}}


@pytest.mark.parametrize("zone, region", [("US-ASHBURN-AD-2", "us-ashburn-1"), ("PHX-AD-1", "us-phoenix-1"),
                                          ("EU-FRANKFURT-1-AD-3", "eu-frankfurt-1")])
def test_an_oke_node_is_priced_by_its_shape_in_its_availability_domains_region(zone, region):
    from mltop.adapters.kube_nodes import gpu_node, node_facts

    node = gpu_node(node_facts(oke_node(zone)), [], "oke")
    assert node.instance_type == "BM.GPU.H100.8" and node.zone == zone
    price = price_book(catalog=shipped_catalog()).price(pool=None, instance_type=node.instance_type, zone=node.zone,
                                                        gpu_model=node.gpu_model, gpus=8)
    assert price.per_hour == shipped()["clouds"]["oci"]["BM.GPU.H100.8"]["regions"][region][0] == 80.0
    assert price.source == f"catalog: skypilot oci {region} (commit {OCI_COMMIT[:12]}, 2026-11-30)"
    assert "not listed" not in price.basis  # its own region's price, not a fallback


def test_shipped_gcp_prices_are_the_csvs_host_plus_accelerator_rows():
    gcp = shipped()["clouds"]["gcp"]
    # catalogs/v8/gcp/vms.csv: a2-highgpu-1g us-central1 0.73948 / 0.36975, A100 x1 us-central1 2.93391 / 1.4341.
    assert gcp["a2-highgpu-1g"]["regions"]["us-central1"] == [round(0.73948 + 2.93391, 6), round(0.36975 + 1.4341, 6)]
    # a2-highgpu-8g 5.91582 + A100 x8 23.47126; g2-standard-4 0.14679 + L4 x1 0.56004.
    assert gcp["a2-highgpu-8g"]["regions"]["us-central1"][0] == round(5.91582 + 23.47126, 6)
    assert gcp["g2-standard-4"]["regions"]["us-central1"][0] == round(0.14679 + 0.56004, 6)
    assert gcp["a3-ultragpu-8g"]["gpu"] == "H200" and gcp["a4-highgpu-8g"]["gpu"] == "B200"


def test_a_gke_node_is_priced_by_its_machine_type_and_an_n1_t4_node_by_its_gpu():
    book = price_book(catalog=shipped_catalog())
    a2 = book.price(pool=None, instance_type="a2-highgpu-8g", zone="us-central1-c", gpu_model="NVIDIA-A100-SXM4-40GB",
                    gpus=8)
    assert a2.per_hour == pytest.approx(5.91582 + 23.47126)
    assert a2.source.startswith("catalog: skypilot gcp us-central1")
    t4 = book.price(pool=None, instance_type="n1-standard-8", zone="us-central1-a", gpu_model="Tesla-T4", gpus=2)
    assert t4.source == "catalog: per-GPU model" and "GPU only" in t4.basis and t4.per_hour == pytest.approx(2 * 0.35)


# --- the region -------------------------------------------------------------------------------------------

def test_prices_are_read_in_the_default_region_the_chosen_one_or_the_nodes_own():
    catalog = slice_catalog()
    default = price_book(catalog=catalog)
    west = price_book(catalog=catalog, region="us-west-1")
    p = dict(pool=None, instance_type="p5en.48xlarge", gpu_model="H200", gpus=8)
    assert default.price(**p).per_hour == 63.296 and "aws us-east-1" in default.price(**p).source
    assert west.price(**p).per_hour == 79.12 and "us-west-1" in west.price(**p).source
    assert price_book(catalog=catalog, regions={"aws": "us-west-1"}).price(**p).per_hour == 79.12
    # The node's zone label wins over the configured region.
    assert west.price(**p, zone="us-east-1a").per_hour == 63.296
    assert AWS_COMMIT[:12] in default.price(**p).source


def test_a_type_listed_only_elsewhere_says_which_region_and_one_listed_nowhere_is_unknown():
    book = price_book(catalog=slice_catalog())
    elsewhere = book.price(pool=None, instance_type="g5.12xlarge", gpu_model="A10G", gpus=4)
    assert elsewhere.per_hour == 7.09282  # the median of ap-east-1, eu-central-1, eu-west-1
    assert "not listed in us-east-1" in elsewhere.basis and "eu-central-1" in elsewhere.source
    nowhere = book.price(pool=None, instance_type="x9.huge", gpu_model="FooGPU", gpus=8)
    assert nowhere.per_hour is None and nowhere.source == "none" and "no known price" in nowhere.basis
    no_on_demand = book.price(pool=None, instance_type="p5e.48xlarge", gpu_model=None, gpus=8)
    assert no_on_demand.per_hour is None  # listed with a spot price only: never made up from it
    report = evaluate(Snapshot(FIXED_NOW, (), (), nodes=(node("n", itype="x9.huge", model="FooGPU"),)), book,
                      CostPolicy(waits_on=wait_models()), IdleHistory(), FIXED_NOW)
    assert report.unpriced_nodes == 1 and report.burn_rate == 0  # unknown, not free: counted as unpriced


def test_region_settings_come_from_the_config_file(tmp_path):
    path = tmp_path / "mltop.toml"
    path.write_text('[cost]\nregion = "us-west-2"\n\n[cost.regions]\nlambda = "us-west-1"\n')
    book = cost_prices(load(config_flag=str(path), environ={}).cost)
    assert book.regions["aws"] == "us-west-2" and book.regions["lambda"] == "us-west-1"
    assert book.price(pool=None, instance_type="g6.16xlarge", gpu_model="L4", gpus=1).source.startswith(
        "catalog: skypilot aws us-west-2")


# --- which source wins ------------------------------------------------------------------------------------

def test_the_users_prices_win_then_the_clusters_own_then_the_catalog():
    book = price_book(catalog=slice_catalog(), pools={"special": 10.0}, instances={"p4d.24xlarge": 20.0},
                      per_gpu={"H100": 3.0})
    opencost = Price(40.0, "the cluster's own price (OpenCost node_total_hourly_cost)", "opencost")
    h100 = dict(instance_type="p5.48xlarge", gpu_model="NVIDIA-H100-80GB-HBM3", gpus=8)
    assert book.price(pool="special", **h100, cluster=opencost).source == "config: pools"
    a100 = dict(instance_type="p4d.24xlarge", gpu_model="A100", gpus=8)
    assert book.price(pool=None, **a100, cluster=opencost).source == "config: instance types"
    assert book.price(pool=None, **h100, cluster=opencost) == Price(24.0, "your price for H100-80GB x8",
                                                                     "config: gpu models")
    catalog_only = price_book(catalog=slice_catalog())
    assert catalog_only.price(pool=None, **h100, cluster=opencost) == opencost
    assert catalog_only.price(pool=None, **h100).source.startswith("catalog: skypilot aws us-east-1")
    by_model = catalog_only.price(pool=None, instance_type=None, gpu_model="NVIDIA-A100-SXM4-80GB", gpus=8)
    assert by_model.source == "catalog: per-GPU model" and by_model.per_hour == pytest.approx(27.44705)


# --- OpenCost through a real Prometheus -------------------------------------------------------------------

OPENCOST = "\n".join([
    "# TYPE node_total_hourly_cost gauge",
    'node_total_hourly_cost{node="gpu-a",instance="opencost:9003",provider_id="aws:///us-east-1a/i-1"} 41.5',
    "# TYPE node_gpu_hourly_cost gauge",
    'node_gpu_hourly_cost{node="gpu-a",instance="opencost:9003"} 4.5',
    'node_gpu_hourly_cost{node="gpu-b",instance="opencost:9003"} 2.25',
    "# TYPE DCGM_FI_DEV_GPU_UTIL gauge",
    'DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-1",Hostname="gpu-a",modelName="NVIDIA H100 80GB HBM3"} 0',
]) + "\n"


@pytest.fixture(scope="module")
def prometheus():
    with real_prometheus(lambda: OPENCOST, job="opencost", ready_query="node_gpu_hourly_cost", series=2) as url:
        yield url


async def test_opencost_prices_from_prometheus_price_the_nodes_and_say_so(prometheus):
    source = PrometheusSource(PrometheusEndpoint(name="prom", url=prometheus, window_seconds=30))
    try:
        data = await source.fetch()
    finally:
        await source.aclose()
    costs = {c.node: c for c in data.node_costs}
    assert costs["gpu-a"].total_per_hour == 41.5 and costs["gpu-a"].gpu_per_hour == 4.5
    assert costs["gpu-b"].total_per_hour is None and costs["gpu-b"].gpu_per_hour == 2.25
    assert len(data.gpu_samples) == 1 and data.skipped == 0  # utilization still read alongside

    nodes = (node("gpu-a"), node("gpu-b"), node("gpu-c", itype="p4d.24xlarge", model="A100"),
             node("gpu-d", pool="special"))
    snapshot = Snapshot(FIXED_NOW, (), (), nodes=nodes, node_costs=data.node_costs + (NodeCost("gpu-d", total_per_hour=99.0),))
    book = price_book(catalog=slice_catalog(), pools={"special": 12.0})
    report = evaluate(snapshot, book, CostPolicy(waits_on=wait_models()), IdleHistory(), FIXED_NOW)
    shown = {n.name: node_json(n, report) for n in nodes}  # what --once --json prints per node
    assert shown["gpu-a"]["price_per_hour"] == 41.5 and shown["gpu-a"]["price_source"] == "opencost"
    assert shown["gpu-b"]["price_per_hour"] == 2.25 * 8 and shown["gpu-b"]["price_source"] == "opencost"
    assert shown["gpu-c"]["price_per_hour"] == 21.957642
    assert shown["gpu-c"]["price_source"] == f"catalog: skypilot aws us-east-1 (commit {AWS_COMMIT[:12]}, 2026-11-30)"
    assert shown["gpu-d"]["price_per_hour"] == 12.0 and shown["gpu-d"]["price_source"] == "config: pools"


async def test_no_opencost_metrics_is_no_node_costs_and_unreadable_series_are_counted(prometheus):
    from mltop.adapters.opencost import parse, query
    from mltop.adapters.values import Skips

    async with httpx.AsyncClient(base_url=prometheus, timeout=5) as client:
        absent = (await client.get("/api/v1/query", params={"query": query("node_ram_hourly_cost")})).json()
        no_node = (await client.get("/api/v1/query", params={"query": "DCGM_FI_DEV_GPU_UTIL"})).json()
    skips = Skips()
    assert parse(absent, "prom: node_ram_hourly_cost", skips) == [] and skips.count == 0  # a Prometheus without OpenCost
    assert parse(no_node, "prom: DCGM_FI_DEV_GPU_UTIL", skips) == []  # a series with no `node` label
    assert skips.count == 1 and "without a node" in skips.reason
