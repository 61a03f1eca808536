"""Bad local input (files, flags, config values) is one line on stderr and exit 2: never a
traceback, never a hang. And `mltop --demo` leaves no temporary file, however it ends."""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import signal
import string
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import pytest

from mltop.errors import SourceError
from tests.test_config_cli import write

PROMPT = 30  # seconds: far more than any of these takes; a FIFO read would block forever


def cli(*args: str, env: dict[str, str] | None = None, home: Path | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "MLTOP_", "KUBE", "KF_"))}
    if home is not None:  # no ~/.kube/config or user config of whoever runs the tests
        base["HOME"] = base["XDG_CONFIG_HOME"] = str(home)
    return subprocess.run([sys.executable, "-m", "mltop", *args], capture_output=True, text=True, timeout=PROMPT,
                          env={**base, **(env or {})})


def one_line(out: subprocess.CompletedProcess[str], *expected: str) -> str:
    """Exit 2, and stderr is exactly one `mltop: ` line holding every `expected` piece."""
    assert "Traceback" not in out.stderr, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mltop: "), out.stderr
    assert out.returncode == 2, out.stderr
    for piece in expected:
        assert piece in lines[0], lines[0]
    return lines[0]


def kubeconfig(tmp_path: Path, user: dict | None = None, server: str = "http://127.0.0.1:9",
               cluster: dict | None = None, name: str = "kubeconfig") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "ctx",
        "clusters": [{"name": "c", "cluster": {"server": server, **(cluster or {})}}],
        "users": [{"name": "u", "user": user or {"token": "t"}}],
        "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u"}}],
    }))
    return path


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "fifo"
    os.mkfifo(path)
    return path


# -- the config file ----------------------------------------------------------------------------


def test_a_config_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "config.toml"
    path.write_bytes(b"refresh = 2\n# caf\xe9\n")
    one_line(cli("--config", str(path), "--once", home=tmp_path), str(path), "not UTF-8")


def test_a_fifo_as_the_config_file_is_refused_at_once(tmp_path, fifo):
    one_line(cli("--config", str(fifo), "--once", home=tmp_path), str(fifo), "not a regular file", "FIFO")


def test_a_fifo_as_the_config_file_from_the_environment(tmp_path, fifo):
    one_line(cli("--once", env={"MLTOP_CONFIG": str(fifo)}, home=tmp_path), str(fifo), "FIFO")


def test_a_directory_as_the_config_file(tmp_path):
    one_line(cli("--config", str(tmp_path), "--once", home=tmp_path), str(tmp_path), "directory")


def test_dev_null_still_means_no_config_file(tmp_path):
    one_line(cli("--once", env={"MLTOP_CONFIG": os.devnull}, home=tmp_path), "no source configured")


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("refresh = nan\n", "refresh"),
        ("refresh = inf\n", "refresh"),
        ("stop_patience = inf\n", "stop_patience"),
        ("[cost]\nidle_threshold_minutes = inf\n", "cost.idle_threshold_minutes"),
        ("[cost.prices.pools]\ngpu-pool = nan\n", "cost.prices.pools.gpu-pool"),
        ("[cost.prices.instance_types]\n'p5.48xlarge' = inf\n", "cost.prices.instance_types.p5.48xlarge"),
        ("[cost.prices.gpu_models]\nH100 = -1.0\n", "cost.prices.gpu_models.H100"),
        ("[[ray]]\nurl = 'http://x'\ntimeout = nan\n", "ray.0.timeout"),
        ("[[ray]]\nurl = 'http://x'\ntimeout = 0\n", "ray.0.timeout"),
        ("[[kfp]]\nurl = 'http://x'\ntimeout = -inf\n", "kfp.0.timeout"),
        ("[[prometheus]]\nurl = 'http://x'\ntimeout = inf\n", "prometheus.0.timeout"),
    ],
)
def test_config_numbers_must_be_finite_and_in_range(tmp_path, text, key):
    path = write(tmp_path, text)
    one_line(cli("--config", str(path), "--once", home=tmp_path), f"{path}: {key}: ")


@pytest.mark.parametrize(
    ("keys", "says"),
    [
        ("notakey+++", "unknown modifier 'notakey'"),
        ("ctrl+nokey", "'nokey' is not a key"),
        ("Escape", "lower case"),
        ("ctrl+ctrl+k", "given twice"),
        ("shift+ctrl+up", "'ctrl+shift+up'"),
        ("ctrl++", "'plus'"),
        ("q,", "empty key"),
        ("q,,w", "empty key"),
        ("   ", "needs at least one key"),
    ],
)
def test_bad_key_bindings_name_the_binding(tmp_path, keys, says):
    path = write(tmp_path, f'[keys]\n"jobs.cancel" = "{keys}"\n')
    one_line(cli("--config", str(path), "--once", home=tmp_path), f"{path}: keys.jobs.cancel: ", says)


