"""The planner: one pure function from policy, snapshot, limits, subnets, current env and churn statistics to
the values of the managed ipamd variables, the reason for each, and the conditions to report.

`plan` runs named stages, each a small pure function in its own module with its own table test:
- scope (here): the mode ipamd runs, the variables that apply in it, the instance types with known limits;
- limits (`caps`): the most each variable may be on the smallest type in scope, for this VPC CNI version;
- demand (`demand`): the spare IPs a node needs at the policy's quantile, and each variable's raw value;
- bounds, limits, safety (`clamps`): the policy's min/max, the instance caps, ipamd's safety floors;
- subnet fit (`subnets`): every subnet's spare IPs within its free IPs minus the reserve;
- whole ENIs (`whole_enis`): both IP targets 0 when the #1872 cap leaves demand uncovered;
- rescue (`rescue`): the raise-only change that may skip the cooldown while pods wait for IPs;
- last check (`warmpool.ipamd.safety.check_env`): the whole env after the write, as aws-node and ipamd read it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from warmpool.api.v1alpha1 import ConditionType, Mode, Variable, WarmPoolPolicySpec
from warmpool.ipamd.env import IpamdTargets, max_eni_from_env, mode_from_env, parse_env
from warmpool.ipamd.limits import InstanceLimits, IpMode
from warmpool.ipamd.safety import EnvVerdict, SafetyProblem, check_env, merge_env
from warmpool.ipamd.version import CniVersion
from warmpool.planner.caps import instance_caps
from warmpool.planner.churn import ChurnStats
from warmpool.planner.clamps import safe_floors, within_bounds, within_limits
from warmpool.planner.demand import demand
from warmpool.planner.rescue import plan_rescue
from warmpool.planner.subnets import SubnetBudget, fit_subnets
from warmpool.planner.whole_enis import whole_eni_fallback
from warmpool.snapshot import ClusterSnapshot, SubnetInfo

__all__ = ["PlanCondition", "Recommendation", "Scope", "SubnetBudget", "effective_mode", "plan", "scope"]


@dataclass(frozen=True, slots=True)
class PlanCondition:
    type: ConditionType
    status: bool
    reason: str  # CamelCase, as metav1.Condition wants
    message: str


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
    # Both IP targets are 0 so that WARM_ENI_TARGET sizes the pool: no WARM_IP_TARGET within the #1872 cap
    # covers the demand (see `warmpool.planner.whole_enis`).
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


@dataclass(frozen=True, slots=True)
class Scope:
    mode: IpMode  # the mode ipamd runs
    managed: tuple[Variable, ...]  # the policy's variables that apply in that mode
    known: tuple[InstanceLimits, ...]  # the instance types in scope with known limits
    degraded: tuple[tuple[str, str], ...]  # (reason, message) of what limits the plan


def scope(
    spec: WarmPoolPolicySpec,
    snapshot: ClusterSnapshot,
    limits: Mapping[str, InstanceLimits],
    current_env: Mapping[str, str],
) -> Scope:
    """Stage "scope": the mode ipamd runs, the variables that apply in it, the instance types with limits."""
    mode = effective_mode(spec.mode, current_env)
    degraded: list[tuple[str, str]] = []
    wanted = {Mode.PREFIX: IpMode.PREFIX, Mode.SECONDARY_IP: IpMode.SECONDARY}.get(spec.mode)
    if wanted is not None and wanted is not mode:
        degraded.append(
            (
                "ModeMismatch",
                f"the policy asks for {_mode_name(wanted)} mode but ENABLE_PREFIX_DELEGATION makes ipamd run "
                f"{_mode_name(mode)} mode: planned for {_mode_name(mode)} mode",
            )
        )
    managed = tuple(v for v in spec.managed_variables if _applies(v, mode))
    for v in spec.managed_variables:
        if v not in managed:
            degraded.append(("VariableIgnored", f"{v.value} has no effect in {_mode_name(mode)} mode; left as is"))
    types = sorted({n.instance_type for n in snapshot.nodes})
    unknown = [t for t in types if t not in limits]
    if unknown:
        degraded.append(("LimitsUnknown", f"no network limits for instance types {', '.join(unknown)}"))
    known = tuple(limits[t] for t in types if t in limits)
    non_nitro = [lim.instance_type for lim in known if not lim.supports_prefixes]
    if mode is IpMode.PREFIX and non_nitro:
        degraded.append(
            (
                "PrefixOnNonNitro",
                f"prefix delegation needs Nitro: ipamd runs secondary-IP mode on {', '.join(non_nitro)}",
            )
        )
    if not known:
        degraded.append(("NoNodes", "no selected node with known limits: nothing to plan"))
    return Scope(mode, managed, known, tuple(degraded))


def plan(
    spec: WarmPoolPolicySpec,
    snapshot: ClusterSnapshot,
    limits: Mapping[str, InstanceLimits],
    subnets: Mapping[str, SubnetInfo],
    current_env: Mapping[str, str],
    stats: ChurnStats,
    cni_version: CniVersion | None = None,
    ahead: ChurnStats | None = None,
    current_hour: ChurnStats | None = None,
) -> Recommendation:
    """`cni_version`: the VPC CNI running (`warmpool.ipamd.version.cni_version_from_image`); unknown (None)
    plans as for one older than the #1872 fix: WARM_IP_TARGET within one ENI's IPs, MINIMUM_IP_TARGET two.
    `ahead`: the statistics of the coming cooldown as the demand profile expects it (`profile.ahead_stats`),
    which size the values in place of `stats`. `current_hour`: the same for the hour under way (fed live), which
    decides the rescue in place of `stats` when given: pods waiting now raise one, while yesterday evening's peak
    in the histograms does not undo a lowering for the quiet night ahead."""
    # The limits ipamd itself uses: MAX_ENI on the DaemonSet lowers every type's ENIs.
    limits = {t: lim.with_max_eni(max_eni_from_env(current_env)) for t, lim in limits.items()}
    where = scope(spec, snapshot, limits, current_env)
    mode, degraded = where.mode, list(where.degraded)
    nodes, pods = len(snapshot.nodes), snapshot.ip_pods
    if not where.known:
        conditions = _conditions(degraded, None)
        return Recommendation(mode, values={}, reasons={}, conditions=conditions, stats=stats, nodes=nodes, pods=pods)

    current = parse_env(current_env)
    caps = instance_caps(where.known, mode, cni_version)
    need = demand(spec, ahead or stats, mode, where.managed, current, caps)
    draft = within_bounds(spec, where.managed, need.raw)
    draft = within_limits(draft, caps)
    draft = safe_floors(draft, mode, current_env)
    fit = fit_subnets(spec, snapshot, limits, subnets, mode, draft, current)
    fallback = whole_eni_fallback(
        spec, snapshot, limits, subnets, mode, fit.draft, current_env, current, need.need, caps, cni_version
    )
    whole_enis = fallback is not None
    fit = fallback or fit
    values, reasons = fit.draft.values, fit.draft.explain()
    degraded += _subnets_unknown(snapshot, subnets) + _overridden(values, current)

    rescue = plan_rescue(spec, current_hour or stats, mode, current, values, whole_enis, caps.warm_ip)
    verdict = last_check(current_env, values, where.known, cni_version)
    if rescue is not None and last_check(current_env, rescue.values, where.known, cni_version).safe:
        reasons[Variable.WARM_IP_TARGET] += "; " + rescue.why
    else:
        rescue = None
    if verdict.problems:
        degraded.append(("UnsafeEnv", "the env after this write would be unsafe: " + "; ".join(verdict.messages())))

    return Recommendation(
        mode=mode,
        values=values,
        reasons=reasons,
        conditions=_conditions(degraded, fit.pressure),
        subnets=fit.budgets,
        smallest_instance_type=caps.smallest.instance_type,
        rescue=rescue.values if rescue is not None else None,
        whole_enis=whole_enis,
        safety=verdict.problems,
        stats=stats,
        nodes=nodes,
        pods=pods,
    )


def last_check(
    current_env: Mapping[str, str],
    values: Mapping[Variable, int],
    known: Sequence[InstanceLimits],
    cni_version: CniVersion | None,
) -> EnvVerdict:
    """The last check, as the step makes it: the whole env after writing `values`. The stages keep the values
    safe; what is left comes from entries the policy does not manage, and refuses the write."""
    return check_env(merge_env(current_env, values), known, cni_version, written=list(values))


def _subnets_unknown(snapshot: ClusterSnapshot, subnets: Mapping[str, SubnetInfo]) -> list[tuple[str, str]]:
    missing = sorted({s for n in snapshot.nodes for s in n.subnet_ids if s not in subnets})
    unplaced = sum(1 for n in snapshot.nodes if not n.subnet_ids)
    if not missing and not unplaced:
        return []
    parts = []
    if missing:
        parts.append(f"free IPs unknown for subnets {', '.join(missing)}")
    if unplaced:
        parts.append(f"{unplaced} nodes with no known subnet")
    return [("SubnetsUnknown", "; ".join(parts) + ": their budget is not enforced")]


def _overridden(values: Mapping[Variable, int], current: IpamdTargets) -> list[tuple[str, str]]:
    whole_units = [v for v in (Variable.WARM_ENI_TARGET, Variable.WARM_PREFIX_TARGET) if v in values]
    if whole_units and Variable.WARM_IP_TARGET not in values and current.with_values(values).ip_targets_defined:
        message = (
            f"{whole_units[0].value} has no effect while WARM_IP_TARGET or MINIMUM_IP_TARGET is set on the DaemonSet"
        )
        return [("Overridden", message)]
    return []


def _applies(v: Variable, mode: IpMode) -> bool:
    if v is Variable.WARM_ENI_TARGET:
        return mode is IpMode.SECONDARY
    if v is Variable.WARM_PREFIX_TARGET:
        return mode is IpMode.PREFIX
    return True


def _conditions(degraded: list[tuple[str, str]], pressure: Sequence[str] | None) -> tuple[PlanCondition, ...]:
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
