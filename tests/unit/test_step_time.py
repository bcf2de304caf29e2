"""The policy step over time: the daily rollout limit survives a restart through the checkpoint, and in prefix
mode a change that leaves every node holding the same prefixes is skipped whatever planned it."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.test_step import DEFAULT_ENV, LIMITS, NOW, Tick, spec, target
from warmpool import step
from warmpool.api.v1alpha1 import Variable
from warmpool.ipamd.env import parse_env
from warmpool.ipamd.limits import IpMode
from warmpool.ipamd.pool import PoolShape, steady_state
from warmpool.snapshot import ClusterSnapshot, NodeInfo
from warmpool.step import Reason
from warmpool.step.status import merge_patch

HOUR = 3600.0
DAY = 24 * HOUR


class Operator:
    """Ticks of one policy whose DaemonSet stays on AWS's defaults (so every tick wants a change), with the
    status kept as the API server keeps it and restarts that drop everything but the status."""

    def __init__(self, **spec_overrides: Any) -> None:
        rollout = {"interval": "60s", "cooldown": "1h", "quietPeriod": "0s", "deadBand": 0, "deadBandRatio": 0}
        self.tick = Tick(spec=spec(rollout={**rollout, **spec_overrides}))
        self.writes: list[float] = []
        self.reasons: list[Reason] = []

    def run(self, now: float) -> Reason:
        pending = self.tick.decide(now)
        outcome = None
        if pending.write is not None:
            outcome = step.Applied(target(step.env_after(dict(DEFAULT_ENV), pending.write)))
            self.writes.append(now)
        result = step.report(pending, outcome)
        self.tick.status = merge_patch(self.tick.status, result.status)
        self.tick.target = target()  # someone puts the defaults back: the next tick wants a change again
        self.reasons.append(pending.reason)
        return pending.reason

    def restart(self) -> None:
        self.tick.memory = None


def test_the_fifth_change_in_a_day_is_held_and_a_restart_keeps_the_count() -> None:
    op = Operator()
    times = [NOW + i * 2 * HOUR for i in range(6)]
    assert [op.run(t) for t in times[:5]] == [Reason.APPLY] * 5  # the first change is not counted
    op.restart()
    assert op.run(times[5]) is Reason.DAILY_LIMIT
    applied = next(c for c in op.tick.status["conditions"] if c["type"] == "Applied")
    assert applied["reason"] == "DailyLimit"
    assert "4 rollouts in the last 24h (rollout.maxPerDay 4)" in applied["message"]
    assert op.tick.status["checkpoint"]["rollouts"] == {"version": 1, "times": times[1:5]}
    # The oldest counted change leaves the 24 h window: one more may roll.
    assert op.run(times[1] + DAY) is Reason.APPLY


def test_without_the_checkpoint_a_restart_would_forget_the_count() -> None:
    op = Operator()
    for i in range(5):
        op.run(NOW + i * 2 * HOUR)
    op.restart()
    op.tick.status = {k: v for k, v in op.tick.status.items() if k != "checkpoint"}
    assert op.run(NOW + 10 * HOUR) is Reason.APPLY  # what the checkpoint prevents


@settings(max_examples=30, deadline=None)
@given(
    gaps=st.lists(st.floats(HOUR, 9 * HOUR), min_size=2, max_size=14),
    restarts=st.sets(st.integers(0, 13)),
    max_per_day=st.integers(1, 5),
)
def test_no_24h_window_holds_more_than_max_per_day_counted_rollouts(
    gaps: list[float], restarts: set[int], max_per_day: int
) -> None:
    op = Operator(maxPerDay=max_per_day)
    now = NOW
    for i, gap in enumerate(gaps):
        if i in restarts:
            op.restart()
        op.run(now)
        now += gap
    counted = op.writes[1:]  # warmpool's first change is free
    for t in counted:
        assert sum(1 for u in counted if t <= u < t + DAY) <= max_per_day
    # Not vacuous: each tick was held by the limit or wrote.
    assert set(op.reasons) <= {Reason.APPLY, Reason.DAILY_LIMIT}


# ----- prefix mode: a change that holds the same prefixes is skipped -----

PREFIX_ENV = {"ENABLE_PREFIX_DELEGATION": "true", "WARM_PREFIX_TARGET": "1"}


def holdings(env: dict[str, str], pods: int) -> PoolShape:
    return steady_state(LIMITS["m5.large"], IpMode.PREFIX, parse_env(env), pods)


@settings(max_examples=40, deadline=None)
@given(warm=st.integers(1, 20), minimum=st.integers(0, 40))
def test_a_prefix_change_is_skipped_exactly_when_every_node_holds_the_same(warm: int, minimum: int) -> None:
    current = {**PREFIX_ENV, "WARM_IP_TARGET": str(warm), "MINIMUM_IP_TARGET": str(minimum)}
    tick = Tick(target=target(current))
    pending = tick.decide()
    values = {v.value: str(n) for v, n in pending.rec.values.items()}
    if pending.reason is Reason.NO_CHANGE:
        return
    after = {**current, **values}
    # Every pod count the nodes may pass through before the next change: with no profile of the coming hours,
    # from the pods they run to all a node of the type can hold.
    cap = LIMITS["m5.large"].pod_ip_cap(IpMode.PREFIX)
    pods = set(range(min(n.ip_pods for n in tick.snapshot.nodes), cap + 1))
    same = all(holdings(current, p) == holdings(after, p) for p in pods)
    assert (pending.reason is Reason.HOLDS_SAME) is same, (values, pending.message)
    assert (pending.write is not None) is (not same)


def test_both_sides_of_the_prefix_skip() -> None:
    # The plan asks WARM_IP_TARGET=9,MINIMUM_IP_TARGET=8 for nodes of 8 pods: 17 IPs, two prefixes.
    assert {v.value: n for v, n in Tick(target=target(PREFIX_ENV)).decide().rec.values.items()} == {
        "WARM_IP_TARGET": 9,
        "MINIMUM_IP_TARGET": 8,
    }
    same = Tick(target=target({**PREFIX_ENV, "WARM_IP_TARGET": "9", "MINIMUM_IP_TARGET": "0"})).decide()
    assert (same.reason, same.write) == (Reason.HOLDS_SAME, None)
    assert "would leave every node holding the same IPs" in same.message
    fewer = Tick(target=target({**PREFIX_ENV, "WARM_IP_TARGET": "1", "MINIMUM_IP_TARGET": "0"})).decide()
    assert fewer.reason is Reason.APPLY  # 9 IPs fit one prefix: the change adds the second


# ----- the demand profile survives a restart -----


def diurnal_snapshot(now: float) -> ClusterSnapshot:
    """Three m5.large nodes: a burst of starts every tick in the morning (06:00-09:00 UTC), one otherwise."""
    hour = int(now // HOUR) % 24
    starts = 8 if 6 <= hour < 9 else 1
    pods = 20 if 6 <= hour < 18 else 4
    infos = tuple(
        NodeInfo(
            name=f"n{i}",
            instance_type="m5.large",
            zone="us-east-1a",
            subnet_ids=("subnet-a",),
            ip_pods=pods,
            pod_start_times=tuple(now - 200 + 2 * j for j in range(starts)),
            pod_stop_times=tuple(now - 150 + 2 * j for j in range(starts)),
        )
        for i in range(3)
    )
    return ClusterSnapshot(now=now, nodes=infos)


def test_a_restart_restores_the_profile_and_plans_the_coming_hours_at_once() -> None:
    # WARM_ENI_TARGET alone: the histogram plan (no replay chooser, whose log is not checkpointed) decides.
    op = Operator(interval="10m", cooldown="6h")
    op.tick.spec = {**op.tick.spec, "mode": "SecondaryIP", "manage": [{"name": "WARM_ENI_TARGET"}]}
    midnight = NOW - NOW % DAY
    t = midnight
    while t < midnight + DAY + 2 * HOUR:  # a day and two hours, a tick every 10 minutes
        op.tick.snapshot = diurnal_snapshot(t)
        op.run(t)
        t += 600
    stored = op.tick.status["checkpoint"]["profile"]
    assert stored["version"] == 1
    assert len(stored["types"]["m5.large"]["day"]) == 24
    kept = copy.deepcopy(op)
    op.restart()
    now = midnight + DAY + 2 * HOUR  # 02:00: the morning burst is within the coming 6 h
    for each in (op, kept):
        each.tick.snapshot = diurnal_snapshot(now)
    assert kept.tick.memory is not None
    assert stored == kept.tick.memory.profile.to_checkpoint()  # what the status keeps is all there is
    restarted, running = op.tick.decide(now), kept.tick.decide(now)
    assert op.tick.memory is not None
    assert op.tick.memory.profile.expected("m5.large", now, now + 6 * HOUR) == kept.tick.memory.profile.expected(
        "m5.large", now, now + 6 * HOUR
    )
    assert restarted.rec.values == running.rec.values
    why = restarted.rec.reasons[Variable.WARM_ENI_TARGET]
    assert "sized for the next 6h from the hours of the day as last seen" in why
    # Without the profile the restarted operator would plan from the histograms alone.
    forgotten = copy.deepcopy(kept)
    forgotten.restart()
    forgotten.tick.status = {
        **forgotten.tick.status,
        "checkpoint": {k: v for k, v in forgotten.tick.status["checkpoint"].items() if k != "profile"},
    }
    assert "sized for the next" not in forgotten.tick.decide(now).rec.reasons[Variable.WARM_ENI_TARGET]


def test_after_a_restart_the_night_value_covers_the_morning_and_the_evening_comes_down() -> None:
    # A day and 19 hours of the diurnal pattern, then a restart: the replay chooser's log is gone, the profile is
    # not. Churn half-life 1 h: by night the histograms have all but forgotten the morning burst.
    op = Operator(interval="10m", cooldown="6h")
    midnight = NOW - NOW % DAY
    t = midnight
    while t < midnight + DAY + 19 * HOUR:
        op.tick.snapshot = diurnal_snapshot(t)
        op.run(t)
        t += 600
    op.restart()
    peak = {**DEFAULT_ENV, "WARM_IP_TARGET": "12", "MINIMUM_IP_TARGET": "20"}

    def plan_at(operator: Operator, hour: float) -> dict[Variable, int]:
        at = midnight + DAY + hour * HOUR
        operator.tick.target = target(peak)
        operator.tick.snapshot = diurnal_snapshot(at)
        pending = operator.tick.decide(at)
        assert pending.rec.rescue is None  # nothing starves: no change within the cooldown
        return pending.rec.values

    blind = copy.deepcopy(op)
    blind.tick.status = {
        **blind.tick.status,
        "checkpoint": {k: v for k, v in blind.tick.status["checkpoint"].items() if k != "profile"},
    }
    evening, night = plan_at(op, 19), plan_at(op, 25)  # 19:00, and 01:00 the next day
    # The evening comes down for the quiet night ahead: a minimum near the night's pods, a small warm target.
    assert evening[Variable.WARM_IP_TARGET] <= 2
    assert evening[Variable.MINIMUM_IP_TARGET] < 20
    # At 01:00 the coming 6 h hold the 06:00 burst (8 starts a node within the burst window and their cooling
    # IPs, as seen yesterday): the value covers it, where the histograms alone have forgotten it.
    assert night[Variable.WARM_IP_TARGET] > plan_at(blind, 25)[Variable.WARM_IP_TARGET]
    assert night[Variable.WARM_IP_TARGET] >= 6
