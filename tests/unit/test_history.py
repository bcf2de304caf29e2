"""The decaying histogram: quantiles, decay, reference rescaling and exact checkpoint round-trips."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from warmpool.planner.history import MAX_DECAY_EXPONENT, MAX_VALUE, DecayingHistogram

HL = 3600.0


def filled(*samples: tuple[int, float, float]) -> DecayingHistogram:
    h = DecayingHistogram(HL)
    for value, weight, time in samples:
        h.add(value, weight, time)
    return h


@pytest.mark.parametrize(
    ("samples", "q", "expected"),
    [
        ([], 0.95, 0),
        ([(5, 1.0, 0.0)], 0.5, 5),
        ([(1, 1.0, 0.0), (2, 1.0, 0.0), (3, 1.0, 0.0), (4, 1.0, 0.0)], 0.5, 2),
        ([(1, 1.0, 0.0), (2, 1.0, 0.0), (3, 1.0, 0.0), (4, 1.0, 0.0)], 0.51, 3),
        ([(1, 1.0, 0.0), (2, 1.0, 0.0), (3, 1.0, 0.0), (4, 1.0, 0.0)], 1.0, 4),
        ([(1, 1.0, 0.0), (2, 1.0, 0.0), (3, 1.0, 0.0), (4, 1.0, 0.0)], 0.0, 1),
        ([(1, 9.0, 0.0), (50, 1.0, 0.0)], 0.9, 1),
        ([(1, 9.0, 0.0), (50, 1.0, 0.0)], 0.91, 50),
        # One half-life later a sample weighs twice as much: 1 at value 1 vs 2 at value 10.
        ([(1, 1.0, 0.0), (10, 1.0, HL)], 0.33, 1),
        ([(1, 1.0, 0.0), (10, 1.0, HL)], 0.34, 10),
    ],
)
def test_quantile(samples: list[tuple[int, float, float]], q: float, expected: int) -> None:
    assert filled(*samples).quantile(q) == expected


def test_quantile_rejects_out_of_range() -> None:
    with pytest.raises(ValueError, match="q must be"):
        filled((1, 1.0, 0.0)).quantile(1.5)


def test_total_weight_decays_with_half_life() -> None:
    h = filled((3, 1.0, 0.0), (4, 2.0, 0.0))
    assert h.total_weight(0.0) == pytest.approx(3.0)
    assert h.total_weight(HL) == pytest.approx(1.5)
    assert h.total_weight(2 * HL) == pytest.approx(0.75)


def test_max_and_clamping() -> None:
    h = filled((3, 1.0, 0.0), (-4, 1.0, 0.0), (MAX_VALUE + 50, 1.0, 0.0))
    assert h.max == MAX_VALUE
    assert h.quantile(0.0) == 0
    assert DecayingHistogram(HL).max == 0


def test_zero_weight_is_ignored() -> None:
    h = filled((3, 0.0, 0.0))
    assert h.empty


def test_reference_moves_instead_of_overflowing() -> None:
    h = DecayingHistogram(HL)
    h.add(2, 1.0, 0.0)
    h.add(7, 1.0, 0.0)
    # Far beyond MAX_DECAY_EXPONENT half-lives: 2**150 weights would be absurd but finite; 2**2000 would
    # overflow. The reference moves, old samples are dropped, and the new one counts.
    late = 2000 * HL
    h.add(9, 1.0, late)
    assert h.reference > 0
    assert (late - h.reference) / HL <= MAX_DECAY_EXPONENT
    assert h.quantile(0.0) == 9
    assert h.total_weight(late) == pytest.approx(1.0)
    assert all(math.isfinite(w) for _, w in h.to_checkpoint()["buckets"])


def test_rescaling_keeps_recent_relative_weights() -> None:
    h = DecayingHistogram(HL)
    base = 99 * HL
    h.add(1, 1.0, base)
    h.add(5, 3.0, base)
    before = (h.quantile(0.2), h.quantile(0.3), h.total_weight(base + 2 * HL))
    h.add(5, 0.0, base)  # no-op
    h.add(20, 1e-9, base + 2 * HL)  # passes the exponent limit: reference moves
    assert h.reference > 0
    assert (h.quantile(0.2), h.quantile(0.3)) == before[:2]
    assert h.total_weight(base + 2 * HL) == pytest.approx(before[2], rel=1e-6)


samples_strategy = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=800),
        st.floats(min_value=0.01, max_value=100.0),
        st.floats(min_value=0.0, max_value=400 * HL),
    ),
    max_size=60,
)


@given(samples_strategy)
def test_checkpoint_round_trips_exactly(samples: list[tuple[int, float, float]]) -> None:
    h = DecayingHistogram(HL)
    for value, weight, time in sorted(samples, key=lambda s: s[2]):
        h.add(value, weight, time)
    data = h.to_checkpoint()
    assert DecayingHistogram.from_checkpoint(data) == h
    through_json = json.loads(json.dumps(data))
    restored = DecayingHistogram.from_checkpoint(through_json)
    assert restored == h
    assert restored.to_checkpoint() == data


def test_checkpoint_is_compact_and_versioned() -> None:
    h = filled((3, 1.0, 0.0), (3, 1.0, 10.0), (8, 1.0, 0.0))
    data = h.to_checkpoint()
    assert data["version"] == 1
    assert [v for v, _ in data["buckets"]] == [3, 8]


@pytest.mark.parametrize(
    "data",
    [
        {"version": 2, "halfLife": HL, "reference": 0.0, "buckets": []},
        {"version": 1, "halfLife": HL, "reference": 0.0, "buckets": [[3, -1.0]]},
        {"version": 1, "halfLife": HL, "reference": 0.0, "buckets": [[MAX_VALUE + 1, 1.0]]},
        {"version": 1, "halfLife": 0.0, "reference": 0.0, "buckets": []},
    ],
)
def test_bad_checkpoints_are_rejected(data: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"version|bucket|half_life"):
        DecayingHistogram.from_checkpoint(data)
