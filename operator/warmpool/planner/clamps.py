"""Stages "bounds", "limits" and "safety": each clamps the draft values one way and says why.

Every stage also keeps a floor per variable: the lowest value the subnet budget may lower it to later.
Bounds first (the policy's min/max), then the instance caps (they win over the policy's min: a value a node
cannot hold is never written), then ipamd's safety (never MINIMUM_IP_TARGET > 0 with WARM_IP_TARGET 0, never
all targets 0 in prefix mode), which raises both the value and its floor.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from warmpool.api.v1alpha1 import Variable, WarmPoolPolicySpec
from warmpool.ipamd.entrypoint import prefix_targets_all_zero
from warmpool.ipamd.env import parse_env
from warmpool.ipamd.limits import IpMode
from warmpool.ipamd.safety import merge_env
from warmpool.planner.caps import Caps


@dataclass(frozen=True, slots=True)
class Draft:
    """The managed variables' values so far, the reasons behind each, and the floor each may be lowered to."""

    values: dict[Variable, int] = field(default_factory=dict)
    reasons: dict[Variable, tuple[str, ...]] = field(default_factory=dict)
    floors: dict[Variable, int] = field(default_factory=dict)

    def set(self, v: Variable, value: int, note: str) -> Draft:
        """`v` changed to `value` because of `note`."""
        return Draft({**self.values, v: value}, {**self.reasons, v: (*self.reasons.get(v, ()), note)}, self.floors)

    def with_floor(self, v: Variable, floor: int) -> Draft:
        return Draft(self.values, self.reasons, {**self.floors, v: floor})

    def explain(self) -> dict[Variable, str]:
        return {v: "; ".join(r) for v, r in self.reasons.items()}


def within_bounds(
    spec: WarmPoolPolicySpec, managed: Sequence[Variable], raw: Mapping[Variable, tuple[int, str]]
) -> Draft:
    """The raw values of the managed variables, within the policy's min/max; each floor is the policy's min."""
    draft = Draft()
    for v in managed:
        value, why = raw[v]
        draft = Draft({**draft.values, v: value}, {**draft.reasons, v: (why,)}, draft.floors)
        bounds = spec.bounds(v)
        lo, hi = (bounds.min, bounds.max) if bounds is not None else (0, None)
        if value < lo:
            draft = draft.set(v, lo, f"raised to the policy minimum {lo}")
        if hi is not None and value > hi:
            draft = draft.set(v, hi, f"lowered to the policy maximum {hi}")
        draft = draft.with_floor(v, lo)
    return draft


def within_limits(draft: Draft, caps: Caps) -> Draft:
    """Every value and floor within what the smallest instance type in scope can hold."""
    for v, value in draft.values.items():
        cap = caps.cap(v)
        if value > cap:
            draft = draft.set(v, cap, f"capped at {cap}, {caps.why(v)}")
        draft = draft.with_floor(v, min(draft.floors.get(v, 0), cap))
    return draft


def safe_floors(draft: Draft, mode: IpMode, current_env: Mapping[str, str]) -> Draft:
    """Settings ipamd must never get; raises both the value and its floor so the budget stage keeps them."""

    def raise_to_one(d: Draft, v: Variable, why: str) -> Draft:
        if d.values[v] < 1:
            d = d.set(v, 1, f"raised to 1: {why}")
        return d.with_floor(v, max(d.floors.get(v, 0), 1))

    if Variable.WARM_IP_TARGET in draft.values:
        # 0 is never right for a managed WARM_IP_TARGET: with a minimum set, nodes freeze at the minimum;
        # without one, ipamd falls back to whole ENIs or prefixes (the whole-ENI stage decides that, on purpose).
        # The floor also keeps the node's spare IPs monotone in every value, which the budget search relies on.
        minimum_set = parse_env(current_env).with_values(draft.values).minimum_ip > 0
        draft = raise_to_one(
            draft,
            Variable.WARM_IP_TARGET,
            "with MINIMUM_IP_TARGET set, 0 freezes nodes at the minimum"
            if minimum_set or Variable.MINIMUM_IP_TARGET in draft.values
            else "0 hands the pool back to WARM_ENI_TARGET / WARM_PREFIX_TARGET",
        )
    if mode is IpMode.PREFIX:
        # Whatever the budget stage lowers the managed values to (their floors, at worst 0), the entries left
        # as they are must keep one target non-zero both for the entrypoint (text compared with "0": " 5" and
        # "+5" count as zero) and for ipamd (parsed: "00" and "abc" are 0).
        zeroed = merge_env(current_env, dict.fromkeys(draft.values, 0))
        others = parse_env(zeroed)
        if prefix_targets_all_zero(zeroed) or (others.warm_prefix == 0 and not others.ip_targets_defined):
            why = "aws-node does not start in prefix mode with every target 0"
            if Variable.WARM_PREFIX_TARGET in draft.values:
                draft = raise_to_one(draft, Variable.WARM_PREFIX_TARGET, why)
            elif Variable.WARM_IP_TARGET in draft.values:
                draft = raise_to_one(draft, Variable.WARM_IP_TARGET, why)
    return draft
