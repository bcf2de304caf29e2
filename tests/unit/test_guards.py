"""The rollout guards: one row per reason, and the order in which they apply."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from warmpool.api.v1alpha1 import Rollout, Variable
from warmpool.planner.guards import GuardReason, beyond_dead_band, current_values, decide

IP = Variable.WARM_IP_TARGET
MIN = Variable.MINIMUM_IP_TARGET

ROLLOUT = Rollout(cooldown="6h", dead_band=2, dead_band_ratio=0.2, quiet_period="10m")
NOW = 100_000.0
LONG_AGO = NOW - 7 * 3600
CALM: dict[str, Any] = {"last_applied_time": LONG_AGO, "quiet_since": NOW - 3600}
DAY_OF_4 = [NOW - 23 * 3600, NOW - 17 * 3600, NOW - 11 * 3600, LONG_AGO]  # four counted rollouts in 24 h


def run(recommended: dict[Variable, int], current: dict[Variable, int], **kw: Any) -> tuple[bool, GuardReason]:
    args = {**CALM, **kw}
    d = decide(recommended, current, ROLLOUT, now=NOW, **args)
    return d.apply, d.reason


@pytest.mark.parametrize(
    ("recommended", "current", "kw", "expected"),
    [
        ({IP: 8, MIN: 20}, {IP: 3, MIN: 20}, {}, (True, GuardReason.APPLY)),
        ({IP: 8, MIN: 20}, {IP: 3, MIN: 20}, {"paused": True}, (False, GuardReason.PAUSED)),
        ({IP: 8, MIN: 20}, {IP: 8, MIN: 20}, {}, (False, GuardReason.NO_CHANGE)),
        ({}, {IP: 8}, {}, (False, GuardReason.NO_CHANGE)),
        # |8 - 7| = 1 < deadBand 2
        ({IP: 8, MIN: 20}, {IP: 7, MIN: 20}, {}, (False, GuardReason.DEAD_BAND)),
        # |24 - 20| = 4 reaches both deadBand 2 and 20% of 20
        ({IP: 8, MIN: 24}, {IP: 8, MIN: 20}, {}, (True, GuardReason.APPLY)),
        # |23 - 20| = 3 >= 2 but < 4 (20% of 20)
        ({IP: 8, MIN: 23}, {IP: 8, MIN: 20}, {}, (False, GuardReason.DEAD_BAND)),
        # An unset variable is always worth writing.
        ({IP: 8, MIN: 20}, {IP: 8}, {}, (True, GuardReason.APPLY)),
        ({IP: 8}, {IP: 3}, {"rollout_in_progress": True}, (False, GuardReason.ROLLOUT_IN_PROGRESS)),
        ({IP: 8}, {IP: 3}, {"last_applied_time": NOW - 3600}, (False, GuardReason.COOLDOWN)),
        ({IP: 8}, {IP: 3}, {"last_applied_time": NOW - 6 * 3600}, (True, GuardReason.APPLY)),
        ({IP: 8}, {IP: 3}, {"last_applied_time": None}, (True, GuardReason.APPLY)),
        ({IP: 8}, {IP: 3}, {"quiet_since": None}, (False, GuardReason.NOT_QUIET)),
        ({IP: 8}, {IP: 3}, {"quiet_since": NOW - 599}, (False, GuardReason.NOT_QUIET)),
        ({IP: 8}, {IP: 3}, {"quiet_since": NOW - 600}, (True, GuardReason.APPLY)),
        ({IP: 8}, {IP: 3}, {"dry_run": True}, (False, GuardReason.DRY_RUN)),
        # Order: paused beats everything; no_change and dead_band come before the time-based guards.
        ({IP: 8}, {IP: 8}, {"paused": True, "rollout_in_progress": True}, (False, GuardReason.PAUSED)),
        ({IP: 8}, {IP: 7}, {"last_applied_time": NOW, "quiet_since": None}, (False, GuardReason.DEAD_BAND)),
        (
            {IP: 8},
            {IP: 3},
            {"rollout_in_progress": True, "last_applied_time": NOW},
            (False, "rollout_in_progress"),
        ),
        ({IP: 8}, {IP: 3}, {"last_applied_time": NOW, "quiet_since": None}, (False, GuardReason.COOLDOWN)),
        ({IP: 8}, {IP: 3}, {"quiet_since": None, "dry_run": True}, (False, GuardReason.NOT_QUIET)),
        # Subnet pressure (urgent) lets a decrease skip the dead band and the cooldown, nothing else.
        ({IP: 6}, {IP: 7}, {"urgent": True, "last_applied_time": NOW}, (True, GuardReason.APPLY)),
        ({IP: 6}, {IP: 7}, {"urgent": True, "quiet_since": None}, (False, GuardReason.NOT_QUIET)),
        (
            {IP: 6},
            {IP: 7},
            {"urgent": True, "rollout_in_progress": True},
            (False, GuardReason.ROLLOUT_IN_PROGRESS),
        ),
        ({IP: 6}, {IP: 7}, {"urgent": True, "paused": True}, (False, GuardReason.PAUSED)),
        # ... but not an increase, nor the first write of an unset value.
        ({IP: 8}, {IP: 7}, {"urgent": True}, (False, GuardReason.DEAD_BAND)),
        (
            {IP: 9, MIN: 5},
            {IP: 7, MIN: 9},
            {"urgent": True, "last_applied_time": NOW},
            (False, GuardReason.COOLDOWN),
        ),
        ({IP: 6, MIN: 5}, {IP: 7}, {"urgent": True, "last_applied_time": NOW}, (False, GuardReason.COOLDOWN)),
        # Starving (pods wait: the targets in effect leave the demand uncovered) lets the raise of WARM_IP_TARGET
        # the plan names skip the cooldown ...
        ({IP: 7}, {IP: 4}, {"rescue": {IP: 7}, "last_applied_time": NOW}, (True, GuardReason.APPLY)),
        (
            {IP: 1, MIN: 20},
            {IP: 4, MIN: 8},
            {"rescue": {IP: 7, MIN: 8}, "last_applied_time": NOW},
            (True, GuardReason.APPLY),
        ),
        # ... never the dead band, the quiet period, a rollout in progress or a pause,
        ({IP: 5}, {IP: 4}, {"rescue": {IP: 5}, "last_applied_time": NOW}, (False, GuardReason.DEAD_BAND)),
        (
            {IP: 9, MIN: 5},
            {IP: 8, MIN: 9},
            {"rescue": {IP: 9, MIN: 9}, "last_applied_time": NOW},
            (False, GuardReason.COOLDOWN),
        ),
        ({IP: 7}, {IP: 4}, {"rescue": {IP: 7}, "quiet_since": None}, (False, GuardReason.NOT_QUIET)),
        (
            {IP: 7},
            {IP: 4},
            {"rescue": {IP: 7}, "rollout_in_progress": True},
            (False, GuardReason.ROLLOUT_IN_PROGRESS),
        ),
        ({IP: 7}, {IP: 4}, {"rescue": {IP: 7}, "paused": True}, (False, GuardReason.PAUSED)),
        # ... the whole-ENI fallback too (both IP targets 0), when the warm target is stuck at the instance cap,
        (
            {IP: 0, MIN: 0},
            {IP: 5, MIN: 0},
            {"rescue": {IP: 0, MIN: 0}, "last_applied_time": NOW},
            (True, GuardReason.APPLY),
        ),
        # ... and not when WARM_IP_TARGET is unset on the DaemonSet (the first write goes through every guard).
        ({IP: 7, MIN: 5}, {MIN: 5}, {"rescue": {IP: 7}, "last_applied_time": NOW}, (False, GuardReason.COOLDOWN)),
        # rollout.maxPerDay (4): a fifth counted rollout within 24 h is held ...
        ({IP: 8}, {IP: 3}, {"rollouts": DAY_OF_4}, (False, GuardReason.DAILY_LIMIT)),
        ({IP: 8}, {IP: 3}, {"rollouts": DAY_OF_4[1:]}, (True, GuardReason.APPLY)),
        ({IP: 8}, {IP: 3}, {"rollouts": [*DAY_OF_4[1:], NOW - 86400]}, (True, GuardReason.APPLY)),  # a day ago
        # ... after the cooldown and the other guards before it,
        ({IP: 8}, {IP: 3}, {"rollouts": DAY_OF_4, "last_applied_time": NOW}, (False, GuardReason.COOLDOWN)),
        ({IP: 8}, {IP: 7}, {"rollouts": DAY_OF_4}, (False, GuardReason.DEAD_BAND)),
        # ... unless pods starve (the rescue passes, alone) or a subnet runs dry (a lowering passes).
        ({IP: 7}, {IP: 4}, {"rescue": {IP: 7}, "rollouts": DAY_OF_4}, (True, GuardReason.APPLY)),
        ({IP: 6}, {IP: 7}, {"urgent": True, "rollouts": DAY_OF_4}, (True, GuardReason.APPLY)),
        (
            {IP: 7},
            {IP: 4},
            {"rescue": {IP: 7}, "rollouts": DAY_OF_4, "quiet_since": None},
            (False, GuardReason.NOT_QUIET),
        ),
        # A change that leaves every node holding the same (prefix mode rounds to /28s) is not worth a rollout,
        ({IP: 8}, {IP: 3}, {"holds_same": lambda values: True}, (False, GuardReason.HOLDS_SAME)),
        ({IP: 8}, {IP: 3}, {"holds_same": lambda values: False}, (True, GuardReason.APPLY)),
        # ... nor a rescue that holds the same; the cooldown is reported first.
        ({IP: 7}, {IP: 4}, {"rescue": {IP: 7}, "holds_same": lambda v: True}, (False, GuardReason.HOLDS_SAME)),
        ({IP: 8}, {IP: 3}, {"holds_same": lambda v: True, "last_applied_time": NOW}, (False, GuardReason.COOLDOWN)),
    ],
)
def test_decide(
    recommended: dict[Variable, int],
    current: dict[Variable, int],
    kw: dict[str, Any],
    expected: tuple[bool, str],
) -> None:
    assert run(recommended, current, **kw) == expected


@pytest.mark.parametrize("current", [{}, {IP: 0}, {MIN: 0}, {IP: 0, MIN: 0}])
def test_zero_ip_targets_equal_unset_ones(current: dict[Variable, int]) -> None:
    # ipamd reads an absent WARM_IP_TARGET / MINIMUM_IP_TARGET as 0: writing 0 alone is no change, no rollout.
    assert run({IP: 0, MIN: 0}, current) == (False, GuardReason.NO_CHANGE)


def test_starving_within_the_cooldown_only_raises_the_warm_target() -> None:
    # The plan trades the warm target for a larger minimum; within the cooldown only the rescue raise of
    # WARM_IP_TARGET is written, the minimum stays, and the whole recommendation waits for the cooldown.
    recommended, current = {IP: 1, MIN: 20}, {IP: 4, MIN: 8}
    calm = {"quiet_since": NOW - 3600, "rescue": {IP: 7, MIN: 8}}
    within = decide(recommended, current, ROLLOUT, now=NOW, last_applied_time=NOW - 60, **calm)
    assert within.apply
    assert within.values == {IP: 7, MIN: 8}
    after = decide(recommended, current, ROLLOUT, now=NOW, last_applied_time=LONG_AGO, **calm)
    assert after.apply
    assert after.values == recommended


def test_one_change_beyond_the_band_writes_every_managed_value() -> None:
    d = decide({IP: 8, MIN: 21}, {IP: 3, MIN: 20}, ROLLOUT, now=NOW, **CALM)
    assert d.apply
    assert d.values == {IP: 8, MIN: 21}
    assert "WARM_IP_TARGET=8,MINIMUM_IP_TARGET=21" in d.message


def test_dry_run_reports_what_it_would_write() -> None:
    d = decide({IP: 8}, {IP: 3}, ROLLOUT, now=NOW, dry_run=True, **CALM)
    assert not d.apply
    assert d.values == {IP: 8}
    assert "would write WARM_IP_TARGET=8" in d.message


@pytest.mark.parametrize("kw", [{"paused": True}, {"quiet_since": None}, {"last_applied_time": NOW}])
def test_held_decisions_write_nothing(kw: dict[str, Any]) -> None:
    d = decide({IP: 8}, {IP: 3}, ROLLOUT, now=NOW, **{**CALM, **kw})
    assert not d.apply
    assert d.values == {}


@pytest.mark.parametrize(
    ("new", "old", "band", "ratio", "expected"),
    [
        (5, None, 2, 0.2, True),
        (5, 5, 0, 0.0, False),
        (6, 5, 0, 0.0, True),
        (4, 5, 2, 0.0, False),
        (3, 5, 2, 0.0, True),  # decreases count the same as increases
        (60, 50, 2, 0.2, True),
        (59, 50, 2, 0.2, False),
        (1, 0, 2, 0.2, False),
        (2, 0, 2, 0.2, True),
    ],
)
def test_dead_band(new: int, old: int | None, band: int, ratio: float, expected: bool) -> None:
    assert beyond_dead_band(new, old, Rollout(dead_band=band, dead_band_ratio=ratio)) is expected


@given(
    st.dictionaries(st.sampled_from([IP, MIN]), st.integers(0, 200), min_size=1),
    st.dictionaries(st.sampled_from([IP, MIN]), st.integers(0, 200)),
    st.floats(0, 10 * 3600),
    st.one_of(st.none(), st.floats(0, 3600)),
    st.booleans(),
    st.booleans(),
    st.booleans(),
)
def test_apply_only_when_every_guard_passes(
    recommended: dict[Variable, int],
    current: dict[Variable, int],
    since_applied: float,
    quiet_for: float | None,
    dry_run: bool,
    paused: bool,
    in_progress: bool,
) -> None:
    d = decide(
        recommended,
        current,
        ROLLOUT,
        now=NOW,
        last_applied_time=NOW - since_applied,
        quiet_since=None if quiet_for is None else NOW - quiet_for,
        dry_run=dry_run,
        paused=paused,
        rollout_in_progress=in_progress,
    )
    # ipamd reads an unset WARM_IP_TARGET or MINIMUM_IP_TARGET as 0: writing 0 there changes nothing on a node.
    # Any other change is worth a rollout once it passes the dead band; a value not on the DaemonSet always is.
    worth = any(
        n != current.get(v, 0) and (v not in current or beyond_dead_band(n, current[v], ROLLOUT))
        for v, n in recommended.items()
    )
    expected = (
        worth
        and not (dry_run or paused or in_progress)
        and since_applied >= 6 * 3600
        and quiet_for is not None
        and quiet_for >= 600
    )
    assert d.apply is expected
    assert (d.reason is GuardReason.APPLY) is expected
    if d.apply:
        assert d.values == recommended


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("5", 5),
        ("+5", 5),  # Atoi takes a sign
        ("0", 0),
        (" 5", None),  # but no spaces: ipamd uses its default
        ("5 ", None),
        ("1_0", None),  # nor underscores, which Python's int() takes
        ("abc", None),
        ("", None),
        ("-1", None),  # negative: ipamd uses its default
        ("9223372036854775807", 2**63 - 1),
        ("9223372036854775808", None),  # beyond int64
    ],
)
def test_current_values_reads_values_as_ipamd_does(raw: str, expected: int | None) -> None:
    env = {"WARM_IP_TARGET": raw, "WARM_ENI_TARGET": "1"}
    assert current_values(env, [IP, MIN]) == ({} if expected is None else {IP: expected})


def test_an_entry_ipamd_ignores_is_rewritten_even_inside_the_dead_band() -> None:
    env = {"WARM_IP_TARGET": " 5", "MINIMUM_IP_TARGET": "20"}
    assert current_values(env, [IP, MIN]) == {MIN: 20}
    assert run({IP: 5, MIN: 20}, current_values(env, [IP, MIN])) == (True, GuardReason.APPLY)
    assert run({IP: 5, MIN: 20}, current_values({**env, "WARM_IP_TARGET": "5"}, [IP, MIN]))[1] is GuardReason.NO_CHANGE


def test_the_daily_limit_holds_the_whole_recommendation_but_writes_the_rescue() -> None:
    recommended, current = {IP: 1, MIN: 20}, {IP: 4, MIN: 8}
    d = decide(recommended, current, ROLLOUT, now=NOW, rescue={IP: 7, MIN: 8}, rollouts=DAY_OF_4, **CALM)
    assert d.apply
    assert d.values == {IP: 7, MIN: 8}
    held = decide(recommended, current, ROLLOUT, now=NOW, rollouts=DAY_OF_4, **CALM)
    assert (held.apply, held.reason) == (False, GuardReason.DAILY_LIMIT)
    assert "4 rollouts in the last 24h (rollout.maxPerDay 4)" in held.message
    assert "the next may come in 3600s" in held.message  # when the oldest of the four is a day old


@given(
    st.lists(st.floats(0, 48 * 3600), max_size=12),
    st.integers(1, 6),
    st.booleans(),
)
def test_at_most_max_per_day_rollouts_in_24h_unless_pods_starve(
    ages: list[float], max_per_day: int, starving: bool
) -> None:
    rollout = ROLLOUT.model_copy(update={"max_per_day": max_per_day})
    rollouts = [NOW - age for age in ages]
    rescue = {IP: 7} if starving else None
    d = decide({IP: 7}, {IP: 4}, rollout, now=NOW, rescue=rescue, rollouts=rollouts, **CALM)
    within_day = sum(1 for age in ages if age < 86400)
    assert d.apply is (within_day < max_per_day or starving)
    assert (d.reason is GuardReason.DAILY_LIMIT) is (within_day >= max_per_day and not starving)
