"""`mltop --once --json` and the tools people use instead, run as child processes and measured.

Wall time from just before the fork to the reap; peak RSS from os.wait4 (the child's own
ru_maxrss, so several children in a row are measured apart).

    python bench/peers.py kfp URL NAMESPACE...   # the KFP peer: kfp.Client, the same queries as mltop
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(sys.executable).parent
KUBECTL = shutil.which("kubectl")
ACTIVE = ["PENDING", "RUNNING", "CANCELING", "PAUSED"]
FINISHED = ["SUCCEEDED", "FAILED", "CANCELED", "SKIPPED"]


def compile_bytecode() -> None:
    """Write mltop's bytecode before anything is timed, as `pip install` does for an installed
    package. The checkout is an editable install and this machine sets PYTHONDONTWRITEBYTECODE,
    so without this every mltop run compiled its ~60 modules from source (about 75 ms of a 0.4 s
    `--once`), while the peers, installed by pip, load bytecode written at install time."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "mltop")], check=True,
                   stdout=subprocess.DEVNULL)


@dataclass
class Run:
    wall: float  # seconds
    rss: float  # MiB, peak of the biggest child
    ok: bool


def run(argv: list[str], env: dict[str, str] | None = None, timeout: float = 300,
        check: Callable[[bytes], str] | None = None) -> Run:
    """`check` reads the child's output and says what is wrong with it ("" for nothing)."""
    with tempfile.TemporaryFile() as err, tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        child = subprocess.Popen(argv, stdout=out if check else subprocess.DEVNULL, stderr=err, env=env, cwd=ROOT)
        killer = threading.Timer(timeout, child.kill)
        killer.start()
        try:
            _, status, usage = os.wait4(child.pid, 0)
        except BaseException:  # Ctrl-C, SIGTERM: the child goes too
            child.kill()
            child.wait()
            raise
        finally:
            killer.cancel()
        wall = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        problem = ""
        if child.returncode != 0:
            err.seek(0)
            problem = f"exit {child.returncode}: {err.read().decode(errors='replace').strip()[-300:]}"
        elif check is not None:
            out.seek(0)
            problem = check(out.read())
        if problem:
            print(f"  ! {' '.join(argv[:4])}...: {problem}", file=sys.stderr)
    return Run(wall, usage.ru_maxrss / 1024, not problem)


def all_sources_ok(output: bytes) -> str:
    """What `mltop --once --json` says went wrong: a source that did not answer ("" when none)."""
    try:
        sources = json.loads(output)["sources"]
    except (ValueError, KeyError, TypeError):
        return "no JSON report"
    return "; ".join(f"{s['kind']} {s['name']}: {s['error']}" for s in sources if not s["ok"])


def chain(runs: list[Run]) -> Run:
    """Several commands one after the other: their walls add up, memory is the biggest one's."""
    return Run(sum(r.wall for r in runs), max(r.rss for r in runs), all(r.ok for r in runs))


def mltop_argv(info: dict, backends: tuple[str, ...]) -> list[str]:
    argv = [str(VENV / "mltop"), "--no-history", "--read-only"]
    if "kube" in backends:
        argv += ["--kubeconfig", info["kubeconfig"]]
    if "ray" in backends:
        argv += ["--ray", info["ray_url"]]
    if "kfp" in backends:
        argv += ["--kfp", info["kfp_url"]]
        for ns in info["kfp_namespaces"]:
            argv += ["--kfp-namespace", ns]
    return argv


def mltop_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "RAY_ADDRESS", "KF_PIPELINES_ENDPOINT")}
    return {**env, "MLTOP_CONFIG": os.devnull, "HOME": str(Path(os.environ.get("TMPDIR", "/tmp")))}


def mltop_once(info: dict, backends: tuple[str, ...]) -> Run:
    return run([*mltop_argv(info, backends), "--once", "--json"], env=mltop_env(), check=all_sources_ok)


def peer_once(info: dict, backends: tuple[str, ...]) -> Run:
    runs = []
    if "kube" in backends:
        if KUBECTL is None:
            raise SystemExit("kubectl is not installed: no Kubernetes peer")
        for what in (["get", "nodes"], ["get", "pods", "-A"]):
            runs.append(run([KUBECTL, "--kubeconfig", info["kubeconfig"], *what]))
    if "ray" in backends:
        runs.append(run([str(VENV / "ray"), "job", "list", "--address", info["ray_url"]]))
    if "kfp" in backends:
        runs.append(run([sys.executable, str(Path(__file__).resolve()), "kfp", info["kfp_url"], *info["kfp_namespaces"]]))
    return chain(runs)


def peer_names(backends: tuple[str, ...]) -> str:
    names = {"kube": "kubectl get nodes + kubectl get pods -A", "ray": "ray job list",
             "kfp": "kfp.Client list_runs (active, paged + 1 finished page)"}
    return " + ".join(names[b] for b in backends)


def kfp_peer(url: str, namespaces: list[str]) -> None:
    """What a script with the official client does to see a namespace's queue: the same two
    queries as mltop (active runs, every page; the newest page of finished runs), then print them."""
    import warnings

    warnings.simplefilter("ignore")
    import kfp

    client = kfp.Client(host=url)
    for ns in namespaces:
        active = {"predicates": [{"key": "state", "operation": "IN", "string_values": {"values": ACTIVE}}]}
        token, runs = "", []
        while True:
            page = client.list_runs(page_token=token, page_size=100, sort_by="" if token else "created_at desc",
                                    filter=None if token else json.dumps(active), namespace=ns)
            runs += page.runs or []
            token = page.next_page_token or ""
            if not token:
                break
        finished = {"predicates": [{"key": "state", "operation": "IN", "string_values": {"values": FINISHED}}]}
        page = client.list_runs(page_size=50, sort_by="finished_at desc", filter=json.dumps(finished), namespace=ns)
        runs += page.runs or []
        for r in runs:
            print(r.run_id, r.display_name, r.state, r.created_at)


if __name__ == "__main__":
    if sys.argv[1:2] == ["kfp"]:
        kfp_peer(sys.argv[2], sys.argv[3:])
