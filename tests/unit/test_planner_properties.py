"""Properties of plan() over random clusters, policies, statistics, VPC CNI versions and aws-node envs
(hypothesis). The env holds any text for every ipamd variable: what a person or another tool may have left."""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Any

from hypothesis import given, reject, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tests.hypothesis_profiles import examples
from warmpool.api.v1alpha1 import MAX_TARGET_VALUE, Rollout, Variable, WarmPoolPolicySpec
from warmpool.ipamd.env import max_eni_from_env, mode_from_env, parse_env
from warmpool.ipamd.limits import InstanceLimits, IpMode
from warmpool.ipamd.pool import steady_state
from warmpool.ipamd.safety import ProblemKind, SafetyProblem, check_env, merge_env
from warmpool.ipamd.version import CniVersion, eni_request_uncapped
from warmpool.planner.churn import ChurnStats
from warmpool.planner.guards import current_values, decide
from warmpool.planner.plan import Recommendation, plan
from warmpool.snapshot import ClusterSnapshot, NodeInfo, SubnetInfo

IP = Variable.WARM_IP_TARGET
MIN = Variable.MINIMUM_IP_TARGET
ENI = Variable.WARM_ENI_TARGET
PFX = Variable.WARM_PREFIX_TARGET

LIMITS = {
    lim.instance_type: lim
    for lim in (
        InstanceLimits("t3.small", 3, 4, vcpus=2),
        InstanceLimits("t3.medium", 3, 6, vcpus=2),
        InstanceLimits("m5.large", 3, 10, vcpus=2),
        InstanceLimits("m5.xlarge", 4, 15, vcpus=4),
        InstanceLimits("m5.4xlarge", 8, 30, vcpus=16),
        InstanceLimits("m5.24xlarge", 15, 50, vcpus=96),
        InstanceLimits("m4.large", 2, 10, hypervisor="xen", vcpus=2),  # no prefix delegation
    )
}
SUBNETS = ("subnet-a", "subnet-b", "subnet-c")
VALID_MANAGE = {
    "SecondaryIP": [[IP], [IP, MIN], [ENI]],
    "Prefix": [[IP], [IP, MIN], [PFX]],
    "Auto": [[IP], [IP, MIN]],
}


@dataclass(frozen=True)
class Case:
    spec: WarmPoolPolicySpec
    snapshot: ClusterSnapshot
    subnets: dict[str, SubnetInfo]
    env: dict[str, str]
    stats: ChurnStats
    cni: CniVersion | None = None

    def run(self, **changes: Any) -> Recommendation:
        case = replace(self, **changes)
        return plan(case.spec, case.snapshot, LIMITS, case.subnets, case.env, case.stats, cni_version=case.cni)


@st.composite
def bounds(draw: st.DrawFn, name: Variable) -> dict[str, Any]:
    lo = draw(st.one_of(st.integers(0, 20), st.integers(0, MAX_TARGET_VALUE)))
    hi = draw(st.one_of(st.none(), st.integers(lo, 300 if lo <= 300 else MAX_TARGET_VALUE), st.just(lo)))
    return {"name": name.value, "min": lo, "max": hi}


# Text for an env entry as ipamd and the aws-node entrypoint may meet it: clean numbers, Go booleans in every
# spelling Go accepts, and what Go rejects (spaces, signs, int64 overflow, decimals, underscores, words).
ENV_TEXT = st.one_of(
    st.integers(0, 400).map(str),
    st.sampled_from(
        [
            "",
            " ",
            "0",
            "00",
            "1",
            "01",
            "+1",
            "+5",
            "-1",
            "-0",
            " 5",
            "5 ",
            "3",
            "16",
            "2.5",
            "1_0",
            "abc",
            "t",
            "T",
            "f",
            "TRUE",
            "True",
            "true",
            " true",
            "true ",
            "tRUE",
            "yes",
            "false",
            "FALSE",
            "9223372036854775807",
            "9223372036854775808",
            "99999999999999999999",
            "-99999999999999999999",
        ]
    ),
    st.integers(-(2**70), 2**70).map(str),
    st.text(max_size=4),
)
ENV_NAMES = ("ENABLE_PREFIX_DELEGATION", "MAX_ENI", *(v.value for v in Variable))
CNI_VERSIONS = st.sampled_from([None, CniVersion(1, 11, 3), CniVersion(1, 11, 4), CniVersion(1, 18, 3)])


