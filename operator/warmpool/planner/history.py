"""A decaying histogram of small non-negative counts, in the manner of the VPA recommender's.

Why integer buckets rather than the VPA's exponential ones: the VPA buckets CPU and memory, which span many
orders of magnitude. We bucket pod starts per node per window and pods per node, which are small integers
bounded by max pods (737 on the largest instance types). One bucket per integer is exact (a quantile is a
count of pods, with no bucketing error to round away), and stored sparsely it costs one entry per distinct
value seen.

Decay: a sample added at time t weighs `weight * 2 ** ((t - reference) / half_life)`, so newer samples weigh
more and older ones fade with the half-life, without touching stored weights on every add. Weights grow as
time moves away from the reference; when the exponent passes `MAX_DECAY_EXPONENT` the reference moves forward
and all weights are rescaled, which keeps floats far from overflow (the VPA does the same). Time is always an
argument, never read from a clock.
"""

from __future__ import annotations

import math
from typing import Any

CHECKPOINT_VERSION = 1
# 2**100 is far below float's range (~2**1023), and rescaling once every 100 half-lives is rare.
MAX_DECAY_EXPONENT = 100.0
# Buckets lighter than this (relative to a unit sample at the reference time) are dropped when the reference
# moves: a unit sample older than 30 half-lives no longer matters, and dropping it keeps checkpoints small.
PRUNE_WEIGHT = 2.0**-30
# Counts above this go into the top bucket; no node holds more pods than this.
MAX_VALUE = 1024


class DecayingHistogram:
    """Weighted counts per integer value, fading with a half-life. Mutable; compare with ==."""

    __slots__ = ("_buckets", "half_life", "reference")

    def __init__(self, half_life: float, reference: float = 0.0) -> None:
        if not half_life > 0:
            raise ValueError("half_life must be positive")
        self.half_life = float(half_life)
        self.reference = float(reference)
        self._buckets: dict[int, float] = {}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DecayingHistogram):
            return NotImplemented
        return (
            self.half_life == other.half_life and self.reference == other.reference and self._buckets == other._buckets
        )

    def __repr__(self) -> str:
        return f"DecayingHistogram({self.half_life}, {self.reference}, buckets={len(self._buckets)})"

    @property
    def empty(self) -> bool:
        return not self._buckets

    def add(self, value: int, weight: float, time: float) -> None:
        """Add `weight` at `value`, as observed at `time`. Values are clamped into [0, MAX_VALUE]."""
        if weight <= 0:
            return
        exponent = (time - self.reference) / self.half_life
        if exponent > MAX_DECAY_EXPONENT:
            self._move_reference(time)
            exponent = (time - self.reference) / self.half_life
        bucket = min(max(int(value), 0), MAX_VALUE)
        self._buckets[bucket] = self._buckets.get(bucket, 0.0) + weight * 2.0**exponent

    def _move_reference(self, time: float) -> None:
        # Round the new reference down to a whole number of half-lives from the old one, so the rescale factor
        # is an exact power of two and rescaling loses no precision.
        steps = math.floor((time - self.reference) / self.half_life)
        factor = 2.0**-steps
        self.reference += steps * self.half_life
        self._buckets = {v: w * factor for v, w in self._buckets.items() if w * factor >= PRUNE_WEIGHT}

    def total_weight(self, at: float) -> float:
        """The summed weight of all samples as seen at time `at` (a unit sample added at `at` weighs 1)."""
        decay: float = 2.0 ** ((self.reference - at) / self.half_life)
        return math.fsum(self._buckets.values()) * decay

    def weights(self, at: float) -> list[tuple[int, float]]:
        """(value, weight as seen at time `at`) for every value held, in increasing value."""
        decay: float = 2.0 ** ((self.reference - at) / self.half_life)
        return [(v, self._buckets[v] * decay) for v in sorted(self._buckets)]

    @property
    def max(self) -> int:
        """The largest value still held (0 when empty)."""
        return max(self._buckets, default=0)

    def quantile(self, q: float) -> int:
        """The smallest value v such that samples <= v hold a share q of the weight (0 when empty)."""
        if not 0.0 <= q <= 1.0:
            raise ValueError("q must be in [0, 1]")
        if not self._buckets:
            return 0
        values = sorted(self._buckets)
        total = math.fsum(self._buckets.values())
        threshold = q * total
        running = 0.0
        for v in values:
            running += self._buckets[v]
            # A relative tolerance so that q=1 lands on the max despite rounding in the running sum.
            if running >= threshold * (1.0 - 1e-12):
                return v
        return values[-1]

    def to_checkpoint(self) -> dict[str, Any]:
        """A compact, JSON-able, versioned form. Python's float repr is exact, so JSON round-trips exactly."""
        return {
            "version": CHECKPOINT_VERSION,
            "halfLife": self.half_life,
            "reference": self.reference,
            # Sorted [value, weight] pairs: deterministic output, and shorter than an object with string keys.
            "buckets": [[v, self._buckets[v]] for v in sorted(self._buckets)],
        }

    @classmethod
    def from_checkpoint(cls, data: dict[str, Any]) -> DecayingHistogram:
        version = data.get("version")
        if version != CHECKPOINT_VERSION:
            raise ValueError(f"unsupported histogram checkpoint version {version!r}")
        hist = cls(float(data["halfLife"]), float(data["reference"]))
        for value, weight in data["buckets"]:
            v, w = int(value), float(weight)
            if not 0 <= v <= MAX_VALUE or not (w > 0 and math.isfinite(w)):
                raise ValueError(f"bad histogram bucket {value!r}: {weight!r}")
            hist._buckets[v] = w
        return hist