def test_good_key_bindings_pass(tmp_path):
    from mltop.config import load

    good = "ctrl+k,question_mark,?,+,f24,ctrl+shift+up,alt+ctrl+x,é,escape,shift+tab,comma,space"
    path = tmp_path / "config.toml"
    path.write_text(f'[keys]\n"jobs.cancel" = "{good}"\n"quit" = "q"\n', encoding="utf-8")
    assert load(config_flag=str(path), environ={}).keymap["jobs.cancel"] == good


def test_the_key_names_match_textual():
    """config.py may not import Textual, so it keeps its own list: it must be the one Textual has."""
    from textual._xterm_parser import XTermParser
    from textual.keys import KEY_NAME_REPLACEMENTS, KEY_TO_UNICODE_NAME, Keys, _character_to_key

    from mltop.keys import KEY_MODIFIERS, NAMED_KEYS, check_key

    named = {key.value.rsplit("+", 1)[-1] for key in Keys}
    # Drop Textual's internal pseudo-keys (<any>, <scroll-up>) and its "ctrl-at" alias.
    named = {k for k in named if len(k) > 1 and not k.startswith("<") and "-" not in k}
    characters = {_character_to_key(c) for c in string.punctuation + " "}
    unicode_names = {KEY_NAME_REPLACEMENTS.get(k, k) for k in KEY_TO_UNICODE_NAME}
    assert NAMED_KEYS == named | characters | unicode_names
    # Every modifier, as Textual names a key event with all of them held (kitty protocol, mods 63).
    (event,) = XTermParser().feed("\x1b[1;64A")
    assert event.key == "+".join([*KEY_MODIFIERS, "up"])
    check_key(event.key)


# -- flags --------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-1"])
def test_fail_on_idle_takes_a_finite_number(tmp_path, value):
    one_line(cli("--once", "--ray", "http://127.0.0.1:9", f"--fail-on-idle={value}", home=tmp_path),
             "--fail-on-idle")


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0.1"])
def test_refresh_takes_a_finite_number_in_range(tmp_path, value):
    one_line(cli("--once", "--ray", "http://127.0.0.1:9", f"--refresh={value}", home=tmp_path), "--refresh")


# -- kubeconfigs --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"apiVersion: v1\nclusters: [\n", "not valid YAML"),
        (b"- a list\n- not a mapping\n", "not a kubeconfig"),
        (b"just a string\n", "not a kubeconfig"),
        (b"", "empty"),
        (b"apiVersion: v1\n# caf\xe9\n", "not UTF-8"),
    ],
)
def test_a_kubeconfig_that_is_not_one(tmp_path, content, says):
    path = tmp_path / "kubeconfig"
    path.write_bytes(content)
    one_line(cli("--once", "--kubeconfig", str(path), env={"MLTOP_CONFIG": os.devnull}, home=tmp_path),
             str(path), says)


def test_a_kubeconfig_in_the_kubeconfig_variable_that_is_not_yaml(tmp_path):
    bad = tmp_path / "bad"
    bad.write_text("clusters: [\n")
    good = kubeconfig(tmp_path)
    env = {"MLTOP_CONFIG": os.devnull, "KUBECONFIG": os.pathsep.join([str(good), str(tmp_path / "absent"), str(bad)])}
    one_line(cli("--once", env=env, home=tmp_path), str(bad), "KUBECONFIG", "not valid YAML")


def test_a_missing_context(tmp_path):
    path = kubeconfig(tmp_path)
    one_line(cli("--once", "--kubeconfig", str(path), "--context", "nope", env={"MLTOP_CONFIG": os.devnull},
                 home=tmp_path), str(path), "nope")


def test_a_missing_cert_file(tmp_path):
    path = kubeconfig(tmp_path, server="https://127.0.0.1:9", cluster={"certificate-authority": "ca.crt"})
    one_line(cli("--once", "--kubeconfig", str(path), env={"MLTOP_CONFIG": os.devnull}, home=tmp_path),
             str(path), str(tmp_path / "ca.crt"))


def test_a_fifo_as_the_kubeconfig_flag(tmp_path, fifo):
    one_line(cli("--once", "--kubeconfig", str(fifo), env={"MLTOP_CONFIG": os.devnull}, home=tmp_path),
             "--kubeconfig", str(fifo), "FIFO")


def test_a_fifo_in_the_kubeconfig_variable(tmp_path, fifo):
    good = kubeconfig(tmp_path)
    env = {"MLTOP_CONFIG": os.devnull, "KUBECONFIG": os.pathsep.join([str(good), str(fifo)])}
    one_line(cli("--once", env=env, home=tmp_path), str(fifo), "KUBECONFIG", "FIFO")


def test_a_fifo_as_the_config_files_kubeconfig(tmp_path, fifo):
    path = write(tmp_path, f"[[kubernetes]]\nkubeconfig = '{fifo}'\n")
    one_line(cli("--once", "--config", str(path), home=tmp_path), f"{path}: kubernetes.0.kubeconfig", "FIFO")


