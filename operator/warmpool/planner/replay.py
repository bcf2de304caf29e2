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
import dataclasses
import hashlib
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
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
from warmpool.ipamd.pool import IP_COOLDOWN
from warmpool.snapshot import ClusterSnapshot

DAY = 86400.0
WEEK = 7 * DAY
RECENT = 3600.0  # the "now" window
LOOKBACK_BEFORE_A_DAY = 3 * 3600.0  # the "now" window until the log reaches a day back (CPU: the sample x this)
SETTLE = 30.0  # starts and stops younger than this may still arrive out of order: not logged yet
WARMUP = 180.0  # a replay starts this long before its window, so the pool has grown to the pods running then
SAMPLE_PER_TYPE = 8
COARSE_WARM_IPS = (1, 2, 4, 8, 16)


def _rank(name: str) -> bytes:
    """A stable pseudo-random order of node names, the same in every process and run."""
    return hashlib.blake2b(name.encode(), digest_size=8).digest()


@dataclass(slots=True)
class NodeLog:
    """Pod starts (+1) and stops (-1) of one sampled node, in time order, from `since` on (a correction to the
    node's observed count may move several pods at once)."""

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
            # The log follows the node's pod count where the snapshots carried no start or stop: pods gone
            # unseen stop at the cursor; pods come unseen count as running since the log began (not as a burst
            # of starts, which the replay would make wait).
            later = sum(1 for t in node.pod_start_times if t > upto) - sum(1 for t in node.pod_stop_times if t > upto)
            drift = max(node.ip_pods - later, 0) - log.pods_at(upto)
            if drift < 0:
                log.add(upto, drift)
            elif drift > 0:
                log.pods_since += drift
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
        ago, where the log covers them. Until the log reaches a day back, the last `ahead` seconds (as much as is
        logged, at most `LOOKBACK_BEFORE_A_DAY`) instead of the last hour: a value that would have served the last
        cooldown is the best guess for one that must hold through the next."""
        if self.cursor is None or self.started is None:
            return []
        now = self.cursor
        earlier = []
        for back in (DAY, WEEK):
            start, end = now - back, min(now - back + ahead, now)
            if start >= self.started and end > start and back <= self.horizon:
                earlier.append((start, end))
        recent = RECENT if earlier else min(max(RECENT, ahead), LOOKBACK_BEFORE_A_DAY)
        out = [(max(self.started, now - recent), now), *earlier]
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
    max_idle: float = math.inf,
) -> Replayed:
    """Run `env` over each node's pieces of history. Each piece starts WARMUP seconds early with the pods that
    were running then, so only the window's own idle IPs, waits and calls count. Stops early (`complete` False)
    once the waits, EC2 calls or idle IP-seconds exceed `max_waits` / `max_calls` / `max_idle`: such a setting
    is out anyway."""
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
            for _ in range(delta):
                serial += 1
                running.append(f"p{serial}")
                pool.pod_start(running[-1], t)
            for _ in range(min(-delta, len(running))):
                pool.pod_stop(running.pop(0), t)
        advance(end)
        pool.finish(end)
        idle += pool.idle_ip_seconds - idle0
        waited += sum(1 for w in pool.waits[waits0:] if w > 0)
        starts += pool.pod_starts - starts0
        calls += sum(pool.ec2_calls.values()) - calls0
        node_seconds += end - start
        if waited > max_waits or calls > max_calls or idle > max_idle:
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


LEVEL_QUANTILES = (0.5, 0.75, 0.9, 1.0)


def density_levels(pieces: Sequence[tuple[str, NodeLog, float, float]], with_rise: bool = False) -> list[int]:
    """Pods (plus IPs still cooling, counted as the stops in the cooldown before) per node that a minimum could
    aim at: quantiles of the highest level each sampled node reached in each window (`LEVEL_QUANTILES`).
    `with_rise` adds to each node's peak how much its pods rose over the window: the margin for a value that
    must hold while the climb goes on, when no day-old history says how the coming hours went (the climb over
    the window's last hour)."""
    peaks = []
    for _, log, start, end in pieces:
        level = peak = log.pods_at(start)
        first = log.pods_at(max(start, end - RECENT))
        lo, hi = bisect.bisect_right(log.times, start), bisect.bisect_right(log.times, end)
        recent_stops: list[float] = []
        for t, d in zip(log.times[lo:hi], log.deltas[lo:hi], strict=True):
            level += d
            recent_stops += [t] * max(-d, 0)
            while recent_stops and recent_stops[0] <= t - IP_COOLDOWN:
                recent_stops.pop(0)
            peak = max(peak, level + len(recent_stops))
        peaks.append(peak + (max(level - first, 0) if with_rise else 0))
    if not peaks:
        return []
    peaks.sort()
    return sorted({peaks[min(len(peaks) - 1, int(q * len(peaks)))] for q in LEVEL_QUANTILES})


def candidates(
    mode: IpMode,
    levels: Sequence[int],
    warm_bounds: tuple[int, int],
    minimum_bounds: tuple[int, int],
    warm_floor: Callable[[int], int] | None = None,
) -> list[dict[str, str]]:
    """WARM_IP_TARGET on a coarse scale within its bounds, each with no minimum or a minimum at one of the
    density levels plus the warm target (a pool that sits at its minimum makes no EC2 calls while the pods
    leave the warm target free), within its bounds; never MINIMUM_IP_TARGET alone (it freezes nodes).
    `warm_floor(m)`: the least WARM_IP_TARGET that covers the pod starts a minimum of m does not (the
    histograms' demand over every node): smaller warm targets are left out, and that least one is tried."""
    w_lo, w_hi = max(warm_bounds[0], 1), warm_bounds[1]
    m_lo, m_hi = minimum_bounds

    def floor(m: int) -> int:
        return min(max(warm_floor(m), w_lo), w_hi) if warm_floor is not None else w_lo

    warms = {w for w in COARSE_WARM_IPS if w_lo <= w <= w_hi} | ({w_lo} if w_lo <= w_hi else set())
    warms |= {floor(m) for m in (0, *levels)} if w_lo <= w_hi else set()
    out = []
    for w in sorted(warms):
        minimums = sorted({canonical_minimum(min(max(m, m_lo), m_hi), mode) for m in (0, *(x + w for x in levels))})
        for m in minimums:
            if (m and m > m_hi) or w < floor(m):
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
    rescue: bool = False  # a raise of the values in effect, which serve the pods badly now (may skip the cooldown)


def allowed_waits(default: Replayed, quantile: float) -> float:
    """Waits the policy tolerates on a replayed history: the default's plus (1 - quantile) of the starts."""
    return default.waited + (1 - quantile) * default.starts


def call_cap(default: Replayed, ec2_budget: float | None) -> float:
    """EC2 calls per node-hour a candidate may make on the sample: the budget scaled by `SAMPLE_CALL_SHARE` (never
    below what AWS's default makes on the same history), or twice the default's when no budget is set."""
    if ec2_budget is None:
        return 2 * max(default.ec2_calls_per_node_hour, 1.0)
    return max(ec2_budget * SAMPLE_CALL_SHARE, default.ec2_calls_per_node_hour)


def choose(
    mode: IpMode,
    pieces: Sequence[tuple[str, NodeLog, float, float]],
    limits: Mapping[str, InstanceLimits],
    options: Sequence[Mapping[str, str]],
    quantile: float,
    ec2_budget: float | None,
    current: Mapping[str, str] | None = None,
    min_gain: float = 0.05,
    default: Replayed | None = None,
    now: Replayed | None = None,
) -> Choice:
    """The candidate with the fewest idle IPs whose waits are at most the default's plus (1 - quantile) of the
    pod starts replayed, and whose EC2 calls per node-hour stay within `call_cap`. The `current` setting is
    kept when it qualifies and the winner would not save `min_gain` of its idle IPs: a rollout must change what
    nodes hold. When no candidate keeps the EC2 calls within the cap, the one with the fewest calls among those
    within the waits. `default` and `now` are the replays of AWS's default and of `current`, when made already."""
    default = default or replay(default_env(mode), mode, pieces, limits)
    waits_cap = allowed_waits(default, quantile)
    max_calls = call_cap(default, ec2_budget) * default.node_seconds / 3600

    def ok(r: Replayed) -> bool:
        return r.complete and r.waited <= waits_cap and r.ec2_calls <= max_calls

    # Branch and bound: a candidate is cut short once it holds more idle IPs than the cheapest that fits so far
    # (AWS's default fits by construction), with room for the ties below.
    bound = default.idle_ip_seconds if ok(default) else math.inf
    if now is None and current is not None:
        now = replay(current, mode, pieces, limits)
    if now is not None and ok(now):
        bound = min(bound, now.idle_ip_seconds)
    runs = []
    for env in options:
        r = replay(env, mode, pieces, limits, waits_cap, max_calls, bound * (1 + TIE_SHARE) + 1e-9)
        runs.append((dict(env), r))
        if ok(r):
            bound = min(bound, r.idle_ip_seconds)
    fitting = [(env, r) for env, r in runs if ok(r)]
    if not fitting and bound < math.inf:  # every candidate holds more than the default or current: in full
        runs = [(dict(env), replay(env, mode, pieces, limits, waits_cap, max_calls)) for env in options]
        fitting = [(env, r) for env, r in runs if ok(r)]
    if not fitting:
        # Over the EC2 cap everywhere: the fewest calls that keep the waits (replayed in full this time).
        full = [(env, replay(env, mode, pieces, limits, waits_cap)) for env, r in runs if r.waited <= waits_cap]
        within = [(env, r) for env, r in full if r.complete]
        if not within:
            return Choice(None, None, default, now, len(runs), "no candidate keeps the waits within bounds")
        env, best = min(within, key=lambda er: (er[1].ec2_calls, er[1].idle_ip_seconds))
        return Choice(env, best, default, now, len(runs), "no candidate keeps EC2 calls within budget: the fewest")
    fewest = min(r.idle_ip_seconds for _, r in fitting)
    # Among the cheapest (ties within TIE_SHARE: in prefix mode whole /28s often hold the same IPs whatever the
    # warm target), the most warm IPs and then the highest minimum: the same cost, more room for a burst.
    env, best = max(
        ((e, r) for e, r in fitting if r.idle_ip_seconds <= fewest * (1 + TIE_SHARE) + 1e-9),
        key=lambda er: (-er[1].waited, int(er[0].get(WARM_IP_TARGET, "0")), int(er[0].get(MINIMUM_IP_TARGET, "0"))),
    )
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


def serves(now: Replayed, default: Replayed, quantile: float, ec2_budget: float | None) -> bool:
    """The values in effect keep the waits within bounds (up to `RESCUE_SHARE` of the pod starts more: an
    hour's sample is too small to tell a few waits from the quantile) and do not break the EC2 budget by far
    (`RESCUE_CALLS` times it, or what AWS's default makes, if more) on the replayed history: no reason to
    change them before the cooldown ends."""
    calls_ok = ec2_budget is None or now.ec2_calls_per_node_hour <= max(
        RESCUE_CALLS * ec2_budget, default.ec2_calls_per_node_hour
    )
    waits_ok = now.waited <= allowed_waits(default, quantile) + RESCUE_SHARE * now.starts
    return now.complete and waits_ok and calls_ok


def raises(env: Mapping[str, str], current: Mapping[str, str]) -> bool:
    """`env` holds each IP target at least where `current` has it (a raise-only change)."""
    return all(int(env.get(k, "0")) >= int(current.get(k, "0")) for k in (WARM_IP_TARGET, MINIMUM_IP_TARGET))


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
# Within the cooldown after a change, whether the values in effect still serve is checked this often (two
# replays: them and AWS's default); a rescue is chosen only when they do not.
CHECK_EVERY = 600.0
# The sample's EC2 calls are held to this share of the budget: nodes the sample misses run hotter (the sample's
# highest peaks are below the cluster's), measured against full simulations (README).
SAMPLE_CALL_SHARE = 0.5
# Within the cooldown the values in effect are only replaced (raised) when they break the budget by this factor
# or keep pods waiting beyond the quantile.
RESCUE_CALLS = 2.0
RESCUE_SHARE = 0.01  # as the histograms' rescue (planner/rescue.py): pods waiting in numbers
TIE_SHARE = 0.005  # idle IPs this close count as the same
WAITS_SEEN = 5  # waits of AWS's default on the sample from which replayed wait counts are taken as they are
FLOOR_UNTIL_WAITS = 2.0  # the histograms' floor stands until the quantile allows this many waits on the sample


@dataclass(frozen=True, slots=True)
class Bounds:
    warm: tuple[int, int]  # WARM_IP_TARGET (min, max)
    minimum: tuple[int, int]  # MINIMUM_IP_TARGET (min, max)


@dataclass(slots=True)
class ReplayPlanner:
    """The replay log of one policy plus the last choice made from it (replays are slow: at most one per
    REPLAN_EVERY seconds), and when the values in effect last changed (within the cooldown after a change only
    a rescue may replace them, so only they and the default are replayed)."""

    log: ReplayLog = field(default_factory=ReplayLog)
    last: tuple[float, tuple[tuple[str, str], ...], Choice] | None = None
    replays: int = 0
    seen_env: tuple[tuple[str, str], ...] | None = None
    env_since: float | None = None  # when the values in effect changed last; None: before they were first seen

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
        warm_floor: Callable[[int], int] | None = None,
        levels: Sequence[int] = (),
    ) -> Choice | None:
        """The replay's choice for the coming `ahead` seconds (the cooldown), or None while the log holds less
        than `min_history` seconds. Within `ahead` of a change of the values in effect, a choice other than them
        is a rescue (raise-only) and only made when they do not serve."""
        key = tuple(sorted(current_env.items()))
        if key != self.seen_env:
            self.env_since = now if self.seen_env is not None else None
            self.seen_env = key
        if self.log.span < min_history:
            return None
        cooling = self.env_since is not None and now - self.env_since < ahead
        due = CHECK_EVERY if cooling else REPLAN_EVERY
        if self.last is not None and self.last[1] == key and now - self.last[0] < due:
            return self.last[2]
        windows = self.log.windows(ahead)
        if cooling:  # whether the values in effect serve, and a rescue if not: about what happens now
            windows = [(max(windows[0][0], windows[0][1] - RECENT), windows[0][1])]
        pieces = self.log.node_windows(windows)
        if not pieces:
            return None
        day_old = len(self.log.windows(ahead)) > 1
        # What the IP targets leave to the rest of the env: whole ENIs or prefixes as set now (or AWS's default).
        base = {k: v for k, v in current_env.items() if k in (WARM_ENI_TARGET, WARM_PREFIX_TARGET)} or {
            k: v for k, v in default_env(mode).items() if k != ENABLE_PREFIX_DELEGATION
        }
        if mode is IpMode.PREFIX:
            base[ENABLE_PREFIX_DELEGATION] = "true"
        current = {**base, **{k: v for k, v in current_env.items() if k in (WARM_IP_TARGET, MINIMUM_IP_TARGET)}}
        default = replay(default_env(mode), mode, pieces, limits)
        in_effect = replay(current, mode, pieces, limits)
        if cooling and serves(in_effect, default, quantile, ec2_budget):
            choice = Choice(dict(current), in_effect, default, in_effect, 0, "the values in effect serve the pods")
        else:
            # No day-old history yet: the minimum also covers the last hour's climb once more (once a whole hour
            # is logged: the first minutes are the pods the nodes already ran, not a climb).
            whole_hour = windows[0][1] - windows[0][0] >= RECENT - 1
            # (`levels`: minimums the caller knows of, e.g. the busiest hours of the coming cooldown as the
            # demand profile last saw them, which the log may not reach.)
            levels = sorted({*density_levels(pieces, with_rise=not day_old and whole_hour), *levels})
            # Where the pods may outgrow the minimum before the next change (a rescue, or no day-old history says
            # how the coming hours go), the warm target must keep the waits by itself: at least the histograms'
            # floor and, on the sample, without the minimum. They stand in for the waits a sample is too small to
            # show; once AWS's default itself waits several times on the sample (bursts beyond a whole ENI),
            # waits are common enough for the replayed counts to speak for themselves.
            guard = default.waited < WAITS_SEEN and (cooling or not day_old)
            # The floor until the sample has replayed enough starts to show the quantile's waits itself.
            floor = warm_floor if guard and default.starts * (1 - quantile) < FLOOR_UNTIL_WAITS else None
            options = [{**base, **c} for c in candidates(mode, levels, bounds.warm, bounds.minimum, floor)]
            if (
                bounds.warm[0] == 0
                and bounds.minimum[0] == 0
                and not (mode is IpMode.PREFIX and parse_env(base).warm_prefix == 0)
            ):
                options.append(base)  # both IP targets 0: whole ENIs or prefixes size the pool
            if cooling:  # a rescue: the pods outgrew what the values in effect cover
                options = [o for o in options if raises(o, current) and o != current]
            if guard:
                options = [o for o in options if self._covers_alone(o, mode, pieces, limits, default, quantile)]
            choice = choose(
                mode,
                pieces,
                limits,
                options,
                quantile,
                ec2_budget,
                current,
                default=default,
                now=in_effect,
            )
            if cooling and choice.env is not None and choice.env != current:
                choice = dataclasses.replace(
                    choice, rescue=True, reason="the values in effect serve the pods badly now: " + choice.reason
                )
        self.replays += 1
        self.last = (now, key, choice)
        return choice

    def _covers_alone(
        self,
        env: Mapping[str, str],
        mode: IpMode,
        pieces: Sequence[tuple[str, NodeLog, float, float]],
        limits: Mapping[str, InstanceLimits],
        default: Replayed,
        quantile: float,
    ) -> bool:
        """`env`'s WARM_IP_TARGET keeps the waits within bounds on the replayed history without its minimum."""
        if MINIMUM_IP_TARGET not in env:
            return True
        alone = {k: v for k, v in env.items() if k != MINIMUM_IP_TARGET}
        cap = allowed_waits(default, quantile)
        r = replay(alone, mode, pieces, limits, max_waits=cap)
        return r.complete and r.waited <= cap
