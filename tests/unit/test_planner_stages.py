"""plan()'s stages one by one: each a pure function, each an {input, expected} table."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from warmpool.api.v1alpha1 import Variable, WarmPoolPolicySpec
from warmpool.ipamd.env import IpamdTargets, parse_env
from warmpool.ipamd.limits import InstanceLimits, IpMode
from warmpool.ipamd.version import CniVersion
from warmpool.planner.caps import Caps, instance_caps
from warmpool.planner.churn import ChurnStats
from warmpool.planner.clamps import Draft, safe_floors, within_bounds, within_limits
from warmpool.planner.demand import demand
from warmpool.planner.plan import last_check, scope
from warmpool.planner.rescue import plan_rescue, starving
from warmpool.planner.subnets import fit_subnets, largest_fitting
from warmpool.planner.whole_enis import whole_eni_fallback, whole_enis_cover_more
from warmpool.snapshot import ClusterSnapshot, NodeInfo, SubnetInfo

IP, MIN = Variable.WARM_IP_TARGET, Variable.MINIMUM_IP_TARGET
ENI, PFX = Variable.WARM_ENI_TARGET, Variable.WARM_PREFIX_TARGET
SEC, PREFIX = IpMode.SECONDARY, IpMode.PREFIX
T3_SMALL = InstanceLimits("t3.small", 3, 4, vcpus=2)
T3_MEDIUM = InstanceLimits("t3.medium", 3, 6, vcpus=2)
M5_LARGE = InstanceLimits("m5.large", 3, 10, vcpus=2)
M5_4XL = InstanceLimits("m5.4xlarge", 8, 30, vcpus=16)
M4_LARGE = InstanceLimits("m4.large", 2, 10, hypervisor="xen", vcpus=2)
LIMITS = {lim.instance_type: lim for lim in (T3_SMALL, T3_MEDIUM, M5_LARGE, M5_4XL, M4_LARGE)}
OLD, NEW = CniVersion(1, 11, 3), CniVersion(1, 18, 3)
PD = {"ENABLE_PREFIX_DELEGATION": "true"}


def spec(**kw: Any) -> WarmPoolPolicySpec:
    manage = kw.pop("manage", None)
    if manage is not None:
        kw["manage"] = [m if isinstance(m, dict) else {"name": m} for m in manage]
    return WarmPoolPolicySpec.model_validate(kw)


def stats(burst: int = 0, pods_per_node: int = 0, **kw: Any) -> ChurnStats:
    base = ChurnStats(30.0, 0.95, burst, burst, 100.0, pods_per_node, 100.0, 0, True, 0.0)
    return replace(base, **kw)


def nodes(*types: str, pods: int = 0, subnet: str = "subnet-a") -> ClusterSnapshot:
    return ClusterSnapshot(
        now=0.0,
        nodes=tuple(NodeInfo(f"n{i}", t, subnet_ids=(subnet,), ip_pods=pods) for i, t in enumerate(types)),
    )


# ----- scope -----


@pytest.mark.parametrize(
    ("policy", "types", "env", "mode", "managed", "degraded"),
    [
        (spec(), ["m5.large"], {}, SEC, (IP, MIN), ()),
        (spec(), ["m5.large"], {"ENABLE_PREFIX_DELEGATION": "1"}, PREFIX, (IP, MIN), ()),
        (spec(mode="Prefix"), ["m5.large"], {}, SEC, (IP, MIN), ("ModeMismatch",)),
        (spec(mode="SecondaryIP"), ["m5.large"], PD, PREFIX, (IP, MIN), ("ModeMismatch",)),
        (spec(manage=["WARM_ENI_TARGET"]), ["m5.large"], PD, PREFIX, (), ("VariableIgnored",)),
        (spec(), ["m5.large", "x9.huge"], {}, SEC, (IP, MIN), ("LimitsUnknown",)),
        (spec(), ["m4.large"], PD, PREFIX, (IP, MIN), ("PrefixOnNonNitro",)),
        (spec(), ["x9.huge"], {}, SEC, (IP, MIN), ("LimitsUnknown", "NoNodes")),
        (spec(), [], {}, SEC, (IP, MIN), ("NoNodes",)),
    ],
)
def test_scope(
    policy: WarmPoolPolicySpec,
    types: list[str],
    env: dict[str, str],
    mode: IpMode,
    managed: tuple[Variable, ...],
    degraded: tuple[str, ...],
) -> None:
    s = scope(policy, nodes(*types), LIMITS, env)
    assert (s.mode, s.managed, tuple(r for r, _ in s.degraded)) == (mode, managed, degraded)
    assert [lim.instance_type for lim in s.known] == sorted(t for t in types if t in LIMITS)


# ----- limits: the caps -----


@pytest.mark.parametrize(
    ("types", "mode", "cni", "expected"),
    [
        # (WARM_IP, MINIMUM_IP, WARM_ENI, WARM_PREFIX)
        ([M5_LARGE], SEC, None, (9, 18, 3, 9)),  # unknown version: one ENI / two ENIs (#1872)
        ([M5_LARGE], SEC, OLD, (9, 18, 3, 9)),
        ([M5_LARGE], SEC, NEW, (27, 27, 3, 9)),  # only the pod IPs
        ([M5_LARGE, T3_SMALL], SEC, NEW, (9, 9, 3, 3)),  # the smallest type binds
        ([M5_LARGE, M5_4XL], SEC, None, (9, 18, 3, 9)),
        ([M5_LARGE], PREFIX, None, (108, 108, 3, 9)),  # 144 IPs per ENI, 110 max pods
        ([M5_LARGE, M4_LARGE], PREFIX, None, (9, 18, 2, 9)),  # m4.large runs secondary IPs
        ([M5_LARGE, M4_LARGE], PREFIX, NEW, (18, 18, 2, 9)),
    ],
)
def test_instance_caps(
    types: list[InstanceLimits], mode: IpMode, cni: CniVersion | None, expected: tuple[int, int, int, int]
) -> None:
    caps = instance_caps(types, mode, cni)
    assert tuple(caps.cap(v) for v in (IP, MIN, ENI, PFX)) == expected
    assert ("#1872" in caps.why(IP)) is (cni is not NEW and caps.cap(IP) < caps.pod_ips)


def test_caps_name_the_version() -> None:
    assert "VPC CNI v1.11.3" in instance_caps([M5_LARGE], SEC, OLD).why(IP)
    assert "unknown version" in instance_caps([M5_LARGE], SEC, None).why(MIN)


# ----- demand -----

CAPS_M5 = instance_caps([M5_LARGE], SEC, None)


@pytest.mark.parametrize(
    ("policy", "st", "env", "expected"),
    [
        # (covered, headroom, minimum, raw WARM_IP, raw WARM_ENI, raw WARM_PREFIX)
        # the epoch burst before any demand is measured; the typical density, within two ENIs (#1872)
        (spec(), stats(7, 20), {}, (7, 1, 18, 8, 1, 1)),
        (spec(churn={"headroomRatio": 0.5}), stats(10), {}, (10, 6, 0, 16, 2, 1)),
        # measured demand (starts plus cooling IPs) replaces the burst
        (spec(), stats(9, 12, covered_demand=5, max_demand=5, demand_samples=10.0), {}, (5, 1, 12, 6, 1, 1)),
        # MINIMUM_IP_TARGET not managed: the one in effect serves the starts below it
        (
            spec(manage=["WARM_IP_TARGET"]),
            stats(9, 0, covered_demand=7, max_demand=7, demand_samples=1.0, demand_by_minimum=((8, 4),)),
            {"MINIMUM_IP_TARGET": "8"},
            (4, 1, 8, 5, 1, 1),
        ),
    ],
)
def test_demand(policy: WarmPoolPolicySpec, st: ChurnStats, env: dict[str, str], expected: tuple[int, ...]) -> None:
    d = demand(policy, st, SEC, policy.managed_variables, parse_env(env), CAPS_M5)
    assert (d.covered, d.headroom, d.minimum, *(d.raw[v][0] for v in (IP, ENI, PFX))) == expected
    assert d.need == d.covered + d.headroom


# ----- bounds, limits, safety -----


@pytest.mark.parametrize(
    ("manage", "raw", "values", "floors"),
    [
        ([IP, MIN], {IP: 8, MIN: 20}, {IP: 8, MIN: 20}, {IP: 0, MIN: 0}),
        ([{"name": "WARM_IP_TARGET", "max": 5}, MIN], {IP: 8, MIN: 20}, {IP: 5, MIN: 20}, {IP: 0, MIN: 0}),
        ([{"name": "WARM_IP_TARGET", "min": 3}, MIN], {IP: 1, MIN: 2}, {IP: 3, MIN: 2}, {IP: 3, MIN: 0}),
        ([IP, {"name": "MINIMUM_IP_TARGET", "min": 4, "max": 4}], {IP: 1, MIN: 9}, {IP: 1, MIN: 4}, {IP: 0, MIN: 4}),
    ],
)
def test_within_bounds(
    manage: list[Any], raw: dict[Variable, int], values: dict[Variable, int], floors: dict[Variable, int]
) -> None:
    policy = spec(manage=manage)
    draft = within_bounds(policy, policy.managed_variables, {v: (n, "raw") for v, n in raw.items()})
    assert (draft.values, draft.floors) == (values, floors)
    assert all(draft.reasons[v][0] == "raw" for v in values)


@pytest.mark.parametrize(
    ("caps", "values", "floors", "expected", "expected_floors"),
    [
        (CAPS_M5, {IP: 8, MIN: 20}, {IP: 0, MIN: 0}, {IP: 8, MIN: 18}, {IP: 0, MIN: 0}),
        (CAPS_M5, {IP: 30}, {IP: 20}, {IP: 9}, {IP: 9}),  # the cap wins over the policy's min
        (instance_caps([M5_LARGE], SEC, NEW), {IP: 30}, {IP: 20}, {IP: 27}, {IP: 20}),
        (CAPS_M5, {ENI: 5}, {ENI: 0}, {ENI: 3}, {ENI: 0}),
    ],
)
def test_within_limits(
    caps: Caps,
    values: dict[Variable, int],
    floors: dict[Variable, int],
    expected: dict[Variable, int],
    expected_floors: dict[Variable, int],
) -> None:
    draft = within_limits(Draft(values, {v: ("raw",) for v in values}, floors), caps)
    assert (draft.values, draft.floors) == (expected, expected_floors)
    for v in values:
        assert ("capped" in draft.explain()[v]) is (values[v] > expected[v])


@pytest.mark.parametrize(
    ("mode", "values", "env", "expected", "expected_floors"),
    [
        (SEC, {IP: 0, MIN: 12}, {}, {IP: 1, MIN: 12}, {IP: 1, MIN: 0}),  # freeze
        (SEC, {IP: 0}, {}, {IP: 1}, {IP: 1}),  # 0 would hand the pool back to whole ENIs
        (SEC, {ENI: 0}, {}, {ENI: 0}, {ENI: 0}),  # WARM_ENI_TARGET=0 is ipamd's own business
        (PREFIX, {PFX: 0}, PD, {PFX: 1}, {PFX: 1}),  # every target 0: aws-node does not start
        (PREFIX, {PFX: 0}, {**PD, "WARM_IP_TARGET": "5"}, {PFX: 0}, {PFX: 0}),  # another target keeps it running
        (PREFIX, {PFX: 0}, {**PD, "WARM_IP_TARGET": "+5"}, {PFX: 1}, {PFX: 1}),  # "+5" <= "0" for the entrypoint
        (PREFIX, {PFX: 0}, {**PD, "MINIMUM_IP_TARGET": "00"}, {PFX: 1}, {PFX: 1}),  # "00" is 0 for ipamd
        (PREFIX, {PFX: 3}, PD, {PFX: 3}, {PFX: 1}),  # the floor rises even when the value is fine
    ],
)
def test_safe_floors(
    mode: IpMode,
    values: dict[Variable, int],
    env: dict[str, str],
    expected: dict[Variable, int],
    expected_floors: dict[Variable, int],
) -> None:
    draft = safe_floors(Draft(values, {v: ("raw",) for v in values}, dict.fromkeys(values, 0)), mode, env)
    assert (draft.values, draft.floors) == (expected, expected_floors)


# ----- subnet fit -----


@pytest.mark.parametrize(
    ("free", "values", "floors", "expected", "pressure"),
    [
        # 10 m5.large nodes with 10 pods each; budget = 80% of free; WARM_IP 8, MIN 20 hold 10 spare each.
        (1000, {IP: 8, MIN: 20}, {IP: 1, MIN: 0}, {IP: 8, MIN: 20}, None),
        (100, {IP: 8, MIN: 20}, {IP: 1, MIN: 0}, {IP: 8, MIN: 18}, 1),  # MIN first
        (50, {IP: 8, MIN: 20}, {IP: 1, MIN: 0}, {IP: 4, MIN: 0}, 1),  # then the warm target
        (5, {IP: 8, MIN: 20}, {IP: 1, MIN: 0}, {IP: 1, MIN: 0}, 2),  # still over at the floors
        (5, {IP: 8, MIN: 20}, {IP: 3, MIN: 15}, {IP: 3, MIN: 15}, 2),  # floors hold
    ],
)
def test_fit_subnets(
    free: int,
    values: dict[Variable, int],
    floors: dict[Variable, int],
    expected: dict[Variable, int],
    pressure: int | None,
) -> None:
    snap = nodes(*["m5.large"] * 10, pods=10)
    fit = fit_subnets(
        spec(),
        snap,
        LIMITS,
        {"subnet-a": SubnetInfo("subnet-a", "z", free)},
        SEC,
        Draft(values, {v: ("raw",) for v in values}, floors),
        IpamdTargets(),
    )
    assert fit.draft.values == expected
    assert (None if fit.pressure is None else len(fit.pressure)) == pressure
    (budget,) = fit.budgets
    assert budget.budget_ips == int(free * 0.8)
    assert budget.nodes == 10


@pytest.mark.parametrize(
    ("lo", "hi", "limit", "expected"), [(0, 10, 4, 4), (0, 10, 20, 10), (5, 10, 4, None), (3, 3, 3, 3)]
)
def test_largest_fitting(lo: int, hi: int, limit: int, expected: int | None) -> None:
    assert largest_fitting(lo, hi, lambda x: x <= limit) == expected


# ----- whole ENIs -----

CAPS_MIXED = instance_caps([T3_MEDIUM, M5_4XL], SEC, None)  # WARM_IP cap 5 (t3.medium's ENI), pod IPs 15


@pytest.mark.parametrize(
    ("policy", "mode", "current", "need", "caps", "expected"),
    [
        (spec(), SEC, IpamdTargets(), 13, CAPS_MIXED, True),
        (spec(), SEC, IpamdTargets(), 5, CAPS_MIXED, False),  # the cap covers the need
        (spec(), PREFIX, IpamdTargets(), 13, CAPS_MIXED, False),  # never in prefix mode
        (spec(), SEC, IpamdTargets(), 13, instance_caps([T3_MEDIUM, M5_4XL], SEC, NEW), False),  # no #1872 cap
        (spec(), SEC, IpamdTargets(warm_eni=0), 13, CAPS_MIXED, False),  # nothing to take over
        (spec(manage=["WARM_IP_TARGET"]), SEC, IpamdTargets(minimum_ip=4), 13, CAPS_MIXED, False),  # would freeze
        (
            spec(manage=[{"name": "WARM_IP_TARGET", "min": 1}, "MINIMUM_IP_TARGET"]),
            SEC,
            IpamdTargets(),
            13,
            CAPS_MIXED,
            False,
        ),
        (
            spec(manage=[{"name": "WARM_IP_TARGET", "max": 5}, "MINIMUM_IP_TARGET"]),
            SEC,
            IpamdTargets(),
            13,
            CAPS_MIXED,
            False,
        ),
    ],
)
def test_whole_enis_cover_more(
    policy: WarmPoolPolicySpec, mode: IpMode, current: IpamdTargets, need: int, caps: Caps, expected: bool
) -> None:
    assert whole_enis_cover_more(policy, mode, policy.managed_variables, current, need, caps) is expected


@pytest.mark.parametrize(
    ("env", "free", "taken"),
    [
        ({}, 100_000, True),
        ({"WARM_ENI_TARGET": "1"}, 100_000, True),
        ({"WARM_ENI_TARGET": "x"}, 100_000, False),  # ipamd ignores it: not relied upon
        ({"WARM_ENI_TARGET": "9"}, 100_000, False),  # more ENIs than the instances have
        ({}, 40, False),  # the subnet cannot afford whole ENIs
    ],
)
def test_whole_eni_fallback(env: dict[str, str], free: int, taken: bool) -> None:
    policy = spec()
    draft = Draft({IP: 5, MIN: 0}, {IP: ("capped",), MIN: ("raw",)}, {IP: 1, MIN: 0})
    fit = whole_eni_fallback(
        policy,
        nodes("t3.medium", "m5.4xlarge"),
        LIMITS,
        {"subnet-a": SubnetInfo("subnet-a", "z", free)},
        SEC,
        draft,
        env,
        parse_env(env),
        13,
        CAPS_MIXED,
        None,
    )
    assert (fit is not None) is taken
    if fit is not None:
        assert fit.draft.values == {IP: 0, MIN: 0}
        assert "whole ENIs spare" in fit.draft.explain()[IP]


# ----- rescue -----

STARVING = stats(2, 12, covered_demand=6, max_demand=6, demand_samples=100.0)


@pytest.mark.parametrize(
    ("policy", "st", "current", "values", "whole", "expected"),
    [
        # WARM_IP 3 + MIN 12 in effect cover less than the demand of 6: WARM_IP 7 next to the minimum.
        (spec(), STARVING, IpamdTargets(warm_ip=3, minimum_ip=12), {IP: 7, MIN: 12}, False, {IP: 7, MIN: 12}),
        # enough in effect
        (spec(), STARVING, IpamdTargets(warm_ip=6, minimum_ip=12), {IP: 7, MIN: 12}, False, None),
        # nothing in effect yet: ipamd runs whole ENIs, not starving
        (spec(), STARVING, IpamdTargets(), {IP: 7, MIN: 12}, False, None),
        # whole ENIs cover more
        (spec(), STARVING, IpamdTargets(warm_ip=3, minimum_ip=12), {IP: 0, MIN: 0}, True, {IP: 0, MIN: 0}),
        # no demand measured: no rescue
        (spec(), stats(2, 12), IpamdTargets(warm_ip=1, minimum_ip=12), {IP: 7, MIN: 12}, False, None),
        # a raise within the dead band is no rescue
        (
            spec(rollout={"deadBand": 10}),
            STARVING,
            IpamdTargets(warm_ip=3, minimum_ip=12),
            {IP: 7, MIN: 12},
            False,
            None,
        ),
    ],
)
def test_plan_rescue(
    policy: WarmPoolPolicySpec,
    st: ChurnStats,
    current: IpamdTargets,
    values: dict[Variable, int],
    whole: bool,
    expected: dict[Variable, int] | None,
) -> None:
    rescue = plan_rescue(policy, st, SEC, current, values, whole, 9)
    assert (None if rescue is None else rescue.values) == expected
    if rescue is not None:
        assert "pods wait for IPs now" in rescue.why


@pytest.mark.parametrize(("missed", "expected"), [(0.0, False), (40.0, False), (60.0, True)])
def test_starving_needs_pods_waiting_in_numbers(missed: float, expected: bool) -> None:
    st = stats(
        5,
        18,
        covered_demand=5,
        max_demand=5,
        demand_samples=1000.0,
        demand_by_minimum=((19, 3), (20, 0)),
        demand_table=((17, 2, 1000.0 - missed), (20, 3, missed)),
    )
    assert starving(st, IpamdTargets(warm_ip=1, minimum_ip=19)) is expected


# ----- the last check -----


@pytest.mark.parametrize(
    ("env", "values", "safe"),
    [
        ({}, {IP: 2, MIN: 5}, True),
        ({"MINIMUM_IP_TARGET": "5"}, {ENI: 2}, False),  # someone else's minimum freezes nodes
        ({"WARM_PREFIX_TARGET": "abc"}, {IP: 2}, True),  # an ignored value the write does not touch: a note
        ({**PD, "WARM_IP_TARGET": "0"}, {PFX: 0}, False),  # aws-node would not start
        ({"ENABLE_PREFIX_DELEGATION": "1"}, {IP: 3}, True),
    ],
)
def test_last_check(env: dict[str, str], values: dict[Variable, int], safe: bool) -> None:
    assert last_check(env, values, [M5_LARGE], None).safe is safe
