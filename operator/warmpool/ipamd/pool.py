"""The pure arithmetic of one node's ipamd pool: when it grows, by how much, what it releases.

Restates `isDatastorePoolTooLow`, `datastoreTargetState`, `tryAssignIPs`/`tryAssignPrefixes`,
`getPrefixesNeeded`, `GetENIResourcesToAllocate`, `isDatastorePoolTooHigh`, `tryUnassignCidrsFromAll`,
`shouldRemoveExtraENIs` and `getDeletableENI` (pkg/ipamd/ipamd.go, pkg/ipamd/datastore/data_store.go).
A "cidr" is what fills one ENI slot: one secondary IP, or one /28 prefix of 16 IPs.

Time never comes from a clock: ENI ages and the time since the last decrease are fields of the state.
Where ipamd walks a Go map (random order), this model picks a fixed order so runs are reproducible:
grow fills the oldest ENI with room; release and ENI removal start from the newest ENI.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, replace
from functools import lru_cache

from warmpool.ipamd.env import IpamdTargets
from warmpool.ipamd.limits import IPS_PER_PREFIX, InstanceLimits, IpMode

POOL_CHECK_INTERVAL = 5.0  # ipPoolMonitorInterval
DECREASE_INTERVAL = 30.0  # decreaseIPPoolInterval
MIN_ENI_AGE = 60.0  # minENILifeTime
IP_COOLDOWN = 30.0  # IP_COOLDOWN_PERIOD default
INSUFFICIENT_CIDR_BACKOFF = 120.0  # insufficientCidrErrorCooldown
INF = math.inf


def cidr_size(mode: IpMode) -> int:
    return IPS_PER_PREFIX if mode is IpMode.PREFIX else 1


@dataclass(frozen=True, slots=True)
class EniState:
    """One attached ENI as the pool rules see it."""

    cidrs: int = 0  # IPs (secondary mode) or /28 prefixes (prefix mode) held in its slots
    assigned: int = 0  # pod IPs in use on it
    free_cidrs: int = 0  # cidrs without any assigned IP (cooling IPs do not count as assigned)
    cooling: int = 0  # unassigned IPs still in their cooldown
    primary: bool = False
    age: float = INF  # seconds since ipamd (re)discovered it; restarts with aws-node


@dataclass(frozen=True, slots=True)
class PoolState:
    enis: tuple[EniState, ...]
    since_decrease: float = INF  # seconds since the last decreaseDatastorePool

    def total_ips(self, mode: IpMode) -> int:
        return sum(e.cidrs for e in self.enis) * cidr_size(mode)

    @property
    def total_cidrs(self) -> int:
        return sum(e.cidrs for e in self.enis)

    @property
    def assigned(self) -> int:
        return sum(e.assigned for e in self.enis)

    @property
    def free_cidrs(self) -> int:
        return sum(e.free_cidrs for e in self.enis)

    def available(self, mode: IpMode) -> int:
        """total - assigned: cooling IPs count as available here, though no pod can get them yet."""
        return self.total_ips(mode) - self.assigned


@dataclass(frozen=True, slots=True)
class GrowStep:
    """One EC2 call: add `cidrs` to ENI number `eni`, or attach a new ENI holding them (`eni` is None)."""

    eni: int | None
    cidrs: int


@dataclass(frozen=True, slots=True)
class CheckResult:
    too_low: bool
    grow: GrowStep | None = None  # None when too low but nothing can be added (no room, max ENIs)
    release: tuple[tuple[int, int], ...] = ()  # (ENI index, cidrs to free), when the decrease runs


def target_state(
    limits: InstanceLimits, mode: IpMode, targets: IpamdTargets, state: PoolState
) -> tuple[int, int, bool]:
    """`datastoreTargetState`: (short, over, defined); in prefix mode short and over are in prefixes."""
    if not targets.ip_targets_defined:
        return 0, 0, False
    total = state.total_ips(mode)
    available = total - state.assigned
    short = max(targets.warm_ip - available, 0)
    short = max(short, targets.minimum_ip - total)
    over = max(available - targets.warm_ip, 0)
    over = max(min(over, total - targets.minimum_ip), 0)
    if mode is IpMode.PREFIX:
        short_prefixes = _div_ceil(short, IPS_PER_PREFIX)
        needed_for_warm = _div_ceil(state.assigned + targets.warm_ip, IPS_PER_PREFIX)
        needed_for_min = _div_ceil(targets.minimum_ip, IPS_PER_PREFIX)
        over_prefixes = max(min(state.free_cidrs, state.total_cidrs - needed_for_warm), 0)
        over_prefixes = max(min(over_prefixes, state.total_cidrs - needed_for_min), 0)
        return short_prefixes, over_prefixes, True
    return short, over, True


def is_too_low(limits: InstanceLimits, mode: IpMode, targets: IpamdTargets, state: PoolState) -> bool:
    """`isDatastorePoolTooLow`. ipamd compares total IPs with the kubelet's max pods, host-network pods included."""
    if state.total_ips(mode) >= limits.max_pods(mode):
        return False
    short, _, defined = target_state(limits, mode, targets, state)
    if defined:
        return short > 0
    warm = targets.warm_prefix if mode is IpMode.PREFIX else targets.warm_eni
    unit = IPS_PER_PREFIX if mode is IpMode.PREFIX else limits.slots_per_eni
    available = state.available(mode)
    return available < unit * warm or (warm == 0 and available == 0)


