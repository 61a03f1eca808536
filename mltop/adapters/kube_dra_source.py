"""Reading DRA (`resource.k8s.io`) for the Kubernetes adapter: which version the cluster serves,
and a watch cache each for ResourceSlices and ResourceClaims (`kube_cache.WatchCache`), read
through the official client's `CustomObjectsApi` (kubernetes 30 has no typed DRA v1 models).

A cluster that serves none of v1, v1beta2, v1beta1 (every one answers 404) has no DRA: nothing
is read or shown, and no error; it is asked again every PROBE_TTL seconds. DRA is an addition to
the source, never its failure: when slices or claims cannot be read (403, a failing watch, no
answer yet), the rest of the cluster still shows and the source's line says what was left out.
"""

from __future__ import annotations

import time
from functools import partial
from typing import Any

from kubernetes.client.exceptions import ApiException

from mltop.adapters.kube_cache import WatchCache
from mltop.adapters.kube_dra import GROUP, VERSIONS, DraView, claim_record, dra_view, slice_record
from mltop.adapters.kube_errors import kube_error
from mltop.adapters.kube_nodes import NodeFacts, node_facts
from mltop.adapters.values import Skips

PROBE_TTL = 300.0  # seconds between asks while DRA is not served
RETRY_TTL = 30.0  # ... after an ask that failed otherwise (403, no answer)
PROBE_TIMEOUT = (5, 15)  # (connect, read) seconds


class DraReader:
    def __init__(self, custom: Any, name: str, *, watch: bool = True) -> None:
        self._custom = custom
        self.name = name
        self.watch = watch  # False: each cache lists once and opens no watch (one snapshot)
        self.version: str | None = None  # the version read; None while DRA is not served (or not known)
        self.slices: WatchCache[Any] | None = None
        self.claims: WatchCache[Any] | None = None
        self._next_probe = 0.0
        self._why_not: str | None = None  # why DRA could not be read at the last ask, if it could not
        self._waited = False  # whether a poll already waited for the caches' first lists

    @property
    def served(self) -> bool:
        return self.version is not None

    def node_record(self, obj: Any) -> NodeFacts | None:
        """The node cache's record: while DRA is served, nodes without extended GPU resources are
        kept too (their GPUs may be in ResourceSlices); `_collect` shows only those that have some."""
        return node_facts(obj, keep_all=self.served)

    def probe(self) -> bool:
        """Find the version served (at most every PROBE_TTL while none is); True when DRA became served."""
        if self.served or time.monotonic() < self._next_probe:
            return False
        try:
            self.version = self._served_version()
            self._why_not = None
        except Exception as exc:  # 403, or unreachable (then the node and pod caches say so too)
            self._why_not = str(kube_error(exc, f"{self.name}: DRA GPUs not counted: resourceslices.{GROUP}"))
        self._next_probe = time.monotonic() + (RETRY_TTL if self._why_not else PROBE_TTL)
        if not self.served:
            return False
        self.slices = self._cache("resourceslices", slice_record)
        self.claims = self._cache("resourceclaims", claim_record)
        return True

    def _cache(self, plural: str, record: Any) -> WatchCache[Any]:
        call = partial(self._custom.list_cluster_custom_object, GROUP, self.version, plural)
        cache: WatchCache[Any] = WatchCache(f"{self.name}: {plural}.{GROUP}", call, record, watch=self.watch)
        cache.start()
        return cache

    def _served_version(self) -> str | None:
        for version in VERSIONS:
            try:
                response = self._custom.list_cluster_custom_object(
                    GROUP, version, "resourceslices", limit=1, _preload_content=False, _request_timeout=PROBE_TIMEOUT)
            except ApiException as exc:
                if exc.status == 404:
                    continue
                raise
            response.release_conn()
            return version
        return None

    def view(self, timeout: float, pods: list[Any]) -> tuple[DraView, Skips]:
        """What the caches hold now (waiting up to `timeout` for their first list), and what was left out."""
        skips = Skips()
        if self._why_not:
            skips.add(self._why_not)
        caches = [c for c in (self.slices, self.claims) if c is not None]
        # Only the first poll waits for the first lists, and only until each lists or fails: a
        # cache that keeps failing must not slow every poll down.
        deadline = time.monotonic() + (0.0 if self._waited else timeout)
        self._waited = bool(caches)
        for cache in caches:
            while not cache.synced.wait(0.05) and cache.error is None and time.monotonic() < deadline:
                pass
        for cache in caches:
            if cache.error is not None or not cache.synced.is_set():
                why = str(cache.error) if cache.error else f"{cache.what}: no answer from the API server yet"
                skips.add(f"{self.name}: DRA GPUs may be missing: {why.removeprefix(self.name + ': ')}")
            left_out = cache.skips()
            skips.count += left_out.count
            skips.reason = skips.reason or left_out.reason
        if not caches:
            return DraView(), skips  # no DRA: every node shows as it did before DRA existed
        return dra_view(self.slices.snapshot() if self.slices else (),
                        self.claims.snapshot() if self.claims else (), pods), skips

    def stop(self) -> None:
        for cache in (self.slices, self.claims):
            if cache is not None:
                cache.stop()
