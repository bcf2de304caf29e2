"""One node's ipamd pool as a state machine in simulated time, for the simulator.

The rules come from `pool.py`; this module adds what happens between pool checks: pods taking and returning
IPs, released IPs cooling down, EC2 calls taking time, aws-node restarts. Every method takes `now`; the
caller (the simulator's event loop) calls `advance(now)` at `wake_at` and the pod methods at trace times.

ipamd's monitor loop runs a pool check, sleeps 5 s, runs the next one; a grow blocks the loop for the EC2
call. A check that changes nothing is idempotent until the state changes, so while nothing happens the node
sleeps and `wake_at` jumps to the first 5 s grid point after the next time-driven change (an ENI coming of
age, a cooling IP expiring, the decrease interval or a subnet backoff ending), or to the next pod event.
That gives the same decisions as ticking every 5 s, at a fraction of the cost.
"""

from __future__ import annotations

import math
from collections import Counter
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
    """One secondary IP or /28 prefix; `cooling` holds the expiry times of its released IPs, oldest first."""

    __slots__ = ("assigned", "cooling", "eni")

    def __init__(self, eni: _Eni) -> None:
        self.eni = eni
        self.assigned = 0
        self.cooling: list[float] = []

    def live_cooling(self, now: float) -> int:
        c = self.cooling
        while c and c[0] <= now:
            c.pop(0)
        return len(c)


