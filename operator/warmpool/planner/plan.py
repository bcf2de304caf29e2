"""The planner: one pure function from policy, snapshot, limits, subnets, current env and churn statistics to
the values of the managed ipamd variables, the reason for each, and the conditions to report.

Order of the rules, each a clamp that can only lower or raise as stated:
1. the covered demand plus headroom gives the raw warm need: at the policy's quantile of pod starts, the starts
   in one window plus the IPs still cooling down (they count as available but cannot be reused), leaving out
   starts on nodes that needed no more IPs than MINIMUM_IP_TARGET holds (the minimum serves those); before any
   demand is measured, the covered burst of starts alone. MINIMUM_IP_TARGET is the candidate minimum whose
   warm need holds the fewest spare IPs over the observed pods per node (`_choose_minimum`);
2. the policy's min/max bounds;
3. instance limits (they win over the policy's min: a value a node cannot hold is never written), including
   WARM_IP_TARGET <= one ENI's worth of IPs on the smallest instance type (VPC CNI issue #1872);
4. ipamd safety: never MINIMUM_IP_TARGET > 0 with WARM_IP_TARGET 0, never all zero in prefix mode;
5. the subnet budget: the spare IPs of all nodes in a subnet must fit its free IPs minus the reserve. Lower
   MINIMUM_IP_TARGET first (it pre-allocates for pods that have not arrived), then the warm target (it covers
   measured bursts), each no lower than the floors of steps 2 and 4;
6. whole ENIs: in secondary-IP mode, when the #1872 cap leaves demand uncovered, both IP targets 0 let
   WARM_ENI_TARGET size the pool, which holds at least as much on every node (if the subnets can afford it).
Last, when the values in effect leave the demand uncovered, a raise-only rescue the guards may write early.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from warmpool.api.v1alpha1 import ConditionType, Mode, Variable, WarmPoolPolicySpec, summarize
from warmpool.ipamd.entrypoint import prefix_targets_all_zero
from warmpool.ipamd.env import IpamdTargets, mode_from_env, parse_env
from warmpool.ipamd.limits import IPS_PER_PREFIX, InstanceLimits, IpMode
from warmpool.ipamd.pool import steady_state
from warmpool.ipamd.safety import SafetyProblem, check_env, merge_env
from warmpool.ipamd.version import CniVersion, eni_request_uncapped
from warmpool.planner.churn import ChurnStats
from warmpool.planner.guards import beyond_dead_band
from warmpool.snapshot import ClusterSnapshot, SubnetInfo

_WARM_VARIABLES = (Variable.WARM_IP_TARGET, Variable.WARM_PREFIX_TARGET, Variable.WARM_ENI_TARGET)


@dataclass(frozen=True, slots=True)
class PlanCondition:
    type: ConditionType
    status: bool
    reason: str  # CamelCase, as metav1.Condition wants
    message: str


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
class Recommendation:
    mode: IpMode
    values: dict[Variable, int]  # managed variables only; empty when nothing can be planned
    reasons: dict[Variable, str]
    conditions: tuple[PlanCondition, ...]
    stats: ChurnStats
    subnets: tuple[SubnetBudget, ...] = ()
    nodes: int = 0
    pods: int = 0
    smallest_instance_type: str | None = None
    # The IP targets in effect cover less than the measured demand (starts plus cooling IPs at the quantile):
    # pods wait for IPs now. The values `guards.decide` may write within the cooldown: the values in effect
    # with WARM_IP_TARGET raised to cover the demand, or the whole-ENI fallback; None when not starving.
    rescue: dict[Variable, int] | None = None
    # Both IP targets are 0 so that WARM_ENI_TARGET sizes the pool: no WARM_IP_TARGET within the instance cap
    # covers the demand (see `_whole_enis_cover_more`).
    whole_enis: bool = False
    # What the last check (`warmpool.ipamd.safety.check_env`) finds in the env after writing `values`: never
    # caused by the planned values; an entry the policy does not manage (reported as Degraded/UnsafeEnv).
    safety: tuple[SafetyProblem, ...] = ()

    @property
    def starving(self) -> bool:
        return self.rescue is not None

    def condition(self, kind: ConditionType) -> PlanCondition | None:
        return next((c for c in self.conditions if c.type == kind), None)

    @property
    def subnet_pressure(self) -> bool:
        c = self.condition(ConditionType.SUBNET_PRESSURE)
        return c is not None and c.status


def effective_mode(mode: Mode, current_env: Mapping[str, str]) -> IpMode:
    """The mode to plan for: the one ipamd runs, read from ENABLE_PREFIX_DELEGATION as Go reads it. The policy's
    mode does not change it (warmpool never writes ENABLE_PREFIX_DELEGATION): a forced mode that disagrees is
    reported (`ModeMismatch`), and values planned for a mode ipamd does not run could stop or stall nodes."""
    return mode_from_env(current_env)


def _mode_mismatch(mode: Mode, running: IpMode) -> str | None:
    wanted = {Mode.PREFIX: IpMode.PREFIX, Mode.SECONDARY_IP: IpMode.SECONDARY}.get(mode)
    if wanted is None or wanted is running:
        return None
    return (
        f"the policy asks for {_mode_name(wanted)} mode but ENABLE_PREFIX_DELEGATION makes ipamd run "
        f"{_mode_name(running)} mode: planned for {_mode_name(running)} mode"
    )


def plan(
    spec: WarmPoolPolicySpec,
    snapshot: ClusterSnapshot,
    limits: Mapping[str, InstanceLimits],
    subnets: Mapping[str, SubnetInfo],
    current_env: Mapping[str, str],
    stats: ChurnStats,
    cni_version: CniVersion | None = None,
) -> Recommendation:
    """`cni_version`: the VPC CNI running (`warmpool.ipamd.version.cni_version_from_image`); unknown (None)
    plans as for one older than the #1872 fix, which caps WARM_IP_TARGET at one ENI's IPs."""
    mode = effective_mode(spec.mode, current_env)
    degraded: list[tuple[str, str]] = []
    mismatch = _mode_mismatch(spec.mode, mode)
    if mismatch:
        degraded.append(("ModeMismatch", mismatch))
    nodes = snapshot.nodes
    pods = snapshot.ip_pods

    managed = [v for v in spec.managed_variables if _applies(v, mode)]
    for v in spec.managed_variables:
        if v not in managed:
            degraded.append(("VariableIgnored", f"{v.value} has no effect in {_mode_name(mode)} mode; left as is"))

    types = sorted({n.instance_type for n in nodes})
    unknown = [t for t in types if t not in limits]
    if unknown:
        degraded.append(("LimitsUnknown", f"no network limits for instance types {', '.join(unknown)}"))
    known = [limits[t] for t in types if t in limits]
    if mode is IpMode.PREFIX:
        non_nitro = [lim.instance_type for lim in known if not lim.supports_prefixes]
        if non_nitro:
            degraded.append(
                (
                    "PrefixOnNonNitro",
                    f"prefix delegation needs Nitro: ipamd runs secondary-IP mode on {', '.join(non_nitro)}",
                )
            )

    if not known:
        degraded.append(("NoNodes", "no selected node with known limits: nothing to plan"))
        return Recommendation(
            mode=mode,
            values={},
            reasons={},
            conditions=_conditions(degraded, None),
            stats=stats,
            nodes=len(nodes),
            pods=pods,
        )

    # The smallest instance type in scope bounds every value, since one value applies to every node; each type
    # counts in the mode ipamd runs on it (secondary IPs on non-Nitro types, whatever the env asks).
    smallest = min(
        known,
        key=lambda lim: (lim.ips_per_eni(lim.runs_mode(mode)), lim.pod_ip_cap(lim.runs_mode(mode)), lim.instance_type),
    )
    eni_ips = smallest.ips_per_eni(smallest.runs_mode(mode))
    pod_cap = min(lim.pod_ip_cap(lim.runs_mode(mode)) for lim in known)
    prefix_types = [lim for lim in known if lim.runs_mode(mode) is IpMode.PREFIX] or [smallest]
    slots_cap = min(lim.slots_per_eni for lim in prefix_types)
    enis_cap = min(lim.max_enis for lim in known)

    current = parse_env(current_env)
    # VPC CNI #1872: before the fix a new ENI waits minutes for more than it holds (see ipamd/version.py).
    uncapped = eni_request_uncapped(cni_version)
    warm_cap = min(eni_ips, pod_cap) if uncapped else pod_cap
    minimum_cap = min(2 * eni_ips, pod_cap) if uncapped else pod_cap
    # The minimum ipamd will hold on every node, as far as the policy and the limits let it be written: starts
    # on a node that needs no more IPs than that are served by the minimum, not by the warm target.
    minimum = current.minimum_ip
    minimum_why = ""
    if Variable.MINIMUM_IP_TARGET in managed:
        minimum, minimum_why = _choose_minimum(spec, stats, mode, minimum_cap, warm_cap, managed)
    if stats.demand_samples > 0:
        # Per pod start: the starts in the window plus the IPs still cooling then, which count as available
        # but cannot be handed out (IP_COOLDOWN_PERIOD; VPC CNI issues #1700, #2896).
        covered = stats.demand_with_minimum(minimum)
        served = " not served by the minimum" if covered < stats.covered_demand else ""
    else:
        covered = stats.covered_burst
    headroom = _headroom(spec, covered)
    need = covered + headroom
    if stats.demand_samples > 0:
        burst_text = (
            f"the burst seen by the p{_pct(stats.quantile)} pod start{served}: {covered} usable IPs per node "
            f"(starts in {stats.window:g}s plus IPs still in the {stats.cooldown:g}s cooldown), plus {headroom} "
            "headroom"
        )
    else:
        burst_text = (
            f"the p{_pct(stats.quantile)} burst of {covered} pod starts per node in {stats.window:g}s "
            f"plus {headroom} headroom"
        )

    raw: dict[Variable, tuple[int, str]] = {
        Variable.WARM_IP_TARGET: (need, f"{need} IPs cover {burst_text}"),
        Variable.MINIMUM_IP_TARGET: (minimum, minimum_why),
        # WARM_ENI_TARGET only applies in secondary-IP mode, so eni_ips is in IPs there.
        Variable.WARM_ENI_TARGET: (
            enis := math.ceil(need / eni_ips),
            f"{enis} ENIs of {eni_ips} IPs ({smallest.instance_type}) hold {need} IPs covering {burst_text}",
        ),
        Variable.WARM_PREFIX_TARGET: (
            prefixes := math.ceil(need / IPS_PER_PREFIX),
            f"{prefixes} prefixes of {IPS_PER_PREFIX} IPs hold {need} IPs covering {burst_text}",
        ),
    }
    version_why = f"VPC CNI {cni_version}" if cni_version is not None else "a VPC CNI of unknown version"
    caps: dict[Variable, tuple[int, str]] = {
        Variable.WARM_IP_TARGET: (
            warm_cap,
            f"one ENI's worth of IPs on {smallest.instance_type} (VPC CNI issue #1872, {version_why})"
            if warm_cap < pod_cap
            else "the pod IPs the smallest instance type in scope can hold",
        ),
        Variable.MINIMUM_IP_TARGET: (
            minimum_cap,
            f"two ENIs' worth of IPs on {smallest.instance_type} (VPC CNI issue #1872, {version_why})"
            if minimum_cap < pod_cap
            else "the pod IPs the smallest instance type in scope can hold",
        ),
        Variable.WARM_ENI_TARGET: (enis_cap, "the ENIs of the smallest instance type in scope"),
        Variable.WARM_PREFIX_TARGET: (slots_cap, "one ENI's worth of prefixes on the smallest instance type in scope"),
    }

    values: dict[Variable, int] = {}
    reasons: dict[Variable, list[str]] = {}
    floors: dict[Variable, int] = {}
    for v in managed:
        value, why = raw[v]
        notes = [why]
        bounds = spec.bounds(v)
        lo, hi = (bounds.min, bounds.max) if bounds is not None else (0, None)
        if value < lo:
            value = lo
            notes.append(f"raised to the policy minimum {lo}")
        if hi is not None and value > hi:
            value = hi
            notes.append(f"lowered to the policy maximum {hi}")
        cap, cap_why = caps[v]
        if value > cap:
            value = cap
            notes.append(f"capped at {cap}, {cap_why}")
        values[v] = value
        reasons[v] = notes
        floors[v] = min(lo, cap)

    _enforce_safety(mode, values, reasons, floors, current, current_env)

    budgets, pressure = _fit_subnets(spec, snapshot, limits, subnets, mode, values, reasons, floors, current)
    whole_enis = False
    if warm_cap < pod_cap and _whole_enis_cover_more(spec, mode, managed, current, need, warm_cap):
        # Every WARM_IP_TARGET within the cap leaves demand uncovered. With both IP targets 0, ipamd keeps
        # WARM_ENI_TARGET whole ENIs spare: at least the cap's IPs on the smallest type, more on every larger
        # one, so it covers at least as much. Taken only if the subnets can afford it.
        eni_values = {**values, Variable.WARM_IP_TARGET: 0, Variable.MINIMUM_IP_TARGET: 0}
        eni_values = {v: n for v, n in eni_values.items() if v in managed}
        eni_reasons = {v: list(r) for v, r in reasons.items()}
        eni_budgets, eni_pressure = _fit_subnets(
            spec, snapshot, limits, subnets, mode, eni_values, eni_reasons, dict.fromkeys(eni_values, 0), current
        )
        # Whole ENIs hand the pool to WARM_ENI_TARGET as it stands on the DaemonSet: it must be a value ipamd
        # reads and the instances can hold, as if written now.
        relied_on = [*eni_values, *([Variable.WARM_ENI_TARGET] if Variable.WARM_ENI_TARGET in current_env else [])]
        fallback_safe = check_env(merge_env(current_env, eni_values), known, cni_version, written=relied_on).safe
        if eni_pressure is None and fallback_safe:
            spare = current.warm_eni * eni_ips
            eni_reasons[Variable.WARM_IP_TARGET] = [
                f"0 (not set): no WARM_IP_TARGET within the cap of {warm_cap} ({caps[Variable.WARM_IP_TARGET][1]}) "
                f"covers the demand of {need}; with both IP targets 0 ipamd keeps WARM_ENI_TARGET="
                f"{current.warm_eni} whole ENIs spare, at least {spare} IPs on every node and more on larger types"
            ]
            if Variable.MINIMUM_IP_TARGET in eni_values:
                eni_reasons[Variable.MINIMUM_IP_TARGET] = ["0 (not set): whole ENIs size the pool (see WARM_IP_TARGET)"]
            values, reasons, budgets = eni_values, eni_reasons, eni_budgets
            whole_enis = True
    missing = sorted({s for n in nodes for s in n.subnet_ids if s not in subnets})
    unplaced = sum(1 for n in nodes if not n.subnet_ids)
    if missing or unplaced:
        parts = []
        if missing:
            parts.append(f"free IPs unknown for subnets {', '.join(missing)}")
        if unplaced:
            parts.append(f"{unplaced} nodes with no known subnet")
        degraded.append(("SubnetsUnknown", "; ".join(parts) + ": their budget is not enforced"))

    whole_units = [v for v in (Variable.WARM_ENI_TARGET, Variable.WARM_PREFIX_TARGET) if v in values]
    if whole_units and Variable.WARM_IP_TARGET not in values and current.with_values(values).ip_targets_defined:
        degraded.append(
            (
                "Overridden",
                f"{whole_units[0].value} has no effect while WARM_IP_TARGET or MINIMUM_IP_TARGET is set "
                "on the DaemonSet",
            )
        )

    rescue = None
    if current.ip_targets_defined and stats.demand_samples > 0 and Variable.WARM_IP_TARGET in values:
        # The demand the targets in effect leave uncovered: their minimum serves some starts, their warm
        # target must hold the rest.
        demand_now = stats.demand_with_minimum(current.minimum_ip)
        if current.warm_ip < demand_now and _starving(stats, current):
            warm = _clamp(spec, Variable.WARM_IP_TARGET, demand_now + _headroom(spec, demand_now), warm_cap)
            in_effect = {v: current.get(v) for v in values}
            # Raises only: WARM_IP_TARGET up next to the minimum in effect, or the recommendation merged into
            # the values in effect (it covers at least what the recommendation covers); the one holding fewer
            # spare IPs. Whole ENIs when no warm target within the cap covers the demand.
            options: list[tuple[float, dict[Variable, int], str]] = []
            if whole_enis:
                options.append((0.0, dict(values), "whole ENIs cover more"))
            else:
                if warm > current.warm_ip:
                    options.append(
                        (
                            _mean_spare(stats, mode, current.minimum_ip, warm),
                            {**in_effect, Variable.WARM_IP_TARGET: warm},
                            f"WARM_IP_TARGET {warm} would cover it",
                        )
                    )
                merged = {v: max(n, in_effect[v]) for v, n in values.items()}
                if merged != in_effect:
                    options.append(
                        (
                            _mean_spare(
                                stats,
                                mode,
                                merged.get(Variable.MINIMUM_IP_TARGET, current.minimum_ip),
                                merged[Variable.WARM_IP_TARGET],
                            ),
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
            if options:
                _, rescue, remedy = min(options, key=lambda o: o[0])
            if rescue is not None:
                reasons[Variable.WARM_IP_TARGET].append(
                    f"WARM_IP_TARGET {current.warm_ip} with MINIMUM_IP_TARGET {current.minimum_ip} in effect "
                    f"cover less than the measured demand of {demand_now}: pods wait for IPs now, and {remedy}"
                )

    # The last check, as the step will make it: the whole env after this write. The stages above keep the
    # values safe; what is left comes from entries the policy does not manage, and refuses the write.
    verdict = check_env(merge_env(current_env, values), known, cni_version, written=list(values))
    if rescue is not None and not check_env(merge_env(current_env, rescue), known, cni_version).safe:
        rescue = None
    if verdict.problems:
        degraded.append(("UnsafeEnv", "the env after this write would be unsafe: " + "; ".join(verdict.messages())))

    return Recommendation(
        mode=mode,
        values=values,
        reasons={v: "; ".join(r) for v, r in reasons.items()},
        conditions=_conditions(degraded, pressure),
        stats=stats,
        subnets=budgets,
        nodes=len(nodes),
        pods=pods,
        smallest_instance_type=smallest.instance_type,
        rescue=rescue,
        whole_enis=whole_enis,
        safety=verdict.problems,
    )


def _whole_enis_cover_more(
    spec: WarmPoolPolicySpec,
    mode: IpMode,
    managed: list[Variable],
    current: IpamdTargets,
    need: int,
    warm_cap: int,
) -> bool:
    """Whether to leave the pool to whole ENIs: secondary-IP mode, the warm need beyond the instance cap (not
    beyond a policy maximum: that limit is the policy's choice), both IP targets free to be 0, and a
    WARM_ENI_TARGET of at least 1 in effect to take over."""
    if mode is not IpMode.SECONDARY or Variable.WARM_IP_TARGET not in managed or current.warm_eni < 1:
        return False
    if Variable.MINIMUM_IP_TARGET not in managed and current.minimum_ip > 0:
        return False
    for v in (Variable.WARM_IP_TARGET, Variable.MINIMUM_IP_TARGET):
        bounds = spec.bounds(v)
        if bounds is not None and v in managed and bounds.min > 0:
            return False
    warm_bounds = spec.bounds(Variable.WARM_IP_TARGET)
    policy_max = warm_bounds.max if warm_bounds is not None and warm_bounds.max is not None else None
    return need > warm_cap and (policy_max is None or policy_max > warm_cap)


def _headroom(spec: WarmPoolPolicySpec, covered: int) -> int:
    return spec.churn.headroom_ips + math.ceil(spec.churn.headroom_ratio * covered)


def _choose_minimum(
    spec: WarmPoolPolicySpec,
    stats: ChurnStats,
    mode: IpMode,
    pod_cap: int,
    warm_cap: int,
    managed: list[Variable],
) -> tuple[int, str]:
    """MINIMUM_IP_TARGET and why. A minimum serves the pod starts on nodes that need no more IPs than it
    holds, so the warm target can be smaller; but it also holds IPs on every node with fewer pods. With both
    IP targets managed and the demand filed by the IPs nodes needed, each minimum where the covered demand
    drops is a candidate (and the typical density, and none); the one whose warm target covers most of the
    demand within the caps, then holds the fewest spare IPs over the observed pods per node, wins.
    Otherwise the typical density: new nodes then boot with the IPs a typical node uses."""
    typical = _clamp(spec, Variable.MINIMUM_IP_TARGET, stats.pods_per_node, pod_cap)
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
        {typical, _clamp(spec, Variable.MINIMUM_IP_TARGET, 0, pod_cap)}
        | {_clamp(spec, Variable.MINIMUM_IP_TARGET, m, pod_cap) for m, _ in stats.demand_by_minimum}
    )
    scored = []
    for m in candidates:
        covered = stats.demand_with_minimum(m)
        need = covered + _headroom(spec, covered)
        warm = max(_clamp(spec, Variable.WARM_IP_TARGET, need, warm_cap), 1)
        spare = _mean_spare(stats, mode, m, warm)
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


# A rescue (a change within the cooldown) is for pods waiting in numbers: more than this share of pod starts
# finding no free IP, or more than the policy's quantile leaves out when that is larger. A smaller miss waits
# for the cooldown like any other change.
RESCUE_SHARE = 0.01


def _starving(stats: ChurnStats, current: IpamdTargets) -> bool:
    if not stats.demand_table:
        return True  # no pod stops seen: the pods at past starts are unknown, trust the quantile
    share = stats.uncovered_share(current.minimum_ip, current.warm_ip)
    return share > max(RESCUE_SHARE, 1.0 - stats.quantile)


def _mean_spare(stats: ChurnStats, mode: IpMode, minimum: int, warm: int) -> float:
    """Spare IPs per node under these IP targets, averaged over the observed pods per node (the warm target
    alone when no density was observed)."""
    total = math.fsum(w for _, w in stats.density)
    if total <= 0:
        return float(warm)
    return math.fsum(w * _ip_targets_spare(mode, minimum, warm, pods) for pods, w in stats.density) / total


def _ip_targets_spare(mode: IpMode, minimum: int, warm: int, pods: int) -> int:
    """Spare IPs on a node with `pods` pods under the IP targets (free plus cooling; limits not applied)."""
    total = max(pods + warm, minimum)
    if mode is IpMode.PREFIX:
        total = math.ceil(total / IPS_PER_PREFIX) * IPS_PER_PREFIX
    return total - pods


def _clamp(spec: WarmPoolPolicySpec, v: Variable, value: int, cap: int) -> int:
    """`value` within the policy's bounds for `v`, then within `cap`: the clamps of the main loop."""
    bounds = spec.bounds(v)
    if bounds is not None:
        value = max(value, bounds.min)
        if bounds.max is not None:
            value = min(value, bounds.max)
    return min(value, cap)


def _applies(v: Variable, mode: IpMode) -> bool:
    if v is Variable.WARM_ENI_TARGET:
        return mode is IpMode.SECONDARY
    if v is Variable.WARM_PREFIX_TARGET:
        return mode is IpMode.PREFIX
    return True


def _enforce_safety(
    mode: IpMode,
    values: dict[Variable, int],
    reasons: dict[Variable, list[str]],
    floors: dict[Variable, int],
    current: IpamdTargets,
    current_env: Mapping[str, str],
) -> None:
    """Settings ipamd must never get; raises both the value and its floor so the budget step keeps them."""

    def raise_to_one(v: Variable, why: str) -> None:
        if values[v] < 1:
            values[v] = 1
            reasons[v].append(f"raised to 1: {why}")
        floors[v] = max(floors[v], 1)

    effective = current.with_values(values)
    if Variable.WARM_IP_TARGET in values:
        # 0 is never right for a managed WARM_IP_TARGET: with a minimum set, nodes freeze at the minimum;
        # without one, ipamd falls back to whole ENIs or prefixes. The floor also keeps the node's spare IPs
        # monotone in every value, which the subnet budget's search relies on.
        raise_to_one(
            Variable.WARM_IP_TARGET,
            "with MINIMUM_IP_TARGET set, 0 freezes nodes at the minimum"
            if effective.minimum_ip > 0 or Variable.MINIMUM_IP_TARGET in values
            else "0 hands the pool back to WARM_ENI_TARGET / WARM_PREFIX_TARGET",
        )
    if mode is IpMode.PREFIX:
        # Whatever the budget step lowers the managed values to (their floors, at worst 0), the entries left
        # as they are must keep one target non-zero both for the entrypoint (text compared with "0": " 5" and
        # "+5" count as zero) and for ipamd (parsed: "00" and "abc" are 0).
        zeroed = merge_env(current_env, dict.fromkeys(values, 0))
        others = parse_env(zeroed)
        if prefix_targets_all_zero(zeroed) or (others.warm_prefix == 0 and not others.ip_targets_defined):
            why = "aws-node does not start in prefix mode with every target 0"
            if Variable.WARM_PREFIX_TARGET in values:
                raise_to_one(Variable.WARM_PREFIX_TARGET, why)
            elif Variable.WARM_IP_TARGET in values:
                raise_to_one(Variable.WARM_IP_TARGET, why)


def _fit_subnets(
    spec: WarmPoolPolicySpec,
    snapshot: ClusterSnapshot,
    limits: Mapping[str, InstanceLimits],
    subnets: Mapping[str, SubnetInfo],
    mode: IpMode,
    values: dict[Variable, int],
    reasons: dict[Variable, list[str]],
    floors: dict[Variable, int],
    current: IpamdTargets,
) -> tuple[tuple[SubnetBudget, ...], list[str] | None]:
    """Lower values until every subnet's spare IPs fit its budget. Returns the budgets and, when any subnet
    was over, the pressure messages (None when all fit at the recommended values)."""
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

    over_before = [s for s, x in spare_by_subnet(values).items() if x > budget[s]]
    messages: list[str] | None = None
    if over_before:
        order = [Variable.MINIMUM_IP_TARGET, *_WARM_VARIABLES]
        for v in order:
            if v not in values or fits(values):
                continue
            best = _largest_fitting(floors[v], values[v], _with(fits, values, v))
            lowered = best if best is not None else floors[v]
            if lowered < values[v]:
                reasons[v].append(f"lowered to {lowered} to fit the free IPs of subnets {', '.join(over_before)}")
                values[v] = lowered
        still = [s for s, x in spare_by_subnet(values).items() if x > budget[s]]
        messages = [
            f"warm pools would take more than the {budget[s]} IPs subnet {s} can spare "
            f"({subnets[s].free_ips} free, {spec.subnet_reserve:.0%} reserved)"
            for s in over_before
        ]
        if still:
            messages.append(f"still over at the lowest allowed values: {', '.join(still)}")

    final = spare_by_subnet(values)
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
    return budgets, messages


def _with(
    fits: Callable[[Mapping[Variable, int]], bool], values: Mapping[Variable, int], v: Variable
) -> Callable[[int], bool]:
    return lambda x: fits({**values, v: x})


def _largest_fitting(lo: int, hi: int, ok: Callable[[int], bool]) -> int | None:
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


def _conditions(degraded: list[tuple[str, str]], pressure: list[str] | None) -> tuple[PlanCondition, ...]:
    out = []
    if degraded:
        out.append(PlanCondition(ConditionType.DEGRADED, True, degraded[0][0], "; ".join(m for _, m in degraded)))
    else:
        out.append(PlanCondition(ConditionType.DEGRADED, False, "AsExpected", "limits and subnets known"))
    if pressure:
        out.append(PlanCondition(ConditionType.SUBNET_PRESSURE, True, "SubnetBudgetExceeded", "; ".join(pressure)))
    else:
        out.append(PlanCondition(ConditionType.SUBNET_PRESSURE, False, "WithinBudget", "warm pools fit every subnet"))
    return tuple(out)


def _mode_name(mode: IpMode) -> str:
    return "prefix" if mode is IpMode.PREFIX else "secondary-IP"


def _pct(q: float) -> str:
    return f"{q * 100:g}"