def is_too_high(limits: InstanceLimits, mode: IpMode, targets: IpamdTargets, state: PoolState) -> bool:
    """`isDatastorePoolTooHigh`: only IP targets or (in prefix mode) the prefix target ever release cidrs."""
    _, over, defined = target_state(limits, mode, targets, state)
    if defined:
        return over > 0
    if mode is IpMode.PREFIX:  # warmPrefixTargetDefined holds for any value >= 0 in prefix mode
        return state.free_cidrs > targets.warm_prefix
    return False


def grow_step(limits: InstanceLimits, mode: IpMode, targets: IpamdTargets, state: PoolState) -> GrowStep | None:
    """`increaseDatastorePool` given the pool is too low: fill an ENI with room, else attach a new one."""
    slots = limits.slots_per_eni
    short, _, defined = target_state(limits, mode, targets, state)
    if mode is IpMode.PREFIX:
        # getPrefixesNeeded: at least one prefix; WARM_IP/MINIMUM_IP take precedence over WARM_PREFIX.
        want = max(1, short) if defined else max(1, targets.warm_prefix - state.free_cidrs)
        new_eni = min(want, slots)
    else:
        if defined and short == 0:
            return None
        want = short if defined else slots
        new_eni = min(short, slots) if defined else slots
    for i, eni in enumerate(state.enis):
        if eni.cidrs < slots:
            return GrowStep(i, min(slots - eni.cidrs, want))
    if len(state.enis) < limits.max_enis and new_eni > 0:
        return GrowStep(None, new_eni)
    return None


def release_plan(
    limits: InstanceLimits, mode: IpMode, targets: IpamdTargets, state: PoolState
) -> tuple[tuple[int, int], ...]:
    """`tryUnassignCidrsFromAll`: how many unassigned cidrs to free from which ENI (newest ENI first)."""
    _, over, defined = target_state(limits, mode, targets, state)
    if not defined:
        over = max(state.free_cidrs - targets.warm_prefix, 0) if mode is IpMode.PREFIX else 0
    plan: list[tuple[int, int]] = []
    for i in range(len(state.enis) - 1, -1, -1):
        if over <= 0:
            break
        n = min(over, state.enis[i].free_cidrs)
        if n > 0:
            plan.append((i, n))
            over -= n
    return tuple(plan)


def pool_check(limits: InstanceLimits, mode: IpMode, targets: IpamdTargets, state: PoolState) -> CheckResult:
    """The grow-or-decrease half of one `updateIPPoolIfRequired` pass (ENI removal is `deletable_eni`)."""
    if is_too_low(limits, mode, targets, state):
        return CheckResult(True, grow_step(limits, mode, targets, state))
    if state.since_decrease > DECREASE_INTERVAL and is_too_high(limits, mode, targets, state):
        return CheckResult(False, release=release_plan(limits, mode, targets, state))
    return CheckResult(False)


