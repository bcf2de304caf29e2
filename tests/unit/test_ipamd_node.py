"""The per-node pool in simulated time: waits, cooldown, EC2 latency, shrink timers, restarts."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from warmpool.ipamd.env import IpamdTargets
from warmpool.ipamd.limits import InstanceLimits, IpMode
from warmpool.ipamd.node import NodePool, Subnet

T3_SMALL = InstanceLimits("t3.small", 3, 4, vcpus=2)
M5_LARGE = InstanceLimits("m5.large", 3, 10, vcpus=2)


def run_until(node: NodePool, t: float) -> None:
    while node.wake_at <= t:
        node.advance(node.wake_at)


def test_boot_then_a_pod_waits_for_a_new_eni() -> None:
    node = NodePool("n", T3_SMALL, IpMode.SECONDARY, IpamdTargets(), 0.0)
    run_until(node, 1.5)  # prescaling check at 0, assign lands at 1 s
    assert (node.held_ips, node.eni_count) == (3, 1)
    for i in range(4):
        node.pod_start(f"p{i}", 2.0)
    assert node.assigned == 3
    assert len(node.waiting) == 1
    run_until(node, 30)
    # The check after the pod event (t=6) attaches an ENI; it lands 10 s later and serves the pod.
    assert node.assigned == 4
    assert node.eni_count == 2
    assert node.waits == [14.0]
    # 4 pods leave 2 free < 3: a third ENI is on its way (WARM_ENI_TARGET=1, as in the docs' 5-pod example).
    assert node.ec2_calls["attach_eni"] == 2


def test_cooling_ip_is_available_but_not_usable() -> None:
    node = NodePool("n", T3_SMALL, IpMode.SECONDARY, IpamdTargets(warm_ip=1, minimum_ip=1), 0.0)
    run_until(node, 2)
    node.pod_start("a", 3.0)
    run_until(node, 20)
    assert (node.held_ips, node.assigned) == (2, 1)
    node.pod_stop("a", 20.0)  # its IP cools until 50 but counts as available: 2 available > WARM_IP 1
    run_until(node, 21)
    node.pod_start("b", 21.0)  # takes the warm IP
    run_until(node, 22)
    node.pod_start("c", 22.0)  # available is 1 (the cooling IP): the pool looks fine, yet c gets nothing
    assert "c" in node.waiting
    run_until(node, 200)
    assert not node.waiting
    assert node.assigned == 2
    assert len(node.waits) == 1
    assert 0 < node.waits[0] <= 30


def test_pod_waits_on_cooldown_when_pool_looks_full() -> None:
    # MINIMUM_IP_TARGET=3, WARM_IP_TARGET=1 on a node kept at 2 pods: a quick restart of a pod finds only the
    # cooling IP plus one warm IP.
    node = NodePool("n", T3_SMALL, IpMode.SECONDARY, IpamdTargets(warm_ip=1, minimum_ip=2), 0.0)
    run_until(node, 3)
    node.pod_start("a", 3.0)
    run_until(node, 30)
    assert node.held_ips == 2
    node.pod_stop("a", 30.0)
    node.pod_start("b", 30.5)  # the warm IP
    node.pod_start("c", 31.0)  # only "a"'s IP is free, and it cools until 60
    assert "c" in node.waiting
    run_until(node, 100)
    assert not node.waiting
    assert max(node.waits) <= 30.0


def test_warm_eni_frees_extra_eni_only_after_a_minute() -> None:
    node = NodePool("n", M5_LARGE, IpMode.SECONDARY, IpamdTargets(), 0.0)
    run_until(node, 2)
    for i in range(6):
        node.pod_start(f"p{i}", 2.0)
    run_until(node, 30)
    assert node.eni_count == 2
    for i in range(6):
        node.pod_stop(f"p{i}", 30.0)
    run_until(node, 59)
    assert node.eni_count == 2  # cooling until 60, and the ENI is younger than 60 s until ~67
    run_until(node, 200)
    assert node.eni_count == 1
    assert node.ec2_calls["detach_eni"] == 1


def test_ip_target_release_is_rate_limited() -> None:
    node = NodePool("n", M5_LARGE, IpMode.SECONDARY, IpamdTargets(warm_ip=1), 0.0)
    run_until(node, 2)
    for i in range(8):
        node.pod_start(f"p{i}", 2.0 + i * 0.1)
    run_until(node, 60)
    assert node.held_ips == 9
    for i in range(8):
        node.pod_stop(f"p{i}", 60.0)
    run_until(node, 200)
    assert node.held_ips == 1
    assert node.ec2_calls["unassign_ips"] == 1  # one decrease frees all 8 extra IPs


def test_restart_reads_new_targets_and_blocks_pods_briefly() -> None:
    node = NodePool("n", M5_LARGE, IpMode.SECONDARY, IpamdTargets(), 0.0)
    run_until(node, 2)
    node.restart(10.0, IpamdTargets(warm_ip=2, minimum_ip=4))
    node.pod_start("p", 11.0)
    assert "p" in node.waiting  # aws-node is down for 5 s
    run_until(node, 16)
    assert not node.waiting
    assert node.waits == [4.0]
    run_until(node, 120)
    assert node.held_ips == 4  # max(1 pod + 2 warm, minimum 4); the spare IPs of the full ENI went back


def test_subnet_exhaustion_backs_off() -> None:
    subnet = Subnet("z", free=2)
    node = NodePool("n", M5_LARGE, IpMode.SECONDARY, IpamdTargets(), 0.0, subnet)
    run_until(node, 2)
    assert node.held_ips == 2
    assert subnet.free == 0
    assert subnet.min_free == 0
    node.pod_start("a", 3.0)
    node.pod_start("b", 3.0)
    node.pod_start("c", 3.0)
    run_until(node, 100)
    assert node.ec2_calls["insufficient_cidr"] == 1  # then 120 s of quiet
    subnet.give(50)
    run_until(node, 200)
    assert not node.waiting


def test_max_pods_rejects() -> None:
    node = NodePool("n", T3_SMALL, IpMode.SECONDARY, IpamdTargets(), 0.0)
    for i in range(12):
        node.pod_start(f"p{i}", 1.0)
    assert node.rejected == 3
    assert len(node.pods) == 9


@settings(max_examples=60, deadline=None)
@given(
    lim=st.sampled_from([T3_SMALL, M5_LARGE]),
    mode=st.sampled_from(list(IpMode)),
    warm_ip=st.integers(0, 6),
    minimum_ip=st.integers(0, 12),
    ops=st.lists(st.tuples(st.floats(0, 20), st.booleans(), st.integers(0, 15)), max_size=60),
)
def test_pool_invariants(
    lim: InstanceLimits, mode: IpMode, warm_ip: int, minimum_ip: int, ops: list[tuple[float, bool, int]]
) -> None:
    targets = IpamdTargets(warm_ip=warm_ip, minimum_ip=minimum_ip if warm_ip else 0, warm_prefix=1)
    subnet = Subnet("z", 10_000)
    node = NodePool("n", lim, mode, targets, 0.0, subnet)
    t = 0.0
    for dt, start, pod in ops:
        t += dt
        run_until(node, t)
        if start and f"p{pod}" not in node.pods:
            node.pod_start(f"p{pod}", t)
        elif not start:
            node.pod_stop(f"p{pod}", t)
        assert node.eni_count <= lim.max_enis
        assert node.assigned <= node.held_ips <= lim.max_pod_ips(mode)
        assert len(node.pods) <= lim.max_pods(mode) - 2
        assert node.assigned + len(node.waiting) == len(node.pods)
        assert 10_000 - subnet.free >= node.held_ips  # every held IP came out of the subnet
    run_until(node, t + 600)
    assert not node.waiting or node.held_ips == lim.max_pod_ips(mode) or node.assigned == node.held_ips
    node.finish(t + 600)
    assert subnet.free == 10_000
