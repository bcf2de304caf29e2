"""Bursts from pod start times, the once-per-epoch counting rule, and the scaling-event detector."""

from __future__ import annotations

import json
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warmpool.api.v1alpha1 import Churn
from warmpool.planner.churn import (
    ChurnStats,
    ChurnTracker,
    QuietConfig,
    epoch_bursts,
    max_starts_in_window,
    start_demands,
)
from warmpool.snapshot import ClusterSnapshot, NodeInfo

W = 30.0
CHURN = Churn(burst_window="30s", half_life="24h")


def node(name: str, starts: list[float] | tuple[float, ...] = (), pods: int = 0, ready: bool = True) -> NodeInfo:
    return NodeInfo(name=name, instance_type="m5.large", pod_start_times=tuple(starts), ip_pods=pods, ready=ready)


def snap(now: float, *nodes: NodeInfo, pending: int = 0, counts: tuple[tuple[float, int], ...] = ()) -> ClusterSnapshot:
    return ClusterSnapshot(now=now, nodes=nodes, pending_pods=pending, node_count_history=counts)


@pytest.mark.parametrize(
    ("times", "window", "expected"),
    [
        ([], 30.0, 0),
        ([5.0], 30.0, 1),
        ([0.0, 1.0, 2.0], 3.0, 3),
        ([0.0, 3.0], 3.0, 1),  # half-open: starts exactly one window apart are in different windows
        ([0.0, 2.9, 3.0], 3.0, 2),
        ([10.0, 0.0, 5.0, 100.0, 101.0, 102.0, 103.0], 30.0, 4),
        ([1.0, 1.0, 1.0], 1.0, 3),  # simultaneous starts
    ],
)
def test_max_starts_in_window(times: list[float], window: float, expected: int) -> None:
    assert max_starts_in_window(times, window) == expected


def test_epoch_bursts_attributes_each_window_to_the_epoch_of_its_start() -> None:
    # Epoch 0 = [0, 30): starts at 25, 29 and (next epoch) 31, 40 -> window from 25 holds 4.
    # Epoch 1 = [30, 60): window from 31 holds 31, 40 -> 2. Epoch 3 holds one start.
    times = [40.0, 25.0, 31.0, 29.0, 95.0]
    assert epoch_bursts(times, W, 0, 5) == {0: 4, 1: 2, 3: 1}
    assert epoch_bursts(times, W, 1, 2) == {1: 2}


@given(st.lists(st.floats(min_value=0, max_value=600, allow_nan=False), max_size=40))
def test_epoch_bursts_max_is_the_sliding_max(times: list[float]) -> None:
    per_epoch = epoch_bursts(times, W, 0, 30)
    assert max(per_epoch.values(), default=0) == max_starts_in_window(times, W)


def offline(times_by_node: dict[str, list[float]], until_epoch: int) -> ChurnTracker:
    """The histogram built in one go from every start, for comparison with incremental feeding."""
    t = ChurnTracker(CHURN)
    t.next_epoch = 0
    per = {n: epoch_bursts(ts, W, 0, until_epoch) for n, ts in sorted(times_by_node.items())}
    for k in range(until_epoch + 1):
        for bursts in per.values():
            if bursts.get(k):
                t.bursts.add(bursts[k], 1.0, k * W)
    return t


def test_overlapping_snapshots_count_each_epoch_once() -> None:
    rng = random.Random(7)
    starts = {
        "a": sorted(rng.uniform(0, 1200) for _ in range(80)),
        "b": sorted(rng.uniform(0, 1200) for _ in range(30)),
    }
    tracker = ChurnTracker(CHURN, settle=0.0)
    # Every 20 s the observe layer shows the starts of the last 5 minutes: each start is seen ~15 times.
    for now in range(0, 1400, 20):
        visible = {n: [x for x in ts if now - 300 <= x <= now] for n, ts in starts.items()}
        for _ in range(2):  # the same snapshot twice changes nothing
            tracker.observe(snap(float(now), *(node(n, ts) for n, ts in visible.items())))
    last = tracker.next_epoch
    assert last is not None
    expected = offline(starts, last - 1)
    assert tracker.bursts == expected.bursts
    # Each (node, epoch with starts) gave exactly one unit sample, weighed as of the epoch's start.
    sample_times = [k * W for ts in starts.values() for k in epoch_bursts(ts, W, 0, last - 1)]
    assert len(sample_times) > 40
    expected_weight = sum(2.0 ** ((t - 1200.0) / (24 * 3600)) for t in sample_times)
    assert tracker.bursts.total_weight(1200.0) == pytest.approx(expected_weight, rel=1e-9)


