"""Properties of plan() over random clusters, policies and statistics (hypothesis)."""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from warmpool.api.v1alpha1 import Variable, WarmPoolPolicySpec
from warmpool.ipamd.limits import HOST_NETWORK_PODS, InstanceLimits, IpMode
from warmpool.planner.budget import spare_ips, targets_from_env
from warmpool.planner.churn import ChurnStats
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

    def run(self, **changes: Any) -> Recommendation:
        case = replace(self, **changes)
        return plan(case.spec, case.snapshot, LIMITS, case.subnets, case.env, case.stats)


@st.composite
def bounds(draw: st.DrawFn, name: Variable) -> dict[str, Any]:
    lo = draw(st.integers(0, 20))
    hi = draw(st.one_of(st.none(), st.integers(lo, 300)))
    return {"name": name.value, "min": lo, "max": hi}


@st.composite
def cases(draw: st.DrawFn) -> Case:
    mode = draw(st.sampled_from(sorted(VALID_MANAGE)))
    manage = [draw(bounds(v)) for v in draw(st.sampled_from(VALID_MANAGE[mode]))]
    spec = WarmPoolPolicySpec.model_validate(
        {
            "mode": mode,
            "manage": manage,
            "churn": {
                "headroomIPs": draw(st.integers(0, 5)),
                "headroomRatio": draw(st.sampled_from([0.0, 0.1, 0.25, 0.5])),
            },
            "subnetReserve": draw(st.sampled_from([0.0, 0.2, 0.5])),
        }
    )
    n = draw(st.integers(1, 12))
    nodes = []
    for i in range(n):
        itype = draw(st.sampled_from(sorted(LIMITS)))
        sids = tuple(sorted(draw(st.sets(st.sampled_from(SUBNETS), min_size=1, max_size=2))))
        pods = draw(st.integers(0, LIMITS[itype].max_pods(IpMode.SECONDARY)))
        nodes.append(NodeInfo(name=f"n{i}", instance_type=itype, subnet_ids=sids, ip_pods=pods))
    subnets = {s: SubnetInfo(s, "z", draw(st.integers(0, 3000))) for s in SUBNETS}
    env: dict[str, str] = {}
    if draw(st.booleans()):
        env["ENABLE_PREFIX_DELEGATION"] = "true"
    for v in Variable:
        if draw(st.integers(0, 3)) == 0:
            env[v.value] = str(draw(st.integers(0, 10)))
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
    return Case(spec, ClusterSnapshot(now=0.0, nodes=tuple(nodes)), subnets, env, stats)


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
    return [LIMITS[t] for t in sorted({n.instance_type for n in case.snapshot.nodes})]


def caps(rec: Recommendation, types: list[InstanceLimits]) -> dict[Variable, int]:
    mode = rec.mode
    smallest = min(types, key=lambda lim: (lim.ips_per_eni(mode), lim.max_pod_ips(mode), lim.instance_type))
    pod_ips = min(min(lim.max_pod_ips(mode), lim.max_pods(mode) - HOST_NETWORK_PODS) for lim in types)
    return {
        IP: min(smallest.ips_per_eni(mode), pod_ips),
        MIN: pod_ips,
        ENI: smallest.max_enis,
        PFX: smallest.slots_per_eni,
    }


@given(cases())
@settings(max_examples=300)
def test_never_beyond_instance_limits(case: Case) -> None:
    rec = case.run()
    cap = caps(rec, in_scope(case))
    for v, value in rec.values.items():
        assert 0 <= value <= cap[v]
    if IP in rec.values:
        assert rec.values[IP] >= 1 or rec.whole_enis
    assert all(v >= 0 for v in rec.values.values())


@given(cases())
@settings(max_examples=300)
def test_never_beyond_subnet_budget(case: Case) -> None:
    rec = case.run()
    targets = targets_from_env(case.env).with_values(rec.values)
    pressure_message = next(c.message for c in rec.conditions if c.type == "SubnetPressure")
    for b in rec.subnets:
        # Recompute what the subnet's nodes would hold, independently of the planner's grouping.
        spare = sum(
            spare_ips(LIMITS[n.instance_type], rec.mode, targets, n.ip_pods)
            for n in case.snapshot.nodes
            if b.subnet_id in n.subnet_ids
        )
        assert spare == b.warm_ips_planned
        assert b.budget_ips == int(case.subnets[b.subnet_id].free_ips * (1 - case.spec.subnet_reserve))
        if spare > b.budget_ips:
            # Only allowed when even the lowest values the policy and ipamd's safety allow do not fit.
            assert "still over" in pressure_message
            assert b.subnet_id in pressure_message.split("still over")[1]
            cap = caps(rec, in_scope(case))
            for v, value in rec.values.items():
                bound = case.spec.bounds(v)
                assert bound is not None
                floor = min(bound.min, cap[v])
                assert value == floor or (v in (IP, PFX) and floor == 0 and value == 1)


@given(cases(), st.integers(0, 300))
@settings(max_examples=300)
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
@settings(max_examples=300)
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
@settings(max_examples=300)
def test_policy_bounds_and_ipamd_safety(case: Case) -> None:
    rec = case.run()
    cap = caps(rec, in_scope(case)) if rec.values else {}
    for v, value in rec.values.items():
        b = case.spec.bounds(v)
        assert b is not None
        if b.max is not None:
            assert value <= max(b.max, 1)  # the safety floor of 1 may lift a max of 0
        # Only an instance limit may hold a value below the policy's minimum; the subnet budget never does.
        assert value >= min(b.min, cap[v])
    effective = targets_from_env(case.env).with_values(rec.values)
    if IP in rec.values:
        # 0 only when leaving the pool to whole ENIs, which needs both IP targets 0 and a WARM_ENI_TARGET.
        assert effective.warm_ip > 0 or (rec.whole_enis and effective.minimum_ip == 0 and effective.warm_eni > 0)
    if rec.mode is IpMode.PREFIX and rec.values:
        assert effective.warm_prefix + effective.warm_ip + effective.minimum_ip > 0


@given(cases(), st.randoms(use_true_random=False))
@settings(max_examples=100)
def test_deterministic_and_independent_of_node_order(case: Case, rnd: random.Random) -> None:
    nodes = list(case.snapshot.nodes)
    rnd.shuffle(nodes)
    shuffled = case.run(snapshot=replace(case.snapshot, nodes=tuple(nodes)))
    original = case.run()
    assert shuffled.values == original.values
    assert shuffled.reasons == original.reasons
    assert shuffled.subnets == original.subnets
    assert shuffled.conditions == original.conditions
