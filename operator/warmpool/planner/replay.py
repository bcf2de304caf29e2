"""Choose warm-pool targets by replaying recent pod history through the ipamd model.

The histograms (`churn.py`) are the fast estimate and the checkpoint; this module is the slow, faithful one.
It keeps the pod starts and stops of a sample of nodes per instance type (`ReplayLog`), and for each candidate
setting replays them through `ipamd.node.NodePool` (the simulator's node model: random placement, cooling IPs,
EC2 latency, prefixes really held) to count the idle IPs it would hold, the pods that would wait, and the EC2
calls it would make. The cheapest candidate in idle IPs wins among those whose waits stay within the policy's
quantile on top of what AWS's default would give on the same history, and whose EC2 calls stay within the
budget.

Which history: the demand expected over the coming cooldown, because a value must hold until the next change
may happen. The replay windows are the last hour (what is happening now) and, once the log reaches back that
far, the same stretch of the clock one day and one week ago, from now until the cooldown ends (what the coming
hours looked like then). A value chosen at night is then checked against yesterday's morning ramp, and after a
peak a lower value is chosen once yesterday's evening says it suffices.

Pure: no clock, no I/O. Cost is bounded by the sample (`per_type` nodes per instance type), not the cluster.
"""

from __future__ import annotations

import bisect
import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from warmpool.ipamd.env import (
    ENABLE_PREFIX_DELEGATION,
    MINIMUM_IP_TARGET,
    WARM_ENI_TARGET,
    WARM_IP_TARGET,
    WARM_PREFIX_TARGET,
    parse_env,
)
from warmpool.ipamd.limits import IPS_PER_PREFIX, InstanceLimits, IpMode
from warmpool.ipamd.node import NodePool
from warmpool.snapshot import ClusterSnapshot

DAY = 86400.0
WEEK = 7 * DAY
RECENT = 3600.0  # the "now" window
SETTLE = 30.0  # starts and stops younger than this may still arrive out of order: not logged yet
WARMUP = 180.0  # a replay starts this long before its window, so the pool has grown to the pods running then
SAMPLE_PER_TYPE = 4
COARSE_WARM_IPS = (1, 2, 4, 8, 16)


def _rank(name: str) -> bytes:
    """A stable pseudo-random order of node names, the same in every process and run."""
    return hashlib.blake2b(name.encode(), digest_size=8).digest()


@dataclass(slots=True)
class NodeLog:
    """Pod starts (+1) and stops (-1) of one sampled node, in time order, from `since` on."""

    instance_type: str
    since: float
    pods_since: int  # pods holding an IP at `since`
    until: float  # logged up to here (the node's last sighting, minus the settle time)
    times: list[float] = field(default_factory=list)
    deltas: list[int] = field(default_factory=list)

    def pods_at(self, t: float) -> int:
        return self.pods_since + sum(self.deltas[: bisect.bisect_right(self.times, t)])

    def add(self, t: float, delta: int) -> None:
        if self.times and t < self.times[-1]:
            i = bisect.bisect_right(self.times, t)
            self.times.insert(i, t)
            self.deltas.insert(i, delta)
        else:
            self.times.append(t)
            self.deltas.append(delta)

    def forget_before(self, t: float) -> None:
        i = bisect.bisect_left(self.times, t)
        if i:
            self.pods_since += sum(self.deltas[:i])
            del self.times[:i], self.deltas[:i]
        self.since = max(self.since, t)