def test_epochs_are_final_only_after_their_last_window_closed() -> None:
    tracker = ChurnTracker(CHURN, settle=5.0)
    tracker.observe(snap(0.0, node("a")))
    assert tracker.next_epoch == -2
    # A burst straddling the epoch 0/1 boundary: at now=64 epoch 0's windows are not all closed + settled.
    starts = [28.0, 29.0, 31.0, 33.0]
    tracker.observe(snap(64.0, node("a", starts)))
    assert tracker.bursts.empty
    tracker.observe(snap(65.0, node("a", starts)))
    assert tracker.bursts.quantile(1.0) == 4
    assert tracker.next_epoch == 1


def test_complete_since_skips_epochs_with_partial_data() -> None:
    tracker = ChurnTracker(CHURN, settle=0.0)
    tracker.observe(snap(600.0, node("a", [10.0, 11.0, 500.0])), complete_since=450.0)
    assert tracker.bursts.quantile(0.0) == 1  # only the start at 500 counted
    assert tracker.bursts.total_weight(500.0) == pytest.approx(1.0, rel=0.01)


def test_density_is_sampled_once_per_epoch_from_ready_nodes() -> None:
    tracker = ChurnTracker(CHURN)
    nodes = (node("a", pods=10), node("b", pods=20), node("c", pods=99, ready=False))
    tracker.observe(snap(0.0, *nodes))
    tracker.observe(snap(10.0, *nodes))  # same epoch: no new sample
    assert tracker.density.total_weight(0.0) == pytest.approx(2.0)
    tracker.observe(snap(31.0, *nodes))
    assert tracker.density.total_weight(0.0) == pytest.approx(4.0, rel=1e-3)
    assert tracker.stats(0.95, 31.0).pods_per_node == 10


@given(
    st.dictionaries(
        st.sampled_from(["n1", "n2", "n3", "n4"]),
        st.lists(st.floats(min_value=0, max_value=900, allow_nan=False), max_size=25),
        min_size=1,
    ),
    st.randoms(use_true_random=False),
)
@settings(max_examples=60)
def test_stable_under_reordering_of_events_and_nodes(starts: dict[str, list[float]], rnd: random.Random) -> None:
    def run(shuffle: bool) -> dict[str, object]:
        tracker = ChurnTracker(CHURN, settle=0.0)
        for now in (0.0, 300.0, 600.0, 1000.0):
            nodes = []
            for name, ts in starts.items():
                seen = [x for x in ts if x <= now]
                if shuffle:
                    rnd.shuffle(seen)
                nodes.append(node(name, seen, pods=len(seen)))
            if shuffle:
                rnd.shuffle(nodes)
            tracker.observe(snap(now, *nodes))
        return tracker.to_checkpoint()

    assert run(False) == run(True)


def test_checkpoint_resume_matches_uninterrupted_run() -> None:
    rng = random.Random(3)
    starts = sorted(rng.uniform(0, 3000) for _ in range(200))
    times = [float(t) for t in range(0, 3100, 60)]

    def feed(tracker: ChurnTracker, ts: list[float]) -> None:
        for now in ts:
            tracker.observe(snap(now, node("a", [x for x in starts if now - 600 <= x <= now], pods=5)))

    straight = ChurnTracker(CHURN)
    feed(straight, times)
    first = ChurnTracker(CHURN)
    feed(first, times[:20])
    data = json.loads(json.dumps(first.to_checkpoint()))
    resumed = ChurnTracker.from_checkpoint(data, CHURN)
    assert resumed.to_checkpoint() == first.to_checkpoint()
    feed(resumed, times[20:])
    assert resumed.to_checkpoint() == straight.to_checkpoint()


