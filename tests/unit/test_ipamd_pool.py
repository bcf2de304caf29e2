"""ipamd's pool arithmetic: the worked examples of the VPC CNI docs, every precedence rule, and properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.hypothesis_profiles import examples
from warmpool.ipamd.env import IpamdTargets
from warmpool.ipamd.limits import InstanceLimits, IpMode
from warmpool.ipamd.pool import (
    EniState,
    GrowStep,
    PoolShape,
    PoolState,
    deletable_eni,
    grow_step,
    ip_targets_total,
    is_too_high,
    is_too_low,
    pool_check,
    release_plan,
    steady_state,
    target_state,
)

T3_SMALL = InstanceLimits("t3.small", 3, 4, vcpus=2)
M5_LARGE = InstanceLimits("m5.large", 3, 10, vcpus=2)
M5_4XL = InstanceLimits("m5.4xlarge", 8, 30, vcpus=16)
SEC, PFX = IpMode.SECONDARY, IpMode.PREFIX


def pool(*enis: tuple[int, int], old: bool = True) -> PoolState:
    """ENIs as (cidrs, assigned) in secondary mode; the first is the primary."""
    age = 1e9 if old else 0.0
    return PoolState(
        tuple(EniState(c, a, c - a, 0, primary=i == 0, age=age) for i, (c, a) in enumerate(enis)),
    )


# ----- the worked examples in reference/vpc-cni.md -----


@pytest.mark.parametrize(
    ("targets", "pods", "enis", "ips", "free"),
    [
        (IpamdTargets(warm_eni=1), 0, 1, 3, 3),
        (IpamdTargets(warm_eni=1), 5, 3, 9, 4),
        (IpamdTargets(warm_ip=1, minimum_ip=1), 5, 2, 6, 1),
        (IpamdTargets(warm_ip=2, minimum_ip=5), 0, 2, 5, 5),
        (IpamdTargets(warm_ip=2, minimum_ip=5), 5, 3, 7, 2),
    ],
)
def test_t3_small_secondary_examples(targets: IpamdTargets, pods: int, enis: int, ips: int, free: int) -> None:
    assert steady_state(T3_SMALL, SEC, targets, pods) == PoolShape(enis, ips, 0, free)


@pytest.mark.parametrize(("pods", "enis", "prefixes"), [(0, 1, 1), (5, 1, 2), (16, 1, 2), (17, 1, 3), (58, 2, 5)])
def test_t3_small_prefix_examples(pods: int, enis: int, prefixes: int) -> None:
    shape = steady_state(T3_SMALL, PFX, IpamdTargets(warm_prefix=1), pods)
    assert (shape.enis, shape.prefixes_held) == (enis, prefixes)
    assert shape.ips_held == 16 * prefixes
    assert shape.free_ips == 16 * prefixes - pods


def test_m5_large_default_five_pods() -> None:
    # 9 usable slots per ENI: 5 pods leave 4 free < 9, so a second full ENI is attached.
    assert steady_state(M5_LARGE, SEC, IpamdTargets(), 5) == PoolShape(2, 18, 0, 13)


# ----- precedence -----


def test_ip_targets_override_warm_eni() -> None:
    # WARM_ENI_TARGET=3 would want 3 spare ENIs; WARM_IP_TARGET alone decides.
    assert steady_state(M5_LARGE, SEC, IpamdTargets(warm_eni=3, warm_ip=2), 5) == PoolShape(1, 7, 0, 2)


def test_minimum_alone_means_warm_zero() -> None:
    targets = IpamdTargets(warm_eni=1, minimum_ip=4)
    assert steady_state(M5_LARGE, SEC, targets, 0) == PoolShape(1, 4, 0, 4)
    # datastoreTargetState: short = max(0 - available, MINIMUM - total) = 0 once the minimum is held, so the
    # pool never grows past it: pods beyond the minimum get no IP (until another pod's IP is released).
    assert steady_state(M5_LARGE, SEC, targets, 6) == PoolShape(1, 4, 0, 0)
    assert is_too_low(M5_LARGE, SEC, targets, pool((4, 4))) is False


def test_ip_targets_override_warm_prefix() -> None:
    # WARM_PREFIX_TARGET=3 ignored; WARM_IP_TARGET=1 with 20 pods needs ceil(21/16) = 2 prefixes.
    shape = steady_state(M5_LARGE, PFX, IpamdTargets(warm_prefix=3, warm_ip=1), 20)
    assert shape.prefixes_held == 2
    assert steady_state(M5_LARGE, PFX, IpamdTargets(warm_prefix=3), 20).prefixes_held == 5


def test_warm_eni_unused_in_prefix_mode() -> None:
    a = steady_state(M5_LARGE, PFX, IpamdTargets(warm_eni=0, warm_prefix=1), 3)
    b = steady_state(M5_LARGE, PFX, IpamdTargets(warm_eni=5, warm_prefix=1), 3)
    assert a == b


def test_minimum_in_prefix_mode_rounds_up_to_prefixes() -> None:
    shape = steady_state(M5_LARGE, PFX, IpamdTargets(warm_ip=1, minimum_ip=20), 0)
    assert shape.prefixes_held == 2


def test_warm_eni_zero_grows_only_when_empty() -> None:
    targets = IpamdTargets(warm_eni=0)
    assert is_too_low(T3_SMALL, SEC, targets, pool((0, 0)))
    assert not is_too_low(T3_SMALL, SEC, targets, pool((3, 2)))
    assert is_too_low(T3_SMALL, SEC, targets, pool((3, 3)))


# ----- grow steps -----


def test_grow_fills_existing_eni_before_new_one() -> None:
    targets = IpamdTargets(warm_ip=5)
    assert grow_step(M5_LARGE, SEC, targets, pool((6, 6))) == GrowStep(0, 3)  # room 3 < short 5
    assert grow_step(M5_LARGE, SEC, targets, pool((9, 9))) == GrowStep(None, 5)
    # No IP targets: a whole ENI's worth.
    assert grow_step(M5_LARGE, SEC, IpamdTargets(), pool((4, 4))) == GrowStep(0, 5)
    assert grow_step(M5_LARGE, SEC, IpamdTargets(), pool((9, 9))) == GrowStep(None, 9)


def test_no_grow_at_max_enis_or_max_pods() -> None:
    full = pool((3, 3), (3, 3), (3, 3))
    assert is_too_low(T3_SMALL, SEC, IpamdTargets(), full)
    assert grow_step(T3_SMALL, SEC, IpamdTargets(), full) is None
    # Prefix mode: 7 prefixes = 112 IPs >= max pods 110 on a 2-vCPU node: never too low.
    seven = PoolState((EniState(7, 110, 0, 0, primary=True),))
    assert not is_too_low(M5_LARGE, PFX, IpamdTargets(warm_prefix=1), seven)


def test_prefix_grow_amounts() -> None:
    empty = PoolState((EniState(0, 0, 0, 0, primary=True),))
    assert grow_step(M5_LARGE, PFX, IpamdTargets(warm_prefix=3), empty) == GrowStep(0, 3)
    assert grow_step(M5_LARGE, PFX, IpamdTargets(warm_ip=40), empty) == GrowStep(0, 3)
    assert grow_step(M5_LARGE, PFX, IpamdTargets(warm_prefix=0, warm_ip=0, minimum_ip=1), empty) == GrowStep(0, 1)


# ----- shrinking -----


def test_target_state_short_and_over() -> None:
    t = IpamdTargets(warm_ip=2, minimum_ip=10)
    assert target_state(M5_LARGE, SEC, t, pool((9, 8), (3, 0))) == (0, 2, True)  # 4 free, 2 above min 10
    assert target_state(M5_LARGE, SEC, t, pool((9, 9), (2, 0))) == (0, 0, True)  # 2 free: exactly warm
    assert target_state(M5_LARGE, SEC, t, pool((9, 1))) == (1, 0, True)  # total 9 < min 10 by 1
    assert target_state(M5_LARGE, SEC, IpamdTargets(), pool((9, 1))) == (0, 0, False)


def test_warm_eni_never_releases_single_ips() -> None:
    state = pool((9, 0), (9, 0))
    assert not is_too_high(M5_LARGE, SEC, IpamdTargets(), state)
    assert pool_check(M5_LARGE, SEC, IpamdTargets(), state).release == ()


def test_release_respects_decrease_interval() -> None:
    t = IpamdTargets(warm_ip=1)
    state = pool((9, 2))
    assert pool_check(M5_LARGE, SEC, t, state).release == ((0, 6),)
    recent = PoolState(state.enis, since_decrease=30.0)
    assert pool_check(M5_LARGE, SEC, t, recent).release == ()


def test_prefix_release_keeps_warm_prefixes() -> None:
    state = PoolState((EniState(4, 3, 3, 0, primary=True),))  # 3 free prefixes
    assert release_plan(M5_LARGE, PFX, IpamdTargets(warm_prefix=1), state) == ((0, 2),)
    # WARM_IP_TARGET=16 with 3 assigned needs ceil(19/16) = 2 prefixes: 2 of 4 can go.
    assert release_plan(M5_LARGE, PFX, IpamdTargets(warm_ip=16), state) == ((0, 2),)


def test_eni_removal_rules() -> None:
    t = IpamdTargets()
    state = pool((9, 2), (9, 0), (9, 0))  # available 25 >= 2 * 9
    assert deletable_eni(M5_LARGE, SEC, t, state) == 2
    assert deletable_eni(M5_LARGE, SEC, t, pool((9, 2), (9, 0), (9, 0), old=False)) is None  # too young
    assert deletable_eni(M5_LARGE, SEC, t, pool((9, 2), (9, 0))) is None  # available 16 < 18
    cooling = PoolState((state.enis[0], state.enis[1], EniState(9, 0, 9, 1, age=1e9)))
    assert deletable_eni(M5_LARGE, SEC, t, cooling) == 1  # the newest is cooling; the next one goes
    # IP targets: an ENI needed for WARM_IP_TARGET or MINIMUM_IP_TARGET stays.
    assert deletable_eni(M5_LARGE, SEC, IpamdTargets(warm_ip=9), pool((9, 9), (9, 0))) is None
    assert deletable_eni(M5_LARGE, SEC, IpamdTargets(warm_ip=1, minimum_ip=12), pool((9, 0), (9, 0))) is None
    assert deletable_eni(M5_LARGE, SEC, IpamdTargets(warm_ip=1, minimum_ip=9), pool((9, 0), (9, 0))) == 1


# ----- properties -----

TYPES = [T3_SMALL, M5_LARGE, M5_4XL, InstanceLimits("m5.xlarge", 4, 15, vcpus=4)]
targets_st = st.builds(
    IpamdTargets,
    warm_eni=st.integers(0, 3),
    warm_ip=st.integers(0, 20),
    minimum_ip=st.integers(0, 60),
    warm_prefix=st.integers(0, 3),
)


@settings(max_examples=examples(100), deadline=None)
@given(lim=st.sampled_from(TYPES), mode=st.sampled_from(list(IpMode)), targets=targets_st, pods=st.integers(0, 150))
def test_steady_state_within_limits(lim: InstanceLimits, mode: IpMode, targets: IpamdTargets, pods: int) -> None:
    shape = steady_state(lim, mode, targets, pods)
    assert 1 <= shape.enis <= lim.max_enis
    assert shape.ips_held <= lim.max_pod_ips(mode)
    placed = shape.ips_held - shape.free_ips
    can_place = min(pods, lim.max_pod_ips(mode), lim.max_pods(mode) - 2)
    frozen = targets.warm_ip == 0 and targets.minimum_ip > 0  # never grows past the minimum
    assert placed == can_place or (placed < can_place and frozen)
    assert shape.free_ips >= 0
    if mode is IpMode.SECONDARY:
        assert shape.prefixes_held == 0
    else:
        assert shape.ips_held == 16 * shape.prefixes_held
        assert shape.prefixes_held <= shape.enis * lim.slots_per_eni


@settings(max_examples=examples(150), deadline=None)
@given(lim=st.sampled_from(TYPES), targets=targets_st, pods=st.integers(0, 100))
def test_ip_targets_hold_warm_and_minimum_when_room(lim: InstanceLimits, targets: IpamdTargets, pods: int) -> None:
    """Secondary mode with IP targets: the settled pool has max(pods + WARM_IP, MINIMUM_IP) IPs, capped by
    what the node can hold."""
    if targets.warm_ip == 0:
        return
    shape = steady_state(lim, SEC, targets, pods)
    placed = min(pods, lim.max_pod_ips(SEC))
    assert shape.ips_held == min(max(placed + targets.warm_ip, targets.minimum_ip), lim.max_pod_ips(SEC))


@settings(max_examples=examples(100), deadline=None)
@given(lim=st.sampled_from(TYPES), warm=st.integers(1, 3), pods=st.integers(0, 200))
def test_warm_eni_keeps_whole_enis(lim: InstanceLimits, warm: int, pods: int) -> None:
    shape = steady_state(lim, SEC, IpamdTargets(warm_eni=warm), pods)
    slots = lim.slots_per_eni
    assert shape.ips_held == shape.enis * slots  # never a partly filled ENI
    if shape.enis < lim.max_enis:
        assert shape.free_ips >= warm * slots


def steady_state_cidr_by_cidr(lim: InstanceLimits, mode: IpMode, targets: IpamdTargets, pods: int) -> PoolShape:
    """The first implementation of `steady_state`, kept as the reference: every cidr's assigned count is
    tracked and each pod count is replayed from an empty node. The model's fast version (ENIs as counts, one
    pass for every pod count) must agree with it."""
    size = 16 if mode is IpMode.PREFIX else 1
    enis: list[list[int]] = [[]]
    cap = min(lim.max_pod_ips(mode), lim.max_pods(mode) - 2)

    def state() -> PoolState:
        return PoolState(
            tuple(
                EniState(cidrs=len(e), assigned=sum(e), free_cidrs=sum(1 for a in e if a == 0), primary=i == 0)
                for i, e in enumerate(enis)
            )
        )

    def place() -> bool:
        for e in enis:
            for j, a in enumerate(e):
                if a < size:
                    e[j] = a + 1
                    return True
        return False

    def apply_grow(step: GrowStep) -> None:
        if step.eni is None:
            enis.append([0] * step.cidrs)
        else:
            enis[step.eni].extend([0] * step.cidrs)

    def settle() -> None:
        seen: set[tuple[tuple[int, ...], ...]] = set()
        while True:
            key = tuple(tuple(e) for e in enis)
            if key in seen:
                while (step := pool_check(lim, mode, targets, state()).grow) is not None:
                    apply_grow(step)
                return
            seen.add(key)
            s = state()
            check = pool_check(lim, mode, targets, s)
            if check.grow is not None:
                apply_grow(check.grow)
                continue
            if check.release:
                for i, n in check.release:
                    cidrs = enis[i]
                    for j in range(len(cidrs) - 1, -1, -1):
                        if n and cidrs[j] == 0:
                            del cidrs[j]
                            n -= 1
                continue
            victim = deletable_eni(lim, mode, targets, s)
            if victim is None:
                return
            del enis[victim]

    settle()
    for _ in range(min(max(pods, 0), cap)):
        while not place():
            before = state().total_cidrs
            settle()
            if state().total_cidrs == before:
                break
        settle()
    s = state()
    total = s.total_ips(mode)
    return PoolShape(len(enis), total, s.total_cidrs if mode is IpMode.PREFIX else 0, total - s.assigned)


@settings(max_examples=examples(300), deadline=None)
@given(
    lim=st.sampled_from([*TYPES, InstanceLimits("m4.large", 2, 10, hypervisor="xen", vcpus=2)]),
    mode=st.sampled_from(list(IpMode)),
    targets=targets_st,
    pods=st.integers(-2, 260),
)
def test_steady_state_agrees_with_the_cidr_by_cidr_reference(
    lim: InstanceLimits, mode: IpMode, targets: IpamdTargets, pods: int
) -> None:
    assert steady_state(lim, mode, targets, pods) == steady_state_cidr_by_cidr(lim, mode, targets, pods)


@pytest.mark.parametrize(("max_eni", "enis"), [(None, 3), (0, 3), (1, 1), (2, 2), (3, 3), (9, 3)])
def test_max_eni_lowers_the_enis_never_raises_them(max_eni: int | None, enis: int) -> None:
    assert M5_LARGE.with_max_eni(max_eni).max_enis == enis
    assert steady_state(M5_LARGE.with_max_eni(max_eni), SEC, IpamdTargets(), 100).enis == enis


M5_24XL = InstanceLimits("m5.24xlarge", 15, 50, vcpus=96)


@settings(max_examples=examples(300), deadline=None)
@given(
    mode=st.sampled_from(list(IpMode)),
    pods=st.integers(0, 200),
    warm=st.integers(1, 40),
    minimum=st.integers(0, 220),
)
def test_ip_targets_total_is_the_steady_state_where_no_limit_binds(
    mode: IpMode, pods: int, warm: int, minimum: int
) -> None:
    targets = IpamdTargets(warm_ip=warm, minimum_ip=minimum)
    assert ip_targets_total(mode, targets, pods) == steady_state(M5_24XL, mode, targets, pods).ips_held


def test_ip_targets_total_has_no_instance_limit() -> None:
    # 800 pods plus 5 warm IPs is more than any instance holds: the cluster-wide density needs no limit.
    assert ip_targets_total(IpMode.SECONDARY, IpamdTargets(warm_ip=5), 800) == 805
    assert ip_targets_total(IpMode.PREFIX, IpamdTargets(warm_ip=1, minimum_ip=40), 3) == 48
