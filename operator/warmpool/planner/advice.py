"""The replay chooser on top of the histogram plan: once a full day of history is logged (so the coming
cooldown can be read off the same hours yesterday), the IP targets come from the replay instead of the
histograms, and a rescue is called off while the replay finds the values in effect serve the pods. Before that,
and under subnet pressure, the histogram plan stands as it is.

Pure: the caller keeps the `ReplayPlanner` between calls (the step's policy memory) and feeds it each snapshot.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from warmpool.api.v1alpha1 import Variable, WarmPoolPolicySpec, parse_duration
from warmpool.ipamd.env import MINIMUM_IP_TARGET, WARM_IP_TARGET
from warmpool.ipamd.limits import InstanceLimits
from warmpool.ipamd.safety import check_env
from warmpool.ipamd.version import CniVersion
from warmpool.planner.plan import Recommendation
from warmpool.planner.replay import DAY, DEFAULT_EC2_CALLS_PER_NODE_HOUR, Bounds, Choice, ReplayPlanner

NO_MAX_WARM = 64  # WARM_IP_TARGET beyond this buys nothing a whole ENI would not
NO_MAX_MINIMUM = 1000


def bounds(spec: WarmPoolPolicySpec) -> Bounds:
    """The policy's bounds on the IP targets; (0, 0) for a target the policy does not manage."""

    def of(v: Variable, no_max: int) -> tuple[int, int]:
        b = spec.bounds(v)
        if b is None:
            return 0, 0
        return b.min, b.max if b.max is not None else no_max

    return Bounds(of(Variable.WARM_IP_TARGET, NO_MAX_WARM), of(Variable.MINIMUM_IP_TARGET, NO_MAX_MINIMUM))


def refine(
    rec: Recommendation,
    planner: ReplayPlanner,
    spec: WarmPoolPolicySpec,
    limits: Mapping[str, InstanceLimits],
    current_env: Mapping[str, str],
    now: float,
    cni_version: CniVersion | None = None,
    ec2_budget: float = DEFAULT_EC2_CALLS_PER_NODE_HOUR,
    min_history: float = DAY,
) -> Recommendation:
    """`rec` with the replay's IP targets and reasons when the replay has a say (see the module doc)."""
    managed = {Variable.WARM_IP_TARGET, Variable.MINIMUM_IP_TARGET} & set(rec.values)
    if not managed or rec.subnet_pressure or planner.log.span < min_history:
        return rec
    choice = planner.advise(
        rec.mode,
        limits,
        current_env,
        bounds(spec),
        spec.churn.burst_quantile,
        parse_duration(spec.rollout.cooldown),
        now,
        ec2_budget=ec2_budget,
        min_history=min_history,
    )
    if choice is None:
        return rec
    rescue = None if _serves(choice, spec.churn.burst_quantile) else rec.rescue
    if choice.env is None:
        return dataclasses.replace(rec, rescue=rescue)
    values = dict(rec.values)
    reasons = dict(rec.reasons)
    for v in managed:
        values[v] = int(choice.env.get(v.value, "0"))
        reasons[v] = _reason(choice)
    env = {**current_env, **{v.value: str(n) for v, n in values.items()}}
    types = {n for n in limits}
    if not check_env(env, [limits[t] for t in sorted(types)], cni_version, written=[v.value for v in values]).safe:
        return dataclasses.replace(rec, rescue=rescue)  # e.g. the #1872 cap binds on this VPC CNI version
    return dataclasses.replace(rec, values=values, reasons=reasons, rescue=rescue)


def _serves(choice: Choice, quantile: float) -> bool:
    """The values in effect kept waits within the bound on the replayed history."""
    now = choice.current
    return (
        now is not None
        and now.complete
        and now.waited <= choice.default.waited + (1 - quantile) * choice.default.starts
    )


def _reason(choice: Choice) -> str:
    out = choice.outcome
    assert out is not None
    env = choice.env or {}
    setting = ",".join(f"{k}={env[k]}" for k in (WARM_IP_TARGET, MINIMUM_IP_TARGET) if k in env) or "IP targets 0"
    return (
        f"{setting}: replayed over the last hour and the coming cooldown as it was a day ago, the fewest idle IPs "
        f"({out.idle_ips:.1f} a node, default {choice.default.idle_ips:.1f}) with {out.waited} of {out.starts} pod "
        f"starts waiting (default {choice.default.waited}) and {out.ec2_calls_per_node_hour:.1f} EC2 calls a "
        f"node-hour"
    )
