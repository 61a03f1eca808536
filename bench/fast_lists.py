"""Faster list pages for the fakes at size, same answers.

The fakes filter and sort every object for every page: at 50,000 pods a page of 500 costs the fake
Kubernetes API server 0.15 s (15 s for one `kubectl get pods -A`), and a page of KFP runs at
200,000 runs over a second. A real API server answers lists from its watch cache and KFP from an
indexed database, so the clients, not the fake, would be what a benchmark measures. `install()`
keeps one filtered, sorted snapshot per list (per resourceVersion for Kubernetes, per store
generation for KFP) and cuts pages from it: the same items, order, tokens and totals.
"""

from __future__ import annotations

import bisect
import json
from collections import OrderedDict
from typing import Any

from mltop.demo import kfp_api, kube_api

_KEEP = 8  # snapshots kept: a paged list made during churn keeps reading its own resourceVersion


class _Lru(OrderedDict):
    def put(self, key: Any, value: Any) -> Any:
        self[key] = value
        while len(self) > _KEEP:
            self.popitem(last=False)
        return value


def install_kube() -> None:
    """Wrap kube_api's matcher (to tag each predicate with what it selects) and list."""
    original_matcher, original_list = kube_api._matcher, kube_api._list
    cache = _Lru()

    def matcher(res: Any, namespace: str | None, query: Any) -> Any:
        matches = original_matcher(res, namespace, query)
        matches.bench_key = (res.api_version, res.kind, namespace,  # type: ignore[attr-defined]
                             query.get("labelSelector", ""), query.get("fieldSelector", ""))
        return matches

    def list_(store: Any, res: Any, matches: Any, query: Any) -> dict[str, Any]:
        key = getattr(matches, "bench_key", None)
        limit_text = query.get("limit", "0") or "0"
        if key is None or not limit_text.isdigit():
            return original_list(store, res, matches, query)
        rv, after = store.resource_version, None
        if query.get("continue"):
            rv, after = kube_api._decode_continue(query["continue"])
        entry = cache.get((rv, key))
        if entry is None:
            if rv != store.resource_version:
                return original_list(store, res, matches, query)  # an old snapshot: the fake's own way
            with store._lock:
                items = sorted((o for o in store._objects.values() if matches(o)), key=kube_api._sort_key)
            entry = cache.put((rv, key), (items, [kube_api._sort_key(o) for o in items]))
        items, keys = entry
        start = 0 if after is None else _first_after(keys, after)
        limit = int(limit_text)
        page = items[start:start + limit] if limit else items[start:]
        metadata: dict[str, Any] = {"resourceVersion": str(rv)}
        if limit and start + limit < len(items):
            metadata["continue"] = kube_api._encode_continue(rv, kube_api._sort_key(page[-1]))
        return {"apiVersion": res.api_version, "kind": f"{res.kind}List", "metadata": metadata, "items": page}

    kube_api._matcher, kube_api._list = matcher, list_


def _first_after(keys: list, after: Any) -> int:
    return bisect.bisect_right(keys, tuple(after))


def install_kfp(generation: list[int], frozen: set[str]) -> None:
    """Cache each run list's filtered, sorted rows. Runs in `frozen` (the seeded finished ones) never
    change: they are filtered and sorted once per query; the others (the active runs, the churn's)
    are redone whenever `generation[0]` (bumped on every change) moves, and merged in."""
    original = kfp_api._page
    frozen_rows, merged = _Lru(), _Lru()

    def page(records: list, listable: Any, opts: Any) -> tuple[list, int, str]:
        if listable is not kfp_api.RUN_LISTABLE:  # experiments, pipelines: few, served by the fake as is
            return original(records, listable, opts)
        token = opts.token
        column, desc = str(token["SortByFieldName"]), bool(token.get("IsDesc"))
        query = (id(listable), column, desc, json.dumps(token.get("Filter"), sort_keys=True),
                 records[0].get("namespace") if records else None, len(records))
        entry = merged.get((generation[0], query))
        if entry is None:
            base = frozen_rows.get(query[:-1])
            if base is None:
                base = frozen_rows.put(query[:-1], _sorted(original, [r for r in records if r["run_id"] in frozen],
                                                           listable, opts, column))
            hot = _sorted(original, [r for r in records if r["run_id"] not in frozen], listable, opts, column)
            pairs = sorted(base + hot, key=lambda pair: pair[0], reverse=desc)  # two sorted runs: a linear merge
            entry = merged.put((generation[0], query), ([row for _, row in pairs], [pos for pos, _ in pairs]))
        rows, positions = entry
        cursor = (token.get("SortByFieldValue"), token.get("KeyFieldValue"))
        start = 0
        if cursor[0] is not None and cursor[1] is not None:
            start = next((i for i, p in enumerate(positions) if (p <= cursor if desc else p >= cursor)), len(rows))
        cut, rest = rows[start:start + opts.page_size], start + opts.page_size < len(rows)
        next_token = ""
        if rest:
            sort_value, key_value = positions[start + opts.page_size]
            next_token = kfp_api._encode_token({**token, "SortByFieldValue": sort_value, "KeyFieldValue": key_value})
        return cut, len(rows), next_token

    kfp_api._page = page


def _sorted(original: Any, records: list, listable: Any, opts: Any, column: str) -> list[tuple[Any, dict]]:
    """(position, row) for the rows the query selects, in its order (the fake's own filter and sort)."""
    if not records:
        return []
    rows, _, _ = original(records, listable, _Everything(opts))
    return [((listable.lookup(r, column), listable.lookup(r, listable.key_field)), r) for r in rows]


class _Everything:
    """The list options of a page, asking for every row from the start (the snapshot)."""

    def __init__(self, opts: Any) -> None:
        self.page_size = 10**12
        self.token = {**opts.token, "SortByFieldValue": None, "KeyFieldValue": None}