def test_a_fifo_as_the_kubeconfig_users_token_file(tmp_path, fifo):
    path = kubeconfig(tmp_path, user={"tokenFile": fifo.name})  # relative to the kubeconfig, as kubectl reads it
    one_line(cli("--once", "--kubeconfig", str(path), env={"MLTOP_CONFIG": os.devnull}, home=tmp_path),
             f"{path}: users.u.tokenFile", "FIFO")


# -- other files the config names ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "key"),
    [
        ("[[ray]]\nname = 'r'\nurl = 'https://x'\nca_file = '{f}'\n", "ray.r.ca_file"),
        ("[[kfp]]\nname = 'k'\nurl = 'https://x'\nca_file = '{f}'\n", "kfp.k.ca_file"),
        ("[[kfp]]\nname = 'k'\nurl = 'https://x'\ntoken_file = '{f}'\n", "kfp.k.token_file"),
        ("[[ray]]\nurl = 'http://x'\n[[prometheus]]\nname = 'p'\nurl = 'https://x'\nca_file = '{f}'\n",
         "prometheus.p.ca_file"),
    ],
)
def test_a_fifo_named_in_the_config(tmp_path, fifo, entry, key):
    path = write(tmp_path, entry.format(f=fifo))
    one_line(cli("--once", "--config", str(path), home=tmp_path), f"{path}: {key}", "FIFO")


def test_a_ca_file_that_is_no_ca_bundle(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("not a certificate\n")
    path = write(tmp_path, f"[[ray]]\nname = 'r'\nurl = 'https://x'\nca_file = '{ca}'\n")
    one_line(cli("--once", "--config", str(path), home=tmp_path), f"{path}: ray.r.ca_file", str(ca))


# -- the KFP token file, read at every poll -----------------------------------------------------


def read_token(path: Path) -> str:
    """TokenFile.read in a thread: a read that blocks fails the test instead of hanging it."""
    from mltop.adapters.kfp import TokenFile

    result: list = []

    def target() -> None:
        try:
            result.append(TokenFile(str(path)).read())
        except Exception as exc:  # noqa: BLE001 - handed to the test
            result.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(PROMPT)
    assert result, "TokenFile.read blocked"
    if isinstance(result[0], Exception):
        raise result[0]
    return result[0]


def test_token_file_read_and_trimmed(tmp_path):
    path = tmp_path / "token"
    path.write_text("abc.def\n")
    assert read_token(path) == "abc.def"


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda p: os.mkfifo(p), "FIFO"),
        (lambda p: p.mkdir(), "directory"),
        (lambda p: p.write_bytes(b"tok\xffen"), "not UTF-8"),
        (lambda p: p.write_text("one\ntwo\n"), "one line"),
        (lambda p: None, "No such file"),
    ],
)
def test_a_token_file_that_cannot_be_used_is_a_one_line_source_error(tmp_path, make, says):
    path = tmp_path / "token"
    make(path)
    with pytest.raises(SourceError) as info:
        read_token(path)
    message = str(info.value)
    assert says in message and str(path) in message and "\n" not in message


# -- temporary files ----------------------------------------------------------------------------


def demo_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "MLTOP_", "KUBE", "KF_"))}
    env.update(TMPDIR=str(tmp), MLTOP_CONFIG=os.devnull, TERM="xterm-256color")
    return env


def leftovers(tmp: Path) -> list[str]:
    return sorted(p.name for p in tmp.iterdir() if p.name.startswith("mltop-demo-"))


def test_the_one_shot_demo_leaves_no_temporary_file(tmp_path):
    out = subprocess.run([sys.executable, "-m", "mltop", "--demo", "--once", "--json"], capture_output=True,
                         text=True, timeout=120, env=demo_env(tmp_path))
    assert out.returncode in (0, 1), out.stderr  # 1: some source failed; the files are what matter here
    # The kubeconfig was gone before the poll: the client read it once, when the source was made.
    kube = [s for s in json.loads(out.stdout)["sources"] if s["kind"] == "kubernetes"]
    assert [(s["name"], s["ok"]) for s in kube] == [("demo-k8s", True)], kube
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGKILL])
def test_a_killed_demo_tui_leaves_no_temporary_file(tmp_path, sig):
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 140, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "mltop", "--demo"], stdin=slave, stdout=slave, stderr=slave,
                            env=demo_env(tmp_path), start_new_session=True)
    os.close(slave)
    screen = bytearray()
    try:
        deadline = time.monotonic() + 120
        # Started: the TUI has drawn the demo's Kubernetes cluster, so its sources are polling.
        while b"demo-k8s" not in re.sub(rb"\x1b\[[0-9;?]*[A-Za-z]", b"", bytes(screen)):
            assert time.monotonic() < deadline and proc.poll() is None, bytes(screen[-2000:])
            if select.select([master], [], [], 0.2)[0]:
                screen += os.read(master, 65536)
        proc.send_signal(sig)
        while proc.poll() is None and time.monotonic() < deadline:  # keep draining: it may still write
            if select.select([master], [], [], 0.2)[0]:
                try:
                    os.read(master, 65536)
                except OSError:
                    break
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    assert leftovers(tmp_path) == []
