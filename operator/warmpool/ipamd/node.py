"""One node's ipamd pool as a state machine in simulated time, for the simulator.

The rules come from `pool.py`; this module adds what happens between pool checks: pods taking and returning
IPs, released IPs cooling down, EC2 calls taking time, aws-node restarts. Every method takes `now`; the
caller (the simulator's event loop) calls `advance(now)` at `wake_at` and the pod methods at trace times.

ipamd's monitor loop runs a pool check, sleeps 5 s, runs the next one; a grow blocks the loop for the EC2
call. A check that changes nothing is idempotent until the state changes, so while nothing happens the node
sleeps and `wake_at` jumps to the first 5 s grid point after the next time-driven change (an ENI coming of
age, a cooling IP expiring, the decrease interval or a subnet backoff ending), or to the next pod event.
That gives the same decisions as ticking every 5 s, at a fraction of the cost.

Placement is ipamd's: it walks Go maps (ENIs, then an ENI's IPs or prefixes), whose iteration starts at a
random point, so a pod gets an IP from a random ENI and cidr, and release and ENI removal pick at random too.
The model walks its lists from a random start drawn from the node's own seeded generator (`seed`), so a run
is reproducible for a seed. Per-ENI counters (free cidrs, cooling IPs) are kept as IPs come and go, and the
pool rules' answers are memoised on the state they read (ENI ages and the time since the last decrease only
matter against their thresholds), which is what keeps a day of a hundred nodes to seconds.
"""

from __future__ import annotations

import math
import random
from collections import Counter, deque
from dataclasses import dataclass

from warmpool.ipamd.env import IpamdTargets
from warmpool.ipamd.limits import HOST_NETWORK_PODS, InstanceLimits, IpMode
from warmpool.ipamd.pool import (
    DECREASE_INTERVAL,
    INF,
    INSUFFICIENT_CIDR_BACKOFF,
    IP_COOLDOWN,
    MIN_ENI_AGE,
    POOL_CHECK_INTERVAL,
    CheckResult,
    EniState,
    PoolState,
    cidr_size,
    deletable_eni,
    is_too_high,
    is_too_low,
    pool_check,
)

_EPS = 1e-6


@dataclass(frozen=True, slots=True)
class Timing:
    """ipamd's timers and EC2's latencies, in seconds."""

    pool_check: float = POOL_CHECK_INTERVAL
    assign_latency: float = 1.0  # AssignPrivateIpAddresses on an attached ENI
    attach_latency: float = 10.0  # create + attach an ENI and see its IPs (eniAttachTime)
    cooldown: float = IP_COOLDOWN
    decrease_interval: float = DECREASE_INTERVAL
    min_eni_age: float = MIN_ENI_AGE
    cidr_backoff: float = INSUFFICIENT_CIDR_BACKOFF
    restart_downtime: float = 5.0  # aws-node restarting: no new pod networking meanwhile


