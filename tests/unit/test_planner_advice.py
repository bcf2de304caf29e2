"""The replay chooser on top of the histogram plan: silent until the learning span is logged, then the IP targets
it finds cheapest within bounds, a rescue only when the values in effect serve the pods badly, and never an
unsafe env."""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.test_planner_replay import LIMITS, feed
from warmpool.api.v1alpha1 import ManagedVariable, Variable, WarmPoolPolicySpec
from warmpool.ipamd.limits import IpMode
from warmpool.ipamd.version import CniVersion
from warmpool.planner import advice
from warmpool.planner import replay as rp
from warmpool.planner.caps import instance_caps
from warmpool.planner.churn import ChurnStats
from warmpool.planner.plan import Recommendation

STATS = ChurnStats(30.0, 0.999, 1, 1, 1.0, 10, 1.0, 1, True, 0.0)


def recommendation(rescue: dict[Variable, int] | None = None) -> Recommendation:
    values = {Variable.WARM_IP_TARGET: 3, Variable.MINIMUM_IP_TARGET: 4}
    return Recommendation(IpMode.SECONDARY, values, {v: "histograms" for v in values}, (), STATS, rescue=rescue)


def test_histogram_plan_stands_until_the_learning_span_is_logged() -> None:
    planner = rp.ReplayPlanner(log=rp.ReplayLog(per_type=2))
    feed(planner.log, nodes=2, until=advice.MIN_HISTORY - 120.0, tick=60.0)
    rec = recommendation()
    now = advice.MIN_HISTORY - 120.0
    assert advice.refine(rec, planner, WarmPoolPolicySpec(), LIMITS, {"WARM_ENI_TARGET": "1"}, now) is rec
    assert planner.replays == 0
    feed(planner.log, nodes=2, until=advice.MIN_HISTORY + 120.0, tick=60.0)
    out = advice.refine(rec, planner, WarmPoolPolicySpec(), LIMITS, {"WARM_ENI_TARGET": "1"}, now + 240.0)
    assert planner.replays == 1
    assert all("replayed" in r for r in out.reasons.values())


def test_after_a_day_the_replay_sets_the_ip_targets_within_policy_bounds() -> None:
    planner = rp.ReplayPlanner(log=rp.ReplayLog(per_type=2))
    now = rp.DAY + 3600.0
    feed(planner.log, nodes=2, until=now, tick=600.0, period=15.0)
    spec = WarmPoolPolicySpec(
        manage=[
            ManagedVariable(name=Variable.WARM_IP_TARGET, min=1, max=8),
            ManagedVariable(name=Variable.MINIMUM_IP_TARGET, max=40),
        ]
    )
    rec = recommendation(rescue={Variable.WARM_IP_TARGET: 9, Variable.MINIMUM_IP_TARGET: 4})
    out = advice.refine(rec, planner, spec, LIMITS, {"WARM_ENI_TARGET": "1"}, now, CniVersion(1, 19, 0))
    assert planner.replays == 1
    assert out is not rec
    assert 1 <= out.values[Variable.WARM_IP_TARGET] <= 8
    assert out.values[Variable.MINIMUM_IP_TARGET] <= 40
    assert "replayed" in out.reasons[Variable.WARM_IP_TARGET]
    # The chosen values serve the replayed pods, so once in effect no rescue is called for them.
    env = {"WARM_ENI_TARGET": "1", **{v.value: str(n) for v, n in out.values.items()}}
    again = advice.refine(rec, planner, spec, LIMITS, env, now + 60, CniVersion(1, 19, 0))
    assert again.rescue is None
    assert again.values == out.values


def test_replay_never_proposes_what_the_1872_cap_forbids_on_old_cni() -> None:
    planner = rp.ReplayPlanner(log=rp.ReplayLog(per_type=2))
    now = rp.DAY + 3600.0
    feed(planner.log, nodes=2, until=now, tick=600.0, period=5.0, itype="t3.medium")
    rec = recommendation()
    out = advice.refine(rec, planner, WarmPoolPolicySpec(), LIMITS, {"WARM_ENI_TARGET": "1"}, now, CniVersion(1, 11, 0))
    cap = LIMITS["t3.medium"].ips_per_eni(IpMode.SECONDARY)
    assert out.values[Variable.WARM_IP_TARGET] <= cap


@settings(max_examples=80, deadline=None)
@given(
    table=st.lists(st.tuples(st.integers(0, 40), st.integers(0, 20), st.floats(0.1, 50.0)), min_size=1, max_size=12),
    quantile=st.sampled_from([0.9, 0.99, 0.999]),
    minimum=st.integers(0, 45),
)
def test_warm_floor_is_the_least_warm_target_within_a_share_of_the_quantile(
    table: list[tuple[int, int, float]], quantile: float, minimum: int
) -> None:
    stats = dataclasses.replace(STATS, quantile=quantile, demand_table=tuple(table), demand_samples=1.0)
    floor = advice.warm_floor(stats)
    w = floor(minimum)
    target = advice.FLOOR_SHARE * (1 - quantile)
    assert stats.uncovered_share(minimum, w) <= target + 1e-12
    if w > 0:
        assert stats.uncovered_share(minimum, w - 1) > target
    # A higher minimum serves more starts: it never needs a bigger warm target.
    assert floor(minimum + 5) <= w


def test_bounds_stay_within_the_instance_caps() -> None:
    caps = instance_caps([LIMITS["t3.medium"], LIMITS["m5.large"]], IpMode.SECONDARY, CniVersion(1, 19, 0))
    b = advice.bounds(WarmPoolPolicySpec(), caps)
    assert b.warm[1] <= caps.warm_ip
    assert b.minimum[1] <= caps.minimum_ip
    # The policy's own lower bound stands even above a cap.
    spec = WarmPoolPolicySpec(manage=[ManagedVariable(name=Variable.WARM_IP_TARGET, min=30)])
    assert advice.bounds(spec, caps).warm == (30, 30)


def test_a_replay_rescue_reaches_the_guards_and_nothing_else_does() -> None:
    planner = rp.ReplayPlanner(log=rp.ReplayLog(per_type=2))
    feed(planner.log, nodes=2, until=1200.0, tick=60.0, period=15.0)
    spec = WarmPoolPolicySpec()
    first = advice.refine(recommendation(), planner, spec, LIMITS, {"WARM_ENI_TARGET": "1"}, 1200.0)
    assert first.rescue is None  # a choice, not a rescue: it waits for the guards like any change
    # A change to values that starve the pods (10 pods replaced every 15 s, one warm IP), then a check.
    starving = {"WARM_ENI_TARGET": "1", "WARM_IP_TARGET": "1"}
    advice.refine(recommendation(), planner, spec, LIMITS, starving, 1260.0)
    feed(planner.log, nodes=2, until=1900.0, tick=60.0, period=15.0)
    out = advice.refine(recommendation(), planner, spec, LIMITS, starving, 1900.0)
    assert out.rescue is not None
    assert out.rescue == out.values
    assert out.values[Variable.WARM_IP_TARGET] > 1
