"""ipamd's random placement in the node model: reproducible for a seed, spread like a Go map walk, counters
that stay consistent, and a memo of the pool rules that cannot change a decision."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from warmpool.ipamd.env import IpamdTargets
from warmpool.ipamd.limits import InstanceLimits, IpMode
from warmpool.ipamd.node import NodePool, _Key, _state_of
from warmpool.ipamd.pool import (
    DECREASE_INTERVAL,
    MIN_ENI_AGE,
    EniState,
    PoolState,
    deletable_eni,
    is_too_high,
    is_too_low,
    pool_check,
)
from warmpool.sim.engine import EngineConfig, StaticStrategy, simulate
from warmpool.sim.scenarios import generate

M5_LARGE = InstanceLimits("m5.large", 3, 10, vcpus=2)
M5_4XL = InstanceLimits("m5.4xlarge", 8, 30, vcpus=16)


def run_until(node: NodePool, t: float) -> None:
    while node.wake_at <= t:
        node.advance(node.wake_at)


def check_counters(node: NodePool) -> None:
    assert node.assigned == sum(c.assigned for e in node.enis for c in e.cidrs)
    assert node.held_ips == sum(len(e.cidrs) for e in node.enis) * node.size
    for eni in node.enis:
        assert eni.assigned == sum(c.assigned for c in eni.cidrs)
        assert eni.free == sum(1 for c in eni.cidrs if c.assigned == 0)
        assert eni.cooling == sum(c.cooling for c in eni.cidrs)
        assert all(0 <= c.assigned + c.cooling <= node.size for c in eni.cidrs)


def prefixes_in_use(seed: int) -> int:
    node = NodePool("n", M5_LARGE, IpMode.PREFIX, IpamdTargets(warm_ip=1, minimum_ip=64), 0.0, seed=seed)
    run_until(node, 5)
    for i in range(6):
        node.pod_start(f"p{i}", 6.0 + i)
    return sum(1 for e in node.enis for c in e.cidrs if c.assigned)


def test_pods_spread_over_prefixes_like_a_map_walk() -> None:
    # First fit would put 6 pods in one /28; ipamd's random walk spreads them over the 4 prefixes held.
    used = [prefixes_in_use(seed) for seed in range(20)]
    assert max(used) > 1
    assert len(set(used)) > 1


def test_placement_is_reproducible_for_a_seed() -> None:
    assert [prefixes_in_use(7) for _ in range(3)] == [prefixes_in_use(7)] * 3


def test_simulation_is_deterministic_for_a_seed_and_differs_across_seeds() -> None:
    trace = generate("mixed", 1, nodes=4, hours=0.5)

    def idle(seed: int) -> float:
        run = simulate(trace, StaticStrategy("WARM_PREFIX_TARGET=2"), IpMode.PREFIX, EngineConfig(seed=seed))
        return run.metrics.idle_ip_hours

    assert idle(3) == idle(3)
    assert len({idle(s) for s in range(3, 8)}) > 1


def test_restart_forgets_cooling_ips() -> None:
    node = NodePool("n", M5_LARGE, IpMode.SECONDARY, IpamdTargets(warm_ip=1, minimum_ip=3), 0.0)
    run_until(node, 5)
    for i in range(3):
        node.pod_start(f"p{i}", 6.0)
    run_until(node, 20)
    for i in range(3):
        node.pod_stop(f"p{i}", 20.0)
    assert node.cooling_ips(21.0) == 3
    node.restart(21.0, IpamdTargets(warm_ip=1, minimum_ip=3))
    run_until(node, 27.0)
    assert node.cooling_ips(27.0) == 0  # the checkpoint restores assigned IPs only
    check_counters(node)


@settings(max_examples=60, deadline=None)
@given(
    mode=st.sampled_from(list(IpMode)),
    targets=st.sampled_from(
        [IpamdTargets(), IpamdTargets(warm_ip=2, minimum_ip=10), IpamdTargets(warm_ip=5), IpamdTargets(warm_prefix=2)]
    ),
    ops=st.lists(st.tuples(st.booleans(), st.integers(0, 40), st.floats(0.1, 40.0)), max_size=80),
    seed=st.integers(0, 5),
)
def test_counters_stay_consistent_under_churn(
    mode: IpMode, targets: IpamdTargets, ops: list[tuple[bool, int, float]], seed: int
) -> None:
    node = NodePool("n", M5_4XL, mode, targets, 0.0, seed=seed)
    now = 0.0
    for start, pod, dt in ops:
        now += dt
        run_until(node, now)
        if start and f"p{pod}" not in node.pods:
            node.pod_start(f"p{pod}", now)
        elif not start:
            node.pod_stop(f"p{pod}", now)
        check_counters(node)
    run_until(node, now + 300)
    check_counters(node)


eni_states = st.builds(
    lambda cidrs, assigned, cooling, primary, age: EniState(
        cidrs=cidrs,
        assigned=min(assigned, cidrs),
        free_cidrs=cidrs - min(assigned, cidrs),
        cooling=cooling,
        primary=primary,
        age=age,
    ),
    st.integers(0, 9),
    st.integers(0, 9),
    st.integers(0, 3),
    st.booleans(),
    st.floats(0, 3 * MIN_ENI_AGE),
)


@settings(max_examples=300, deadline=None)
@given(
    mode=st.sampled_from(list(IpMode)),
    targets=st.builds(IpamdTargets, st.integers(0, 2), st.integers(0, 20), st.integers(0, 40), st.integers(0, 3)),
    enis=st.lists(eni_states, min_size=1, max_size=3),
    since=st.floats(0, 3 * DECREASE_INTERVAL),
)
def test_memo_key_keeps_every_decision(mode: IpMode, targets: IpamdTargets, enis: list[EniState], since: float) -> None:
    """The node memoises the rules on a key that clamps ages and the time since the last decrease to their
    thresholds: the rules must answer the same on the real state and on the one rebuilt from the key."""
    state = PoolState(tuple(enis), since_decrease=since)
    key: _Key = (
        tuple((e.cidrs, e.assigned, e.free_cidrs, e.cooling, e.primary, e.age >= MIN_ENI_AGE) for e in enis),
        since > DECREASE_INTERVAL,
    )
    rebuilt = _state_of(key)
    for rule in (pool_check, deletable_eni, is_too_low, is_too_high):
        assert rule(M5_LARGE, mode, targets, state) == rule(M5_LARGE, mode, targets, rebuilt)
