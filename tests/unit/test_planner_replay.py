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


def test_the_log_follows_the_nodes_count_where_snapshots_carry_no_stop() -> None:
    log = rp.ReplayLog(per_type=1)
    # Starts are carried, stops never: the node still runs 10 pods.
    for now in (300.0, 600.0, 900.0):
        starts = tuple(now - 100.0 + i for i in range(3))
        log.observe(
            ClusterSnapshot(
                now=now, nodes=(NodeInfo(name="n0", instance_type="m5.large", ip_pods=10, pod_start_times=starts),)
            )
        )
    entry = log.logs["n0"]
    assert entry.pods_at(entry.until) == 10
    assert min(entry.deltas) == -3  # the unseen stops, at the cursor
    # Pods that appear without a start count as running since the log began, not as a burst of starts.
    log.observe(ClusterSnapshot(now=1200.0, nodes=(NodeInfo(name="n0", instance_type="m5.large", ip_pods=15),)))
    assert entry.pods_at(entry.until) == 15
    assert max(entry.deltas) == 1


def test_until_a_day_is_logged_the_recent_window_spans_the_cooldown() -> None:
    log = rp.ReplayLog(per_type=1)
    feed(log, nodes=1, until=8 * 3600.0, tick=600.0)
    [(start, end)] = log.windows(2 * 3600.0)
    assert abs(end - start - 2 * 3600.0) < 1e-6
    [(start, end)] = log.windows(6 * 3600.0)  # at most LOOKBACK_BEFORE_A_DAY of it
    assert abs(end - start - rp.LOOKBACK_BEFORE_A_DAY) < 1e-6
    longer = rp.ReplayLog(per_type=1)
    feed(longer, nodes=1, until=rp.DAY + 2 * 3600.0, tick=600.0)
    recent, _ = longer.windows(6 * 3600.0)
    assert abs(recent[1] - recent[0] - rp.RECENT) < 1e-6


def _log(levels: list[tuple[float, int]], until: float) -> rp.NodeLog:
    """A node log whose pod count steps to each (time, level)."""
    entry = rp.NodeLog("m5.large", 0.0, levels[0][1], until)
    count = levels[0][1]
    for t, level in levels[1:]:
        entry.add(t, level - count)
        count = level
    return entry


def test_density_levels_are_quantiles_of_peaks_plus_the_last_hours_climb() -> None:
    climbing = _log([(0.0, 4), (3000.0, 6), (6000.0, 10)], 7200.0)
    flat = _log([(0.0, 8)], 7200.0)
    pieces = [("a", climbing, 0.0, 7200.0), *((f"b{i}", flat, 0.0, 7200.0) for i in range(3))]
    assert rp.density_levels(pieces) == [8, 10]
    # The climb over the last hour (6 -> 10) once more on top of the peak; none on the flat node.
    assert rp.density_levels(pieces, with_rise=True) == [8, 14]