class ReplayLog:
    """The pod history of up to `per_type` nodes per instance type, kept for `horizon` seconds. Feed it every
    snapshot (`observe`); each snapshot must carry the starts and stops of at least the last `SETTLE` seconds
    plus the time since the previous one."""

    def __init__(self, per_type: int = SAMPLE_PER_TYPE, horizon: float = DAY + 8 * 3600) -> None:
        self.per_type = per_type
        self.horizon = horizon
        self.logs: dict[str, NodeLog] = {}
        self.cursor: float | None = None  # everything up to here is logged
        self.started: float | None = None

    def observe(self, snapshot: ClusterSnapshot) -> None:
        now = snapshot.now
        upto = now - SETTLE
        if self.cursor is not None and upto <= self.cursor:
            return
        cursor = self.cursor if self.cursor is not None else upto
        if self.started is None:
            self.started = upto
        present = {n.name: n for n in snapshot.nodes}
        by_type: dict[str, list[str]] = {}
        for n in snapshot.nodes:
            by_type.setdefault(n.instance_type, []).append(n.name)
        for itype, names in by_type.items():
            kept = [n for n in names if n in self.logs]
            for name in sorted((n for n in names if n not in self.logs), key=_rank)[: self.per_type - len(kept)]:
                info = present[name]
                later = sum(1 for t in info.pod_start_times if t > upto) - sum(
                    1 for t in info.pod_stop_times if t > upto
                )
                self.logs[name] = NodeLog(itype, upto, max(info.ip_pods - later, 0), upto)
        for name, log in self.logs.items():
            node = present.get(name)
            if node is None:
                continue
            since = max(cursor, log.since)
            for t in node.pod_start_times:
                if since < t <= upto:
                    log.add(t, +1)
            for t in node.pod_stop_times:
                if since < t <= upto:
                    log.add(t, -1)
            log.until = upto
        self.cursor = upto
        oldest = upto - self.horizon
        for name in [n for n, log in self.logs.items() if log.until < oldest]:
            del self.logs[name]
        for log in self.logs.values():
            log.forget_before(oldest)

    @property
    def span(self) -> float:
        """Seconds of history logged."""
        return 0.0 if self.cursor is None or self.started is None else self.cursor - self.started

    def windows(self, ahead: float) -> list[tuple[float, float]]:
        """The stretches to replay: the last hour, and the coming `ahead` seconds as they were a day and a week
        ago, where the log covers them."""
        if self.cursor is None or self.started is None:
            return []
        now = self.cursor
        out = [(max(self.started, now - RECENT), now)]
        for back in (DAY, WEEK):
            start, end = now - back, min(now - back + ahead, now)
            if start >= self.started and end > start and back <= self.horizon:
                out.append((start, end))
        return [(a, b) for a, b in out if b > a]

    def node_windows(self, windows: Sequence[tuple[float, float]]) -> list[tuple[str, NodeLog, float, float]]:
        """(node, log, start, end) for each sampled node's share of each window."""
        out = []
        for name in sorted(self.logs):
            log = self.logs[name]
            for start, end in windows:
                a, b = max(start, log.since), min(end, log.until)
                if b > a:
                    out.append((name, log, a, b))
        return out


@dataclass(frozen=True, slots=True)
class Replayed:
    """What one setting did over the replayed history of the sample."""

    idle_ip_seconds: float
    waited: int
    starts: int
    ec2_calls: int
    node_seconds: float
    complete: bool = True  # False: cut short once it broke a bound (the figures cover part of the history)

    @property
    def idle_ips(self) -> float:
        """Idle IPs held per node on average."""
        return self.idle_ip_seconds / self.node_seconds if self.node_seconds > 0 else 0.0

    @property
    def ec2_calls_per_node_hour(self) -> float:
        return self.ec2_calls * 3600 / self.node_seconds if self.node_seconds > 0 else 0.0


def replay(
    env: Mapping[str, str],
    mode: IpMode,
    pieces: Iterable[tuple[str, NodeLog, float, float]],
    limits: Mapping[str, InstanceLimits],
    max_waits: float = math.inf,
    max_calls: float = math.inf,
) -> Replayed:
    """Run `env` over each node's pieces of history. Each piece starts WARMUP seconds early with the pods that
    were running then, so only the window's own idle IPs, waits and calls count. Stops early (`complete` False)
    once the waits or EC2 calls exceed `max_waits` / `max_calls`: such a setting is out anyway."""
    targets = parse_env(env)
    idle = node_seconds = 0.0
    waited = starts = calls = 0
    for name, log, start, end in pieces:
        lim = limits.get(log.instance_type)
        if lim is None:
            continue
        t0 = start - WARMUP
        pool = NodePool(name, lim, mode, targets, t0, seed=f"{start:.0f}")
        running: list[str] = []
        serial = 0

        def advance(until: float, pool: NodePool = pool) -> None:
            while pool.wake_at <= until:
                pool.advance(pool.wake_at)

        for _ in range(min(log.pods_at(start), pool.pod_cap)):
            serial += 1
            running.append(f"p{serial}")
            pool.pod_start(running[-1], t0)
        advance(start)
        pool.advance(start)  # settles the idle integral at the window's start
        idle0, waits0, starts0 = pool.idle_ip_seconds, len(pool.waits), pool.pod_starts
        calls0 = sum(pool.ec2_calls.values())
        lo = bisect.bisect_right(log.times, start)
        hi = bisect.bisect_right(log.times, end)
        for t, delta in zip(log.times[lo:hi], log.deltas[lo:hi], strict=True):
            advance(t)
            if delta > 0:
                serial += 1
                running.append(f"p{serial}")
                pool.pod_start(running[-1], t)
            elif running:
                pool.pod_stop(running.pop(0), t)
        advance(end)
        pool.finish(end)
        idle += pool.idle_ip_seconds - idle0
        waited += sum(1 for w in pool.waits[waits0:] if w > 0)
        starts += pool.pod_starts - starts0
        calls += sum(pool.ec2_calls.values()) - calls0
        node_seconds += end - start
        if waited > max_waits or calls > max_calls:
            return Replayed(idle, waited, starts, calls, node_seconds, complete=False)
    return Replayed(idle, waited, starts, calls, node_seconds)


