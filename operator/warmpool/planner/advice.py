"""The replay chooser on top of the histogram plan: once `MIN_HISTORY` of pod history is logged, the IP targets
come from the replay instead of the histograms (the last hour, with a margin for the climb until a day is logged;
then also the coming cooldown as it went yesterday), and so does the rescue: a raise of the values in effect when
the replay finds they keep pods waiting or break the EC2 budget by far, none otherwise. Before that, and under
subnet pressure, the histogram plan stands as it is.

Pure: the caller keeps the `ReplayPlanner` between calls (the step's policy memory) and feeds it each snapshot.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

from warmpool.api.v1alpha1 import Variable, WarmPoolPolicySpec, parse_duration
from warmpool.ipamd.env import MINIMUM_IP_TARGET, WARM_IP_TARGET
from warmpool.ipamd.limits import InstanceLimits
from warmpool.ipamd.safety import check_env
from warmpool.ipamd.version import CniVersion
from warmpool.planner.caps import Caps, instance_caps
from warmpool.planner.churn import ChurnStats
from warmpool.planner.demand import headroom
from warmpool.planner.plan import Recommendation
from warmpool.planner.replay import DEFAULT_EC2_CALLS_PER_NODE_HOUR, Bounds, Choice, ReplayPlanner

NO_MAX_WARM = 64  # WARM_IP_TARGET beyond this buys nothing a whole ENI would not
NO_MAX_MINIMUM = 1000
FLOOR_SHARE = 0.5  # of the waits the quantile allows: the histograms' estimate is not the future
MIN_HISTORY = 600.0  # as long as the step's learning gate: the first change already comes from the replay


def bounds(spec: WarmPoolPolicySpec, caps: Caps | None = None) -> Bounds:
    """The policy's bounds on the IP targets, within the instance caps when given (the smallest type's pod IPs,
    the #1872 cap where it applies); (0, 0) for a target the policy does not manage."""

    def of(v: Variable, no_max: int) -> tuple[int, int]:
        b = spec.bounds(v)
        if b is None:
            return 0, 0
        high = b.max if b.max is not None else no_max
        if caps is not None:
            high = max(min(high, caps.cap(v)), b.min)
        return b.min, high

    return Bounds(of(Variable.WARM_IP_TARGET, NO_MAX_WARM), of(Variable.MINIMUM_IP_TARGET, NO_MAX_MINIMUM))


def warm_floor(stats: ChurnStats, share: float = FLOOR_SHARE) -> Callable[[int], int]:
    """The least WARM_IP_TARGET that, next to a MINIMUM_IP_TARGET of m, leaves at most `share` of the policy's
    (1 - quantile) of pod starts uncovered by the histograms (their demand over every node, a day's half-life;
    without pod stops seen, their covered demand for m). A sample's hour holds a few hundred pod starts, too
    few to show a one-in-a-thousand wait: the replay alone would take any warm target its hour did not fault."""
    target = share * (1 - stats.quantile)

    def floor(m: int) -> int:
        if not stats.demand_table:
            return stats.demand_with_minimum(m)
        w = 0
        highest = max(d for _, d, _ in stats.demand_table)
        while w < highest and stats.uncovered_share(m, w) > target:
            w += 1
        return w

    return floor


def _floor(spec: WarmPoolPolicySpec, stats: ChurnStats, ahead: ChurnStats | None) -> Callable[[int], int] | None:
    """The histograms' floor (and the profile's, for the coming cooldown), with the policy's headroom on top as
    the histogram plan adds it."""
    past = warm_floor(stats) if stats.demand_samples > 0 else None
    if past is None and ahead is None:
        return None

    def floor(m: int) -> int:
        covered = max(past(m) if past is not None else 0, ahead.demand_with_minimum(m) if ahead else 0)
        return covered + headroom(spec, covered) if covered > 0 else 0

    return floor


def _ahead_levels(ahead: ChurnStats | None) -> tuple[int, ...]:
    """The minimums at which the profile's coming demand steps down (the last: the most IPs a node needed)."""
    return tuple(m for m, _ in ahead.demand_by_minimum) if ahead is not None else ()


def refine(
    rec: Recommendation,
    planner: ReplayPlanner,
    spec: WarmPoolPolicySpec,
    limits: Mapping[str, InstanceLimits],
    current_env: Mapping[str, str],
    now: float,
    cni_version: CniVersion | None = None,
    ec2_budget: float = DEFAULT_EC2_CALLS_PER_NODE_HOUR,
    min_history: float = MIN_HISTORY,
    ahead: ChurnStats | None = None,
) -> Recommendation:
    """`rec` with the replay's IP targets and reasons when the replay has a say (see the module doc). `ahead`:
    the coming cooldown as the demand profile expects it (`planner.profile.ahead_stats`), which the replay's log
    may not reach (it is not checkpointed): its demand floors the warm target too, and its busiest IPs held are
    a minimum to try."""
    managed = {Variable.WARM_IP_TARGET, Variable.MINIMUM_IP_TARGET} & set(rec.values)
    if not managed or rec.subnet_pressure or planner.log.span < min_history:
        return rec
    known = [limits[t] for t in sorted(limits)]
    caps = instance_caps(known, rec.mode, cni_version) if known else None
    choice = planner.advise(
        rec.mode,
        limits,
        current_env,
        bounds(spec, caps),
        spec.churn.burst_quantile,
        parse_duration(spec.rollout.cooldown),
        now,
        ec2_budget=ec2_budget,
        min_history=min_history,
        warm_floor=_floor(spec, rec.stats, ahead),
        levels=_ahead_levels(ahead),
    )
    if choice is None or choice.env is None:
        return rec
    values = dict(rec.values)
    reasons = dict(rec.reasons)
    for v in managed:
        values[v] = int(choice.env.get(v.value, "0"))
        reasons[v] = _reason(choice)
    rescue = dict(values) if choice.rescue else None
    env = {**current_env, **{v.value: str(n) for v, n in values.items()}}
    types = {n for n in limits}
    if not check_env(env, [limits[t] for t in sorted(types)], cni_version, written=[v.value for v in values]).safe:
        return rec  # e.g. the #1872 cap binds on this VPC CNI version
    return dataclasses.replace(rec, values=values, reasons=reasons, rescue=rescue)


def _reason(choice: Choice) -> str:
    out = choice.outcome
    assert out is not None
    env = choice.env or {}
    setting = ",".join(f"{k}={env[k]}" for k in (WARM_IP_TARGET, MINIMUM_IP_TARGET) if k in env) or "IP targets 0"
    return (
        f"{setting}: replayed over the last hour (and the coming cooldown as it went a day ago), {choice.reason}: "
        f"({out.idle_ips:.1f} a node, default {choice.default.idle_ips:.1f}) with {out.waited} of {out.starts} pod "
        f"starts waiting (default {choice.default.waited}) and {out.ec2_calls_per_node_hour:.1f} EC2 calls a "
        f"node-hour"
    )
