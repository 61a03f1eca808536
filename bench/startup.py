"""Start-up cost of the one-shot report, per backend, against the demo platform on loopback.

    python bench/startup.py [REPEATS] [--peers] [--before DIR]

Wall time and peak RSS (the child's own ru_maxrss, from wait4) of `mltop --once --json` for a
Ray-only, a KFP-only and a Kubernetes-only config and for all three, medians of REPEATS runs.
With --peers, the same for each backend's own CLI or client: `ray job list`, the kfp client's
`list_runs`, `kubectl get nodes` + `kubectl get pods -A` (each a separate process, as users run them).
With --before DIR (an older tree, e.g. `git archive HEAD | tar -x -C DIR`), that tree's mltop too,
its runs interleaved with this tree's, so a busy machine slows both alike.
Also the cost of importing the TUI. Servers run in a child process, so their threads and memory
count against nobody measured.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers import compile_bytecode  # noqa: E402  (bench/ is not a package)

PY = sys.executable
SERVE = """
import json, sys, time
from mltop.demo.platform import DemoPlatform, DEMO_KUBE_CONTEXT, DEMO_KFP_TOKEN
from mltop.demo.kfp_scenario import NAMESPACES
p = DemoPlatform(moving=False).start()
print(json.dumps({"ray": p.ray_url, "kfp": p.kfp_url, "kfp_token": DEMO_KFP_TOKEN, "kfp_ns": list(NAMESPACES),
                  "kubeconfig": p.kubeconfig_path, "context": DEMO_KUBE_CONTEXT}), flush=True)
sys.stdin.read()  # until the bench closes our stdin
p.stop()
"""


def run(cmd: list[str], env: dict[str, str], cwd: str | None = None) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, peak RSS MiB) of one process. CPU time moves less than wall
    time when other work shares the machine."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=cwd)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1, 3):  # 1 and 3: the report's own exit statuses (a warning, idle spend)
        raise SystemExit(f"{' '.join(cmd)}: exit {proc.returncode}: {proc.stderr.read().decode()[-2000:]}")
    proc.stderr.close()
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


Variant = tuple[list[list[str]], dict[str, str], "str | None"]  # (commands, env, cwd)


def measure(variants: list[Variant], repeats: int) -> list[tuple[float, float, float]]:
    """For each (commands, env, cwd): medians over `repeats` of (total wall and CPU time of its
    commands run one after another, highest peak RSS of them). Variants take turns, one round each
    per repeat."""
    samples: list[list[tuple[float, float, float]]] = [[] for _ in variants]
    for _ in range(repeats):
        for i, (cmds, env, cwd) in enumerate(variants):
            results = [run(cmd, env, cwd) for cmd in cmds]
            samples[i].append((sum(r[0] for r in results), sum(r[1] for r in results), max(r[2] for r in results)))
    return [tuple(statistics.median(column) for column in zip(*runs)) for runs in samples]  # type: ignore[misc]


def configs(urls: dict, tmp: Path) -> dict[str, Path]:
    ray = f'[[ray]]\nname = "demo"\nurl = "{urls["ray"]}"\n'
    kfp = (f'[[kfp]]\nname = "demo-kfp"\nurl = "{urls["kfp"]}"\ntoken = "{urls["kfp_token"]}"\n'
           f'namespaces = {json.dumps(urls["kfp_ns"])}\n')
    kube = f'[[kubernetes]]\ncontext = "{urls["context"]}"\nkubeconfig = "{urls["kubeconfig"]}"\n'
    out = {}
    for name, text in (("ray", ray), ("kfp", kfp), ("kubernetes", kube), ("all three", ray + kfp + kube)):
        out[name] = tmp / f"{name.replace(' ', '-')}.toml"
        out[name].write_text(text)
    return out


def peers(urls: dict, tmp: Path) -> dict[str, list[list[str]]]:
    bindir = Path(PY).parent
    kfp = (f"import kfp\nc = kfp.Client(host={urls['kfp']!r}, existing_token={urls['kfp_token']!r})\n"
           f"for ns in {urls['kfp_ns']!r}: c.list_runs(namespace=ns)\n")
    kubectl = shutil.which("kubectl") or "/usr/bin/kubectl"
    kube = [[kubectl, "--kubeconfig", urls["kubeconfig"], "--context", urls["context"], *what]
            for what in (["get", "nodes"], ["get", "pods", "-A"])]
    out = {"ray": [[str(bindir / "ray"), "job", "list", "--address", urls["ray"]]],
           "kfp": [[PY, "-c", kfp]], "kubernetes": kube}
    out["all three"] = out["ray"] + out["kfp"] + out["kubernetes"]
    return out


def main() -> None:
    argv = sys.argv[1:]
    before = argv[argv.index("--before") + 1] if "--before" in argv else None
    args = [a for a in argv if not a.startswith("--") and a != before]
    repeats = int(args[0]) if args else 5
    compile_bytecode()
    tmp = Path(tempfile.mkdtemp(prefix="mltop-bench-"))
    server = subprocess.Popen([PY, "-c", SERVE], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        urls = json.loads(server.stdout.readline())
        env = {**os.environ, "MLTOP_STATE_DB": str(tmp / "state.sqlite3"), "MLTOP_LOG": ""}
        env.pop("MLTOP_LOG")
        mltop = [PY, "-m", "mltop", "--once", "--json"]
        others = peers(urls, tmp) if "--peers" in sys.argv else {}
        names = ["mltop"] + (["before"] if before else []) + (["peer"] if others else [])
        print(f"{'':<12}" + "".join(f" | {n + ' wall/cpu ms, MiB':<27}" for n in names) + f"  (medians of {repeats})")
        for name, path in configs(urls, tmp).items():
            mine = {**env, "MLTOP_CONFIG": str(path)}
            variants = [([mltop], mine, None)]
            if before:
                variants.append(([mltop], {**mine, "PYTHONPATH": before}, before))
            if name in others:
                variants.append((others[name], env, None))
            line = f"{name:<12}"
            for wall, cpu, rss in measure(variants, repeats):
                line += f" | {wall * 1000:>7.0f} {cpu * 1000:>7.0f} {rss:>6.0f}      "
            print(line, flush=True)
    finally:
        server.stdin.close()
        server.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)
    start = time.perf_counter()
    subprocess.run([PY, "-c", "import mltop.tui.app"], check=True)
    print(f"import mltop.tui.app: {(time.perf_counter() - start) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
