"""Turning a plan and a rollout decision into the policy's status (pure), and keeping that status within what the
CRD's schema accepts: a status the API server refuses (422) would be refused again every interval."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pydantic

from warmpool.api.v1alpha1 import Variable, WarmPoolPolicyStatus, summarize
from warmpool.ipamd.limits import IpMode
from warmpool.planner import Recommendation

_FIELD = {
    Variable.WARM_ENI_TARGET: "WARM_ENI_TARGET",
    Variable.WARM_IP_TARGET: "WARM_IP_TARGET",
    Variable.MINIMUM_IP_TARGET: "MINIMUM_IP_TARGET",
    Variable.WARM_PREFIX_TARGET: "WARM_PREFIX_TARGET",
}


def timestamp(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(text: object) -> float | None:
    """An RFC 3339 time from a status field, or None when it is absent or unreadable."""
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def target_values(values: Mapping[Variable, int], reasons: Mapping[Variable, str]) -> dict[str, Any]:
    return {_FIELD[v]: {"value": n, "reason": reasons.get(v, "")[:1024]} for v, n in values.items()}


def mode_name(mode: IpMode) -> str:
    return "Prefix" if mode is IpMode.PREFIX else "SecondaryIP"


def plan_status(rec: Recommendation) -> dict[str, Any]:
    stats = rec.stats
    window = f"{stats.window:g}s"
    return {
        "mode": mode_name(rec.mode),
        "recommended": target_values(rec.values, rec.reasons),
        "recommendedSummary": summarize(rec.values) or None,
        "nodes": rec.nodes,
        "podsObserved": rec.pods,
        "burst": {
            "window": window,
            "quantile": stats.quantile,
            "covered": float(stats.covered_burst),
            "max": stats.max_burst,
            "podsPerNode": float(stats.pods_per_node),
            "samples": round(stats.burst_samples, 3),
        },
        "subnets": [
            {
                "id": s.subnet_id,
                "zone": s.zone,
                "freeIps": s.free_ips,
                "reserveIps": s.reserve_ips,
                "warmIpsPlanned": s.warm_ips_planned,
                "nodes": s.nodes,
            }
            for s in rec.subnets
        ],
    }


def applied_status(
    current: Mapping[Variable, int], owners: Mapping[str, list[str]], applied_at: float | None
) -> dict[str, Any]:
    """The managed values as the DaemonSet has them now, each with who set it."""
    reasons: dict[Variable, str] = {}
    for v in current:
        who = owners.get(v.value) or ["unknown"]
        if "warmpool" in who:
            reasons[v] = "applied by warmpool" + (f" at {timestamp(applied_at)}" if applied_at else "")
        else:
            reasons[v] = f"set by {', '.join(who)}"
    return {"applied": target_values(current, reasons), "appliedSummary": summarize(current) or None}


INT64 = (-(2**63), 2**63 - 1)


def _out_of_int64(value: Any, path: str) -> list[str]:
    """Paths of integers the API server cannot store (the CRD's integer fields are int64)."""
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [] if INT64[0] <= value <= INT64[1] else [path]
    if isinstance(value, Mapping):
        return [p for k, v in value.items() for p in _out_of_int64(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _out_of_int64(v, f"{path}[{i}]")]
    return []


def fit_status(fields: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The status fields the CRD's schema accepts, and a message for each one left out. The checks are the
    pydantic model the CRD is generated from, plus the int64 range of its integer fields."""
    kept = dict(fields)
    problems = []
    for key in list(kept):
        if key == "checkpoint":  # free-form (x-kubernetes-preserve-unknown-fields)
            continue
        wrong = _out_of_int64(kept[key], key)
        if not wrong:
            try:
                WarmPoolPolicyStatus.model_validate({key: kept[key]})
            except pydantic.ValidationError as error:
                wrong = [f"{key}: {e['msg']}" for e in error.errors()]
        if wrong:
            del kept[key]
            problems.append(f"status.{key} left out, the API server would refuse it ({'; '.join(wrong)})")
    return kept, problems


def merge_patch(stored: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """The stored status after a JSON merge patch (RFC 7386), as the API server applies kopf's status patch:
    objects merge key by key, null deletes, anything else replaces."""
    out = dict(stored)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge_patch(out[key], value)
        else:
            out[key] = value
    return out