@st.composite
def envs(draw: st.DrawFn) -> dict[str, str]:
    """Every ipamd variable absent, or any text; ENABLE_PREFIX_DELEGATION as often a Go "true" as not."""
    env: dict[str, str] = {}
    if draw(st.booleans()):
        env["ENABLE_PREFIX_DELEGATION"] = draw(st.sampled_from(["1", "t", "T", "TRUE", "True", "true"]))
    for name in ENV_NAMES:
        if draw(st.integers(0, 2)) == 0:
            env[name] = draw(ENV_TEXT)
    return env


@st.composite
def cases(draw: st.DrawFn) -> Case:
    mode = draw(st.sampled_from(sorted(VALID_MANAGE)))
    manage = [draw(bounds(v)) for v in draw(st.sampled_from(VALID_MANAGE[mode]))]
    raw_spec = {
        "mode": mode,
        "manage": manage,
        "churn": {
            "headroomIPs": draw(st.integers(0, 5)),
            "headroomRatio": draw(st.sampled_from([0.0, 0.1, 0.25, 0.5])),
        },
        "subnetReserve": draw(st.sampled_from([0.0, 0.2, 0.5])),
    }
    try:
        spec = WarmPoolPolicySpec.model_validate(raw_spec)
    except ValidationError:
        reject()  # bounds admission refuses (WARM_IP_TARGET max 0 under a MINIMUM_IP_TARGET that may rise)
    n = draw(st.integers(1, 12))
    nodes = []
    for i in range(n):
        itype = draw(st.sampled_from(sorted(LIMITS)))
        sids = tuple(sorted(draw(st.sets(st.sampled_from(SUBNETS), min_size=1, max_size=2))))
        pods = draw(st.integers(0, LIMITS[itype].max_pods(IpMode.SECONDARY)))
        nodes.append(NodeInfo(name=f"n{i}", instance_type=itype, subnet_ids=sids, ip_pods=pods))
    subnets = {s: SubnetInfo(s, "z", draw(st.integers(0, 3000))) for s in SUBNETS}
    env = draw(envs())
    covered = draw(st.integers(0, 300))
    stats = ChurnStats(
        window=30.0,
        quantile=0.95,
        covered_burst=covered,
        max_burst=covered,
        burst_samples=1.0,
        pods_per_node=draw(st.integers(0, 300)),
        density_samples=1.0,
        current_burst=0,
        quiet=True,
        quiet_since=0.0,
    )
    if draw(st.booleans()):
        stats = replace(stats, **draw(demands()))
    return Case(spec, ClusterSnapshot(now=0.0, nodes=tuple(nodes)), subnets, env, stats, draw(CNI_VERSIONS))


@st.composite
def demands(draw: st.DrawFn, top: int | None = None) -> dict[str, Any]:
    """Demand figures as the tracker gives them: a covered demand and a staircase that drops with the minimum."""
    covered = draw(st.integers(0, 300)) if top is None else top
    steps = sorted(draw(st.sets(st.integers(0, 300), max_size=4)))
    values = sorted((draw(st.integers(0, covered)) for _ in steps), reverse=True)
    staircase = []
    for m, value in zip(steps, values, strict=True):
        if value < (staircase[-1][1] if staircase else covered):
            staircase.append((m, value))
    return {
        "covered_demand": covered,
        "max_demand": covered,
        "demand_samples": 1.0,
        "demand_by_minimum": tuple(staircase),
    }


def in_scope(case: Case) -> list[InstanceLimits]:
    """The types of the case's nodes, with the ENIs MAX_ENI leaves ipamd."""
    return [node_limits(case, t) for t in sorted({n.instance_type for n in case.snapshot.nodes})]


def node_limits(case: Case, instance_type: str) -> InstanceLimits:
    return LIMITS[instance_type].with_max_eni(max_eni_from_env(case.env))


