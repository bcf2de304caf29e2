"""Whether a change of the targets changes what nodes hold (prefix mode rounds to /28s)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from warmpool.ipamd.limits import InstanceLimits, IpMode
from warmpool.planner.holding import holds_same, pods_by_type

M5_LARGE = InstanceLimits("m5.large", 3, 10, vcpus=2)
C4_LARGE = InstanceLimits("c4.large", 3, 10, hypervisor="xen", vcpus=2)  # no prefixes: secondary IPs even here
LIMITS = {"m5.large": M5_LARGE, "c4.large": C4_LARGE}
PREFIX = {"ENABLE_PREFIX_DELEGATION": "true", "WARM_PREFIX_TARGET": "1"}


def env(**targets: int) -> dict[str, str]:
    return {**PREFIX, **{k: str(v) for k, v in targets.items()}}


def test_a_warm_ip_change_within_the_same_prefix_holds_the_same() -> None:
    # 3 pods + 2 or + 4 warm IPs: one /28 either way.
    assert holds_same(IpMode.PREFIX, env(WARM_IP_TARGET=2), env(WARM_IP_TARGET=4), LIMITS, {"m5.large": {3}})
    # 13 pods + 4 needs a second prefix.
    assert not holds_same(IpMode.PREFIX, env(WARM_IP_TARGET=2), env(WARM_IP_TARGET=4), LIMITS, {"m5.large": {3, 13}})


def test_a_minimum_is_held_in_whole_prefixes() -> None:
    before, after = env(WARM_IP_TARGET=1, MINIMUM_IP_TARGET=3), env(WARM_IP_TARGET=1, MINIMUM_IP_TARGET=10)
    assert holds_same(IpMode.PREFIX, before, after, LIMITS, {"m5.large": {0, 5}})
    after = env(WARM_IP_TARGET=1, MINIMUM_IP_TARGET=20)
    assert not holds_same(IpMode.PREFIX, before, after, LIMITS, {"m5.large": {0, 5}})


def test_leaving_the_prefix_target_for_ip_targets() -> None:
    # WARM_PREFIX_TARGET=1 keeps a whole free prefix: at 5 pods 2 prefixes; WARM_IP_TARGET=1 needs one.
    assert not holds_same(IpMode.PREFIX, PREFIX, env(WARM_IP_TARGET=1), LIMITS, {"m5.large": {5}})


def test_secondary_mode_nodes_unknown_types_or_no_nodes_never_skip() -> None:
    a, b = {"WARM_IP_TARGET": "2"}, {"WARM_IP_TARGET": "4"}
    assert not holds_same(IpMode.SECONDARY, a, b, LIMITS, {"m5.large": {3}})
    assert not holds_same(IpMode.PREFIX, env(WARM_IP_TARGET=2), env(WARM_IP_TARGET=4), LIMITS, {})
    assert not holds_same(IpMode.PREFIX, env(WARM_IP_TARGET=2), env(WARM_IP_TARGET=4), LIMITS, {"x9.huge": {3}})
    # A non-Nitro type in a prefix-mode cluster runs secondary IPs: 5 vs 7 IPs held.
    assert not holds_same(
        IpMode.PREFIX, env(WARM_IP_TARGET=2), env(WARM_IP_TARGET=4), LIMITS, {"m5.large": {3}, "c4.large": {3}}
    )


def test_pods_by_type_spans_a_burst_and_the_expected_peak_of_known_types() -> None:
    got = pods_by_type([("m5.large", 3), ("m5.large", 5), ("c4.large", -1)], 2, {"m5.large": 9, "t3.small": 4})
    assert got == {"m5.large": {3, 4, 5, 6, 7, 8, 9}, "c4.large": {0, 1, 2}}
    assert pods_by_type([("m5.large", 3)]) == {"m5.large": {3}}


targets = st.fixed_dictionaries(
    {},
    optional={
        "WARM_IP_TARGET": st.integers(0, 40),
        "MINIMUM_IP_TARGET": st.integers(0, 80),
        "WARM_PREFIX_TARGET": st.integers(1, 3),
    },
)


@given(targets, targets, st.sets(st.integers(0, 60), min_size=1, max_size=4))
def test_holds_same_is_an_equivalence_on_what_nodes_hold(a: dict[str, int], b: dict[str, int], pods: set[int]) -> None:
    ea, eb = env(**a), env(**b)
    by_type = {"m5.large": pods}
    assert holds_same(IpMode.PREFIX, ea, ea, LIMITS, by_type)
    assert holds_same(IpMode.PREFIX, ea, eb, LIMITS, by_type) == holds_same(IpMode.PREFIX, eb, ea, LIMITS, by_type)
    # Holding the same at more pod counts implies holding the same at fewer.
    if holds_same(IpMode.PREFIX, ea, eb, LIMITS, by_type):
        assert all(holds_same(IpMode.PREFIX, ea, eb, LIMITS, {"m5.large": {p}}) for p in pods)
