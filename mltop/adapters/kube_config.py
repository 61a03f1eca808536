"""Which cluster a kubeconfig names, and a client for it, checked as kubectl would read it: every
problem is one line naming the file (KubeConfigError), never a traceback and never a block.
"""

from __future__ import annotations

import os
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.config.config_exception import ConfigException

from mltop.adapters.kube_target import KubeTarget
from mltop.local_files import check_regular, read_problem, read_regular


class KubeConfigError(Exception):
    """The kubeconfig or context cannot be used; one line for the user."""


def check_kubeconfig(target: KubeTarget) -> str:
    """Read each kubeconfig file the client would read (every existing path of a colon-separated
    list, skipping missing ones as kubectl does) and refuse, in one line naming the file, what
    would block it (a FIFO, here or as the context's user's tokenFile) or crash it (not UTF-8,
    not YAML, not a mapping). Returns the `config_file` to hand the client: resolved here, not
    left to the client, whose default is KUBECONFIG as it was when it was imported."""
    from_env = not target.kubeconfig and bool(os.environ.get("KUBECONFIG"))
    spec = target.kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
    docs = _read_docs(spec, from_env)
    _check_token_file(docs, target)
    return spec


def _read_docs(spec: str, from_env: bool) -> list[tuple[str, dict[str, Any]]]:
    """(path, document) of each kubeconfig file in `spec`; KubeConfigError for one that is not one."""
    import yaml  # the client's own YAML reader

    docs: list[tuple[str, dict[str, Any]]] = []
    for part in spec.split(os.pathsep):  # the client splits on ':' (';' on Windows)
        if not part:
            continue
        path = os.path.expanduser(part)
        label = f"{path} (in KUBECONFIG)" if from_env else path
        try:
            data = read_regular(path)
        except (FileNotFoundError, NotADirectoryError):
            continue  # the client reports it if no file at all is left
        except OSError as exc:
            raise KubeConfigError(f"{label}: {read_problem(exc)}") from None
        try:
            doc = yaml.safe_load(data.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise KubeConfigError(f"{label}: not UTF-8 text (byte {exc.start})") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = " ".join(str(getattr(exc, "problem", None) or "cannot parse").split())
            raise KubeConfigError(f"{label}: not valid YAML ({problem}{at})") from None
        if doc is None:
            raise KubeConfigError(f"{label}: empty, not a kubeconfig")
        if not isinstance(doc, dict):
            raise KubeConfigError(f"{label}: not a kubeconfig (a YAML {type(doc).__name__}, not a mapping)")
        docs.append((path, doc))
    return docs


def _check_token_file(docs: list[tuple[str, dict[str, Any]]], target: KubeTarget) -> None:
    """The context's user's tokenFile, which the client would read (and block on, were it a FIFO)."""
    def named(kind: str, name: Any) -> tuple[str, dict[str, Any]] | None:
        for path, doc in docs:  # the first file that defines a name wins, as the client merges
            items = doc.get(kind)
            for item in items if isinstance(items, list) else ():
                if isinstance(item, dict) and item.get("name") == name:
                    return path, item
        return None

    current = next((doc["current-context"] for _, doc in reversed(docs) if "current-context" in doc), None)
    context = named("contexts", target.context or current)
    body = context[1].get("context") if context else None
    user = named("users", body.get("user")) if isinstance(body, dict) else None
    fields = user[1].get("user") if user else None
    # The client reads tokenFile (relative to the file that defines the user) unless a token is given.
    if isinstance(fields, dict) and isinstance(fields.get("tokenFile"), str) and "token" not in fields:
        token_file = os.path.join(os.path.dirname(os.path.abspath(user[0])), fields["tokenFile"])
        try:
            check_regular(token_file)
        except FileNotFoundError:
            raise KubeConfigError(f"{user[0]}: users.{user[1]['name']}.tokenFile: no such file "
                                  f"{fields['tokenFile']!r}") from None
        except OSError as exc:
            raise KubeConfigError(f"{user[0]}: users.{user[1]['name']}.tokenFile: {fields['tokenFile']!r}: "
                                  f"{exc.strerror or exc}") from None


# What the client raises on a kubeconfig it cannot use: its own ConfigException, and whatever a
# malformed entry makes its parsing code trip over.
_KUBECONFIG_ERRORS = (ConfigException, OSError, ValueError, TypeError, KeyError, AttributeError)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def api_client_for(target: KubeTarget) -> k8s.ApiClient:
    if target.in_cluster:
        try:
            configuration = k8s.Configuration()
            k8s_config.load_incluster_config(client_configuration=configuration)
            return k8s.ApiClient(configuration)
        except _KUBECONFIG_ERRORS as exc:
            raise KubeConfigError(f"in-cluster config: {_one_line(exc)}") from None
    config_file = check_kubeconfig(target)
    try:
        return k8s_config.new_client_from_config(config_file=config_file, context=target.context, persist_config=False)
    except _KUBECONFIG_ERRORS as exc:
        raise KubeConfigError(f"{config_file}: {_one_line(exc)}") from None


def target_name(target: KubeTarget) -> str:
    """What the tables call this cluster: its kubeconfig context."""
    if target.in_cluster:
        return "in-cluster"
    if target.context:
        return target.context
    config_file = check_kubeconfig(target)
    try:
        _, active = k8s_config.list_kube_config_contexts(config_file=config_file)
        return active["name"]
    except _KUBECONFIG_ERRORS as exc:
        raise KubeConfigError(f"{config_file}: {_one_line(exc)}") from None