def caps(rec: Recommendation, types: list[InstanceLimits], cni: CniVersion | None) -> dict[Variable, int]:
    """Each type counts in the mode ipamd runs on it; before the #1872 fix (or unknown) a new ENI must not be
    asked for more than it holds."""
    modes = {lim: lim.runs_mode(rec.mode) for lim in types}
    eni_ips = min(lim.ips_per_eni(m) for lim, m in modes.items())
    pod_ips = min(lim.pod_ip_cap(m) for lim, m in modes.items())
    old = eni_request_uncapped(cni)
    prefix_types = [lim for lim, m in modes.items() if m is IpMode.PREFIX] or types
    return {
        IP: min(eni_ips, pod_ips) if old else pod_ips,
        MIN: min(2 * eni_ips, pod_ips) if old else pod_ips,
        ENI: min(lim.max_enis for lim in types),
        PFX: min(lim.slots_per_eni for lim in prefix_types),
    }


@given(cases())
@settings(max_examples=examples(300))
def test_never_beyond_instance_limits(case: Case) -> None:
    rec = case.run()
    cap = caps(rec, in_scope(case), case.cni)
    for v, value in rec.values.items():
        assert 0 <= value <= cap[v]
    if IP in rec.values:
        assert rec.values[IP] >= 1 or rec.whole_enis
    assert all(v >= 0 for v in rec.values.values())


@given(cases())
@settings(max_examples=examples(300))
def test_never_beyond_subnet_budget(case: Case) -> None:
    rec = case.run()
    targets = parse_env(case.env).with_values(rec.values)
    pressure_message = next(c.message for c in rec.conditions if c.type == "SubnetPressure")
    for b in rec.subnets:
        # Recompute what the subnet's nodes would hold, independently of the planner's grouping.
        spare = sum(
            steady_state(
                node_limits(case, n.instance_type), LIMITS[n.instance_type].runs_mode(rec.mode), targets, n.ip_pods
            ).free_ips
            for n in case.snapshot.nodes
            if b.subnet_id in n.subnet_ids
        )
        assert spare == b.warm_ips_planned
        assert b.budget_ips == int(case.subnets[b.subnet_id].free_ips * (1 - case.spec.subnet_reserve))
        if spare > b.budget_ips:
            # Only allowed when even the lowest values the policy and ipamd's safety allow do not fit.
            assert "still over" in pressure_message
            assert b.subnet_id in pressure_message.split("still over")[1]
            cap = caps(rec, in_scope(case), case.cni)
            for v, value in rec.values.items():
                bound = case.spec.bounds(v)
                assert bound is not None
                floor = min(bound.min, cap[v])
                assert value == floor or (v in (IP, PFX) and floor == 0 and value == 1)


@given(cases(), st.integers(0, 300))
@settings(max_examples=examples(300))
def test_monotone_in_the_burst(case: Case, other: int) -> None:
    low, high = sorted((case.stats.covered_burst, other))
    a = case.run(stats=replace(case.stats, covered_burst=low))
    b = case.run(stats=replace(case.stats, covered_burst=high))
    assert_more_spare(a, b)
    if not a.subnet_pressure and not b.subnet_pressure and not b.whole_enis:
        assert a.values.get(MIN) == b.values.get(MIN)


def assert_more_spare(a: Recommendation, b: Recommendation) -> None:
    """b, planned for more demand, sizes every pool at least as large as a: each warm target at least as high,
    or b leaves the pool to whole ENIs (which hold more than any capped WARM_IP_TARGET) and a did too only if
    b does."""
    assert not a.whole_enis or b.whole_enis
    for v in (IP, PFX, ENI):
        if v in a.values and not b.whole_enis:
            assert a.values[v] <= b.values[v]


@given(cases(), st.integers(0, 300))
@settings(max_examples=examples(300))
def test_monotone_in_the_demand(case: Case, other: int) -> None:
    # A busier cluster (every demand figure at least as high) never gets a smaller warm target.
    base = case.stats if case.stats.demand_samples > 0 else replace(case.stats, demand_samples=1.0)
    lift = other - base.covered_demand if other > base.covered_demand else 0
    high = replace(
        base,
        covered_demand=base.covered_demand + lift,
        demand_by_minimum=tuple((m, d + lift) for m, d in base.demand_by_minimum),
    )
    a = case.run(stats=base)
    b = case.run(stats=high)
    assert_more_spare(a, b)