@given(
    st.lists(st.floats(min_value=0, max_value=5000, allow_nan=False), max_size=60),
    st.lists(st.integers(0, 120), min_size=1, max_size=8),
)
@settings(max_examples=60)
def test_tracker_checkpoint_round_trips_exactly(starts: list[float], pods: list[int]) -> None:
    tracker = ChurnTracker(CHURN)
    for now in (1000.0, 3000.0, 5100.0):
        nodes = [node(f"n{i}", [t for t in starts[i::2] if t <= now], pods=p) for i, p in enumerate(pods)]
        tracker.observe(snap(now, *nodes, pending=len(pods)))
    data = json.loads(json.dumps(tracker.to_checkpoint()))
    resumed = ChurnTracker.from_checkpoint(data, CHURN)
    assert resumed.to_checkpoint() == tracker.to_checkpoint()
    assert resumed.bursts == tracker.bursts
    assert resumed.density == tracker.density


def test_checkpoint_with_changed_window_converts_cursor_through_time() -> None:
    tracker = ChurnTracker(CHURN)
    tracker.observe(snap(600.0, node("a")))
    data = tracker.to_checkpoint()
    assert data["nextEpoch"] == 18
    wider = ChurnTracker.from_checkpoint(data, Churn(burst_window="60s", half_life="12h"))
    assert wider.next_epoch == 9
    assert wider.bursts.half_life == 12 * 3600


def test_unknown_checkpoint_version_is_rejected() -> None:
    data = ChurnTracker(CHURN).to_checkpoint() | {"version": 99}
    with pytest.raises(ValueError, match="version"):
        ChurnTracker.from_checkpoint(data, CHURN)


# ----- scaling-event detector -----


def test_quiet_when_nothing_happens() -> None:
    tracker = ChurnTracker(CHURN)
    tracker.observe(snap(100.0, node("a", [90.0])))
    stats = tracker.stats(0.95, 100.0)
    assert stats.quiet
    assert stats.quiet_since == 100.0


@pytest.mark.parametrize(
    ("snapshot", "reason"),
    [
        (snap(1000.0, node("a"), pending=10), "pending"),
        (snap(1000.0, node("a"), counts=((750.0, 10), (900.0, 12), (990.0, 13))), "node count rose by 3"),
        (snap(1000.0, node("a", [980.0, 981.0, 982.0, 983.0])), "pod starts"),
    ],
)
def test_not_quiet(snapshot: ClusterSnapshot, reason: str) -> None:
    tracker = ChurnTracker(CHURN)
    tracker.observe(snapshot)
    stats = tracker.stats(0.95, snapshot.now)
    assert not stats.quiet
    assert stats.quiet_since is None
    assert any(reason in r for r in stats.busy_reasons)


@pytest.mark.parametrize(
    "snapshot",
    [
        snap(1000.0, node("a"), pending=9),
        # a rise older than the look-back, and a rise below the 10% ratio
        snap(1000.0, node("a"), counts=((500.0, 10), (600.0, 20), (990.0, 20))),
        snap(1000.0, node("a"), counts=((900.0, 100), (990.0, 105))),
        snap(1000.0, node("a", [980.0, 981.0, 982.0])),  # below spike_min_burst
    ],
)
def test_quiet_below_thresholds(snapshot: ClusterSnapshot) -> None:
    tracker = ChurnTracker(CHURN)
    tracker.observe(snapshot)
    assert tracker.stats(0.95, snapshot.now).quiet


def test_spike_is_relative_to_learned_bursts() -> None:
    tracker = ChurnTracker(CHURN, quiet=QuietConfig(spike_factor=2.0, spike_min_burst=4), settle=0.0)
    # Learn bursts of 5 per window, then a burst of 8 is normal (< 2 x 5) and one of 11 is a spike.
    history = [k * W + d for k in range(20) for d in (1.0, 2.0, 3.0, 4.0, 5.0)]
    tracker.observe(snap(20 * W + 100, node("a", history)))
    assert tracker.bursts.quantile(0.95) == 5
    now = 2000.0
    tracker.observe(snap(now, node("a", [now - i for i in range(8)])))
    assert tracker.stats(0.95, now).quiet
    tracker.observe(snap(now + 100, node("a", [now + 100 - i for i in range(11)])))
    assert not tracker.stats(0.95, now + 100).quiet


def test_quiet_since_is_when_churn_was_last_high() -> None:
    tracker = ChurnTracker(CHURN)
    tracker.observe(snap(0.0, node("a")))
    tracker.observe(snap(60.0, node("a"), pending=50))
    tracker.observe(snap(120.0, node("a"), pending=40))
    assert tracker.stats(0.95, 120.0).quiet_since is None
    tracker.observe(snap(180.0, node("a")))
    tracker.observe(snap(240.0, node("a")))
    stats = tracker.stats(0.95, 240.0)
    assert stats.quiet
    assert stats.quiet_since == 120.0
    # and it survives a restart
    resumed = ChurnTracker.from_checkpoint(tracker.to_checkpoint(), CHURN)
    resumed.observe(snap(300.0, node("a")))
    assert resumed.stats(0.95, 300.0).quiet_since == 120.0


# ----- demand: starts in a window plus cooling IPs, per pod start -----


def test_start_demands_count_starts_in_the_window_and_cooling_ips() -> None:
    starts = [10.0, 31.0, 35.0, 70.0]
    stops = [20.0, 36.0]
    # (demand, held): demand = starts in (t - 30, t] + stops in (t - 30, t], then the largest of that from t to
    # the end of the epoch (the rest of the burst); held = pods just after t (3 now, minus the later starts,
    # plus the later stops) + cooling.
    assert start_demands(starts, stops, W, 30.0, 0, 3, pods_now=3) == {
        0: [(1, 2)],  # t=10: alone; 3 - 3 + 2 = 2 pods
        1: [(4, 3), (4, 4)],  # t=35: 10, 31, 35 and the IP stopped at 20; t=31 must absorb that burst too
        2: [(1, 3)],  # t=70: 31 and 35 are 30 s back, the IP stopped at 36 has cooled down
    }
    assert start_demands(starts, stops, W, 30.0, 1, 1, pods_now=3) == {1: [(4, 3), (4, 4)]}


def test_start_demands_are_per_start_and_respect_the_half_open_window() -> None:
    out = start_demands([0.0, 30.0], [], W, 30.0, 0, 1, pods_now=2)
    assert out == {0: [(1, 1)], 1: [(1, 2)]}  # 0 and 30 are one window apart: never in the same window
    # equal start times are served one after another, and each start carries the rest of its burst
    assert start_demands([5.0, 5.0, 5.0], [], W, 30.0, 0, 0, pods_now=3) == {0: [(3, 1), (3, 2), (3, 3)]}
    # a stop exactly cooldown ago has cooled down
    assert start_demands([40.0], [10.0], W, 30.0, 1, 1, pods_now=1) == {1: [(1, 1)]}
    assert start_demands([40.0], [10.5], W, 30.0, 1, 1, pods_now=1) == {1: [(2, 2)]}


@given(st.lists(st.floats(min_value=0, max_value=600, allow_nan=False), max_size=40))
def test_start_demands_cover_the_sliding_max(times: list[float]) -> None:
    # Without stops, the busiest start's demand is the busiest window's count, boundary rounding included.
    per_epoch = start_demands(times, [], W, 30.0, 0, 30, pods_now=len(times))
    demands = [d for samples in per_epoch.values() for d, _ in samples]
    assert max(demands, default=0) == max_starts_in_window(times, W)
    assert len(demands) == len(times)


def stopping(name: str, starts: list[float], stops: list[float], pods: int) -> NodeInfo:
    return NodeInfo(
        name=name, instance_type="m5.large", pod_start_times=tuple(starts), pod_stop_times=tuple(stops), ip_pods=pods
    )


