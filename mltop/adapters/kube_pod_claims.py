"""The DRA ResourceClaims a pod uses (backend-apis.md C.8), for the pod's compact record.

Its own module so that `kube_parse` (pods) and `kube_dra` (slices, claims) need not import each
other. Total on any JSON value: entries that cannot be read are left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mltop.adapters.values import mapping, sequence


def _name(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def pod_claims(spec: Mapping[str, Any], status: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """(reference name, ResourceClaim name) per `spec.resourceClaims[]` entry. A claim made from a
    template is named in `status.resourceClaimStatuses[]` once the claim controller made it; until
    then its name is "" (nothing to wait on yet that mltop could read)."""
    generated = {}
    for entry in sequence(mapping(status).get("resourceClaimStatuses")):
        entry = mapping(entry)
        ref, claim = _name(entry.get("name")), _name(entry.get("resourceClaimName"))
        if ref and claim:
            generated[ref] = claim
    claims = []
    for entry in sequence(mapping(spec).get("resourceClaims")):
        entry = mapping(entry)
        ref = _name(entry.get("name"))
        if ref is None:
            continue
        claims.append((ref, _name(entry.get("resourceClaimName")) or generated.get(ref, "")))
    return tuple(claims)
