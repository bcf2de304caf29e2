"""The replay chooser on top of the histogram plan: silent until a day is logged, then the IP targets it finds
cheapest within bounds, no rescue while the values in effect serve the pods, and never an unsafe env."""

from __future__ import annotations

from tests.unit.test_planner_replay import LIMITS, feed
from warmpool.api.v1alpha1 import ManagedVariable, Variable, WarmPoolPolicySpec
from warmpool.ipamd.limits import IpMode
from warmpool.ipamd.version import CniVersion
from warmpool.planner import advice
from warmpool.planner import replay as rp
from warmpool.planner.churn import ChurnStats
from warmpool.planner.plan import Recommendation

STATS = ChurnStats(30.0, 0.999, 1, 1, 1.0, 10, 1.0, 1, True, 0.0)


def recommendation(rescue: dict[Variable, int] | None = None) -> Recommendation:
    values = {Variable.WARM_IP_TARGET: 3, Variable.MINIMUM_IP_TARGET: 4}
    return Recommendation(IpMode.SECONDARY, values, {v: "histograms" for v in values}, (), STATS, rescue=rescue)


def test_histogram_plan_stands_until_a_day_is_logged() -> None:
    planner = rp.ReplayPlanner(log=rp.ReplayLog(per_type=2))
    feed(planner.log, nodes=2, until=6 * 3600.0, tick=600.0)
    rec = recommendation()
    assert advice.refine(rec, planner, WarmPoolPolicySpec(), LIMITS, {"WARM_ENI_TARGET": "1"}, 6 * 3600.0) is rec
    assert planner.replays == 0


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
