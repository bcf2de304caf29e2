"""The demand profile: what nodes of each instance type needed at each hour of the day and of the week, kept in
the status checkpoint so that planning for the coming hours survives an operator restart.

Why: every change rolls aws-node, so a value must hold until the next change may happen (`rollout.cooldown`).
The histograms (`churn.py`) say what the last day looked like as a whole; the profile says what the coming
hours looked like yesterday (or a week ago), so a value chosen at night covers the morning ramp and raised
targets come down once the hours ahead are quiet. `expected(type, start, end)` is the read-only answer.

What one bucket holds (one per instance type and hour, UTC; 24 of them for the day, 168 for the week):
- `demand`: usable IPs a node needed at a pod start (the starts on it within one burst window plus the IPs
  still cooling then; see `churn.start_demands`), at the policy's quantile of that hour's pod starts;
- `held`: the most IPs a node needed at a pod start in that hour (its pods plus cooling IPs);
- `pods`: pods holding a VPC IP on a typical node (the median over the type's ready nodes at the planner's
  ticks), at the hour's busiest tick;
- `starts`: pod starts per node in that hour.
Each time an hour comes round again the bucket keeps the larger of what it sees now and what it held, faded
with the policy's half-life since (a decaying maximum): a recurring peak is covered the next day, a one-off
fades within days. The week's buckets are read once the profile spans a week, the day's before.

Bounded: at most `MAX_TYPES` instance types (the least recently seen goes first) x (24 + 168) buckets of five
numbers. Versioned (`PROFILE_VERSION`); `from_checkpoint` raises ValueError on anything it cannot trust.
Pure: time is an argument, no I/O.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from warmpool.planner.churn import ChurnStats
from warmpool.snapshot import ClusterSnapshot

PROFILE_VERSION = 1
HOUR = 3600.0
DAY_HOURS = 24
WEEK_HOURS = 7 * DAY_HOURS
MAX_TYPES = 16
MAX_ROUNDS = 100_000
MAX_FIGURE = 100_000.0  # far above any node's pods or starts in an hour: anything beyond is not ours


@dataclass(slots=True)
class Bucket:
    """One hour of one instance type; `hour` is the absolute hour (t // 3600) it was last fed."""

    hour: int
    demand: float = 0.0
    held: float = 0.0
    pods: float = 0.0
    starts: float = 0.0
    rounds: int = 0  # earlier occurrences of this hour folded in (each over once the next one began)

    FIGURES = ("demand", "held", "pods", "starts")

    def fold(self, hour: int, figures: Mapping[str, float], half_life: float) -> None:
        """Take in this hour's figures so far; a new occurrence of the hour fades what the bucket held."""
        fade = 1.0
        if hour > self.hour:
            fade = 2.0 ** (-(hour - self.hour) * HOUR / half_life)
            self.hour = hour
            self.rounds = min(self.rounds + 1, MAX_ROUNDS)
        for name in self.FIGURES:
            setattr(self, name, round(max(getattr(self, name) * fade, figures.get(name, 0.0)), 3))

    def complete_before(self, hour: int) -> bool:
        """Whether the bucket holds an occurrence that was over before `hour` began (not only the one under way:
        a first half hour would say little about the whole hour)."""
        return self.hour < hour or self.rounds > 0

    def to_row(self, slot: int) -> list[float]:
        return [slot, self.hour, self.rounds, self.demand, self.held, self.pods, self.starts]


@dataclass(frozen=True, slots=True)
class Expected:
    """What nodes of a type needed at the busiest of the hours asked about (each figure its own maximum)."""

    demand: int  # usable IPs a node needs at once: starts in a burst window plus cooling IPs, at the quantile
    held: int  # the most IPs a node needed at a pod start (pods plus cooling IPs)
    pods: int  # pods on a typical node
    starts: float  # pod starts per node in an hour
    weekly: bool  # read from the week's buckets (else the day's)

    def merge(self, other: Expected) -> Expected:
        return Expected(
            max(self.demand, other.demand),
            max(self.held, other.held),
            max(self.pods, other.pods),
            max(self.starts, other.starts),
            self.weekly and other.weekly,
        )


@dataclass(slots=True)
class _Hour:
    """This hour's samples of one type, in memory only (a restart mid-hour keeps what was folded already)."""

    demands: list[int] = field(default_factory=list)
    held: int = 0
    pods: int = 0
    starts: int = 0
    nodes: set[str] = field(default_factory=set)


class DemandProfile:
    """Per instance type, per hour of the day and of the week. Feed it with `observe` every tick; read it with
    `expected`. For tune-choose's replay chooser: `expected(type, now, now + cooldown)` is the demand the
    coming cooldown held the last time round, None while some hour of it has not been seen."""

    def __init__(self, half_life: float) -> None:
        if not half_life > 0:
            raise ValueError("half_life must be positive")
        self.half_life = float(half_life)
        self.since: float | None = None  # first observation
        self.day: dict[str, dict[int, Bucket]] = {}
        self.week: dict[str, dict[int, Bucket]] = {}
        self.last_seen: dict[str, float] = {}
        self._hours: dict[tuple[str, int], _Hour] = {}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DemandProfile):
            return NotImplemented
        return self.to_checkpoint() == other.to_checkpoint()

    # ----- feeding -----

    def observe(
        self,
        snapshot: ClusterSnapshot,
        samples: Iterable[tuple[float, str, str, int, int]],
        quantile: float,
    ) -> None:
        """`samples`: (time, instance type, node, demand, held) of each pod start the churn tracker has just
        made final (`ChurnTracker.fresh`); `snapshot` gives the pods per node now."""
        now = snapshot.now
        if self.since is None:
            self.since = now
        touched: set[tuple[str, int]] = set()
        for t, itype, node, demand, held in samples:
            key = (itype, math.floor(t / HOUR))
            acc = self._hours.setdefault(key, _Hour())
            acc.demands.append(demand)
            acc.held = max(acc.held, held)
            acc.starts += 1
            acc.nodes.add(node)
            touched.add(key)
        by_type: dict[str, list[int]] = {}
        for n in snapshot.nodes:
            if n.ready and n.schedulable:
                by_type.setdefault(n.instance_type, []).append(n.ip_pods)
        hour_now = math.floor(now / HOUR)
        for itype, pods in by_type.items():
            key = (itype, hour_now)
            acc = self._hours.setdefault(key, _Hour())
            acc.pods = max(acc.pods, _median(pods))
            acc.nodes.update(n.name for n in snapshot.nodes if n.instance_type == itype)
            self.last_seen[itype] = now
            touched.add(key)
        for itype, hour in sorted(touched):
            acc = self._hours[(itype, hour)]
            figures = {
                "demand": float(_quantile(acc.demands, quantile)),
                "held": float(acc.held),
                "pods": float(acc.pods),
                "starts": acc.starts / max(len(acc.nodes), 1),
            }
            for buckets, slot in ((self.day, hour % DAY_HOURS), (self.week, _week_slot(hour))):
                per_type = buckets.setdefault(itype, {})
                bucket = per_type.get(slot)
                if bucket is None:
                    bucket = per_type[slot] = Bucket(hour)
                bucket.fold(hour, figures, self.half_life)
        # Samples settle a few burst windows late: keep this hour and the last two, drop the rest.
        self._hours = {k: v for k, v in self._hours.items() if k[1] >= hour_now - 2}
        self._forget_types()

    def _forget_types(self) -> None:
        if len(self.last_seen) <= MAX_TYPES:
            return
        keep = sorted(self.last_seen, key=lambda t: (-self.last_seen[t], t))[:MAX_TYPES]
        for itype in set(self.last_seen) - set(keep):
            self.last_seen.pop(itype)
            self.day.pop(itype, None)
            self.week.pop(itype, None)

    # ----- reading -----

    @property
    def types(self) -> list[str]:
        return sorted(self.day)

    def weekly(self, now: float) -> bool:
        """The week's buckets are read once the profile spans a week."""
        return self.since is not None and now - self.since >= WEEK_HOURS * HOUR

    def expected(self, instance_type: str, start: float, end: float) -> Expected | None:
        """The busiest figures of the hours [start, end) for nodes of `instance_type`, as those hours of the
        day (of the week, once it spans one) were last seen; None when one of those hours has not been seen,
        or the span is empty. Read-only."""
        if end <= start:
            return None
        first, last = math.floor(start / HOUR), math.ceil(end / HOUR) - 1
        weekly = self.weekly(end)
        buckets = (self.week if weekly else self.day).get(instance_type, {})
        width = WEEK_HOURS if weekly else DAY_HOURS
        hours = range(first, min(last, first + width - 1) + 1)
        found = [buckets.get(_week_slot(h) if weekly else h % DAY_HOURS) for h in hours]
        if not found or any(b is None or not b.complete_before(first) for b in found):
            return None
        return Expected(
            demand=math.ceil(max(b.demand for b in found if b)),
            held=math.ceil(max(b.held for b in found if b)),
            pods=math.ceil(max(b.pods for b in found if b)),
            starts=max(b.starts for b in found if b),
            weekly=weekly,
        )

    def expected_for(self, instance_types: Iterable[str], start: float, end: float) -> Expected | None:
        """The busiest of `expected` over several instance types (one DaemonSet serves them all); None unless
        every type has been seen at every hour of the span."""
        out: Expected | None = None
        for itype in sorted(set(instance_types)):
            e = self.expected(itype, start, end)
            if e is None:
                return None
            out = e if out is None else out.merge(e)
        return out

    # ----- checkpoint -----

    def to_checkpoint(self) -> dict[str, Any]:
        """JSON-safe and compact: per type, [slot, hour, rounds, demand, held, pods, starts] rows."""
        types = {
            itype: {
                "lastSeen": self.last_seen.get(itype, 0.0),
                "day": [b.to_row(s) for s, b in sorted(self.day.get(itype, {}).items())],
                "week": [b.to_row(s) for s, b in sorted(self.week.get(itype, {}).items())],
            }
            for itype in sorted(self.day)
        }
        data: dict[str, Any] = {"version": PROFILE_VERSION, "types": types}
        if self.since is not None:
            data["since"] = self.since
        return data

    @classmethod
    def from_checkpoint(cls, data: Any, half_life: float) -> DemandProfile:
        """The profile a checkpoint holds; ValueError when it is not one this version can trust."""
        if not isinstance(data, Mapping) or data.get("version") != PROFILE_VERSION:
            raise ValueError(f"not a version {PROFILE_VERSION} profile")
        profile = cls(half_life)
        since = data.get("since")
        if since is not None and not _finite(since):
            raise ValueError(f"bad since {since!r}")
        profile.since = since
        types = data.get("types")
        if not isinstance(types, Mapping) or len(types) > MAX_TYPES:
            raise ValueError(f"types must be an object of at most {MAX_TYPES} instance types")
        for itype, entry in types.items():
            if not isinstance(itype, str) or not isinstance(entry, Mapping) or not _finite(entry.get("lastSeen")):
                raise ValueError(f"bad entry for instance type {itype!r}")
            profile.last_seen[itype] = float(entry["lastSeen"])
            profile.day[itype] = _rows(entry.get("day"), DAY_HOURS)
            profile.week[itype] = _rows(entry.get("week"), WEEK_HOURS)
        return profile


