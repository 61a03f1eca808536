"""Configuration precedence and the CLI's promise: bad input is one line and exit 2, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mltop.config import ConfigError, load


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_defaults_without_a_file(tmp_path):
    config = load(config_flag=None, environ={"MLTOP_CONFIG": str(write(tmp_path, ""))})
    assert config.of("ray") == () and config.refresh == 2.0 and not config.read_only


def test_file_sources_with_names_tokens_and_tls(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    path = write(tmp_path, f"""
refresh = 5
read_only = true
[[ray]]
name = "prod"
url = "https://ray.prod.example:8443/"
token = "file-token"
ca_file = "{ca}"
[[ray]]
url = "http://10.0.0.5:8265"
[keys]
"jobs.cancel" = "ctrl+k"
""")
    config = load(config_flag=str(path), environ={"RAY_AUTH_TOKEN": "env-token"})
    prod, other = config.of("ray")
    assert (prod.name, prod.url, prod.token, prod.ca_file) == ("prod", "https://ray.prod.example:8443", "file-token", str(ca))
    # A cluster's own token wins; entries without one take RAY_AUTH_TOKEN.
    assert (other.name, other.token) == ("10.0.0.5", "env-token")
    assert config.refresh == 5 and config.read_only and config.keymap == {"jobs.cancel": "ctrl+k"}


def test_precedence_flags_then_env_then_file(tmp_path):
    path = write(tmp_path, 'refresh = 5\n[[ray]]\nname = "file"\nurl = "http://file:8265"\n')
    env = {"MLTOP_CONFIG": str(path), "RAY_ADDRESS": "http://env:8265"}
    assert [e.name for e in load(environ=env).of("ray")] == ["env"]
    assert [e.name for e in load({"ray": ["flag=http://flag:8265"]}, environ=env).of("ray")] == ["flag"]
    assert load(refresh_flag=1.0, environ=env).refresh == 1.0
    # RAY_ADDRESS that is not an http(s) URL (e.g. "auto", "ray://...") is not a dashboard.
    env["RAY_ADDRESS"] = "ray://head:10001"
    assert [e.name for e in load(environ=env).of("ray")] == ["file"]


def test_same_host_twice_gets_distinct_names():
    config = load({"ray": ["http://h:8265", "http://h:8265"]}, environ={"MLTOP_CONFIG": "/dev/null"})
    assert [e.name for e in config.of("ray")] == ["h", "h-2"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("refrsh = 2\n", "refrsh: unknown key"),
        ("refresh = 0\n", "refresh: Input should be greater than or equal to 0.2"),
        ("read_only = 'maybe'\n", "read_only: Input should be a valid boolean"),
        ("[[ray]]\nurl = 'ray://x:10001'\n", "ray.0.url: 'ray://x:10001' is not an http(s) URL"),
        ("[[ray]]\nname = 'x'\n", "ray.0.url: Field required"),
        ("[keys]\n'jobs.nuke' = 'x'\n", "keys: unknown binding 'jobs.nuke'"),
        ("refresh = [\n", "not valid TOML"),
    ],
)
def test_bad_values_name_file_key_and_why(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load(config_flag=str(path), environ={})
    assert str(info.value).startswith(f"{path}: ")
    assert expected in str(info.value)


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    base = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "MLTOP_"))}
    return subprocess.run([sys.executable, "-m", "mltop", *args], capture_output=True, text=True, timeout=60,
                          env={**base, **(env or {})})


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (["--config", "/nonexistent/mltop.toml", "--once"], {}, "no such config file"),
        (["--ray", "ftp://x", "--once"], {}, "--ray: 'ftp://x' is not an http(s) URL"),
        (["--refresh", "0", "--once", "--ray", "http://x"], {}, "--refresh: must be between"),
        (["--refresh", "soon"], {}, "invalid float value"),
        (["--json"], {}, "--json goes with --once"),
        (["--bogus"], {}, "unrecognized arguments"),
        (["--once"], {"MLTOP_CONFIG": "/dev/null"}, "no source configured"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(args, env, expected):
    out = run_cli(*args, env=env)
    assert out.returncode == 2
    assert expected in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_cli_bad_config_file_is_one_line(tmp_path):
    path = write(tmp_path, "[[ray]]\nurl = 'http://x'\nverify = false\n")
    out = run_cli("--config", str(path), "--once")
    assert out.returncode == 2 and out.stderr.strip() == f"mltop: {path}: ray.0.verify: unknown key"


def test_cost_config_prices_and_bad_kinds(tmp_path):
    from mltop.config import cost_policy, cost_prices

    path = write(tmp_path, """
[cost]
idle_threshold_minutes = 30
kinds = ["idle-node", "idle-pool"]
spot_discount = 0.6
currency = "EUR "
[cost.prices.instance_types]
"p5.48xlarge" = 40.0
""")
    config = load(config_flag=str(path), environ={})
    policy, book = cost_policy(config.cost), cost_prices(config.cost)
    assert policy.idle_threshold.total_seconds() == 1800 and policy.kinds == {"idle-node", "idle-pool"}
    assert book.price(pool=None, instance_type="p5.48xlarge", gpu_model=None, gpus=8).per_hour == 40.0
    assert book.currency == "EUR "
    bad = write(tmp_path, "[cost]\nkinds = ['idle-nodes']\n")
    with pytest.raises(ConfigError, match="cost.kinds: unknown warning kind 'idle-nodes'"):
        load(config_flag=str(bad), environ={})