@given(st.integers(-1, 400), st.integers(-1, 400), demands())
def test_demand_with_minimum_drops_as_the_minimum_grows(m1: int, m2: int, figures: dict[str, Any]) -> None:
    stats = ChurnStats(30.0, 0.95, 0, 0, 0.0, 0, 0.0, 0, True, 0.0, **figures)
    lo, hi = sorted((m1, m2))
    assert stats.demand_with_minimum(hi) <= stats.demand_with_minimum(lo) <= stats.covered_demand


@given(cases())
@settings(max_examples=examples(300))
def test_policy_bounds_and_ipamd_safety(case: Case) -> None:
    rec = case.run()
    cap = caps(rec, in_scope(case), case.cni) if rec.values else {}
    for v, value in rec.values.items():
        b = case.spec.bounds(v)
        assert b is not None
        if b.max is not None:
            assert value <= max(b.max, 1)  # the safety floor of 1 may lift a max of 0
        # Only an instance limit may hold a value below the policy's minimum; the subnet budget never does.
        assert value >= min(b.min, cap[v])
    effective = parse_env(case.env).with_values(rec.values)
    if IP in rec.values:
        # 0 only when leaving the pool to whole ENIs, which needs both IP targets 0 and a WARM_ENI_TARGET.
        assert effective.warm_ip > 0 or (rec.whole_enis and effective.minimum_ip == 0 and effective.warm_eni > 0)
    if rec.mode is IpMode.PREFIX and rec.values:
        assert effective.warm_prefix + effective.warm_ip + effective.minimum_ip > 0


@given(cases(), st.randoms(use_true_random=False))
@settings(max_examples=examples(100))
def test_deterministic_and_independent_of_node_order(case: Case, rnd: random.Random) -> None:
    nodes = list(case.snapshot.nodes)
    rnd.shuffle(nodes)
    shuffled = case.run(snapshot=replace(case.snapshot, nodes=tuple(nodes)))
    original = case.run()
    assert shuffled.values == original.values
    assert shuffled.reasons == original.reasons
    assert shuffled.subnets == original.subnets
    assert shuffled.conditions == original.conditions


# ----- the last check: nothing planned is unsafe once written, and the mode is the one ipamd runs -----

ANY_CHANGE = Rollout(dead_band=0, dead_band_ratio=0.0)  # every difference is worth writing: the write path runs


def could_fix(problem: SafetyProblem, written: list[str]) -> bool:
    """Whether writing these variables could have avoided the problem."""
    if problem.kind in (ProblemKind.PREFIX_ALL_ZERO, ProblemKind.WONT_START) and problem.variable == PFX.value:
        return IP.value in written or PFX.value in written  # one of them non-zero satisfies both rules
    if problem.kind is ProblemKind.FREEZE:
        return IP.value in written
    return problem.variable in written


def problem_keys(problems: Any) -> set[tuple[str, str | None]]:
    return {(p.kind.value, p.variable) for p in problems}


@given(cases(), st.booleans())
@settings(max_examples=examples(500))
def test_whatever_would_be_written_is_safe_in_the_mode_ipamd_runs(case: Case, in_cooldown: bool) -> None:
    rec = case.run()
    assert rec.mode is mode_from_env(case.env)
    types = in_scope(case)
    decision = decide(
        rec.values,
        current_values(case.env, rec.values),
        ANY_CHANGE,
        now=100_000.0,
        last_applied_time=99_999.0 if in_cooldown else None,  # within the cooldown only a rescue is written
        quiet_since=0.0,
        urgent=rec.subnet_pressure,
        rescue=rec.rescue,
    )
    if not decision.apply:
        return
    written = [v.value for v in decision.values]
    after = check_env(merge_env(case.env, decision.values), types, case.cni, written=written)
    assert after.mode is rec.mode
    # The write adds no problem, and leaves none it could fix: whatever remains was in the env before, comes
    # from entries the policy does not manage, and the plan reports it.
    before = check_env(case.env, types, case.cni, written=written)
    assert problem_keys(after.problems) <= problem_keys(before.problems), after.problems
    for p in after.problems:
        assert not could_fix(p, written), p
    if decision.values == rec.values:
        assert problem_keys(after.problems) == problem_keys(rec.safety)
    if rec.mode is IpMode.PREFIX:
        assert not rec.whole_enis
