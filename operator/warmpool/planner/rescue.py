"""Stage "rescue": when the IP targets in effect leave the measured demand uncovered, pods wait for IPs now.
The rescue is the raise-only change `guards.decide` may write within the cooldown: WARM_IP_TARGET raised next
to the minimum in effect, or the recommendation merged into the values in effect (whichever holds fewer spare
IPs), or whole ENIs when no warm target within the cap covers the demand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from warmpool.api.v1alpha1 import Variable, WarmPoolPolicySpec, summarize
from warmpool.ipamd.env import IpamdTargets
from warmpool.ipamd.limits import IpMode
from warmpool.planner.churn import ChurnStats
from warmpool.planner.demand import clamp, headroom, mean_spare
from warmpool.planner.guards import beyond_dead_band

# A rescue (a change within the cooldown) is for pods waiting in numbers: more than this share of pod starts
# finding no free IP, or more than the policy's quantile leaves out when that is larger. A smaller miss waits
# for the cooldown like any other change.
RESCUE_SHARE = 0.01


@dataclass(frozen=True, slots=True)
class Rescue:
    values: dict[Variable, int]
    why: str  # appended to WARM_IP_TARGET's reasons


def starving(stats: ChurnStats, current: IpamdTargets) -> bool:
    """Whether pods wait in numbers under the targets in effect."""
    if not stats.demand_table:
        return True  # no pod stops seen: the pods at past starts are unknown, trust the quantile
    share = stats.uncovered_share(current.minimum_ip, current.warm_ip)
    return share > max(RESCUE_SHARE, 1.0 - stats.quantile)


def plan_rescue(
    spec: WarmPoolPolicySpec,
    stats: ChurnStats,
    mode: IpMode,
    current: IpamdTargets,
    values: Mapping[Variable, int],
    whole_enis: bool,
    warm_cap: int,
) -> Rescue | None:
    if not (current.ip_targets_defined and stats.demand_samples > 0 and Variable.WARM_IP_TARGET in values):
        return None
    # The demand the targets in effect leave uncovered: their minimum serves some starts, their warm target
    # must hold the rest.
    demand_now = stats.demand_with_minimum(current.minimum_ip)
    if current.warm_ip >= demand_now or not starving(stats, current):
        return None
    warm = clamp(spec, Variable.WARM_IP_TARGET, demand_now + headroom(spec, demand_now), warm_cap)
    in_effect = {v: current.get(v) for v in values}
    options: list[tuple[float, dict[Variable, int], str]] = []
    if whole_enis:
        options.append((0.0, dict(values), "whole ENIs cover more"))
    else:
        if warm > current.warm_ip:
            raised = {**in_effect, Variable.WARM_IP_TARGET: warm}
            options.append(
                (mean_spare(stats, mode, current.minimum_ip, warm), raised, f"WARM_IP_TARGET {warm} would cover it")
            )
        merged = {v: max(n, in_effect[v]) for v, n in values.items()}
        if merged != in_effect:
            minimum = merged.get(Variable.MINIMUM_IP_TARGET, current.minimum_ip)
            options.append(
                (
                    mean_spare(stats, mode, minimum, merged[Variable.WARM_IP_TARGET]),
                    merged,
                    f"raising to {summarize(merged)} would cover it",
                )
            )
    # Only a raise worth a rollout counts; the guards hold anything within the dead band anyway.
    options = [
        o
        for o in options
        if any(beyond_dead_band(n, in_effect[v], spec.rollout) for v, n in o[1].items() if n != in_effect[v])
    ]
    if not options:
        return None
    _, rescue, remedy = min(options, key=lambda o: o[0])
    return Rescue(
        rescue,
        f"WARM_IP_TARGET {current.warm_ip} with MINIMUM_IP_TARGET {current.minimum_ip} in effect cover less than "
        f"the measured demand of {demand_now}: pods wait for IPs now, and {remedy}",
    )