class _Eni:
    __slots__ = ("assigned", "cidrs", "created", "primary")

    def __init__(self, created: float, primary: bool = False) -> None:
        self.cidrs: list[_Cidr] = []
        self.created = created
        self.primary = primary
        self.assigned = 0


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
    ) -> None:
        self.name = name
        self.limits = limits
        self.mode = mode
        self.targets = targets
        self.subnet = subnet if subnet is not None else Subnet("")
        self.timing = timing or Timing()
        self.size = cidr_size(mode)
        self.pod_cap = limits.max_pods(mode) - HOST_NETWORK_PODS
        self.enis: list[_Eni] = [_Eni(now, primary=True)]
        self.pods: dict[str, _Cidr | None] = {}  # None: waiting for an IP
        self.waiting: dict[str, float] = {}  # pod -> start time, in arrival order
        self.held_ips = 0  # IPs in the datastore (pod IPs only, not ENI primaries)
        self.assigned = 0
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
        cidr.assigned -= 1
        cidr.eni.assigned -= 1
        cidr.cooling.append(now + self.timing.cooldown)
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

    def _poke(self, now: float) -> None:
        """The state changed: make sure a pool check runs at the next grid point."""
        if self.down or self._in_flight is not None:
            return
        step = self.timing.pool_check
        k = max(0, math.ceil((now - self.last_check) / step - _EPS))
        self.next_check = min(self.next_check, self.last_check + k * step)

    def _take_ip(self, now: float) -> _Cidr | None:
        size = self.size
        for eni in self.enis:
            for cidr in eni.cidrs:
                if cidr.assigned < size and size - cidr.assigned - cidr.live_cooling(now) > 0:
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
        soonest = INF
        for eni in self.enis:
            for cidr in eni.cidrs:
                if cidr.cooling and cidr.live_cooling(now):
                    soonest = min(soonest, cidr.cooling[0])
        self.serve_at = soonest

    def _state(self, now: float) -> PoolState:
        enis = []
        for eni in self.enis:
            free = cooling = 0
            for cidr in eni.cidrs:
                if cidr.assigned == 0:
                    free += 1
                if cidr.cooling:
                    cooling += cidr.live_cooling(now)
            enis.append(
                EniState(
                    cidrs=len(eni.cidrs),
                    assigned=eni.assigned,
                    free_cidrs=free,
                    cooling=cooling,
                    primary=eni.primary,
                    age=now - eni.created,
                )
            )
        return PoolState(tuple(enis), since_decrease=now - self.last_decrease)

    def _check(self, now: float) -> None:
        self.last_check = now
        self.next_check = INF
        lim, mode, targets = self.limits, self.mode, self.targets
        state = self._state(now)
        result = pool_check(lim, mode, targets, state)
        acted = False
        if result.too_low:
            if result.grow is not None and now >= self.backoff_until:
                if self._issue_grow(now, state, result.grow.eni, result.grow.cidrs):
                    return  # the loop blocks on the EC2 call; _land continues it
                acted = True  # a failed call still starts the backoff
        elif result.release:
            self._release(now, result.release)
            self.last_decrease = now
            acted = True
            state = self._state(now)
        acted = self._free_eni(now, state) or acted
        if acted:
            self.next_check = now + self.timing.pool_check
        else:
            self._sleep_until_change(now)

    def _issue_grow(self, now: float, state: PoolState, eni_index: int | None, cidrs: int) -> bool:
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
        self.held_ips += n * self.size
        if self.down:
            return
        if self.waiting:
            self._serve(now)
        self._free_eni(now, self._state(now))
        self.last_check = now
        self.next_check = now + self.timing.pool_check

    def _release(self, now: float, plan: tuple[tuple[int, int], ...]) -> None:
        freed = 0
        for index, count in plan:
            eni = self.enis[index]
            # Unassigned cidrs, cooling ones first: they are of no use to a pod for a while anyway.
            candidates = sorted((c for c in eni.cidrs if c.assigned == 0), key=lambda c: c.live_cooling(now) == 0)[
                :count
            ]
            drop = set(map(id, candidates))
            eni.cidrs = [c for c in eni.cidrs if id(c) not in drop]
            freed += len(candidates)
        if freed:
            self.held_ips -= freed * self.size
            self.subnet.give(freed * self.size)
            self.ec2_calls["unassign_prefixes" if self.mode is IpMode.PREFIX else "unassign_ips"] += 1

    def _free_eni(self, now: float, state: PoolState) -> bool:
        index = deletable_eni(self.limits, self.mode, self.targets, state)
        if index is None:
            return False
        eni = self.enis.pop(index)
        ips = len(eni.cidrs) * self.size
        self.held_ips -= ips
        self.subnet.give(ips + 1)
        self.ec2_calls["detach_eni"] += 1
        return True

    def _sleep_until_change(self, now: float) -> None:
        """No action now: the next check that could act is the first grid point after a time-driven change."""
        state = None
        changes: list[float] = []
        lim, mode, targets = self.limits, self.mode, self.targets
        if self.backoff_until > now:
            changes.append(self.backoff_until)
        if self.last_decrease + self.timing.decrease_interval >= now:
            state = self._state(now)
            if not is_too_low(lim, mode, targets, state) and is_too_high(lim, mode, targets, state):
                changes.append(self.last_decrease + self.timing.decrease_interval + _EPS)
        for eni in self.enis:
            if eni.primary or eni.assigned:
                continue
            if eni.created + self.timing.min_eni_age > now:
                changes.append(eni.created + self.timing.min_eni_age)
            for cidr in eni.cidrs:
                if cidr.cooling and cidr.live_cooling(now):
                    changes.append(cidr.cooling[-1])
        if not changes:
            return  # asleep until a pod event pokes the node
        step = self.timing.pool_check
        soonest = min(changes)
        self.next_check = now + step * max(1, math.ceil((soonest - now) / step - _EPS))

    def _come_up(self, now: float) -> None:
        self.down_until = -INF
        if self._pending_targets is not None:
            self.targets = self._pending_targets
            self._pending_targets = None
        for eni in self.enis:  # nodeInit re-adds every ENI: their age starts over
            eni.created = now
        self.last_decrease = -INF
        self.backoff_until = -INF
        self.last_check = now
        self.next_check = now if self._in_flight is None else INF
        if self.waiting:
            self._serve(now)