def should_remove_extra_enis(limits: InstanceLimits, mode: IpMode, targets: IpamdTargets, state: PoolState) -> bool:
    if targets.ip_targets_defined:
        return True  # getDeletableENI then checks the IP targets ENI by ENI
    warm = (targets.warm_prefix if mode is IpMode.PREFIX else targets.warm_eni) + 1
    if state.available(mode) >= warm * limits.ips_per_eni(mode):
        return True
    # CheckFreeableENIexists: in prefix mode any secondary ENI without pods is worth a look.
    return mode is IpMode.PREFIX and any(not e.primary and e.assigned == 0 for e in state.enis)


def deletable_eni(limits: InstanceLimits, mode: IpMode, targets: IpamdTargets, state: PoolState) -> int | None:
    """`shouldRemoveExtraENIs` + `getDeletableENI`: the index of the ENI to detach now, or None."""
    if not should_remove_extra_enis(limits, mode, targets, state):
        return None
    size = cidr_size(mode)
    total_ips = state.total_ips(mode)
    warm_ip_need = _div_ceil(targets.warm_ip, size) * size
    min_ip_need = _div_ceil(targets.minimum_ip, size) * size
    total_free_ips = total_ips - state.assigned
    total_free_cidrs = state.free_cidrs
    for i in range(len(state.enis) - 1, -1, -1):
        eni = state.enis[i]
        if eni.primary or eni.age < MIN_ENI_AGE or eni.cooling > 0 or eni.assigned > 0:
            continue
        others_free_ips = total_free_ips - (eni.cidrs * size - eni.assigned)
        if targets.warm_ip != 0 and others_free_ips < warm_ip_need:
            continue
        if targets.minimum_ip != 0 and total_ips - eni.cidrs * size < min_ip_need:
            continue
        if (
            mode is IpMode.PREFIX
            and targets.warm_prefix != 0
            and total_free_cidrs - eni.free_cidrs < targets.warm_prefix
        ):
            continue
        return i
    return None


def _div_ceil(x: int, y: int) -> int:
    return (x + y - 1) // y


# ----- steady state -----


_NO_LIMITS = InstanceLimits("no-limits", max_enis=1, ipv4_per_eni=2)  # target_state reads no instance limit


def ip_targets_total(mode: IpMode, targets: IpamdTargets, pods: int) -> int:
    """IPs a pool under IP targets settles at with `pods` pods when no instance limit binds: it grows by what
    `target_state` finds short and frees what it finds over, in whole cidrs, until neither is left. For a
    cluster-wide density that belongs to no one instance type. Needs WARM_IP_TARGET >= 1: with MINIMUM_IP_TARGET
    alone ipamd never grows past the minimum and the pods beyond it get no IP."""
    size = cidr_size(mode)
    cidrs = _div_ceil(pods, size)
    for _ in range(8):  # one grow or release settles it; the bound only guards against a cycle
        state = PoolState((EniState(cidrs=cidrs, assigned=pods, free_cidrs=cidrs - _div_ceil(pods, size)),))
        short, over, defined = target_state(_NO_LIMITS, mode, targets, state)
        if not defined or (short == 0 and over == 0):
            break
        cidrs += short if short else -over
    return cidrs * size


@dataclass(frozen=True, slots=True)
class PoolShape:
    """What a node settles at: ENIs attached, IPs and prefixes held, and IPs no pod uses."""

    enis: int
    ips_held: int
    prefixes_held: int
    free_ips: int


def steady_state(limits: InstanceLimits, mode: IpMode, targets: IpamdTargets, pods: int) -> PoolShape:
    """The pool of a fresh node after `pods` pods started one by one, each once the pool had settled, and
    every grow, release and ENI removal ipamd would still make has been made (no timers, no cooldown).
    Pods beyond what the node can hold are not placed."""
    return _filling(limits, mode, targets).shape(pods)


@lru_cache(maxsize=512)
def _filling(limits: InstanceLimits, mode: IpMode, targets: IpamdTargets) -> _Filling:
    return _Filling(limits, mode, targets)


