"""Secret-like values in backend objects: redacted by name where names are variable names, by
shape everywhere; keys and structure never change; harmless values stay readable."""

from __future__ import annotations

import json
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mltop.redaction import REDACTED, looks_secret, redact_object, redact_text

json_leaves = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30)
json_values = st.recursive(json_leaves, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=25)
secret_names = st.sampled_from(["HF_TOKEN", "WANDB_API_KEY", "AWS_SECRET_ACCESS_KEY", "DB_PASSWORD", "apiKey",
                                "GITHUB_TOKEN", "SENTRY_DSN", "SESSION_COOKIE", "db-passwd", "PRIVATE_KEY",
                                "ConnectionString", "OAUTH_CLIENT_SECRET", "x-auth-token", "Credentials"])
plain_names = st.sampled_from(["NCCL_DEBUG", "TOKENIZERS_PARALLELISM", "MAX_TOKENS", "num_keys", "keyboard",
                               "HF_HOME", "CUDA_VISIBLE_DEVICES", "lr", "epochs", "base_model", "monkey"])
plain_values = st.text(alphabet=string.ascii_lowercase + string.digits + "-.", min_size=1, max_size=15)
any_values = st.text(min_size=1, max_size=40)


def paths(obj, prefix=()):
    """Every key path of a JSON value: what redaction must keep."""
    if isinstance(obj, dict):
        out = {prefix}
        for k, v in obj.items():
            out |= paths(v, (*prefix, k))
        return out
    if isinstance(obj, list):
        out = {prefix}
        for i, v in enumerate(obj):
            out |= paths(v, (*prefix, i))
        return out
    return {prefix}


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_keys_and_structure_never_change_and_redaction_is_idempotent(obj):
    before = json.dumps(obj)
    once, _ = redact_object(obj)
    assert json.dumps(obj) == before  # the input is not changed
    assert paths(once) == paths(obj)
    twice, _ = redact_object(once)
    assert twice == once


@settings(max_examples=200, deadline=None)
@given(secret_names, any_values, plain_names, plain_values)
def test_ray_env_vars_with_secret_names_are_redacted_whatever_the_value(secret, value, plain, harmless):
    job = {"runtime_env": {"env_vars": {secret: value, plain: harmless}}, "metadata": {secret: value}}
    out, count = redact_object(job)
    assert out["runtime_env"]["env_vars"] == {secret: REDACTED, plain: harmless}
    assert out["metadata"] == {secret: REDACTED}
    assert count == 2


@settings(max_examples=200, deadline=None)
@given(secret_names, any_values, plain_names, plain_values)
def test_kubernetes_env_values_are_redacted_and_value_from_refs_kept(secret, value, plain, harmless):
    pod = {"spec": {"containers": [{"name": "main", "env": [
        {"name": secret, "value": value},
        {"name": plain, "value": harmless},
        {"name": secret, "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
    ]}], "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}]}}
    out, _ = redact_object(pod)
    env = out["spec"]["containers"][0]["env"]
    assert env[0] == {"name": secret, "value": REDACTED}
    assert env[1] == {"name": plain, "value": harmless}
    assert env[2] == pod["spec"]["containers"][0]["env"][2]  # a ref names a Secret: not a secret itself
    assert out["spec"]["tolerations"] == pod["spec"]["tolerations"]  # `key` fields are not variable names


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=20), st.text(max_size=20))
def test_secret_shapes_are_redacted_inside_any_text(before, after):
    for secret in ("AKIAIOSFODNN7EXAMPLE", "ghp_" + "a1B2" * 9, "xoxb-123456789012-abcdefABCDEF",
                   "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
                   "hf_" + "x" * 34, "sk-proj-" + "Ab1" * 10,
                   "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----"):
        text = f"{before} {secret} {after}"
        out, count = redact_text(text)
        assert secret not in out and count >= 1 and REDACTED in out


@pytest.mark.parametrize("text, expected", [
    ("postgres://ml:hunter2@db:5432/x", f"postgres://ml:{REDACTED}@db:5432/x"),
    ("git clone https://github.com/a/b", "git clone https://github.com/a/b"),  # no password: unchanged
    ("HF_TOKEN=abc123 python train.py", f"HF_TOKEN={REDACTED} python train.py"),
    ("python t.py --api-key abc123 --num-keys 5", f"python t.py --api-key {REDACTED} --num-keys 5"),
    ("python t.py --password=abc --session-name s1", f"python t.py --password={REDACTED} --session-name s1"),
    ('{"token": "abc"}', f'{{"token": {REDACTED}}}'),
    ("Invalid token provided", "Invalid token provided"),  # prose is not a command line
    ("-----BEGIN PRIVATE KEY-----\nMIIE (cut off", REDACTED),
])
def test_redact_text(text, expected):
    assert redact_text(text)[0] == expected


def test_last_applied_configuration_is_redacted_inside_and_unreadable_ones_whole():
    applied = json.dumps({"spec": {"containers": [{"env": [{"name": "HF_TOKEN", "value": "hf_x"},
                                                           {"name": "MODE", "value": "fast"}]}]}})
    obj = {"metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": applied,
                                        "team": "ml"}}}
    out, count = redact_object(obj)
    inner = json.loads(out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"])
    assert inner["spec"]["containers"][0]["env"] == [{"name": "HF_TOKEN", "value": REDACTED},
                                                     {"name": "MODE", "value": "fast"}]
    assert out["metadata"]["annotations"]["team"] == "ml" and count == 1
    broken = {"metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{not json"}}}
    assert redact_object(broken)[0]["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] \
        == REDACTED


def test_kfp_parameters_by_name_and_pipeline_defaults():
    run = {"runtime_config": {"parameters": {"hf_token": "abc", "lr": 0.1, "base_model": "meta-llama/Llama-3-8B"}},
           "pipeline_spec": {"root": {"inputDefinitions": {"parameters": {
               "api_key": {"parameterType": "STRING", "defaultValue": "xyz"}}}}}}
    out, _ = redact_object(run)
    assert out["runtime_config"]["parameters"] == {"hf_token": REDACTED, "lr": 0.1,
                                                   "base_model": "meta-llama/Llama-3-8B"}
    assert out["pipeline_spec"]["root"]["inputDefinitions"]["parameters"]["api_key"] == {
        "parameterType": "STRING", "defaultValue": REDACTED}


@pytest.mark.parametrize("name", ["HF_TOKEN", "apiKey", "x-api-key", "AWS_SECRET_ACCESS_KEY", "hfToken",
                                  "DB_PASS", "SENTRY_DSN", "connection_string", "AUTH", "authtoken"])
def test_secret_names(name):
    assert looks_secret(name)


@pytest.mark.parametrize("name", ["TOKENIZERS_PARALLELISM", "MAX_TOKENS", "num_keys", "keyboard", "monkey",
                                  "HF_HOME", "NCCL_DEBUG", "secretary"])
def test_harmless_names(name):
    assert not looks_secret(name)