class Subnet:
    """Free IPs of the subnet a node draws from; None = unlimited (not tracked)."""

    __slots__ = ("free", "min_free", "zone")

    def __init__(self, zone: str, free: int | None = None) -> None:
        self.zone = zone
        self.free = free
        self.min_free = free

    def take(self, want: int, unit: int, overhead: int = 0) -> int:
        """Grant up to `want` units of `unit` IPs plus `overhead` IPs; returns the units granted (0 = full)."""
        if self.free is None:
            return want
        units = min(want, max(self.free - overhead, 0) // unit)
        if units > 0:
            self.free -= units * unit + overhead
            self.min_free = min(self.min_free if self.min_free is not None else self.free, self.free)
        return units

    def give(self, ips: int) -> None:
        if self.free is not None:
            self.free += ips

    def set_free(self, free: int) -> None:
        self.free = free
        self.min_free = free if self.min_free is None else min(self.min_free, free)


class _Cidr:
    """One secondary IP or /28 prefix: pod IPs assigned from it and its released IPs still cooling."""

    __slots__ = ("assigned", "cooling", "dead", "eni")

    def __init__(self, eni: _Eni) -> None:
        self.eni = eni
        self.assigned = 0
        self.cooling = 0
        self.dead = False  # released to EC2 (its cooling entries are dropped lazily)


class _Eni:
    __slots__ = ("assigned", "cidrs", "cooling", "created", "free", "primary")

    def __init__(self, created: float, primary: bool = False) -> None:
        self.cidrs: list[_Cidr] = []
        self.created = created
        self.primary = primary
        self.assigned = 0
        self.free = 0  # cidrs with no assigned IP
        self.cooling = 0  # cooling IPs on its cidrs


# A pool as a hashable key: per ENI (cidrs, assigned, free cidrs, cooling IPs, primary, at least MIN_ENI_AGE old),
# then whether the decrease interval has passed. Ages and the time since the last decrease only matter against
# those thresholds in the rules, so equal keys get equal answers.
_Key = tuple[tuple[tuple[int, int, int, int, bool, bool], ...], bool]


def _state_of(key: _Key) -> PoolState:
    enis, decrease_due = key
    return PoolState(
        tuple(
            EniState(cidrs=c, assigned=a, free_cidrs=f, cooling=k, primary=p, age=INF if old else 0.0)
            for c, a, f, k, p, old in enis
        ),
        since_decrease=INF if decrease_due else 0.0,
    )


class _Rules:
    """The pool rules for one (instance type, mode, targets), memoised on the pool's key."""

    __slots__ = ("check", "deletable", "limits", "mode", "targets", "waking")

    def __init__(self, limits: InstanceLimits, mode: IpMode, targets: IpamdTargets) -> None:
        self.limits, self.mode, self.targets = limits, mode, targets
        self.check: dict[_Key, CheckResult] = {}
        self.deletable: dict[_Key, int | None] = {}
        self.waking: dict[_Key, bool] = {}

    def pool_check(self, key: _Key) -> CheckResult:
        r = self.check.get(key)
        if r is None:
            r = self.check[key] = pool_check(self.limits, self.mode, self.targets, _state_of(key))
        return r

    def deletable_eni(self, key: _Key) -> int | None:
        try:
            return self.deletable[key]
        except KeyError:
            r = self.deletable[key] = deletable_eni(self.limits, self.mode, self.targets, _state_of(key))
            return r

    def would_release(self, key: _Key) -> bool:
        """Not too low but too high: a decrease would act once its interval has passed."""
        r = self.waking.get(key)
        if r is None:
            state = _state_of(key)
            lim, mode, targets = self.limits, self.mode, self.targets
            r = self.waking[key] = not is_too_low(lim, mode, targets, state) and is_too_high(lim, mode, targets, state)
        return r

    @property
    def size(self) -> int:
        return len(self.check) + len(self.deletable) + len(self.waking)


_RULES: dict[tuple[InstanceLimits, IpMode, IpamdTargets], _Rules] = {}
_RULES_MAX_STATES = 300_000  # per rule set; the memo starts over beyond it


def _rules(limits: InstanceLimits, mode: IpMode, targets: IpamdTargets) -> _Rules:
    key = (limits, mode, targets)
    r = _RULES.get(key)
    if r is None or r.size > _RULES_MAX_STATES:
        r = _RULES[key] = _Rules(limits, mode, targets)
    return r


def _rotation(rng: random.Random, n: int) -> range | list[int]:
    """Indexes 0..n-1 from a random start, wrapping: the order a Go map walk gives a small map."""
    if n <= 1:
        return range(n)
    start = rng.randrange(n)
    return [*range(start, n), *range(start)]


class NodePool:
    """ipamd on one node. Read `held_ips`, `assigned`, `wake_at`; call the methods in time order."""

    def __init__(
        self,
        name: str,
        limits: InstanceLimits,
        mode: IpMode,
        targets: IpamdTargets,
        now: float,
        subnet: Subnet | None = None,
        timing: Timing | None = None,
        seed: int | str = 0,
    ) -> None:
        self.name = name
        self.limits = limits
        self.mode = mode
        self.targets = targets
        self.rules = _rules(limits, mode, targets)
        self.subnet = subnet if subnet is not None else Subnet("")
        self.timing = timing or Timing()
        self.rng = random.Random(f"{seed}/{name}")  # str seeds hash the same on every platform and run
        self.size = cidr_size(mode)
        self.pod_cap = limits.max_pods(mode) - HOST_NETWORK_PODS
        self.enis: list[_Eni] = [_Eni(now, primary=True)]
        self.pods: dict[str, _Cidr | None] = {}  # None: waiting for an IP
        self.waiting: dict[str, float] = {}  # pod -> start time, in arrival order
        self.held_ips = 0  # IPs in the datastore (pod IPs only, not ENI primaries)
        self.assigned = 0
        self._cooling: deque[tuple[float, _Cidr]] = deque()  # expiry order: the cooldown is one constant
        # timers
        self.last_check = now
        self.next_check = now  # handlePreScaling: one check at ipamd start
        self.lands_at = INF
        self._in_flight: tuple[_Eni | None, int] | None = None
        self.serve_at = INF
        self.down_until = -INF
        self.last_decrease = -INF
        self.backoff_until = -INF
        # accounting
        self._acc_t = now
        self.idle_ip_seconds = 0.0
        self.waits: list[float] = []  # seconds, one per pod that had to wait
        self.pod_starts = 0
        self.rejected = 0
        self.ec2_calls: Counter[str] = Counter()

    # ----- what the event loop reads -----

    @property
    def wake_at(self) -> float:
        return min(self.next_check, self.lands_at, self.serve_at, self.down_until if self.down else INF)

    @property
    def down(self) -> bool:
        return self.down_until > -INF

    @property
    def eni_count(self) -> int:
        return len(self.enis)

    @property
    def cidr_count(self) -> int:
        return sum(len(e.cidrs) for e in self.enis)

    def cooling_ips(self, now: float) -> int:
        self._expire(now)
        return sum(e.cooling for e in self.enis)

    # ----- pods -----

    def pod_start(self, pod: str, now: float) -> None:
        if pod in self.pods:
            raise ValueError(f"{self.name}: pod {pod} started twice")
        if len(self.pods) >= self.pod_cap:
            self.rejected += 1  # the scheduler would not place it: max pods reached
            return
        self._accrue(now)
        self.pod_starts += 1
        cidr = None if self.down or self.waiting else self._take_ip(now)
        self.pods[pod] = cidr
        if cidr is None:
            self.waiting[pod] = now
            self._update_serve_at(now)
        self._poke(now)

    def pod_stop(self, pod: str, now: float) -> None:
        if pod not in self.pods:
            return  # rejected at start, or never seen
        self._accrue(now)
        cidr = self.pods.pop(pod)
        if cidr is None:
            self.waits.append(now - self.waiting.pop(pod))
            self._update_serve_at(now)
            return
        eni = cidr.eni
        cidr.assigned -= 1
        if cidr.assigned == 0:
            eni.free += 1
        eni.assigned -= 1
        expiry = now + self.timing.cooldown
        cidr.cooling += 1
        eni.cooling += 1
        self._cooling.append((expiry, cidr))
        self.assigned -= 1
        self._poke(now)

    # ----- aws-node restart -----

    def restart(self, now: float, targets: IpamdTargets) -> None:
        """aws-node restarts: no pod networking for a moment, then ipamd starts with new targets."""
        self._accrue(now)
        self.down_until = now + self.timing.restart_downtime
        self.next_check = INF
        self.serve_at = INF
        self._pending_targets = targets

    # ----- the event loop's entry point -----

    def advance(self, now: float) -> None:
        self._accrue(now)
        if self.down and now >= self.down_until:
            self._come_up(now)
        if now >= self.lands_at:
            self._land(now)
        if self.waiting and not self.down and now >= self.serve_at:
            self._serve(now)
        if now >= self.next_check and not self.down and self._in_flight is None:
            self._check(now)

    def finish(self, now: float) -> None:
        """End of the run or node removal: settle the integrals; pods still waiting count with their wait so
        far. Gives the node's IPs back to its subnet."""
        self._accrue(now)
        for start in self.waiting.values():
            self.waits.append(now - start)
        self.waiting.clear()
        self.subnet.give(self.held_ips + len(self.enis) - 1)
        if self._in_flight is not None:
            eni, n = self._in_flight
            self.subnet.give(n * self.size + (1 if eni is None else 0))
        self.next_check = self.lands_at = self.serve_at = INF
        self._in_flight = None

    # ----- internals -----

    _pending_targets: IpamdTargets | None = None

    def _accrue(self, now: float) -> None:
        dt = now - self._acc_t
        if dt > 0:
            self.idle_ip_seconds += (self.held_ips - self.assigned) * dt
            self._acc_t = now

    def _expire(self, now: float) -> None:
        """Released IPs whose cooldown has ended become usable again."""
        q = self._cooling
        while q and q[0][0] <= now:
            _, cidr = q.popleft()
            cidr.cooling -= 1
            if not cidr.dead:
                cidr.eni.cooling -= 1

    def _poke(self, now: float) -> None:
        """The state changed: make sure a pool check runs at the next grid point."""
        if self.down or self._in_flight is not None:
            return
        step = self.timing.pool_check
        k = max(0, math.ceil((now - self.last_check) / step - _EPS))
        self.next_check = min(self.next_check, self.last_check + k * step)

    def _take_ip(self, now: float) -> _Cidr | None:
        """`AssignPodIPv4Address`: the first usable IP of a map walk over ENIs, then over the ENI's cidrs."""
        self._expire(now)
        size = self.size
        rng = self.rng
        enis = self.enis
        for i in _rotation(rng, len(enis)):
            eni = enis[i]
            if eni.assigned + eni.cooling >= len(eni.cidrs) * size:
                continue  # nothing usable on this ENI
            cidrs = eni.cidrs
            for j in _rotation(rng, len(cidrs)):
                cidr = cidrs[j]
                if cidr.assigned + cidr.cooling < size:
                    if cidr.assigned == 0:
                        eni.free -= 1
                    cidr.assigned += 1
                    eni.assigned += 1
                    self.assigned += 1
                    return cidr
        return None

    def _serve(self, now: float) -> None:
        while self.waiting:
            cidr = self._take_ip(now)
            if cidr is None:
                break
            pod = next(iter(self.waiting))
            self.waits.append(now - self.waiting.pop(pod))
            self.pods[pod] = cidr
        self._update_serve_at(now)
        self._poke(now)

    def _update_serve_at(self, now: float) -> None:
        """Waiting pods get the next IP that leaves its cooldown (if no grow lands first)."""
        if not self.waiting or self.down:
            self.serve_at = INF
            return
        self._expire(now)
        soonest = INF
        for expiry, cidr in self._cooling:
            if not cidr.dead:
                soonest = expiry
                break
        self.serve_at = soonest

    def _key(self, now: float) -> _Key:
        """The pool as the rules read it (see `_Key`)."""
        self._expire(now)
        old = now - MIN_ENI_AGE
        return (
            tuple([(len(e.cidrs), e.assigned, e.free, e.cooling, e.primary, e.created <= old) for e in self.enis]),
            now - self.last_decrease > DECREASE_INTERVAL,
        )

    def _check(self, now: float) -> None:
        self.last_check = now
        self.next_check = INF
        key = self._key(now)
        result = self.rules.pool_check(key)
        acted = False
        if result.too_low:
            if result.grow is not None and now >= self.backoff_until:
                if self._issue_grow(now, result.grow.eni, result.grow.cidrs):
                    return  # the loop blocks on the EC2 call; _land continues it
                acted = True  # a failed call still starts the backoff
        elif result.release:
            self._release(now, result.release)
            self.last_decrease = now
            acted = True
            key = self._key(now)
        acted = self._free_eni(key) or acted
        if acted:
            self.next_check = now + self.timing.pool_check
        else:
            self._sleep_until_change(now)

    def _issue_grow(self, now: float, eni_index: int | None, cidrs: int) -> bool:
        new_eni = eni_index is None
        kind = "attach_eni" if new_eni else ("assign_prefixes" if self.mode is IpMode.PREFIX else "assign_ips")
        granted = self.subnet.take(cidrs, self.size, overhead=1 if new_eni else 0)
        if granted == 0:
            self.ec2_calls["insufficient_cidr"] += 1
            self.backoff_until = now + self.timing.cidr_backoff
            return False
        self.ec2_calls[kind] += 1
        target = None if eni_index is None else self.enis[eni_index]
        self._in_flight = (target, granted)
        latency = self.timing.attach_latency if new_eni else self.timing.assign_latency
        self.lands_at = now + latency
        return True

    def _land(self, now: float) -> None:
        assert self._in_flight is not None
        eni, n = self._in_flight
        self._in_flight = None
        self.lands_at = INF
        if eni is None:
            eni = _Eni(now)
            self.enis.append(eni)
        eni.cidrs.extend(_Cidr(eni) for _ in range(n))
        eni.free += n
        self.held_ips += n * self.size
        if self.down:
            return
        if self.waiting:
            self._serve(now)
        self._free_eni(self._key(now))
        self.last_check = now
        self.next_check = now + self.timing.pool_check

    def _release(self, now: float, plan: tuple[tuple[int, int], ...]) -> None:
        """`tryUnassignCidrsFromAll`: the rules say how many cidrs to free; ipamd's map walks pick which ENIs
        and which of their unassigned cidrs."""
        want = sum(count for _, count in plan)
        freed = 0
        rng = self.rng
        for i in _rotation(rng, len(self.enis)):
            if freed >= want:
                break
            eni = self.enis[i]
            if eni.free == 0:
                continue
            cidrs = eni.cidrs
            drop: list[int] = []
            for j in _rotation(rng, len(cidrs)):
                if freed + len(drop) >= want:
                    break
                if cidrs[j].assigned == 0:
                    drop.append(j)
            for j in sorted(drop, reverse=True):
                cidr = cidrs.pop(j)
                cidr.dead = True
                eni.cooling -= cidr.cooling
            eni.free -= len(drop)
            freed += len(drop)
        if freed:
            self.held_ips -= freed * self.size
            self.subnet.give(freed * self.size)
            self.ec2_calls["unassign_prefixes" if self.mode is IpMode.PREFIX else "unassign_ips"] += 1

    def _free_eni(self, key: _Key) -> bool:
        index = self.rules.deletable_eni(key)
        if index is None:
            return False
        enis, due = key
        n = len(enis)
        if n > 2:  # more than one secondary ENI: the map walk may reach another deletable one first
            shift = self.rng.randrange(n)
            found = self.rules.deletable_eni((enis[shift:] + enis[:shift], due))
            if found is not None:
                index = (found + shift) % n
        eni = self.enis.pop(index)
        for cidr in eni.cidrs:
            cidr.dead = True
        ips = len(eni.cidrs) * self.size
        self.held_ips -= ips
        self.subnet.give(ips + 1)
        self.ec2_calls["detach_eni"] += 1
        return True

    def _sleep_until_change(self, now: float) -> None:
        """No action now: the next check that could act is the first grid point after a time-driven change."""
        changes: list[float] = []
        if self.backoff_until > now:
            changes.append(self.backoff_until)
        if self.last_decrease + self.timing.decrease_interval >= now and self.rules.would_release(self._key(now)):
            changes.append(self.last_decrease + self.timing.decrease_interval + _EPS)
        for eni in self.enis:
            if eni.primary or eni.assigned:
                continue
            if eni.created + self.timing.min_eni_age > now:
                changes.append(eni.created + self.timing.min_eni_age)
            if eni.cooling:  # rare: an ENI without pods whose IPs still cool; its last one ends then
                changes.append(max(t for t, c in self._cooling if c.eni is eni and not c.dead))
        if not changes:
            return  # asleep until a pod event pokes the node
        step = self.timing.pool_check
        soonest = min(changes)
        self.next_check = now + step * max(1, math.ceil((soonest - now) / step - _EPS))

    def _come_up(self, now: float) -> None:
        self.down_until = -INF
        if self._pending_targets is not None:
            self.targets = self._pending_targets
            self.rules = _rules(self.limits, self.mode, self.targets)
            self._pending_targets = None
        # nodeInit re-adds every ENI, so their age starts over; the checkpoint restores assigned IPs only, so
        # nothing is cooling any more.
        while self._cooling:
            _, cidr = self._cooling.popleft()
            cidr.cooling = 0
        for eni in self.enis:
            eni.created = now
            eni.cooling = 0
        self.last_decrease = -INF
        self.backoff_until = -INF
        self.last_check = now
        self.next_check = now if self._in_flight is None else INF
        if self.waiting:
            self._serve(now)
