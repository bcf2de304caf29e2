"""Stage "subnet fit": the spare IPs of all nodes drawing from a subnet must fit its free IPs minus the reserve.

Lower MINIMUM_IP_TARGET first (it pre-allocates for pods that have not arrived), then the warm targets (they
cover measured bursts), each no lower than its floor from the earlier stages. What a node holds is ipamd's
steady state (`warmpool.ipamd.pool.steady_state`) in the mode ipamd runs on its type.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from warmpool.api.v1alpha1 import Variable, WarmPoolPolicySpec
from warmpool.ipamd.env import IpamdTargets
from warmpool.ipamd.limits import InstanceLimits, IpMode
from warmpool.ipamd.pool import steady_state
from warmpool.planner.clamps import Draft
from warmpool.snapshot import ClusterSnapshot, SubnetInfo

LOWERING_ORDER = (
    Variable.MINIMUM_IP_TARGET,
    Variable.WARM_IP_TARGET,
    Variable.WARM_PREFIX_TARGET,
    Variable.WARM_ENI_TARGET,
)


@dataclass(frozen=True, slots=True)
class SubnetBudget:
    subnet_id: str
    zone: str
    free_ips: int
    reserve_ips: int
    budget_ips: int  # free minus reserve: what all warm pools in this subnet may hold
    warm_ips_planned: int  # spare IPs the recommended values make its nodes hold
    nodes: int

    @property
    def over(self) -> bool:
        return self.warm_ips_planned > self.budget_ips


@dataclass(frozen=True, slots=True)
class SubnetFit:
    draft: Draft
    budgets: tuple[SubnetBudget, ...]
    pressure: tuple[str, ...] | None  # why, when any subnet was over at the values asked (None: all fit)


def fit_subnets(
    spec: WarmPoolPolicySpec,
    snapshot: ClusterSnapshot,
    limits: Mapping[str, InstanceLimits],
    subnets: Mapping[str, SubnetInfo],
    mode: IpMode,
    draft: Draft,
    current: IpamdTargets,
) -> SubnetFit:
    """Lower the draft's values, within their floors, until every subnet's spare IPs fit its budget."""
    # Group nodes by what decides their spare IPs, so each evaluation costs one step per distinct group.
    groups: Counter[tuple[str, int, tuple[str, ...]]] = Counter()
    node_count: Counter[str] = Counter()
    for n in snapshot.nodes:
        sids = tuple(s for s in n.subnet_ids if s in subnets)
        if n.instance_type in limits and sids:
            groups[(n.instance_type, n.ip_pods, sids)] += 1
        for s in sids:
            node_count[s] += 1
    used = sorted(node_count)
    budget = {s: math.floor(subnets[s].free_ips * (1.0 - spec.subnet_reserve)) for s in used}

    def spare_by_subnet(vals: Mapping[Variable, int]) -> dict[str, int]:
        targets = current.with_values(vals)
        out = dict.fromkeys(used, 0)
        for (itype, pods, sids), count in groups.items():
            # A node that may draw from several subnets is charged in full to each: the safe side.
            lim = limits[itype]
            spare = steady_state(lim, lim.runs_mode(mode), targets, pods).free_ips * count
            for s in sids:
                out[s] += spare
        return out

    def fits(vals: Mapping[Variable, int]) -> bool:
        spare = spare_by_subnet(vals)
        return all(spare[s] <= budget[s] for s in used)

    over_before = [s for s, x in spare_by_subnet(draft.values).items() if x > budget[s]]
    messages: tuple[str, ...] | None = None
    if over_before:
        for v in LOWERING_ORDER:
            if v not in draft.values or fits(draft.values):
                continue
            best = largest_fitting(draft.floors[v], draft.values[v], _with(fits, draft.values, v))
            lowered = best if best is not None else draft.floors[v]
            if lowered < draft.values[v]:
                draft = draft.set(
                    v, lowered, f"lowered to {lowered} to fit the free IPs of subnets {', '.join(over_before)}"
                )
        still = [s for s, x in spare_by_subnet(draft.values).items() if x > budget[s]]
        messages = tuple(
            f"warm pools would take more than the {budget[s]} IPs subnet {s} can spare "
            f"({subnets[s].free_ips} free, {spec.subnet_reserve:.0%} reserved)"
            for s in over_before
        )
        if still:
            messages += (f"still over at the lowest allowed values: {', '.join(still)}",)

    final = spare_by_subnet(draft.values)
    budgets = tuple(
        SubnetBudget(
            subnet_id=s,
            zone=subnets[s].zone,
            free_ips=subnets[s].free_ips,
            reserve_ips=subnets[s].free_ips - budget[s],
            budget_ips=budget[s],
            warm_ips_planned=final[s],
            nodes=node_count[s],
        )
        for s in used
    )
    return SubnetFit(draft, budgets, messages)


def _with(
    fits: Callable[[Mapping[Variable, int]], bool], values: Mapping[Variable, int], v: Variable
) -> Callable[[int], bool]:
    return lambda x: fits({**values, v: x})


def largest_fitting(lo: int, hi: int, ok: Callable[[int], bool]) -> int | None:
    """The largest x in [lo, hi] with ok(x), for ok monotone (true up to some point); None if none."""
    if not ok(lo):
        return None
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if ok(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo
