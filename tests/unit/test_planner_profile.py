"""The demand profile: what each hour of the day (and of the week) needed, per instance type, kept in the
checkpoint; what the coming cooldown is expected to need."""

from __future__ import annotations

import itertools
import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warmpool.planner.churn import ChurnStats
from warmpool.planner.profile import (
    DAY_HOURS,
    MAX_TYPES,
    WEEK_HOURS,
    DemandProfile,
    Expected,
    ahead_stats,
)
from warmpool.snapshot import ClusterSnapshot, NodeInfo

HOUR = 3600.0
DAY = 24 * HOUR
T0 = 1_800_000_000.0 - (1_800_000_000.0 % DAY)  # a midnight, UTC
HALF_LIFE = DAY


def snapshot(now: float, pods: int = 5, itype: str = "m5.large", nodes: int = 2) -> ClusterSnapshot:
    infos = tuple(NodeInfo(name=f"{itype}-{i}", instance_type=itype, ip_pods=pods) for i in range(nodes))
    return ClusterSnapshot(now=now, nodes=infos)


def day_shape(hour: int) -> tuple[int, int, int]:
    """(demand, held, pods) of a diurnal day: quiet nights, a ramp at 06:00-09:00, a peak until 18:00."""
    if 6 <= hour < 9:
        return 12, 30, 20
    if 9 <= hour < 18:
        return 6, 30, 28
    return 1, 6, 4


def feed_day(profile: DemandProfile, day: int, itype: str = "m5.large", scale: float = 1.0) -> None:
    """One tick every 10 minutes of day `day`, each with one pod start of that hour's shape per node."""
    for tick in range(6 * DAY_HOURS):
        now = T0 + day * DAY + tick * 600
        demand, held, pods = day_shape(tick // 6)
        d, h = math.ceil(demand * scale), math.ceil(held * scale)
        samples = [(now - 60, itype, f"{itype}-{i}", d, h) for i in range(2)]
        profile.observe(snapshot(now, pods, itype), samples, 0.999)


def test_nothing_is_expected_until_every_hour_ahead_has_been_seen() -> None:
    profile = DemandProfile(HALF_LIFE)
    feed_day(profile, 0)
    # From the second day on, the coming hours were seen the day before.
    assert profile.expected("m5.large", T0 + DAY + 20 * HOUR, T0 + DAY + 26 * HOUR) is not None
    fresh = DemandProfile(HALF_LIFE)
    for tick in range(6 * 3):  # three hours of day 0
        fresh.observe(snapshot(T0 + tick * 600), [(T0 + tick * 600, "m5.large", "m5.large-0", 2, 5)], 0.999)
    assert fresh.expected("m5.large", T0 + 2 * HOUR, T0 + 8 * HOUR) is None
    assert fresh.expected("m5.large", T0 + 2.5 * HOUR, T0 + 2.9 * HOUR) is None  # only the hour under way
    assert fresh.expected("m5.large", T0 + DAY + HOUR, T0 + DAY + 2 * HOUR) is not None  # seen yesterday
    assert profile.expected("t3.small", T0 + DAY, T0 + DAY + HOUR) is None  # a type never seen
    assert profile.expected("m5.large", T0 + DAY, T0 + DAY) is None  # an empty span


def test_a_value_chosen_at_night_covers_the_morning_ramp_and_the_evening_comes_down() -> None:
    profile = DemandProfile(HALF_LIFE)
    feed_day(profile, 0)
    night = profile.expected("m5.large", T0 + DAY + 2 * HOUR, T0 + DAY + 8 * HOUR)  # 02:00-08:00 on day 1
    # One start a node every 10 minutes: 6 an hour.
    assert night == Expected(demand=12, held=30, pods=20, starts=6.0, weekly=False)
    evening = profile.expected("m5.large", T0 + DAY + 18 * HOUR, T0 + DAY + 24 * HOUR)  # after the peak
    assert evening is not None
    assert (evening.demand, evening.held, evening.pods) == (1, 6, 4)


def test_a_recurring_peak_holds_and_a_one_off_fades() -> None:
    profile = DemandProfile(HALF_LIFE)
    feed_day(profile, 0, scale=3.0)  # a one-off day three times as busy
    feed_day(profile, 1)
    feed_day(profile, 2)
    after = profile.expected("m5.large", T0 + 3 * DAY + 6 * HOUR, T0 + 3 * DAY + 7 * HOUR)
    assert after is not None
    assert after.demand == 12  # 36 faded over two days (9) is below the usual 12
    profile.observe(snapshot(T0 + 3 * DAY + 6.5 * HOUR), [(T0 + 3 * DAY + 6.5 * HOUR, "m5.large", "x", 40, 45)], 1)
    live = profile.expected("m5.large", T0 + 3 * DAY + 6 * HOUR, T0 + 3 * DAY + 7 * HOUR)
    assert live is not None
    assert live.demand == 40  # the hour under way counts as it goes


def test_the_week_is_read_once_the_profile_spans_one() -> None:
    profile = DemandProfile(HALF_LIFE)
    for day in range(8):
        feed_day(profile, day, scale=1.0 if day % 7 else 2.0)  # day 0 and day 7: twice as busy
    span = (T0 + 14 * DAY + 6 * HOUR, T0 + 14 * DAY + 7 * HOUR)  # day 14: the same weekday as days 0 and 7
    weekly = profile.expected("m5.large", *span)
    assert weekly is not None
    assert (weekly.weekly, weekly.demand) == (True, 24)
    daily = profile.expected("m5.large", span[0] - 3 * DAY, span[1] - 3 * DAY)  # another weekday
    assert daily is not None
    assert (daily.weekly, daily.demand) == (True, 12)


def test_types_are_bounded_and_the_least_recently_seen_goes_first() -> None:
    profile = DemandProfile(HALF_LIFE)
    for i in range(MAX_TYPES + 3):
        profile.observe(snapshot(T0 + i * 60, itype=f"type{i:02d}"), [], 0.999)
    assert profile.types == sorted(f"type{i:02d}" for i in range(3, MAX_TYPES + 3))
    data = profile.to_checkpoint()
    assert all(len(e["day"]) <= DAY_HOURS and len(e["week"]) <= WEEK_HOURS for e in data["types"].values())


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(0, 3 * DAY),
            st.sampled_from(["m5.large", "t3.small", "c5.xlarge"]),
            st.integers(0, 60),
            st.integers(0, 120),
            st.integers(0, 110),
        ),
        max_size=40,
    ),
    st.floats(0.5, 1.0),
)
def test_the_checkpoint_round_trips_through_json(feed: list[tuple[float, str, int, int, int]], quantile: float) -> None:
    profile = DemandProfile(HALF_LIFE)
    for t, itype, demand, held, pods in sorted(feed):
        profile.observe(snapshot(T0 + t, pods, itype), [(T0 + t - 30, itype, f"{itype}-0", demand, held)], quantile)
    stored = json.loads(json.dumps(profile.to_checkpoint()))
    restored = DemandProfile.from_checkpoint(stored, HALF_LIFE)
    assert restored == profile
    for itype in profile.types:
        for start in (T0 + DAY, T0 + 2.5 * DAY):
            assert restored.expected(itype, start, start + 6 * HOUR) == profile.expected(itype, start, start + 6 * HOUR)


def _good() -> dict[str, Any]:
    profile = DemandProfile(HALF_LIFE)
    feed_day(profile, 0)
    return profile.to_checkpoint()


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.update(version=2),
        lambda d: d.update(types="x"),
        lambda d: d.update(since="yesterday"),
        lambda d: d["types"]["m5.large"].update(day=[[0, 1, 0, 1, 1, 1]]),  # a row of six: an older layout
        lambda d: d["types"]["m5.large"].update(day=[[24, 1, 0, 1, 1, 1, 1]]),  # no hour 24 in a day
        lambda d: d["types"]["m5.large"].update(day=[[0, 1, 0, -1, 1, 1, 1]]),
        lambda d: d["types"]["m5.large"].update(day=[[0, 1, 0, float("nan"), 1, 1, 1]]),
        lambda d: d["types"]["m5.large"].update(week=[[0, 1, 0, 1, 1, 1, 1]] * 2),  # a slot twice
        lambda d: d["types"]["m5.large"].update(lastSeen=None),
        lambda d: d["types"].update({f"t{i}": d["types"]["m5.large"] for i in range(MAX_TYPES)}),
    ],
)
def test_a_malformed_profile_is_refused_with_value_error(change: Any) -> None:
    data = _good()
    change(data)
    with pytest.raises(ValueError, match=r"."):
        DemandProfile.from_checkpoint(data, HALF_LIFE)


def stats(**kw: Any) -> ChurnStats:
    base: dict[str, Any] = {
        "window": 30.0,
        "quantile": 0.999,
        "covered_burst": 8,
        "max_burst": 10,
        "burst_samples": 100.0,
        "pods_per_node": 12,
        "density_samples": 50.0,
        "current_burst": 0,
        "quiet": True,
        "quiet_since": 0.0,
        "covered_demand": 9,
        "max_demand": 14,
        "demand_samples": 100.0,
        "demand_by_minimum": ((5, 7), (12, 4), (25, 2)),
    }
    return ChurnStats(**{**base, **kw})


@given(
    st.integers(0, 40),
    st.integers(0, 60),
    st.integers(0, 40),
    st.lists(st.tuples(st.integers(0, 60), st.integers(0, 40)), max_size=6),
)
def test_ahead_stats_read_the_demand_of_the_coming_cooldown(
    demand: int, held: int, pods: int, table: list[tuple[int, int]]
) -> None:
    # A table as the tracker gives it: increasing minimum, decreasing demand.
    rows: list[tuple[int, int]] = []
    for m, d in sorted(table):
        if (not rows or (m > rows[-1][0] and d < rows[-1][1])) and d < 40:
            rows.append((m, d))
    s = stats(demand_by_minimum=tuple(rows), covered_demand=40)
    ahead = ahead_stats(s, Expected(demand, held, pods, 1.0, False))
    assert ahead.covered_demand == demand
    assert ahead.pods_per_node == pods
    ms = [m for m, _ in ahead.demand_by_minimum]
    ds = [d for _, d in ahead.demand_by_minimum]
    assert ms == sorted(set(ms))
    assert all(a > b for a, b in itertools.pairwise(ds))
    assert all(d < demand for d in ds)
    for minimum in range(0, 70, 7):
        # No minimum leaves more than the profile's demand; one holding the busiest node's IPs leaves none.
        assert ahead.demand_with_minimum(minimum) <= min(demand, s.demand_with_minimum(minimum) if rows else demand)
        if rows and minimum >= held:
            assert ahead.demand_with_minimum(minimum) == 0
