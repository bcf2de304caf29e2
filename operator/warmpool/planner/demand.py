"""Stage "demand": how many spare IPs a node needs, and the raw value of each variable that holds them.

Per pod start, the demand is the starts on its node in the burst window plus the IPs still cooling then (they
count as available but cannot be handed out: IP_COOLDOWN_PERIOD, VPC CNI issues #1700, #2896), leaving out
starts on nodes that needed no more IPs than MINIMUM_IP_TARGET holds (the minimum serves those). Before any
demand is measured, the covered burst of starts alone. Plus the policy's headroom.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from warmpool.api.v1alpha1 import Variable, WarmPoolPolicySpec
from warmpool.ipamd.env import IpamdTargets
from warmpool.ipamd.limits import IPS_PER_PREFIX, IpMode
from warmpool.ipamd.pool import ip_targets_total
from warmpool.planner.caps import Caps
from warmpool.planner.churn import ChurnStats


@dataclass(frozen=True, slots=True)
class Demand:
    covered: int  # usable IPs per node at the policy's quantile
    headroom: int
    minimum: int  # the MINIMUM_IP_TARGET that serves part of it (chosen, or the one in effect)
    raw: dict[Variable, tuple[int, str]]  # every variable's value before bounds and limits, and why

    @property
    def need(self) -> int:
        return self.covered + self.headroom


def demand(
    spec: WarmPoolPolicySpec,
    stats: ChurnStats,
    mode: IpMode,
    managed: Sequence[Variable],
    current: IpamdTargets,
    caps: Caps,
) -> Demand:
    # The minimum ipamd will hold on every node, as far as the policy and the limits let it be written: starts
    # on a node that needs no more IPs than that are served by the minimum, not by the warm target.
    minimum, minimum_why = current.minimum_ip, ""
    if Variable.MINIMUM_IP_TARGET in managed:
        minimum, minimum_why = choose_minimum(spec, stats, mode, caps.minimum_ip, caps.warm_ip, managed)
    if stats.demand_samples > 0:
        covered = stats.demand_with_minimum(minimum)
        served = " not served by the minimum" if covered < stats.covered_demand else ""
        extra = headroom(spec, covered)
        burst = (
            f"the burst seen by the p{pct(stats.quantile)} pod start{served}: {covered} usable IPs per node "
            f"(starts in {stats.window:g}s plus IPs still in the {stats.cooldown:g}s cooldown), plus {extra} "
            "headroom"
        )
    else:
        covered = stats.covered_burst
        extra = headroom(spec, covered)
        burst = (
            f"the p{pct(stats.quantile)} burst of {covered} pod starts per node in {stats.window:g}s "
            f"plus {extra} headroom"
        )
    need = covered + extra
    # WARM_ENI_TARGET only applies in secondary-IP mode, so one ENI is counted in IPs there.
    enis = math.ceil(need / caps.eni_ips)
    prefixes = math.ceil(need / IPS_PER_PREFIX)
    raw = {
        Variable.WARM_IP_TARGET: (need, f"{need} IPs cover {burst}"),
        Variable.MINIMUM_IP_TARGET: (minimum, minimum_why),
        Variable.WARM_ENI_TARGET: (
            enis,
            f"{enis} ENIs of {caps.eni_ips} IPs ({caps.smallest.instance_type}) hold {need} IPs covering {burst}",
        ),
        Variable.WARM_PREFIX_TARGET: (
            prefixes,
            f"{prefixes} prefixes of {IPS_PER_PREFIX} IPs hold {need} IPs covering {burst}",
        ),
    }
    return Demand(covered=covered, headroom=extra, minimum=minimum, raw=raw)


def headroom(spec: WarmPoolPolicySpec, covered: int) -> int:
    return spec.churn.headroom_ips + math.ceil(spec.churn.headroom_ratio * covered)


def choose_minimum(
    spec: WarmPoolPolicySpec,
    stats: ChurnStats,
    mode: IpMode,
    minimum_cap: int,
    warm_cap: int,
    managed: Sequence[Variable],
) -> tuple[int, str]:
    """MINIMUM_IP_TARGET and why. A minimum serves the pod starts on nodes that need no more IPs than it
    holds, so the warm target can be smaller; but it also holds IPs on every node with fewer pods. With both
    IP targets managed and the demand filed by the IPs nodes needed, each minimum where the covered demand
    drops is a candidate (and the typical density, and none); the one whose warm target covers most of the
    demand within the caps, then holds the fewest spare IPs over the observed pods per node, wins.
    Otherwise the typical density: new nodes then boot with the IPs a typical node uses."""
    typical = clamp(spec, Variable.MINIMUM_IP_TARGET, stats.pods_per_node, minimum_cap)
    typical_why = (
        f"{stats.pods_per_node} IPs: a typical node runs {stats.pods_per_node} pods, "
        "so new nodes boot with them allocated"
    )
    if (
        Variable.WARM_IP_TARGET not in managed
        or stats.demand_samples <= 0
        or not stats.demand_by_minimum
        or not stats.density
    ):
        return typical, typical_why
    candidates = sorted(
        {typical, clamp(spec, Variable.MINIMUM_IP_TARGET, 0, minimum_cap)}
        | {clamp(spec, Variable.MINIMUM_IP_TARGET, m, minimum_cap) for m, _ in stats.demand_by_minimum}
    )
    scored = []
    for m in candidates:
        covered = stats.demand_with_minimum(m)
        need = covered + headroom(spec, covered)
        warm = max(clamp(spec, Variable.WARM_IP_TARGET, need, warm_cap), 1)
        spare = mean_spare(stats, mode, m, warm)
        # Uncovered demand first (a cap the warm target cannot pass), then spare IPs, then the lower minimum.
        scored.append((max(need - warm, 0), round(spare, 6), m, warm))
    short, spare, minimum, warm = min(scored)
    if minimum == typical and len(candidates) == 1:
        return typical, typical_why
    why = (
        f"{minimum} IPs: with WARM_IP_TARGET {warm} it holds {spare:.1f} spare IPs per node over the observed "
        f"pods per node, the fewest of {len(candidates)} candidate minimums"
    )
    if short:
        why += f" ({short} IPs of the demand stay uncovered at the caps)"
    return minimum, why


def mean_spare(stats: ChurnStats, mode: IpMode, minimum: int, warm: int) -> float:
    """Spare IPs per node under these IP targets, averaged over the observed pods per node (the warm target
    alone when no density was observed)."""
    total = math.fsum(w for _, w in stats.density)
    if total <= 0:
        return float(warm)
    return math.fsum(w * _ip_targets_spare(mode, minimum, warm, pods) for pods, w in stats.density) / total


def _ip_targets_spare(mode: IpMode, minimum: int, warm: int, pods: int) -> int:
    """Spare IPs (free plus cooling) on a node with `pods` pods under the IP targets, before any instance
    limit: the density is cluster-wide, not a node of one type."""
    return ip_targets_total(mode, IpamdTargets(warm_ip=warm, minimum_ip=minimum), pods) - pods


def clamp(spec: WarmPoolPolicySpec, v: Variable, value: int, cap: int) -> int:
    """`value` within the policy's bounds for `v`, then within `cap`: the bounds and limits stages in one."""
    bounds = spec.bounds(v)
    if bounds is not None:
        value = max(value, bounds.min)
        if bounds.max is not None:
            value = min(value, bounds.max)
    return min(value, cap)


def pct(q: float) -> str:
    return f"{q * 100:g}"