def _rows(rows: Any, width: int) -> dict[int, Bucket]:
    if not isinstance(rows, list) or len(rows) > width:
        raise ValueError(f"expected at most {width} bucket rows")
    out: dict[int, Bucket] = {}
    for row in rows:
        if not isinstance(row, list) or len(row) != 7 or not all(_finite(x) for x in row):
            raise ValueError(f"bad bucket row {row!r}")
        slot, hour, rounds = row[0], row[1], row[2]
        if slot != int(slot) or not 0 <= slot < width or hour != int(hour) or slot in out:
            raise ValueError(f"bad bucket slot {slot!r} or hour {hour!r}")
        if rounds != int(rounds) or not 0 <= rounds <= MAX_ROUNDS:
            raise ValueError(f"bad bucket rounds {rounds!r}")
        if not all(0 <= x <= MAX_FIGURE for x in row[3:]):
            raise ValueError(f"bucket figures out of range: {row!r}")
        demand, held, pods, starts = (float(x) for x in row[3:])
        out[int(slot)] = Bucket(int(hour), demand, held, pods, starts, int(rounds))
    return out


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _week_slot(hour: int) -> int:
    return hour % WEEK_HOURS


def _median(values: Sequence[int]) -> int:
    ordered = sorted(values)
    return ordered[(len(ordered) - 1) // 2] if ordered else 0


def _quantile(values: Sequence[int], q: float) -> int:
    """The smallest value v with at least a share q of the values <= v (0 when empty)."""
    if not values:
        return 0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(math.ceil(q * len(ordered)) - 1, 0))]


def ahead_stats(stats: ChurnStats, expected: Expected) -> ChurnStats:
    """`stats` as the demand stage should see the coming cooldown: its covered demand is the profile's, a
    MINIMUM_IP_TARGET of the most IPs a node needed then serves every start (nothing is left for the warm
    target), lower minimums leave at most the profile's demand, and the typical node runs the profile's pods.
    The measured history still says how demand falls as the minimum rises (`demand_by_minimum`)."""
    by_minimum: list[tuple[int, int]] = []
    if stats.demand_by_minimum:  # pod stops were seen: the IPs nodes needed at their starts are known
        last = expected.demand
        for m, d in stats.demand_by_minimum:
            if m >= expected.held:
                break
            if min(d, expected.demand) < last:
                last = min(d, expected.demand)
                by_minimum.append((m, last))
        if last > 0:
            by_minimum.append((expected.held, 0))
    return dataclasses.replace(
        stats,
        covered_demand=expected.demand,
        max_demand=max(stats.max_demand, expected.demand),
        demand_by_minimum=tuple(by_minimum),
        pods_per_node=expected.pods,
    )
