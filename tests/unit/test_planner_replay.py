"""Choosing targets by replaying the pod history of a sample of nodes through the ipamd model."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from warmpool.aws.instance_table import FALLBACK_LIMITS
from warmpool.ipamd.env import MINIMUM_IP_TARGET, WARM_IP_TARGET
from warmpool.ipamd.limits import IpMode
from warmpool.planner import replay as rp
from warmpool.snapshot import ClusterSnapshot, NodeInfo

LIMITS = {t: FALLBACK_LIMITS[t] for t in ("m5.large", "t3.medium")}


def churn(
    node: str, now: float, period: float, lookback: float = 900.0, base: int = 10, itype: str = "m5.large"
) -> NodeInfo:
    """A node whose `base` pods are each replaced every `period` seconds (stop at k*period, start 5 s later)."""
    starts = tuple(t + 5 for t in _grid(now - lookback, now - 5, period))
    stops = tuple(_grid(now - lookback, now, period))
    pending = 1 if now % period < 5 else 0  # stopped, its replacement not started yet
    return NodeInfo(
        name=node, instance_type=itype, ip_pods=base - pending, pod_start_times=starts, pod_stop_times=stops
    )


def _grid(a: float, b: float, step: float) -> list[float]:
    k = int(a // step) + 1
    out = []
    while k * step <= b:
        out.append(k * step)
        k += 1
    return out


def feed(
    log: rp.ReplayLog, nodes: int, until: float, tick: float = 60.0, period: float = 20.0, itype: str = "m5.large"
) -> None:
    t = tick
    while t <= until:
        snap = ClusterSnapshot(now=t, nodes=tuple(churn(f"n{i}", t, period, itype=itype) for i in range(nodes)))
        log.observe(snap)
        t += tick


def test_overlapping_snapshots_log_each_start_and_stop_once() -> None:
    log = rp.ReplayLog(per_type=3)
    feed(log, nodes=5, until=1800.0)
    assert len(log.logs) == 3  # the sample, not the cluster
    for entry in log.logs.values():
        starts = sum(1 for d in entry.deltas if d > 0)
        stops = sum(1 for d in entry.deltas if d < 0)
        # one stop every 20 s and its start 5 s later, over the logged span
        span = entry.until - entry.since
        assert abs(stops - span / 20) <= 1
        assert abs(starts - stops) <= 1
        assert entry.pods_at(entry.until) == 10 - (1 if entry.until % 20 < 5 else 0)


def test_sample_is_stable_and_per_instance_type() -> None:
    a, b = rp.ReplayLog(per_type=2), rp.ReplayLog(per_type=2)
    nodes = [churn(f"n{i}", 600.0, 30.0, itype=t) for i, t in enumerate(["m5.large"] * 5 + ["t3.medium"] * 5)]
    a.observe(ClusterSnapshot(now=600.0, nodes=tuple(nodes)))
    b.observe(ClusterSnapshot(now=600.0, nodes=tuple(reversed(nodes))))
    assert set(a.logs) == set(b.logs)
    assert sorted(log.instance_type for log in a.logs.values()) == ["m5.large"] * 2 + ["t3.medium"] * 2


def test_windows_reach_back_a_day_once_the_log_does() -> None:
    log = rp.ReplayLog(per_type=1)
    feed(log, nodes=1, until=3 * 3600, tick=300.0)
    assert len(log.windows(6 * 3600)) == 1
    feed_more = rp.ReplayLog(per_type=1)
    feed(feed_more, nodes=1, until=rp.DAY + 2 * 3600, tick=600.0)
    windows = feed_more.windows(6 * 3600)
    assert len(windows) == 2
    start, end = windows[1]
    assert abs(end - start - 6 * 3600) < 1e-6
    assert abs(start - (feed_more.cursor or 0) + rp.DAY) < 1e-6


def test_choice_keeps_waits_and_calls_within_bounds_and_beats_the_default() -> None:
    log = rp.ReplayLog(per_type=4)
    feed(log, nodes=4, until=3600.0, period=15.0)
    pieces = log.node_windows(log.windows(3600.0))
    levels = rp.density_levels(pieces)
    assert max(levels) >= 10  # the pods, plus IPs cooling after a stop
    options = rp.candidates(IpMode.SECONDARY, levels, (0, 16), (0, 60))
    choice = rp.choose(IpMode.SECONDARY, pieces, LIMITS, options, 0.999, ec2_budget=3.6)
    assert choice.env is not None
    assert choice.outcome is not None
    assert choice.outcome.waited <= choice.default.waited + 0.001 * choice.default.starts
    assert choice.outcome.ec2_calls_per_node_hour <= 3.6
    assert choice.outcome.idle_ip_seconds < choice.default.idle_ip_seconds
    # A tight budget rules out the per-IP churn of a small warm target without a minimum.
    churny = rp.replay({WARM_IP_TARGET: "1"}, IpMode.SECONDARY, pieces, LIMITS)
    assert churny.ec2_calls_per_node_hour > 3.6
    assert choice.env != {WARM_IP_TARGET: "1"}


def test_values_in_effect_are_kept_when_the_best_saves_little() -> None:
    log = rp.ReplayLog(per_type=2)
    feed(log, nodes=2, until=3600.0)
    pieces = log.node_windows(log.windows(3600.0))
    options = rp.candidates(IpMode.SECONDARY, rp.density_levels(pieces), (0, 16), (0, 60))
    first = rp.choose(IpMode.SECONDARY, pieces, LIMITS, options, 0.999, ec2_budget=None)
    assert first.env is not None
    again = rp.choose(IpMode.SECONDARY, pieces, LIMITS, options, 0.999, ec2_budget=None, current=first.env)
    assert again.env == first.env
    assert "in effect" in again.reason


@settings(max_examples=40, deadline=None)
@given(
    levels=st.lists(st.integers(1, 200), max_size=3),
    warm=st.tuples(st.integers(0, 10), st.integers(0, 40)),
    minimum=st.tuples(st.integers(0, 50), st.integers(0, 300)),
    mode=st.sampled_from(list(IpMode)),
)
def test_candidates_respect_bounds_and_never_freeze(
    levels: list[int], warm: tuple[int, int], minimum: tuple[int, int], mode: IpMode
) -> None:
    for env in rp.candidates(mode, levels, warm, minimum):
        w = int(env[WARM_IP_TARGET])
        assert w >= 1
        assert max(warm[0], 1) <= w <= warm[1]
        m = int(env.get(MINIMUM_IP_TARGET, "0"))
        assert m <= minimum[1]
        if mode is IpMode.PREFIX:
            assert m % 16 == 0


def test_default_ec2_budget_is_what_5000_nodes_can_sustain() -> None:
    # 5 mutating calls a second per action and account, shared by 5,000 nodes: 3.6 per node-hour.
    assert rp.DEFAULT_EC2_CALLS_PER_NODE_HOUR == 3.6


def test_a_replay_stops_once_it_breaks_a_bound() -> None:
    log = rp.ReplayLog(per_type=4)
    feed(log, nodes=4, until=3600.0, period=10.0)
    pieces = log.node_windows(log.windows(3600.0))
    full = rp.replay({WARM_IP_TARGET: "1"}, IpMode.SECONDARY, pieces, LIMITS)
    cut = rp.replay({WARM_IP_TARGET: "1"}, IpMode.SECONDARY, pieces, LIMITS, max_calls=0)
    assert full.complete
    assert not cut.complete
    assert cut.node_seconds < full.node_seconds


def test_advice_waits_for_history_and_is_reused_until_due() -> None:
    planner = rp.ReplayPlanner(log=rp.ReplayLog(per_type=2))
    bounds = rp.Bounds((0, 16), (0, 60))
    env = {"WARM_ENI_TARGET": "1"}
    feed(planner.log, nodes=2, until=300.0)
    assert planner.advise(IpMode.SECONDARY, LIMITS, env, bounds, 0.999, 3600.0, 300.0) is None
    feed(planner.log, nodes=2, until=1200.0)
    first = planner.advise(IpMode.SECONDARY, LIMITS, env, bounds, 0.999, 3600.0, 1200.0)
    assert first is not None
    assert planner.replays == 1
    again = planner.advise(IpMode.SECONDARY, LIMITS, env, bounds, 0.999, 3600.0, 1260.0)
    assert again is first
    assert planner.replays == 1
    other = planner.advise(IpMode.SECONDARY, LIMITS, {**env, WARM_IP_TARGET: "3"}, bounds, 0.999, 3600.0, 1260.0)
    assert planner.replays == 2
    assert other is not first