# ----- candidates and the choice -----


def default_env(mode: IpMode) -> dict[str, str]:
    if mode is IpMode.PREFIX:
        return {ENABLE_PREFIX_DELEGATION: "true", WARM_PREFIX_TARGET: "1"}
    return {WARM_ENI_TARGET: "1"}


def canonical_minimum(minimum: int, mode: IpMode) -> int:
    """ipamd only ever uses MINIMUM_IP_TARGET rounded up to whole /28 prefixes in prefix mode."""
    return -(-minimum // IPS_PER_PREFIX) * IPS_PER_PREFIX if mode is IpMode.PREFIX else minimum


def density_levels(pieces: Sequence[tuple[str, NodeLog, float, float]]) -> list[int]:
    """Pods (plus IPs still cooling, counted as the stops in the cooldown before) per node that a minimum could
    aim at: the median, p90 and highest level any sampled node reached in the windows."""
    peaks = []
    for _, log, start, end in pieces:
        level = peak = log.pods_at(start)
        lo, hi = bisect.bisect_right(log.times, start), bisect.bisect_right(log.times, end)
        recent_stops: list[float] = []
        for t, d in zip(log.times[lo:hi], log.deltas[lo:hi], strict=True):
            level += d
            if d < 0:
                recent_stops.append(t)
            while recent_stops and recent_stops[0] <= t - 30.0:
                recent_stops.pop(0)
            peak = max(peak, level + len(recent_stops))
        peaks.append(peak)
    if not peaks:
        return []
    peaks.sort()

    def at(q: float) -> int:
        return peaks[min(len(peaks) - 1, int(q * len(peaks)))]

    return sorted({at(0.5), at(0.9), peaks[-1]})


def candidates(
    mode: IpMode, levels: Sequence[int], warm_bounds: tuple[int, int], minimum_bounds: tuple[int, int]
) -> list[dict[str, str]]:
    """WARM_IP_TARGET on a coarse scale within its bounds, each with no minimum or a minimum at one of the
    density levels (within its bounds); never MINIMUM_IP_TARGET alone (it freezes nodes)."""
    w_lo, w_hi = max(warm_bounds[0], 1), warm_bounds[1]
    m_lo, m_hi = minimum_bounds
    warms = sorted({w for w in COARSE_WARM_IPS if w_lo <= w <= w_hi} | ({w_lo} if w_lo <= w_hi else set()))
    minimums = sorted({canonical_minimum(min(max(m, m_lo), m_hi), mode) for m in (0, *levels)})
    out = []
    for w in warms:
        for m in minimums:
            if m and m > m_hi:
                continue
            env = {WARM_IP_TARGET: str(w)}
            if m:
                env[MINIMUM_IP_TARGET] = str(m)
            if mode is IpMode.PREFIX:
                env[ENABLE_PREFIX_DELEGATION] = "true"
            out.append(env)
    return out


@dataclass(frozen=True, slots=True)
class Choice:
    env: dict[str, str] | None  # None: no candidate qualifies (keep what the histograms say)
    outcome: Replayed | None
    default: Replayed
    current: Replayed | None
    evaluated: int
    reason: str


def choose(
    mode: IpMode,
    pieces: Sequence[tuple[str, NodeLog, float, float]],
    limits: Mapping[str, InstanceLimits],
    options: Sequence[Mapping[str, str]],
    quantile: float,
    ec2_budget: float | None,
    current: Mapping[str, str] | None = None,
    min_gain: float = 0.05,
) -> Choice:
    """The candidate with the fewest idle IPs whose waits are at most the default's plus (1 - quantile) of the
    pod starts replayed, and whose EC2 calls per node-hour stay within `ec2_budget` (or within twice the
    default's, when the budget is unset). The `current` setting is kept when it qualifies and the winner would
    not save `min_gain` of its idle IPs: a rollout must change what nodes hold."""
    default = replay(default_env(mode), mode, pieces, limits)
    allowed_waits = default.waited + (1 - quantile) * default.starts
    call_cap = ec2_budget if ec2_budget is not None else 2 * max(default.ec2_calls_per_node_hour, 1.0)
    max_calls = call_cap * default.node_seconds / 3600

    def ok(r: Replayed) -> bool:
        return r.complete and r.waited <= allowed_waits and r.ec2_calls <= max_calls

    runs = [(dict(env), replay(env, mode, pieces, limits, allowed_waits, max_calls)) for env in options]
    fitting = [(env, r) for env, r in runs if ok(r)]
    now = replay(current, mode, pieces, limits) if current is not None else None
    if not fitting:
        return Choice(None, None, default, now, len(runs), "no candidate keeps waits and EC2 calls within bounds")
    env, best = min(fitting, key=lambda er: (er[1].idle_ip_seconds, er[1].waited, er[1].ec2_calls))
    if (
        now is not None
        and current is not None
        and ok(now)
        and best.idle_ip_seconds > (1 - min_gain) * now.idle_ip_seconds
    ):
        return Choice(
            dict(current), now, default, now, len(runs), "the values in effect are within a few % of the best"
        )
    return Choice(env, best, default, now, len(runs), "fewest idle IPs over the replayed history within bounds")


# ----- advice on top of the histogram plan -----

# EC2 throttles each mutating action per account and region with a token bucket that refills 5 tokens a second
# (EC2 developer guide, "Request throttling for the Amazon EC2 API": mutating actions, bucket 200, refill 5/s).
# AssignPrivateIpAddresses and UnassignPrivateIpAddresses (or their prefix forms) are two such actions, so an
# account sustains 5 x 3600 = 18,000 of each an hour; over 5,000 nodes that is 3.6 an hour per node for each.
# The default budget keeps the sum of both under one bucket's refill: half their combined capacity, the other
# half left to other clusters and tools in the account and to bursts.
EC2_REFILL_PER_SECOND = 5.0
EC2_BUDGET_NODES = 5000
DEFAULT_EC2_CALLS_PER_NODE_HOUR = EC2_REFILL_PER_SECOND * 3600 / EC2_BUDGET_NODES  # 3.6
REPLAN_EVERY = 1800.0  # a replay's choice stands this long unless the sample or the values in effect change


@dataclass(frozen=True, slots=True)
class Bounds:
    warm: tuple[int, int]  # WARM_IP_TARGET (min, max)
    minimum: tuple[int, int]  # MINIMUM_IP_TARGET (min, max)


@dataclass(slots=True)
class ReplayPlanner:
    """The replay log of one policy plus the last choice made from it (replays are slow: at most one per
    REPLAN_EVERY seconds)."""

    log: ReplayLog = field(default_factory=ReplayLog)
    last: tuple[float, tuple[tuple[str, str], ...], Choice] | None = None
    replays: int = 0

    def observe(self, snapshot: ClusterSnapshot) -> None:
        self.log.observe(snapshot)

    def advise(
        self,
        mode: IpMode,
        limits: Mapping[str, InstanceLimits],
        current_env: Mapping[str, str],
        bounds: Bounds,
        quantile: float,
        ahead: float,
        now: float,
        ec2_budget: float | None = DEFAULT_EC2_CALLS_PER_NODE_HOUR,
        min_history: float = 600.0,
    ) -> Choice | None:
        """The replay's choice for the coming `ahead` seconds (the cooldown), or None while the log holds less
        than `min_history` seconds."""
        if self.log.span < min_history:
            return None
        key = tuple(sorted(current_env.items()))
        if self.last is not None and self.last[1] == key and now - self.last[0] < REPLAN_EVERY:
            return self.last[2]
        pieces = self.log.node_windows(self.log.windows(ahead))
        if not pieces:
            return None
        # What the IP targets leave to the rest of the env: whole ENIs or prefixes as set now (or AWS's default).
        base = {k: v for k, v in current_env.items() if k in (WARM_ENI_TARGET, WARM_PREFIX_TARGET)} or {
            k: v for k, v in default_env(mode).items() if k != ENABLE_PREFIX_DELEGATION
        }
        if mode is IpMode.PREFIX:
            base[ENABLE_PREFIX_DELEGATION] = "true"
        options = [{**base, **c} for c in candidates(mode, density_levels(pieces), bounds.warm, bounds.minimum)]
        if (
            bounds.warm[0] == 0
            and bounds.minimum[0] == 0
            and not (mode is IpMode.PREFIX and parse_env(base).warm_prefix == 0)
        ):
            options.append(base)  # both IP targets 0: whole ENIs or prefixes size the pool
        current = {k: v for k, v in current_env.items() if k in (WARM_IP_TARGET, MINIMUM_IP_TARGET)}
        choice = choose(mode, pieces, limits, options, quantile, ec2_budget, current={**base, **current})
        self.replays += 1
        self.last = (now, key, choice)
        return choice