def test_tracker_learns_cooling_ips_from_stops() -> None:
    # Every pod is replaced 5 s after its predecessor stopped: each start needs its own IP and finds the old
    # one cooling, so it needs 2 usable IPs where starts alone say 1.
    starts = [100.0 * k + 5 for k in range(1, 20)]
    stops = [100.0 * k for k in range(1, 20)]
    t = ChurnTracker(CHURN)
    t.next_epoch = 0
    t.observe(snap(2100.0, stopping("a", starts, stops, pods=10)))
    s = t.stats(0.95, 2100.0)
    assert s.covered_burst == 1
    assert s.covered_demand == 2
    assert s.demand_samples == pytest.approx(19, rel=0.01)
    # The same starts, by the IPs their node needed (10 pods + 1 cooling) and demand, for `uncovered_share`.
    assert [(held, d) for held, d, _ in s.demand_table] == [(11, 2)]
    assert math.fsum(w for *_, w in s.demand_table) == pytest.approx(s.demand_samples)
    assert s.uncovered_share(minimum=10, warm=1) == 1.0
    assert s.uncovered_share(minimum=11, warm=1) == 0.0


def test_starts_a_minimum_serves_are_left_out_only_once_stops_are_seen() -> None:
    # A node filling up from 0 to 10 pods in 10 s: demand grows 1..10, needing 1..10 IPs held.
    starts = [100.0 + k for k in range(10)]
    t = ChurnTracker(CHURN)
    t.next_epoch = 0
    t.observe(snap(300.0, node("a", starts, pods=10)))
    s = t.stats(0.95, 300.0)
    assert s.covered_demand == 10
    assert s.demand_by_minimum == ()  # without stops, past pod counts are unknown: no start is left out
    assert s.demand_with_minimum(10) == 10
    t2 = ChurnTracker(CHURN)
    t2.next_epoch = 0
    t2.observe(snap(300.0, stopping("a", starts, [5.0], pods=10)))
    s2 = t2.stats(0.95, 300.0)
    assert s2.covered_demand == 10
    assert s2.demand_with_minimum(10) == 0  # a minimum of 10 IPs holds every one of them
    assert s2.demand_with_minimum(8) == 10  # the 9th and 10th pods need the warm target: 10 starts in 30 s
    assert s2.demand_with_minimum(-1) == 10


def test_demand_survives_a_checkpoint_and_old_checkpoints_load() -> None:
    t = ChurnTracker(CHURN)
    t.next_epoch = 0
    t.observe(snap(2100.0, stopping("a", [105.0, 205.0], [100.0, 200.0], pods=3)))
    data = json.loads(json.dumps(t.to_checkpoint()))
    back = ChurnTracker.from_checkpoint(data, CHURN)
    assert back.stats(0.95, 2100.0) == t.stats(0.95, 2100.0)
    old = {k: v for k, v in data.items() if k not in ("demand", "stopsSeen")}
    legacy = ChurnTracker.from_checkpoint(old, CHURN)
    assert legacy.stats(0.95, 2100.0).demand_samples == 0.0


def test_demand_with_minimum_reads_the_staircase() -> None:
    s = ChurnStats(30.0, 0.95, 0, 0, 0.0, 0, 0.0, 0, True, 0.0, covered_demand=9, demand_by_minimum=((4, 6), (10, 2)))
    assert [s.demand_with_minimum(m) for m in (-1, 0, 3, 4, 9, 10, 50)] == [9, 9, 9, 6, 6, 2, 2]


def test_uncovered_share_counts_starts_neither_target_serves() -> None:
    s = ChurnStats(30.0, 0.95, 0, 0, 0.0, 0, 0.0, 0, True, 0.0, demand_table=((10, 4, 6.0), (20, 2, 3.0), (20, 6, 1.0)))
    assert s.uncovered_share(minimum=12, warm=3) == 0.1  # only the 6-demand starts on a 20-IP node
    assert s.uncovered_share(minimum=8, warm=3) == 0.7
    assert s.uncovered_share(minimum=20, warm=0) == 0.0
    assert ChurnStats(30.0, 0.95, 0, 0, 0.0, 0, 0.0, 0, True, 0.0).uncovered_share(0, 0) == 0.0
