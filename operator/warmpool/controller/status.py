"""Turning a plan and a rollout decision into the policy's status (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from warmpool.api.v1alpha1 import Variable, summarize
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


def parse_timestamp(text: str | None) -> float | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


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