class _Filling:
    """One node filling up pod by pod under fixed targets: each pod count's pool is the previous one plus one
    pod, so the shapes are computed once, as far as they are asked for, and kept.

    A pod takes the first IP with room, ENI by ENI and cidr by cidr, and pods only arrive here, so each ENI's
    assigned IPs stay packed into its first cidrs: an ENI is fully described by its cidrs and assigned IPs,
    and its wholly free cidrs are `cidrs - ceil(assigned / size)`."""

    def __init__(self, limits: InstanceLimits, mode: IpMode, targets: IpamdTargets) -> None:
        self.limits, self.mode, self.targets = limits, mode, targets
        self.size = cidr_size(mode)
        self.cap = limits.pod_ip_cap(mode)
        self.enis: list[EniState] = [EniState(primary=True)]  # index 0 is the primary ENI, never removed
        self._lock = threading.Lock()
        self._settle()
        self.shapes = [self._shape()]

    def shape(self, pods: int) -> PoolShape:
        pods = min(max(pods, 0), self.cap)
        with self._lock:  # shared through the cache: one thread extends it at a time
            while len(self.shapes) <= pods:
                self._add_pod()
                self.shapes.append(self._shape())
        return self.shapes[pods]

    def _eni(self, cidrs: int, assigned: int, primary: bool = False) -> EniState:
        return EniState(
            cidrs=cidrs, assigned=assigned, free_cidrs=cidrs - _div_ceil(assigned, self.size), primary=primary
        )

    def _check(self) -> CheckResult:
        return pool_check(self.limits, self.mode, self.targets, PoolState(tuple(self.enis)))

    def _place(self) -> bool:
        for i, e in enumerate(self.enis):
            if e.assigned < e.cidrs * self.size:
                self.enis[i] = self._eni(e.cidrs, e.assigned + 1, e.primary)
                return True
        return False

    def _grow(self, step: GrowStep) -> None:
        if step.eni is None:
            self.enis.append(self._eni(step.cidrs, 0))
        else:
            e = self.enis[step.eni]
            self.enis[step.eni] = self._eni(e.cidrs + step.cidrs, e.assigned, e.primary)

    def _settle(self) -> None:
        # Each pass changes the pool. Settings where ipamd itself thrashes (WARM_ENI_TARGET=0 on a full pool:
        # attach an ENI, free it once it is a minute old, attach again; prefix mode with every target 0) make
        # the passes cycle: then stop on the grown side of the cycle, where the next pod finds its IP.
        seen: set[tuple[EniState, ...]] = set()
        while True:
            state = PoolState(tuple(self.enis))
            if state.enis in seen:
                while (step := self._check().grow) is not None:
                    self._grow(step)
                return
            seen.add(state.enis)
            check = pool_check(self.limits, self.mode, self.targets, state)
            if check.grow is not None:
                self._grow(check.grow)
                continue
            if check.release:
                for i, n in check.release:
                    e = self.enis[i]  # release_plan frees only wholly free cidrs: the packed tail
                    self.enis[i] = self._eni(e.cidrs - n, e.assigned, e.primary)
                continue
            victim = deletable_eni(self.limits, self.mode, self.targets, state)
            if victim is None:
                return
            del self.enis[victim]

    def _add_pod(self) -> None:
        while not self._place():
            before = sum(e.cidrs for e in self.enis)
            self._settle()
            if sum(e.cidrs for e in self.enis) == before:  # the pool cannot grow: no room for this pod
                break
        self._settle()

    def _shape(self) -> PoolShape:
        cidrs = sum(e.cidrs for e in self.enis)
        total = cidrs * self.size
        return PoolShape(
            enis=len(self.enis),
            ips_held=total,
            prefixes_held=cidrs if self.mode is IpMode.PREFIX else 0,
            free_ips=total - sum(e.assigned for e in self.enis),
        )


def with_age(state: PoolState, age: float) -> PoolState:
    """The same pool with every ENI `age` seconds old (handy in tests)."""
    return replace(state, enis=tuple(replace(e, age=age) for e in state.enis))