@settings(max_examples=60, deadline=None)
@given(
    levels=st.lists(st.integers(0, 60), max_size=4),
    warm=st.tuples(st.integers(0, 6), st.integers(6, 40)),
    floor_at=st.lists(st.integers(0, 30), min_size=1, max_size=6),
    mode=st.sampled_from(list(IpMode)),
)
def test_candidates_keep_the_warm_floor_and_try_it(
    levels: list[int], warm: tuple[int, int], floor_at: list[int], mode: IpMode
) -> None:
    """The floor is non-increasing in the minimum, as the histograms' demand is: no candidate has a warm target
    below it (clamped to the bounds), the floor itself is tried, and a minimum leaves its warm target free at a
    density level."""
    table = sorted(floor_at, reverse=True)

    def floor(m: int) -> int:
        return table[min(m // 10, len(table) - 1)]

    envs = rp.candidates(mode, levels, warm, (0, 300), floor)
    lo, hi = max(warm[0], 1), warm[1]
    clamp = lambda x: min(max(x, lo), hi)  # noqa: E731
    assert any(int(e[WARM_IP_TARGET]) == clamp(floor(0)) and MINIMUM_IP_TARGET not in e for e in envs)
    for env in envs:
        w, m = int(env[WARM_IP_TARGET]), int(env.get(MINIMUM_IP_TARGET, "0"))
        assert w >= clamp(floor(m))
        if m and mode is IpMode.SECONDARY:
            assert m - w in levels


def test_no_candidate_within_the_call_cap_gives_the_fewest_calls_within_the_waits() -> None:
    log = rp.ReplayLog(per_type=2)
    feed(log, nodes=2, until=3600.0, period=20.0)
    pieces = log.node_windows(log.windows(3600.0))
    options = [{WARM_IP_TARGET: str(w)} for w in (1, 2, 4, 6)]
    choice = rp.choose(IpMode.SECONDARY, pieces, LIMITS, options, 0.5, ec2_budget=0.01)
    runs = {o[WARM_IP_TARGET]: rp.replay(o, IpMode.SECONDARY, pieces, LIMITS) for o in options}
    cap = rp.call_cap(choice.default, 0.01)
    assert all(r.ec2_calls_per_node_hour > cap for r in runs.values())
    assert choice.env is not None
    allowed = rp.allowed_waits(choice.default, 0.5)
    within = {w: r for w, r in runs.items() if r.waited <= allowed}
    assert within
    assert choice.env[WARM_IP_TARGET] == min(within, key=lambda w: within[w].ec2_calls)
    assert "fewest" in choice.reason


def test_call_cap_is_a_share_of_the_budget_never_below_the_default() -> None:
    quiet = rp.Replayed(0.0, 0, 100, 0, 3600.0)
    busy = rp.Replayed(0.0, 0, 100, 10, 3600.0)
    assert rp.call_cap(quiet, 3.6) == 3.6 * rp.SAMPLE_CALL_SHARE
    assert rp.call_cap(busy, 3.6) == 10.0
    assert rp.call_cap(busy, None) == 20.0


def test_values_in_effect_serve_unless_they_keep_pods_waiting_or_break_the_budget_by_far() -> None:
    default = rp.Replayed(0.0, 1, 1000, 2, 3600.0)
    assert rp.serves(rp.Replayed(0.0, 2, 1000, 7, 3600.0), default, 0.999, 3.6)
    assert rp.serves(rp.Replayed(0.0, 3, 1000, 0, 3600.0), default, 0.999, 3.6)  # 3 <= 1 + 1 + 10
    assert not rp.serves(rp.Replayed(0.0, 13, 1000, 0, 3600.0), default, 0.999, 3.6)  # 13 > 1 + 1 + 10
    assert not rp.serves(rp.Replayed(0.0, 0, 1000, 8, 3600.0), default, 0.999, 3.6)  # 8 > 2 x 3.6
    assert rp.serves(rp.Replayed(0.0, 0, 1000, 8, 3600.0), rp.Replayed(0.0, 0, 1000, 9, 3600.0), 0.999, 3.6)
    assert not rp.serves(rp.Replayed(0.0, 0, 1000, 0, 3600.0, complete=False), default, 0.999, 3.6)


def test_within_the_cooldown_only_a_raise_replaces_the_values_in_effect() -> None:
    planner = rp.ReplayPlanner(log=rp.ReplayLog(per_type=2))
    bounds = rp.Bounds((1, 16), (0, 60))
    feed(planner.log, nodes=2, until=1200.0, period=15.0)
    ahead = 6 * 3600.0
    first = planner.advise(IpMode.SECONDARY, LIMITS, {"WARM_ENI_TARGET": "1"}, bounds, 0.999, ahead, 1200.0)
    assert first is not None
    assert first.env is not None
    assert not first.rescue
    assert planner.env_since is None  # the values seen first were not a change
    # Values that serve the pods: kept, and only they and the default are replayed.
    applied = {k: v for k, v in first.env.items()}
    feed(planner.log, nodes=2, until=1800.0, period=15.0)
    kept = planner.advise(IpMode.SECONDARY, LIMITS, applied, bounds, 0.999, ahead, 1800.0)
    assert planner.env_since == 1800.0
    assert kept is not None
    assert kept.env == applied
    assert kept.evaluated == 0
    # Values that starve the pods (a warm target of 1 and no minimum, 10 pods replaced every 15 s): a rescue
    # that raises them.
    starving = {"WARM_ENI_TARGET": "1", WARM_IP_TARGET: "1"}
    feed(planner.log, nodes=2, until=2400.0, period=15.0)
    rescue = planner.advise(IpMode.SECONDARY, LIMITS, starving, bounds, 0.999, ahead, 2400.0)
    assert rescue is not None
    assert rescue.rescue
    assert rescue.env is not None
    assert rp.raises(rescue.env, starving)
    assert rescue.env != starving


def test_the_histograms_floor_stands_until_the_sample_shows_the_quantile() -> None:
    planner = rp.ReplayPlanner(log=rp.ReplayLog(per_type=2))
    feed(planner.log, nodes=2, until=3600.0, period=5.0)
    bounds = rp.Bounds((1, 16), (0, 60))
    env = {"WARM_ENI_TARGET": "1"}

    def choice(quantile: float) -> dict[str, str]:
        planner.last = None
        c = planner.advise(IpMode.SECONDARY, LIMITS, env, bounds, quantile, 3600.0, 3600.0, warm_floor=lambda m: 12)
        assert c is not None
        assert c.env is not None
        return c.env

    starts = rp.replay(
        rp.default_env(IpMode.SECONDARY),
        IpMode.SECONDARY,
        planner.log.node_windows(planner.log.windows(3600.0)),
        LIMITS,
    ).starts
    assert starts * (1 - 0.999) < rp.FLOOR_UNTIL_WAITS <= starts * (1 - 0.9)
    # Too few starts to show a one-in-a-thousand wait: the floor stands.
    assert int(choice(0.999).get(WARM_IP_TARGET, "12")) >= 12
    # Enough to show one in ten: the replayed waits decide, and a smaller warm target serves.
    assert int(choice(0.9).get(WARM_IP_TARGET, "0")) < 12
