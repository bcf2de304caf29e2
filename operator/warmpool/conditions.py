"""metav1.Condition bookkeeping: a transition time changes only when the status does."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class ConditionUpdate:
    type: str
    status: bool | None  # None = Unknown
    reason: str
    message: str = ""


def _status_text(status: bool | None) -> str:
    return "Unknown" if status is None else ("True" if status else "False")


def merge_conditions(
    current: list[dict[str, Any]], updates: list[ConditionUpdate], now: datetime, generation: int | None
) -> list[dict[str, Any]]:
    """Apply updates to a condition list; conditions not mentioned are kept as they are."""
    by_type = {c.get("type"): dict(c) for c in current}
    for update in updates:
        status = _status_text(update.status)
        previous = by_type.get(update.type)
        changed = previous is None or previous.get("status") != status
        by_type[update.type] = {
            "type": update.type,
            "status": status,
            "reason": update.reason,
            "message": update.message[:32000],
            "lastTransitionTime": (
                now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if changed else previous.get("lastTransitionTime")  # type: ignore[union-attr]
            ),
            "observedGeneration": generation,
        }
    order = ["Ready", "Applied", "DryRun", "Conflict", "SubnetPressure", "Degraded", "ForeignOwner", "TargetInvalid"]
    return sorted(by_type.values(), key=lambda c: (order.index(c["type"]) if c["type"] in order else 99, c["type"]))
