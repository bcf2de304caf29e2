"""The planner's rules, one table row or test each."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from warmpool.api.v1alpha1 import ConditionType, Mode, Variable, WarmPoolPolicySpec
from warmpool.ipamd.limits import InstanceLimits, IpMode
from warmpool.ipamd.safety import ProblemKind, check_env
from warmpool.ipamd.version import CniVersion
from warmpool.planner.churn import ChurnStats
from warmpool.planner.plan import Recommendation, effective_mode, plan
from warmpool.snapshot import ClusterSnapshot, NodeInfo, SubnetInfo

IP = Variable.WARM_IP_TARGET
MIN = Variable.MINIMUM_IP_TARGET
ENI = Variable.WARM_ENI_TARGET
PFX = Variable.WARM_PREFIX_TARGET
ONE_IP = {"name": "WARM_IP_TARGET", "min": 1}  # a policy that never leaves the pool to whole ENIs

LIMITS = {
    lim.instance_type: lim
    for lim in (
        InstanceLimits("t3.small", 3, 4, vcpus=2),
        InstanceLimits("t3.medium", 3, 6, vcpus=2),
        InstanceLimits("m5.large", 3, 10, vcpus=2),
        InstanceLimits("m5.xlarge", 4, 15, vcpus=4),
        InstanceLimits("m5.4xlarge", 8, 30, vcpus=16),
        InstanceLimits("m4.large", 2, 10, hypervisor="xen", vcpus=2),
    )
}
BIG_SUBNET = {"subnet-a": SubnetInfo("subnet-a", "eu-west-1a", 100_000)}
PD = {"ENABLE_PREFIX_DELEGATION": "true"}
NEW = CniVersion(1, 18, 3)  # past the #1872 fix: no cap at one ENI's worth
OLD = CniVersion(1, 11, 3)


def spec(**kw: Any) -> WarmPoolPolicySpec:
    manage = kw.pop("manage", None)
    if manage is not None:
        kw["manage"] = [m if isinstance(m, dict) else {"name": m} for m in manage]
    return WarmPoolPolicySpec.model_validate(kw)


def stats(covered: int = 0, pods_per_node: int = 0, quantile: float = 0.95) -> ChurnStats:
    return ChurnStats(
        window=30.0,
        quantile=quantile,
        covered_burst=covered,
        max_burst=covered,
        burst_samples=100.0,
        pods_per_node=pods_per_node,
        density_samples=100.0,
        current_burst=0,
        quiet=True,
        quiet_since=0.0,
    )


def cluster(*types: str, pods: int = 0, subnet: str = "subnet-a") -> ClusterSnapshot:
    nodes = tuple(
        NodeInfo(name=f"n{i}", instance_type=t, subnet_ids=(subnet,), ip_pods=pods) for i, t in enumerate(types)
    )
    return ClusterSnapshot(now=1000.0, nodes=nodes)


def run(
    policy: WarmPoolPolicySpec,
    st: ChurnStats,
    snapshot: ClusterSnapshot | None = None,
    env: Mapping[str, str] | None = None,
    subnets: Mapping[str, SubnetInfo] | None = None,
    cni: CniVersion | None = NEW,
) -> Recommendation:
    return plan(
        policy,
        snapshot or cluster("m5.large"),
        LIMITS,
        BIG_SUBNET if subnets is None else subnets,
        env or {},
        st,
        cni_version=cni,
    )


# ----- values -----


@pytest.mark.parametrize(
    ("policy", "st", "types", "env", "expected"),
    [
        # Secondary IP, default manage: WARM_IP = covered burst + headroomIPs (1); MIN = typical density.
        (spec(), stats(7, 20), ["m5.large"], {}, {IP: 8, MIN: 20}),
        # headroomRatio: 10 + 1 + ceil(0.2 * 10) = 13, within m5.xlarge's 14 IPs per ENI.
        (spec(churn={"headroomRatio": 0.2}), stats(10, 5), ["m5.xlarge"], {}, {IP: 13, MIN: 5}),
        # MINIMUM_IP never above the pod IPs of the smallest type: t3.small holds 9.
        (spec(), stats(1, 30), ["t3.small", "m5.large"], {}, {IP: 2, MIN: 9}),
        # WARM_ENI alone: ceil((10 + 1) / 9 usable IPs per m5.large ENI) = 2.
        (spec(mode="SecondaryIP", manage=["WARM_ENI_TARGET"]), stats(10), ["m5.large"], {}, {ENI: 2}),
        # ... sized on the smallest type's ENI: ceil(11 / 3) = 4, capped at t3.small's 3 ENIs.
        (spec(mode="SecondaryIP", manage=["WARM_ENI_TARGET"]), stats(10), ["t3.small"], {}, {ENI: 3}),
        # Prefix: ceil((20 + 1) / 16) = 2 prefixes.
        (spec(mode="Prefix", manage=["WARM_PREFIX_TARGET"]), stats(20), ["m5.large"], PD, {PFX: 2}),
        # Prefix, capped at one ENI's slots of the smallest type (t3.small: 3).
        (spec(mode="Prefix", manage=["WARM_PREFIX_TARGET"]), stats(100), ["t3.small"], PD, {PFX: 3}),
        # Prefix with IP targets: one ENI of prefixes on m5.large is 144 IPs, max pods 110 -> 108 pod IPs.
        (spec(mode="Prefix"), stats(30, 40), ["m5.large"], PD, {IP: 31, MIN: 40}),
        (spec(mode="Prefix"), stats(200, 200), ["m5.large"], PD, {IP: 108, MIN: 108}),
        # ENABLE_PREFIX_DELEGATION as Go reads it: "1" and "t" are true.
        (spec(), stats(30, 5), ["m5.large"], {"ENABLE_PREFIX_DELEGATION": "1"}, {IP: 31, MIN: 5}),
        (spec(), stats(30, 5), ["m5.large"], {"ENABLE_PREFIX_DELEGATION": "t"}, {IP: 31, MIN: 5}),
        # A leading space is not: secondary-IP mode, WARM_IP_TARGET within m5.large's 27 pod IPs.
        (spec(), stats(30, 5), ["m5.large"], {"ENABLE_PREFIX_DELEGATION": " true"}, {IP: 27, MIN: 5}),
        # Auto follows ENABLE_PREFIX_DELEGATION: the same burst allows more in prefix mode.
        (spec(), stats(30, 5), ["m5.large"], {"ENABLE_PREFIX_DELEGATION": "true"}, {IP: 31, MIN: 5}),
        (
            spec(manage=[ONE_IP, MIN]),
            stats(30, 5),
            ["m5.large"],
            {"ENABLE_PREFIX_DELEGATION": "false"},
            {IP: 27, MIN: 5},
        ),
    ],
)
def test_values(
    policy: WarmPoolPolicySpec,
    st: ChurnStats,
    types: list[str],
    env: dict[str, str],
    expected: dict[Variable, int],
) -> None:
    rec = run(policy, st, cluster(*types), env)
    assert rec.values == expected
    assert set(rec.reasons) == set(expected)


@pytest.mark.parametrize(
    ("policy", "st", "types", "env", "cni", "expected"),
    [
        # Before the #1872 fix (or when the version is unknown) WARM_IP_TARGET stays within one ENI of the
        # smallest type in scope (t3.medium: 5 IPs) and MINIMUM_IP_TARGET within two (10). (With the policy's
        # default min of 0 the pool goes to whole ENIs instead: see the fallback tests.)
        (spec(manage=[ONE_IP, MIN]), stats(20, 12), ["m5.large", "t3.medium"], {}, None, {IP: 5, MIN: 10}),
        (spec(manage=[ONE_IP, MIN]), stats(20, 12), ["m5.large", "t3.medium"], {}, OLD, {IP: 5, MIN: 10}),
        (
            spec(manage=[ONE_IP, MIN]),
            stats(20, 12),
            ["m5.large", "t3.medium"],
            {},
            CniVersion(1, 11, 4),
            {IP: 15, MIN: 12},
        ),
        # From the fix on, only the pod IPs of the smallest type bound them (t3.medium: 15).
        (spec(manage=[ONE_IP, MIN]), stats(20, 12), ["m5.large", "t3.medium"], {}, NEW, {IP: 15, MIN: 12}),
        # In prefix mode one ENI of m5.large holds 144 IPs: only max pods binds.
        (spec(), stats(120, 5), ["m5.large"], PD, None, {IP: 108, MIN: 5}),
        # ... unless a non-Nitro type in scope runs secondary IPs: m4.large holds 9 per ENI, 18 pod IPs.
        (spec(manage=[ONE_IP, MIN]), stats(30, 5), ["m5.large", "m4.large"], PD, None, {IP: 9, MIN: 5}),
        (spec(manage=[ONE_IP, MIN]), stats(30, 5), ["m5.large", "m4.large"], PD, NEW, {IP: 18, MIN: 5}),
    ],
)
def test_vpc_cni_1872_caps(
    policy: WarmPoolPolicySpec,
    st: ChurnStats,
    types: list[str],
    env: dict[str, str],
    cni: CniVersion | None,
    expected: dict[Variable, int],
) -> None:
    rec = run(policy, st, cluster(*types), env, cni=cni)
    assert rec.values == expected
    assert rec.safety == ()


@pytest.mark.parametrize(
    ("bounds", "st", "expected", "why"),
    [
        ({"name": "WARM_IP_TARGET", "max": 5}, stats(7), 5, "policy maximum 5"),
        ({"name": "WARM_IP_TARGET", "min": 6}, stats(0), 6, "policy minimum 6"),
        # The policy's min loses to what the smallest instance can hold: m5.large has 27 pod IPs.
        ({"name": "WARM_IP_TARGET", "min": 40}, stats(0), 27, "capped at 27"),
    ],
)
def test_policy_bounds(bounds: dict[str, Any], st: ChurnStats, expected: int, why: str) -> None:
    rec = run(spec(manage=[bounds, "MINIMUM_IP_TARGET"]), st)
    assert rec.values[IP] == expected
    assert why in rec.reasons[IP]


def test_minimum_bounds() -> None:
    rec = run(spec(manage=["WARM_IP_TARGET", {"name": "MINIMUM_IP_TARGET", "min": 4, "max": 12}]), stats(1, 20))
    assert rec.values[MIN] == 12
    rec = run(spec(manage=["WARM_IP_TARGET", {"name": "MINIMUM_IP_TARGET", "min": 4, "max": 12}]), stats(1, 0))
    assert rec.values[MIN] == 4


def test_reasons_carry_the_numbers() -> None:
    rec = run(spec(), stats(7, 20))
    assert "8 IPs cover the p95 burst of 7 pod starts per node in 30s plus 1 headroom" in rec.reasons[IP]
    assert "20 pods" in rec.reasons[MIN]
    rec = run(spec(manage=[ONE_IP, MIN]), stats(20, 10), cluster("m5.large", "t3.medium"), cni=OLD)
    assert "#1872" in rec.reasons[IP]
    assert "t3.medium" in rec.reasons[IP]
    assert "VPC CNI v1.11.3" in rec.reasons[IP]


# ----- safety -----


def test_never_minimum_with_warm_ip_zero() -> None:
    policy = spec(manage=[{"name": "WARM_IP_TARGET", "min": 0}, "MINIMUM_IP_TARGET"], churn={"headroomIPs": 0})
    rec = run(policy, stats(0, 12))
    assert rec.values == {IP: 1, MIN: 12}
    assert "freezes nodes" in rec.reasons[IP]


def test_warm_ip_zero_never_hands_control_back() -> None:
    policy = spec(manage=[{"name": "WARM_IP_TARGET", "min": 0}], churn={"headroomIPs": 0})
    assert run(policy, stats(0, 0)).values == {IP: 1}


@pytest.mark.parametrize(
    ("manage", "env", "expected"),
    [
        (["WARM_PREFIX_TARGET"], {}, {PFX: 1}),
        # An unmanaged target already non-zero on the DaemonSet keeps aws-node starting.
        ([{"name": "WARM_PREFIX_TARGET", "min": 0}], {"WARM_IP_TARGET": "5"}, {PFX: 0}),
        ([{"name": "WARM_PREFIX_TARGET", "min": 0}], {"WARM_IP_TARGET": "0"}, {PFX: 1}),
        # The entrypoint compares the text with "0": " 5" and "+5" count as zero, so PFX must be set.
        ([{"name": "WARM_PREFIX_TARGET", "min": 0}], {"WARM_IP_TARGET": "+5"}, {PFX: 1}),
        ([{"name": "WARM_PREFIX_TARGET", "min": 0}], {"MINIMUM_IP_TARGET": " 5"}, {PFX: 1}),
        # ipamd parses the numbers: "00" and "abc" pass the entrypoint but are 0 for ipamd.
        ([{"name": "WARM_PREFIX_TARGET", "min": 0}], {"WARM_IP_TARGET": "00"}, {PFX: 1}),
        ([{"name": "WARM_PREFIX_TARGET", "min": 0}], {"WARM_IP_TARGET": "abc"}, {PFX: 1}),
        ([{"name": "WARM_IP_TARGET", "min": 0}], {"WARM_PREFIX_TARGET": "0"}, {IP: 1}),
    ],
)
def test_prefix_mode_never_all_zero(manage: list[Any], env: dict[str, str], expected: dict[Variable, int]) -> None:
    policy = spec(mode="Prefix", manage=manage, churn={"headroomIPs": 0})
    rec = run(policy, stats(0), env={**PD, **env})
    assert rec.values == expected


def test_whole_unit_target_overridden_by_ip_targets_on_the_daemonset() -> None:
    policy = spec(mode="SecondaryIP", manage=["WARM_ENI_TARGET"])
    rec = run(policy, stats(3), env={"MINIMUM_IP_TARGET": "10"})
    degraded = rec.condition(ConditionType.DEGRADED)
    assert degraded is not None
    assert degraded.status
    assert degraded.reason == "Overridden"


# ----- conditions -----


def test_variable_without_effect_in_the_mode_is_left_alone() -> None:
    policy = spec(manage=["WARM_ENI_TARGET"])  # Auto
    rec = run(policy, stats(3), env={"ENABLE_PREFIX_DELEGATION": "true"})
    assert rec.mode is IpMode.PREFIX
    assert rec.values == {}
    degraded = rec.condition(ConditionType.DEGRADED)
    assert degraded is not None
    assert degraded.reason == "VariableIgnored"


def test_unknown_limits_are_degraded_but_known_types_are_planned() -> None:
    rec = run(spec(), stats(7, 20), cluster("m5.large", "x9.huge"))
    degraded = rec.condition(ConditionType.DEGRADED)
    assert degraded is not None
    assert degraded.status
    assert degraded.reason == "LimitsUnknown"
    assert "x9.huge" in degraded.message
    assert rec.values == {IP: 8, MIN: 20}


@pytest.mark.parametrize("snapshot", [cluster("x9.huge"), ClusterSnapshot(now=0.0)])
def test_nothing_to_plan(snapshot: ClusterSnapshot) -> None:
    rec = run(spec(), stats(7, 20), snapshot)
    assert rec.values == {}
    degraded = rec.condition(ConditionType.DEGRADED)
    assert degraded is not None
    assert degraded.status


def test_prefix_on_non_nitro_is_degraded() -> None:
    rec = run(spec(mode="Prefix"), stats(3), cluster("m4.large"), env=PD)
    degraded = rec.condition(ConditionType.DEGRADED)
    assert degraded is not None
    assert degraded.reason == "PrefixOnNonNitro"


def test_unknown_subnets_are_degraded() -> None:
    rec = run(spec(), stats(3), cluster("m5.large", subnet="subnet-zz"))
    degraded = rec.condition(ConditionType.DEGRADED)
    assert degraded is not None
    assert degraded.reason == "SubnetsUnknown"
    assert "subnet-zz" in degraded.message


def test_healthy_plan_reports_false_conditions() -> None:
    rec = run(spec(), stats(3, 10))
    assert [(c.type, c.status) for c in rec.conditions] == [
        (ConditionType.DEGRADED, False),
        (ConditionType.SUBNET_PRESSURE, False),
    ]


# ----- subnet budget -----


def ten_nodes(free: int, pods: int = 10) -> tuple[ClusterSnapshot, dict[str, SubnetInfo]]:
    snapshot = cluster(*["m5.large"] * 10, pods=pods, subnet="subnet-s")
    other = NodeInfo(name="x", instance_type="m5.large", subnet_ids=("subnet-b",), ip_pods=0)
    snapshot = ClusterSnapshot(now=snapshot.now, nodes=(*snapshot.nodes, other))
    return snapshot, {
        "subnet-s": SubnetInfo("subnet-s", "eu-west-1a", free),
        "subnet-b": SubnetInfo("subnet-b", "eu-west-1b", 10_000),
    }


@pytest.mark.parametrize(
    ("free", "expected", "still_over"),
    [
        # budget = 80% of free. 10 nodes x 10 pods at WARM_IP 8, MIN 20 hold 20 each: 100 spare in all.
        (1000, {IP: 8, MIN: 20}, False),  # budget 800: fits
        (100, {IP: 8, MIN: 18}, False),  # budget 80: MIN lowered first, 18 -> spare 8 each
        (50, {IP: 4, MIN: 0}, False),  # budget 40: MIN to its floor, then WARM_IP 4 each
        (5, {IP: 1, MIN: 0}, True),  # budget 4: even at the floors 10 nodes keep 1 spare each
    ],
)
def test_subnet_budget(free: int, expected: dict[Variable, int], still_over: bool) -> None:
    snapshot, subnets = ten_nodes(free)
    rec = run(spec(), stats(7, 20), snapshot, subnets=subnets)
    assert rec.values == expected
    budget = {b.subnet_id: b for b in rec.subnets}
    assert budget["subnet-s"].budget_ips == int(free * 0.8)
    assert budget["subnet-s"].reserve_ips == free - int(free * 0.8)
    assert budget["subnet-s"].nodes == 10
    assert budget["subnet-b"].nodes == 1
    assert (budget["subnet-s"].warm_ips_planned > budget["subnet-s"].budget_ips) is still_over
    pressure = rec.condition(ConditionType.SUBNET_PRESSURE)
    assert pressure is not None
    if free == 1000:
        assert not pressure.status
    else:
        assert pressure.status
        assert "subnet-s" in pressure.message
        assert "subnet-b" not in pressure.message
        assert ("still over" in pressure.message) is still_over
        lowered = [v for v in (IP, MIN) if expected[v] < {IP: 8, MIN: 20}[v]]
        assert all("subnet-s" in rec.reasons[v] for v in lowered)


def test_subnet_budget_respects_policy_minimum() -> None:
    snapshot, subnets = ten_nodes(5)
    policy = spec(manage=[{"name": "WARM_IP_TARGET", "min": 3}, {"name": "MINIMUM_IP_TARGET", "min": 15}])
    rec = run(policy, stats(7, 20), snapshot, subnets=subnets)
    assert rec.values == {IP: 3, MIN: 15}
    assert rec.subnet_pressure


def test_node_in_two_subnets_is_charged_to_both() -> None:
    node = NodeInfo(name="n", instance_type="m5.large", subnet_ids=("subnet-a", "subnet-b"), ip_pods=0)
    subnets = {s: SubnetInfo(s, "z", 1000) for s in ("subnet-a", "subnet-b")}
    rec = run(spec(), stats(3, 0), ClusterSnapshot(now=0.0, nodes=(node,)), subnets=subnets)
    assert [b.warm_ips_planned for b in rec.subnets] == [4, 4]


@pytest.mark.parametrize(
    ("mode", "env", "expected"),
    [
        (Mode.AUTO, {}, IpMode.SECONDARY),
        (Mode.AUTO, {"ENABLE_PREFIX_DELEGATION": "True"}, IpMode.PREFIX),
        (Mode.AUTO, {"ENABLE_PREFIX_DELEGATION": "1"}, IpMode.PREFIX),
        (Mode.AUTO, {"ENABLE_PREFIX_DELEGATION": "t"}, IpMode.PREFIX),
        (Mode.AUTO, {"ENABLE_PREFIX_DELEGATION": " true"}, IpMode.SECONDARY),
        (Mode.AUTO, {"ENABLE_PREFIX_DELEGATION": "yes"}, IpMode.SECONDARY),
        # A forced mode never overrides what ipamd runs (it is reported as ModeMismatch).
        (Mode.PREFIX, {}, IpMode.SECONDARY),
        (Mode.SECONDARY_IP, {"ENABLE_PREFIX_DELEGATION": "true"}, IpMode.PREFIX),
    ],
)
def test_effective_mode(mode: Mode, env: dict[str, str], expected: IpMode) -> None:
    assert effective_mode(mode, env) is expected


def test_deterministic() -> None:
    snapshot, subnets = ten_nodes(100)
    assert run(spec(), stats(7, 20), snapshot, subnets=subnets) == run(spec(), stats(7, 20), snapshot, subnets=subnets)


# ----- demand: starts plus cooling IPs, and the starts the minimum serves -----


def demand_stats(
    burst: int, demand: int, pods_per_node: int = 0, by_minimum: tuple[tuple[int, int], ...] = ()
) -> ChurnStats:
    return ChurnStats(
        window=30.0,
        quantile=0.95,
        covered_burst=burst,
        max_burst=burst,
        burst_samples=100.0,
        pods_per_node=pods_per_node,
        density_samples=100.0,
        current_burst=0,
        quiet=True,
        quiet_since=0.0,
        covered_demand=demand,
        max_demand=demand,
        demand_samples=100.0,
        demand_by_minimum=by_minimum,
    )


def test_warm_target_covers_cooling_ips() -> None:
    rec = run(spec(manage=[IP]), demand_stats(burst=2, demand=5))
    assert rec.values[IP] == 6  # 5 usable IPs at the p95 start, plus 1 headroom
    assert "cooldown" in rec.reasons[IP]


def test_demand_replaces_the_epoch_burst_once_measured() -> None:
    # The per-start demand is the finer measure of the same starts: it wins even when it is lower.
    assert run(spec(manage=[IP]), demand_stats(burst=6, demand=3)).values[IP] == 4
    assert run(spec(manage=[IP]), stats(covered=6)).values[IP] == 7


def test_starts_served_by_the_minimum_do_not_count_for_the_warm_target() -> None:
    st = demand_stats(burst=7, demand=7, pods_per_node=12, by_minimum=((8, 4), (12, 2)))
    rec = run(spec(manage=[IP, MIN]), st)
    assert rec.values[MIN] == 12
    assert rec.values[IP] == 3  # only starts on nodes needing more than 12 IPs: demand 2, plus 1 headroom
    assert "not served by the minimum" in rec.reasons[IP]
    # Without MINIMUM_IP_TARGET managed, the one on the DaemonSet decides; none set: every start counts.
    assert run(spec(manage=[IP]), st).values[IP] == 8
    assert run(spec(manage=[IP]), st, env={"MINIMUM_IP_TARGET": "8"}).values[IP] == 5
    # A policy maximum on the minimum lowers what it serves.
    capped = spec(manage=[IP, {"name": "MINIMUM_IP_TARGET", "max": 9}])
    assert run(capped, st).values[IP] == 5


def test_starving_when_the_targets_in_effect_leave_the_demand_uncovered() -> None:
    env = {"WARM_IP_TARGET": "3", "MINIMUM_IP_TARGET": "12"}
    rec = run(spec(manage=[IP, MIN]), demand_stats(burst=2, demand=6, pods_per_node=12), env=env)
    assert rec.values[IP] == 7
    assert rec.rescue == {IP: 7, MIN: 12}  # demand 6 plus 1 headroom, next to the minimum in effect
    assert "pods wait" in rec.reasons[IP]
    # The minimum in effect serves part of the demand: the rescue covers only the rest.
    by_min = demand_stats(burst=2, demand=9, pods_per_node=12, by_minimum=((12, 5),))
    assert run(spec(manage=[IP, MIN]), by_min, env=env).rescue == {IP: 6, MIN: 12}
    # Enough in effect, or nothing in effect yet (ipamd on whole ENIs): not starving.
    assert not run(spec(manage=[IP, MIN]), demand_stats(2, 3, 12), env=env).starving
    assert not run(spec(manage=[IP, MIN]), demand_stats(2, 6, 12)).starving
    # A rescue never passes the caps: WARM_IP_TARGET already at the policy maximum is not starving.
    capped = spec(manage=[{"name": "WARM_IP_TARGET", "max": 3}, MIN])
    assert not run(capped, demand_stats(2, 6, 12), env=env).starving


# ----- choosing MINIMUM_IP_TARGET -----


def density_stats(
    demand: int, by_minimum: tuple[tuple[int, int], ...], density: tuple[tuple[int, float], ...], pods_per_node: int
) -> ChurnStats:
    from dataclasses import replace

    return replace(
        demand_stats(burst=demand, demand=demand, pods_per_node=pods_per_node, by_minimum=by_minimum),
        density=density,
    )


def test_a_minimum_that_serves_every_start_wins_when_pods_per_node_are_steady() -> None:
    # Nodes run 17 or 18 pods; every start happened on a node needing at most 19 IPs (pods plus cooling).
    # MINIMUM 19 + WARM 1 holds 1-2 spare IPs per node; the typical density (18) needs WARM 6: 6 spare.
    st = density_stats(5, ((18, 3), (19, 0)), ((17, 50.0), (18, 50.0)), pods_per_node=18)
    rec = run(spec(manage=[IP, MIN]), st)
    assert rec.values == {IP: 1, MIN: 19}
    assert "1.5 spare IPs per node" in rec.reasons[MIN]


def test_a_wide_spread_of_pods_per_node_keeps_the_warm_target() -> None:
    # Half the node-time at 2 pods, half at 18: a minimum of 19 would idle 17 IPs on the quiet nodes, more
    # than a warm target of 6 everywhere.
    st = density_stats(5, ((18, 3), (19, 0)), ((2, 50.0), (18, 50.0)), pods_per_node=10)
    rec = run(spec(manage=[IP, MIN]), st)
    assert rec.values[IP] == 6
    assert rec.values[MIN] in (0, 10)


def test_prefix_mode_counts_whole_prefixes_when_choosing_the_minimum() -> None:
    # In prefix mode a minimum of 19 rounds up to two prefixes (32 IPs): 14 spare at 18 pods, while WARM 6
    # fits 18 + 6 = 24 in the same two prefixes. Equal spare: the lower minimum wins.
    st = density_stats(5, ((18, 3), (19, 0)), ((18, 100.0),), pods_per_node=18)
    rec = run(spec(mode="Prefix", manage=[IP, MIN]), st, env={"ENABLE_PREFIX_DELEGATION": "true"})
    assert rec.values[MIN] < 19


def test_without_pod_stops_the_typical_density_stays_the_minimum() -> None:
    st = density_stats(5, (), ((17, 50.0), (18, 50.0)), pods_per_node=18)
    assert run(spec(manage=[IP, MIN]), st).values == {IP: 6, MIN: 18}


# ----- whole-ENI fallback (VPC CNI #1872 cap) -----


def test_demand_beyond_the_cap_leaves_the_pool_to_whole_enis() -> None:
    # t3.medium holds 5 IPs per ENI: before the #1872 fix WARM_IP_TARGET may not pass 5, yet the demand is 12.
    # With both IP targets 0, WARM_ENI_TARGET=1 keeps at least 5 spare on t3.medium and 29 on m5.4xlarge.
    snap = cluster("t3.medium", "m5.4xlarge")
    st = demand_stats(burst=12, demand=12)
    rec = run(spec(manage=[IP, MIN]), st, snapshot=snap, env={"WARM_ENI_TARGET": "1"}, cni=None)
    assert rec.whole_enis
    assert rec.values == {IP: 0, MIN: 0}
    assert "#1872" in rec.reasons[IP]
    assert "WARM_ENI_TARGET=1" in rec.reasons[IP]
    # From the fix on there is no such cap: WARM_IP_TARGET covers the demand.
    rec = run(spec(manage=[IP, MIN]), st, snapshot=snap, env={"WARM_ENI_TARGET": "1"}, cni=NEW)
    assert not rec.whole_enis
    assert rec.values[IP] == 13


@pytest.mark.parametrize(
    ("policy", "env"),
    [
        (spec(manage=[ONE_IP, MIN]), {}),  # the policy forbids 0
        (spec(manage=[{"name": "WARM_IP_TARGET", "max": 4}, MIN]), {}),  # the policy's own cap binds first
        (spec(manage=[IP, MIN]), {"WARM_ENI_TARGET": "0"}),  # no whole ENIs to fall back to
        (spec(manage=[IP]), {"MINIMUM_IP_TARGET": "10"}),  # a minimum set by someone else would freeze nodes
        (spec(manage=[IP, MIN]), {"WARM_ENI_TARGET": "4"}),  # more ENIs than t3.medium has: not relied upon
        (spec(manage=[IP, MIN]), {"WARM_ENI_TARGET": " 1"}),  # ignored by ipamd: not relied upon
        (spec(manage=[IP, MIN]), {"ENABLE_PREFIX_DELEGATION": "1"}),  # prefix mode: never whole ENIs
    ],
    ids=["min-1", "policy-max", "warm-eni-0", "foreign-minimum", "warm-eni-beyond", "warm-eni-ignored", "prefix"],
)
def test_no_whole_eni_fallback(policy: WarmPoolPolicySpec, env: dict[str, str]) -> None:
    snap = cluster("t3.medium", "m5.4xlarge")
    rec = run(policy, demand_stats(burst=12, demand=12), snapshot=snap, env=env, cni=None)
    assert not rec.whole_enis
    assert rec.values[IP] >= 1


def test_whole_eni_fallback_is_skipped_when_the_subnet_cannot_afford_it() -> None:
    snap = cluster("t3.medium", "m5.4xlarge")
    tight = {"subnet-a": SubnetInfo("subnet-a", "eu-west-1a", 40)}
    rec = run(spec(manage=[IP, MIN]), demand_stats(burst=12, demand=12), snapshot=snap, subnets=tight, cni=None)
    assert not rec.whole_enis
    assert rec.values[IP] >= 1


def test_starving_at_the_cap_rescues_with_whole_enis() -> None:
    snap = cluster("t3.medium", "m5.4xlarge")
    env = {"WARM_ENI_TARGET": "1", "WARM_IP_TARGET": "5", "MINIMUM_IP_TARGET": "0"}
    rec = run(spec(manage=[IP, MIN]), demand_stats(burst=12, demand=12), snapshot=snap, env=env, cni=None)
    assert rec.rescue == {IP: 0, MIN: 0}
    assert "whole ENIs cover more" in rec.reasons[IP]


# ----- the repros of issue 12: the mode ipamd runs, never an env it rejects -----


def fifteen_pods_in_a_second() -> ChurnStats:
    # 15 pods bound to one m5.large within a second: a burst of 15 starts, nothing learned before.
    return demand_stats(burst=15, demand=15, pods_per_node=15)


def written(env: Mapping[str, str], values: Mapping[Variable, int] | None) -> dict[str, str]:
    return {**env, **{v.value: str(n) for v, n in (values or {}).items()}}


@pytest.mark.parametrize("truth", ["1", "t", "T", "TRUE", "True", "true"])
@pytest.mark.parametrize("cni", [None, OLD, NEW], ids=["unknown", "old", "new"])
def test_prefix_delegation_as_go_reads_it_is_planned_as_prefix_mode(truth: str, cni: CniVersion | None) -> None:
    env = {"ENABLE_PREFIX_DELEGATION": truth, "WARM_IP_TARGET": "3"}
    rec = run(spec(), fifteen_pods_in_a_second(), cluster("m5.large", pods=15), env=env, cni=cni)
    assert rec.mode is IpMode.PREFIX
    assert not rec.whole_enis
    assert rec.values[IP] >= 1
    verdict = check_env(written(env, rec.values), [LIMITS["m5.large"]], cni)
    assert verdict.safe, verdict.problems
    assert verdict.mode is rec.mode
    if rec.rescue is not None:
        assert check_env(written(env, rec.rescue), [LIMITS["m5.large"]], cni).safe


@pytest.mark.parametrize("falsy", [" true", "true ", "yes", "on", "", "0", "tRUE"])
@pytest.mark.parametrize("cni", [None, OLD, NEW], ids=["unknown", "old", "new"])
def test_anything_else_is_planned_as_secondary_ip_mode(falsy: str, cni: CniVersion | None) -> None:
    env = {"ENABLE_PREFIX_DELEGATION": falsy, "WARM_IP_TARGET": "3"}
    rec = run(spec(), fifteen_pods_in_a_second(), cluster("m5.large", pods=15), env=env, cni=cni)
    assert rec.mode is IpMode.SECONDARY
    verdict = check_env(written(env, rec.values), [LIMITS["m5.large"]], cni)
    assert verdict.safe, verdict.problems
    assert verdict.mode is rec.mode
    if cni is not NEW:
        assert rec.whole_enis or rec.values[IP] <= 9  # never 16 on an m5.large before the #1872 fix


@pytest.mark.parametrize(("max_eni", "expected"), [(None, 27), ("2", 18), ("1", 9), ("5", 27), ("0", 27), ("abc", 27)])
def test_max_eni_on_the_daemonset_lowers_the_caps(max_eni: str | None, expected: int) -> None:
    env = {} if max_eni is None else {"MAX_ENI": max_eni}
    rec = run(spec(manage=[ONE_IP, MIN]), stats(40, 40), env=env)
    assert rec.values == {IP: expected, MIN: expected}
    assert rec.safety == ()


def test_a_forced_mode_ipamd_does_not_run_is_reported_not_planned() -> None:
    rec = run(spec(mode="Prefix"), stats(20, 5), env={"ENABLE_PREFIX_DELEGATION": " true"}, cni=None)
    assert rec.mode is IpMode.SECONDARY
    assert rec.whole_enis or rec.values[IP] <= 9
    degraded = rec.condition(ConditionType.DEGRADED)
    assert degraded is not None
    assert degraded.reason == "ModeMismatch"
    assert "ENABLE_PREFIX_DELEGATION" in degraded.message


def test_an_unsafe_env_the_policy_cannot_fix_is_reported() -> None:
    # MINIMUM_IP_TARGET set by hand with no WARM_IP_TARGET, and a policy that manages only WARM_ENI_TARGET.
    rec = run(spec(mode="SecondaryIP", manage=["WARM_ENI_TARGET"]), stats(3), env={"MINIMUM_IP_TARGET": "10"})
    assert [p.kind for p in rec.safety] == [ProblemKind.FREEZE]
    degraded = rec.condition(ConditionType.DEGRADED)
    assert degraded is not None
    assert "freezes" in degraded.message


def test_a_rescue_raises_whatever_holds_fewer_spare_ips() -> None:
    # Nodes at 17-18 pods, MINIMUM 15 + WARM 1 in effect; starts on nodes needing up to 19 IPs go uncovered.
    # Raising the minimum to 20 holds ~2.5 spare IPs per node; raising the warm target to 6 next to 15 holds 6.
    st = density_stats(5, ((19, 3), (20, 0)), ((17, 50.0), (18, 50.0)), pods_per_node=18)
    env = {"WARM_IP_TARGET": "1", "MINIMUM_IP_TARGET": "15"}
    rec = run(spec(manage=[IP, MIN]), st, env=env)
    assert rec.values == {IP: 1, MIN: 20}
    assert rec.rescue == {IP: 1, MIN: 20}


def test_a_rescue_within_the_dead_band_gives_way_to_the_other_raise() -> None:
    # MINIMUM 19 in effect: 19 -> 20 is within the dead band, so the warm target rises to cover the demand
    # left next to 19 (3, plus 1 headroom).
    st = density_stats(5, ((19, 3), (20, 0)), ((17, 50.0), (18, 50.0)), pods_per_node=18)
    env = {"WARM_IP_TARGET": "1", "MINIMUM_IP_TARGET": "19"}
    rec = run(spec(manage=[IP, MIN]), st, env=env)
    assert rec.rescue == {IP: 4, MIN: 19}


@pytest.mark.parametrize(("missed", "rescued"), [(40.0, False), (60.0, True)])
def test_a_rescue_needs_pods_waiting_in_numbers(missed: float, rescued: bool) -> None:
    # The policy's quantile (0.95) lets 5% of pod starts wait: 4% uncovered by WARM 1 + MINIMUM 19 is not worth a
    # change within the cooldown, 6% is.
    from dataclasses import replace

    st = replace(
        density_stats(5, ((19, 3), (20, 0)), ((17, 50.0), (18, 50.0)), pods_per_node=18),
        demand_table=((17, 2, 1000.0 - missed), (20, 3, missed)),
    )
    env = {"WARM_IP_TARGET": "1", "MINIMUM_IP_TARGET": "19"}
    assert run(spec(manage=[IP, MIN]), st, env=env).starving is rescued
