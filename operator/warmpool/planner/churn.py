"""Turn the pod start times seen in successive snapshots into burst and pod-density history.

Counting rule (what "once per window" means here). Time is cut into epochs of one burst window each, aligned
to multiples of the window length: epoch k is [k*W, (k+1)*W). Every sliding window [s, s+W) is attributed to
the epoch its start s falls in, and since the busiest window can always be taken to start at a pod start, a
node's sample for epoch k is the largest number of starts in [s, s+W) over its starts s inside epoch k. Epoch
k is read once, when its last window has closed and late observations had time to arrive (now >= (k+2)*W +
settle), then a cursor moves past it. So a start time seen again in the next snapshot can never be counted for
the same epoch twice, and a restart from a checkpoint resumes at the cursor. Epochs with no start on a node
give no sample: quiet windows need no warm pool, and counting them would let idle nights dilute the quantile
to zero.

Demand (what WARM_IP_TARGET must hold) is sampled once per pod start, in the same epochs and read at the same
time: the starts in the window before it plus the IPs released within the cooldown before it, raised to the
largest such figure of the later starts in its epoch (so a covered start means its whole burst is absorbed),
and filed by the IPs its node needed then, so the starts a MINIMUM_IP_TARGET serves can be left out.

Pod density (pods holding a VPC IP per node) is a state, not an event: each ready node gives one sample per
epoch in which the tracker is called.

Samples are added in a fixed order (epoch, then node name), so the histograms do not depend on the order of
nodes or of start times in the snapshot, down to the last bit of the float weights.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from warmpool.api.v1alpha1 import Churn, parse_duration
from warmpool.ipamd.pool import IP_COOLDOWN
from warmpool.planner.history import MAX_VALUE, DecayingHistogram
from warmpool.snapshot import ClusterSnapshot, NodeInfo

CHECKPOINT_VERSION = 1


def max_starts_in_window(times: Sequence[float], window: float) -> int:
    """The largest number of starts inside any half-open window [s, s + window)."""
    ordered = sorted(times)
    best = 0
    lo = 0
    for hi, t in enumerate(ordered):
        while ordered[lo] <= t - window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def epoch_bursts(times: Sequence[float], window: float, first_epoch: int, last_epoch: int) -> dict[int, int]:
    """Per epoch k in [first_epoch, last_epoch]: the largest count of starts in [s, s + window) for s a start
    inside epoch k. Epochs without a start are absent."""
    ordered = sorted(times)
    out: dict[int, int] = {}
    lo_time = first_epoch * window
    hi_time = (last_epoch + 1) * window
    start = bisect.bisect_left(ordered, lo_time)
    for i in range(start, len(ordered)):
        s = ordered[i]
        if s >= hi_time:
            break
        k = _epoch_of(s, window)
        if not first_epoch <= k <= last_epoch:
            continue
        # t is in the window from s when t - window < s: the very comparison `max_starts_in_window` makes.
        # Writing it as t < s + window instead would round differently at the boundary (s + window can round
        # down onto t) and the two counts would disagree. t - window is monotone in t, so bisect applies.
        count = bisect.bisect_left(ordered, s, lo=i, key=lambda t: t - window) - i
        if count > out.get(k, 0):
            out[k] = count
    return out


def _epoch_of(t: float, window: float) -> int:
    # floor(t / window) can land one off at a boundary through rounding; settle it with the same comparisons
    # the epoch bounds use, so every start belongs to exactly one epoch.
    k = math.floor(t / window)
    if t < k * window:
        k -= 1
    elif t >= (k + 1) * window:
        k += 1
    return k


def start_demands(
    starts: Sequence[float],
    stops: Sequence[float],
    window: float,
    cooldown: float,
    first_epoch: int,
    last_epoch: int,
    pods_now: int,
) -> dict[int, list[tuple[int, int]]]:
    """Per epoch k in [first_epoch, last_epoch]: one (demand, held) pair per pod start t inside it, in time
    order. Epochs without a start are absent.

    demand: the pod starting at t needs a usable IP. When ipamd last refilled the pool (at most one window
    before) it held WARM_IP_TARGET available IPs, and available IPs include released ones still cooling down.
    So the pod finds one if WARM_IP_TARGET >= the starts in (t - window, t] (itself included) plus the IPs
    released in (t - cooldown, t]. The later starts of its burst need theirs too, so each start's demand is
    raised to the largest demand of the starts after it in the same epoch: covering it absorbs the burst.

    held: the IPs the node must hold at t: pods on it just after the start plus the cooling IPs. When
    MINIMUM_IP_TARGET is at least that, the minimum alone serves the start (a node filling up after boot).
    Pods at t are reconstructed backwards from `pods_now` (the snapshot's time): minus the starts after t, plus
    the stops after t. Comparisons are written as `t - x < y`, like `max_starts_in_window`."""
    ordered = sorted(starts)
    released = sorted(stops)
    out: dict[int, list[tuple[int, int]]] = {}
    lo_time = first_epoch * window
    hi_time = (last_epoch + 1) * window
    for i in range(bisect.bisect_left(ordered, lo_time), len(ordered)):
        t = ordered[i]
        if t >= hi_time:
            break
        k = _epoch_of(t, window)
        if not first_epoch <= k <= last_epoch:
            continue
        # Equal start times are served one after another: the i-th of them sees the earlier ones only.
        first = bisect.bisect_right(ordered, t - window, hi=i)
        stopped = bisect.bisect_right(released, t)
        cooling = stopped - bisect.bisect_right(released, t - cooldown)
        pods = pods_now - (len(ordered) - i - 1) + (len(released) - stopped)
        out.setdefault(k, []).append((i - first + 1 + cooling, max(pods, 0) + cooling))
    # A burst is absorbed only if its last pods find IPs too: each start carries the largest demand of the
    # starts from it to the end of its epoch, so covering a share of pod starts covers whole bursts.
    for samples in out.values():
        top = 0
        for j in range(len(samples) - 1, -1, -1):
            top = max(top, samples[j][0])
            samples[j] = (top, samples[j][1])
    return out


@dataclass(frozen=True, slots=True)
class QuietConfig:
    """When the cluster is "not quiet": a scaling event or a churn spike. Defaults are conservative."""

    node_rise_lookback: float = 300.0  # seconds of node-count history to look at
    node_rise_abs: int = 3  # the node count rose by at least this many ...
    node_rise_ratio: float = 0.1  # ... and by at least this share of the earlier count
    pending_pods: int = 10  # at least this many unbound pods is a scale-out in progress
    spike_factor: float = 2.0  # current burst above this multiple of the learned quantile ...
    spike_min_burst: int = 4  # ... and at least this many starts in one window


@dataclass(frozen=True, slots=True)
class ChurnStats:
    """What the planner needs from history, plus what the status reports."""

    window: float
    quantile: float
    covered_burst: int  # per-node pod starts in one window at the quantile
    max_burst: int
    burst_samples: float  # decayed weight behind the burst figures
    pods_per_node: int  # typical (median) IP-consuming pods per node
    density_samples: float
    current_burst: int  # busiest node in the latest window
    quiet: bool
    quiet_since: float | None  # churn has been low since then; None while it is high
    busy_reasons: tuple[str, ...] = ()
    # Starts in one window plus IPs still cooling down, at the quantile of pod starts (see `start_demands`).
    covered_demand: int = 0
    max_demand: int = 0
    demand_samples: float = 0.0  # decayed pod starts behind the demand figures
    cooldown: float = IP_COOLDOWN
    # (m, covered demand when MINIMUM_IP_TARGET = m serves every start whose node needed at most m IPs), for
    # the m where the figure changes, increasing m, decreasing demand; empty when no pod stop was observed
    # (then the pods at past starts cannot be reconstructed and no start is taken as served by the minimum).
    demand_by_minimum: tuple[tuple[int, int], ...] = ()
    # (pods on a node, decayed weight) over node-epochs: how many IPs a MINIMUM_IP_TARGET would leave idle.
    density: tuple[tuple[int, float], ...] = ()
    # (IPs the node needed, demand, decayed weight) per kind of pod start: what share given targets leave
    # without a usable IP. Empty when no pod stop was observed, like `demand_by_minimum`.
    demand_table: tuple[tuple[int, int, float], ...] = ()

    def uncovered_share(self, minimum: int, warm: int) -> float:
        """The share of observed pod starts that neither MINIMUM_IP_TARGET `minimum` nor WARM_IP_TARGET `warm`
        covers (0 when unknown)."""
        total = math.fsum(w for _, _, w in self.demand_table)
        if total <= 0:
            return 0.0
        return math.fsum(w for held, d, w in self.demand_table if held > minimum and d > warm) / total

    def demand_with_minimum(self, minimum: int) -> int:
        """The covered demand WARM_IP_TARGET must meet when MINIMUM_IP_TARGET is `minimum`."""
        covered = self.covered_demand
        for m, demand in self.demand_by_minimum:
            if m > minimum:
                break
            covered = demand
        return covered


class ChurnTracker:
    """Feeds snapshots into the two histograms and watches for scaling events; time is the snapshot's."""

    def __init__(
        self, churn: Churn, quiet: QuietConfig | None = None, settle: float = 10.0, cooldown: float = IP_COOLDOWN
    ) -> None:
        self.window = parse_duration(churn.burst_window)
        half_life = parse_duration(churn.half_life)
        self.quiet_config = quiet or QuietConfig()
        self.settle = settle
        self.cooldown = cooldown  # ipamd's IP_COOLDOWN_PERIOD
        self.bursts = DecayingHistogram(half_life)
        # One sample per pod start: its demand (starts in a window plus cooling IPs), filed by the IPs its node
        # had to hold then, so quantiles are over pod starts ("q of pods found at most this demand") and the
        # starts a MINIMUM_IP_TARGET would serve can be left out.
        self.half_life = half_life
        self.demand: dict[int, DecayingHistogram] = {}
        self.stops_seen = False
        self.density = DecayingHistogram(half_life)
        self.next_epoch: int | None = None  # first epoch whose bursts are not yet in the histogram
        self.last_density_epoch: int | None = None
        self.started_at: float | None = None
        self.last_busy: float | None = None
        self.busy_reasons: tuple[str, ...] = ()
        self.current_burst = 0
        # (epoch start, instance type, node, demand, held) of each pod start made final by the last `observe`:
        # what the demand profile (`profile.py`) learns the hours of the day from. Not checkpointed.
        self.fresh: list[tuple[float, str, str, int, int]] = []

    # ----- feeding -----

    def observe(self, snapshot: ClusterSnapshot, complete_since: float | None = None) -> None:
        """Take in one snapshot. `complete_since`, when given, is the oldest time from which the snapshot's
        start times are complete (the observe layer's look-back); epochs before it are skipped rather than
        undercounted."""
        now = snapshot.now
        w = self.window
        self.fresh = []
        if self.started_at is None:
            self.started_at = now
        # Epoch k is final once its last window [s, s+W) with s < (k+1)W has closed, plus the settle time.
        last_final = math.floor((now - self.settle) / w) - 2
        if self.next_epoch is None:
            # Start at the earliest epoch we can see in full; never reach back before data we were given.
            self.next_epoch = math.floor(now / w) - 2
            earliest = min((t for n in snapshot.nodes for t in n.pod_start_times), default=None)
            if earliest is not None:
                self.next_epoch = min(self.next_epoch, math.floor(earliest / w))
        if complete_since is not None:
            self.next_epoch = max(self.next_epoch, math.ceil(complete_since / w))
        if last_final >= self.next_epoch:
            self._add_bursts(sorted(snapshot.nodes, key=lambda n: n.name), self.next_epoch, last_final)
            self.next_epoch = last_final + 1

        epoch_now = math.floor(now / w)
        if self.last_density_epoch is None or epoch_now > self.last_density_epoch:
            for node in sorted(snapshot.nodes, key=lambda n: n.name):
                if node.ready and node.schedulable:
                    self.density.add(node.ip_pods, 1.0, now)
            self.last_density_epoch = epoch_now

        self._watch(snapshot)

    def _add_bursts(self, nodes: Sequence[NodeInfo], first: int, last: int) -> None:
        per_node = [epoch_bursts(n.pod_start_times, self.window, first, last) for n in nodes]
        epochs = sorted({k for bursts in per_node for k in bursts})
        for k in epochs:
            for bursts in per_node:
                count = bursts.get(k)
                if count:
                    self.bursts.add(count, 1.0, k * self.window)
        self.stops_seen = self.stops_seen or any(n.pod_stop_times for n in nodes)
        demands = [
            start_demands(n.pod_start_times, n.pod_stop_times, self.window, self.cooldown, first, last, n.ip_pods)
            for n in nodes
        ]
        for k in sorted({k for d in demands for k in d}):
            for node, d in zip(nodes, demands, strict=True):
                for demand, held in d.get(k, ()):
                    self.fresh.append((k * self.window, node.instance_type, node.name, demand, held))
                    key = min(held, MAX_VALUE)
                    hist = self.demand.get(key)
                    if hist is None:
                        hist = self.demand[key] = DecayingHistogram(self.half_life)
                    hist.add(demand, 1.0, k * self.window)

    # ----- scaling-event detector -----

    def _watch(self, snapshot: ClusterSnapshot) -> None:
        cfg = self.quiet_config
        now = snapshot.now
        reasons: list[str] = []
        recent = [(t, c) for t, c in snapshot.node_count_history if now - cfg.node_rise_lookback <= t <= now]
        if recent:
            lowest = min(c for _, c in recent)
            latest = max(recent)[1]
            rise = latest - lowest
            if rise >= cfg.node_rise_abs and rise >= cfg.node_rise_ratio * lowest:
                reasons.append(f"node count rose by {rise} within {cfg.node_rise_lookback:g}s")
        if snapshot.pending_pods >= cfg.pending_pods:
            reasons.append(f"{snapshot.pending_pods} pods pending")
        self.current_burst = max(
            (
                max_starts_in_window([t for t in n.pod_start_times if now - self.window < t <= now], self.window)
                for n in snapshot.nodes
            ),
            default=0,
        )
        # Compared with the learned quantile at 0.95 rather than the policy's, so "well above" means the same
        # whatever share of bursts the policy chooses to cover.
        learned = self.bursts.quantile(0.95)
        if self.current_burst >= cfg.spike_min_burst and self.current_burst > cfg.spike_factor * learned:
            reasons.append(
                f"a node saw {self.current_burst} pod starts in {self.window:g}s, "
                f"above {cfg.spike_factor:g}x the usual {learned}"
            )
        self.busy_reasons = tuple(reasons)
        if reasons:
            self.last_busy = now

    # ----- reading -----

    def quiet_since(self) -> float | None:
        if self.busy_reasons:
            return None
        return self.last_busy if self.last_busy is not None else self.started_at

    def stats(self, quantile: float, now: float) -> ChurnStats:
        quiet_since = self.quiet_since()
        covered = self._demand_quantiles(quantile, now)
        return ChurnStats(
            window=self.window,
            quantile=quantile,
            covered_burst=self.bursts.quantile(quantile),
            max_burst=self.bursts.max,
            burst_samples=self.bursts.total_weight(now),
            pods_per_node=self.density.quantile(0.5),
            density_samples=self.density.total_weight(now),
            current_burst=self.current_burst,
            quiet=quiet_since is not None,
            quiet_since=quiet_since,
            busy_reasons=self.busy_reasons,
            covered_demand=covered[0][1] if covered else 0,
            max_demand=max((h.max for h in self.demand.values()), default=0),
            demand_samples=math.fsum(h.total_weight(now) for h in self.demand.values()),
            cooldown=self.cooldown,
            demand_by_minimum=tuple(covered[1:]) if self.stops_seen else (),
            demand_table=self._demand_table(now) if self.stops_seen else (),
            density=tuple(self.density.weights(now)),
        )

    def _demand_table(self, now: float) -> tuple[tuple[int, int, float], ...]:
        return tuple((held, d, w) for held in sorted(self.demand) for d, w in self.demand[held].weights(now))

    def _demand_quantiles(self, q: float, now: float) -> list[tuple[int, int]]:
        """[(m, the q-quantile of demand when starts whose node needed at most m IPs count as 0)], first for
        m = -1 (no start left out), then for each m where the figure drops."""
        samples = [(held, d, w) for held in sorted(self.demand) for d, w in self.demand[held].weights(now)]
        if not samples:
            return []
        total = math.fsum(w for _, _, w in samples)
        by_demand = sorted(samples, key=lambda x: x[1])

        def quantile(minimum: int) -> int:
            served = math.fsum(w for held, _, w in samples if held <= minimum)
            running = served
            if running >= q * total * (1.0 - 1e-12):
                return 0
            for held, d, w in by_demand:
                if held > minimum:
                    running += w
                    if running >= q * total * (1.0 - 1e-12):
                        return d
            return by_demand[-1][1]

        out = [(-1, quantile(-1))]
        for held in sorted(self.demand):
            value = quantile(held)
            if value < out[-1][1]:
                out.append((held, value))
        return out

    # ----- checkpoint -----

    def to_checkpoint(self) -> dict[str, Any]:
        """JSON-safe. Unset fields are left out, not null: the status is written with a merge patch, where a
        null deletes the key, so the stored form must read back the same without them."""
        data = {
            "version": CHECKPOINT_VERSION,
            "window": self.window,
            "nextEpoch": self.next_epoch,
            "lastDensityEpoch": self.last_density_epoch,
            "startedAt": self.started_at,
            "lastBusy": self.last_busy,
            "bursts": self.bursts.to_checkpoint(),
            "density": self.density.to_checkpoint(),
            "demand": [[held, self.demand[held].to_checkpoint()] for held in sorted(self.demand)],
            "stopsSeen": self.stops_seen or None,
        }
        return {k: v for k, v in data.items() if v is not None}

    @classmethod
    def from_checkpoint(
        cls, data: dict[str, Any], churn: Churn, quiet: QuietConfig | None = None, settle: float = 10.0
    ) -> ChurnTracker:
        """Resume from a checkpoint. If the policy's window changed, the epoch cursors are converted through
        time; a changed half-life applies to samples added from now on."""
        if data.get("version") != CHECKPOINT_VERSION:
            raise ValueError(f"unsupported churn checkpoint version {data.get('version')!r}")
        tracker = cls(churn, quiet, settle)
        old_window = float(data["window"])
        tracker.bursts = DecayingHistogram.from_checkpoint(data["bursts"])
        tracker.density = DecayingHistogram.from_checkpoint(data["density"])
        # "demand" is absent in checkpoints written before demand was tracked: it then starts empty.
        tracker.demand = {int(held): DecayingHistogram.from_checkpoint(h) for held, h in data.get("demand", [])}
        tracker.stops_seen = bool(data.get("stopsSeen", False))
        for hist in (tracker.bursts, tracker.density, *tracker.demand.values()):
            hist.half_life = parse_duration(churn.half_life)

        def convert(epoch: Any) -> int | None:
            if epoch is None:
                return None
            if old_window == tracker.window:
                return int(epoch)
            return math.ceil(int(epoch) * old_window / tracker.window)

        tracker.next_epoch = convert(data.get("nextEpoch"))
        tracker.last_density_epoch = convert(data.get("lastDensityEpoch"))
        tracker.started_at = data.get("startedAt")
        tracker.last_busy = data.get("lastBusy")
        return tracker
