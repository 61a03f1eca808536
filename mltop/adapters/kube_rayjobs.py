"""KubeRay RayJobs on a Kubernetes source: listed once per poll, shown as queue rows (kuberay_jobs.py),
and deleted as their cancel.

A cluster without the RayJob CRD answers the list with 404: that is "no RayJobs", silently, and the
source shows exactly what it showed before. Any other failure to list them (403 where RBAC does
not let you list rayjobs, a broken answer) leaves them out with one line on the source's status;
the rest of the cluster still shows.

The cancel is `DELETE .../rayjobs/<name>` with `propagationPolicy: Background`, as `kubectl delete`
sends it, and a `uid` precondition: only the RayJob the row showed is deleted, never a new one
made under the same name since (the API server answers 409). What the outcome says is what the
API server accepted ("deletion requested"); the row shows STOP SENT until the RayJob is gone or
reports an end.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import ProtocolError, ReadTimeoutError

from mltop.adapters.blocking import in_thread
from mltop.adapters.kube_errors import kube_error, status_message
from mltop.adapters.kube_parse import Unreadable
from mltop.adapters.kuberay_jobs import parse_rayjob_id, rayjob_row
from mltop.adapters.values import Skips, mapping
from mltop.errors import Conflict, OutcomeUnknown, SourceError, Unauthorized, Unreachable
from mltop.model import ActionOutcome, Job

GROUP, VERSION, PLURAL = "ray.io", "v1", "rayjobs"
REQUEST_TIMEOUT = (5, 30)  # (connect, read) seconds


class RayJobs:
    """The RayJobs of one Kubernetes source. `list_custom(group, version, plural)` is the source's
    bounded CRD list (an empty list on 404); `allowed(verb, group, resource, sub, ns)` its
    remembered SelfSubjectAccessReview."""

    def __init__(self, custom: k8s.CustomObjectsApi, cluster: str, list_custom: Callable[..., list[dict[str, Any]]],
                 allowed: Callable[..., bool]) -> None:
        self._custom = custom
        self.cluster = cluster
        self._list = list_custom
        self._allowed = allowed
        self._uids: dict[str, str] = {}  # row id -> the uid of the RayJob that row showed
        self.action_deadline = 40.0

    # -- reading ------------------------------------------------------------------------------

    def rows(self, rayclusters: list[dict[str, Any]], skips: Skips) -> tuple[Job, ...]:
        """The RayJobs as queue rows; none when the CRD is not installed. Blocking: a poll's thread."""
        try:
            items = self._list(GROUP, VERSION, PLURAL)
        except SourceError as exc:
            skips.add(f"RayJobs not read: {exc}")
            return ()
        clusters = {}
        for rc in rayclusters:
            meta = mapping(mapping(rc).get("metadata"))
            if isinstance(meta.get("name"), str):
                clusters[(meta.get("namespace") or "default", meta["name"])] = rc
        out, uids = [], {}
        for obj in items:
            try:
                job = rayjob_row(obj, clusters, self.cluster)
            except Unreadable as exc:
                skips.add(f"{self.cluster}: {exc}")
                continue
            uid = mapping(obj.get("metadata")).get("uid")
            if isinstance(uid, str) and uid:
                uids[job.id] = uid
            out.append(self._with_permission(job))
        self._uids = uids
        return tuple(out)

    def _with_permission(self, job: Job) -> Job:
        if not job.cancellable or self._allowed("delete", GROUP, PLURAL, "", job.namespace or "default"):
            return job
        return replace(job, cancellable=False, not_cancellable_because=(
            f"your credentials may not delete rayjobs in namespace {job.namespace} (RBAC)"))

    # -- cancel -------------------------------------------------------------------------------

    async def cancel(self, job_id: str) -> ActionOutcome:
        """Delete the RayJob of a `kuberay` row, in a thread with a deadline."""
        target = parse_rayjob_id(job_id)
        if target is None:
            raise Conflict(f"{self.cluster}: {job_id} is not a RayJob; mltop cancels only RayJobs on Kubernetes")
        sent = threading.Event()
        what = f"{self.cluster}: RayJob {target[0]}/{target[1]}"
        try:
            return await in_thread(self._delete, job_id, target, sent, timeout=self.action_deadline,
                                   name="mltop-kube-rayjob-delete")
        except asyncio.TimeoutError:
            if not sent.is_set():
                raise Unreachable(f"{what}: no answer within {self.action_deadline:.0f}s; nothing was sent") from None
            raise OutcomeUnknown(f"{what}: the deletion was sent but no answer came back within "
                                 f"{self.action_deadline:.0f}s; check the cluster (the next refresh shows it)") from None

    def _delete(self, job_id: str, target: tuple[str, str], sent: threading.Event) -> ActionOutcome:
        namespace, name = target
        what = f"{self.cluster}: RayJob {namespace}/{name}"
        uid = self._uids.get(job_id)
        body: dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background"}
        if uid:
            body["preconditions"] = {"uid": uid}
        sent.set()
        try:
            answer = self._custom.delete_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name, body=body, _request_timeout=REQUEST_TIMEOUT)
        except ApiException as exc:
            raise _refused(exc, what) from None
        except (ReadTimeoutError, ProtocolError) as exc:  # sent, and no answer: it may have been deleted
            raise OutcomeUnknown(f"{what}: the deletion was sent but no answer came back ({type(exc).__name__}); "
                                 "the outcome is unknown: check the cluster (the next refresh shows it)") from None
        except Exception as exc:
            raise kube_error(exc, what) from None
        finalizing = bool(mapping(mapping(answer).get("metadata")).get("deletionTimestamp"))
        later = "; KubeRay stops the Ray job before it goes" if finalizing else ""
        return ActionOutcome(True, f"{what}: deletion requested (propagationPolicy Background, accepted by the "
                                   f"API server){later}")


def _refused(exc: ApiException, what: str) -> SourceError:
    """403, 404 and 409 in one line each; the rest as every Kubernetes error is told."""
    message = status_message(exc)
    if exc.status == 403:
        return Unauthorized(f"{what}: not deleted: forbidden (403): {message}")
    if exc.status == 404:
        return Conflict(f"{what}: already gone (404): nothing was deleted")
    if exc.status == 409:
        return Conflict(f"{what}: not deleted: it changed since it was shown (409: {message}); refreshed: look again")
    return kube_error(exc, what)

