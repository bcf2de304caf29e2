"""The simulator: deterministic scenarios, conserved quantities, and comparisons that could come out wrong."""

from __future__ import annotations

import pytest

from warmpool.ipamd.limits import IpMode
from warmpool.sim.baselines import typical_pods_by_type
from warmpool.sim.engine import ClosedLoopStrategy, ClusterView, StaticStrategy, simulate
from warmpool.sim.metrics import p99_over_all
from warmpool.sim.scenarios import SCENARIOS, generate
from warmpool.sim.strategies import PlannerStrategy, clairvoyant
from warmpool.sim.trace import NodeAdd, PodStart, PodStop, parse_lines

SMALL = {"nodes": 4, "hours": 1.0}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenarios_are_deterministic_by_seed(name: str) -> None:
    params = {"nodes": 3, "new_nodes": 3, "hours": 1.6} if name == "scale-out" else {"nodes": 4, "hours": 1.0}
    a, b, c = (generate(name, seed, **params) for seed in (7, 7, 8))
    assert a.events == b.events
    assert a.events != c.events
    assert [e.t for e in a.events] == sorted(e.t for e in a.events)


def test_mixed_scenario_has_several_instance_types() -> None:
    types = {e.instance_type for e in generate("mixed", 1, nodes=8, hours=0.5).events if isinstance(e, NodeAdd)}
    assert len(types) == 4


@pytest.mark.parametrize("mode", list(IpMode))
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_conservation(name: str, mode: IpMode) -> None:
    """Every pod start is counted once; IPs held never drop below IPs in use; waits are non-negative; each
    final node is within its limits."""
    params = {"nodes": 3, "new_nodes": 3, "hours": 1.6} if name == "scale-out" else SMALL
    trace = generate(name, 2, **params)
    result = simulate(trace, StaticStrategy(), mode)
    m = result.metrics
    assert m.pod_starts + m.rejected_pods == trace.pod_starts
    assert m.rejected_pods == 0  # scenarios respect max pods in both modes
    assert all(held >= used >= 0 for _, held, used in result.series)
    assert m.peak_ips_held >= max(h for _, h, _ in result.series)
    assert m.wait_seconds_total >= 0
    assert m.waited_pods <= m.pod_starts
    running = {}
    for e in trace.events:
        if isinstance(e, PodStart):
            running[e.pod] = e.node
        elif isinstance(e, PodStop):
            running.pop(e.pod)
    for n in m.nodes:
        assert n.pods == sum(1 for node in running.values() if node == n.node)
        assert n.ips_held >= n.pods
    if m.min_subnet_free_ips is not None:
        assert m.min_subnet_free_ips >= 0


def test_idle_ip_hours_by_hand() -> None:
    """One m5.large, default settings, one pod from 10 s to 50 s. The primary ENI's 9 IPs land at t=1. The pod
    leaves 8 < 9 free, so the check at 11 attaches a second ENI (9 IPs at 21). After the pod ends, that ENI is
    freed at the first check once it is 60 s old: t=81."""
    trace = parse_lines(
        [
            '{"t":0,"type":"node_add","node":"n","instance_type":"m5.large"}',
            '{"t":10,"type":"pod_start","node":"n","pod":"p"}',
            '{"t":50,"type":"pod_stop","node":"n","pod":"p"}',
            '{"t":100,"type":"pod_start","node":"n","pod":"q"}',
        ]
    )
    m = simulate(trace, StaticStrategy()).metrics
    assert m.idle_ip_hours == pytest.approx((9 * 99 + 9 * 60 - 40) / 3600)
    assert m.waited_pods == 0
    assert m.peak_ips_held == 18
    assert m.ec2_calls == {"assign_ips": 1, "attach_eni": 1, "detach_eni": 1}


def test_tight_ip_targets_make_pods_wait_and_cost_ec2_calls() -> None:
    trace = generate("batch", 1, nodes=6, hours=1.0)
    default = simulate(trace, StaticStrategy()).metrics
    tight = simulate(trace, StaticStrategy("WARM_IP_TARGET=1,MINIMUM_IP_TARGET=2")).metrics
    assert tight.idle_ip_hours < default.idle_ip_hours / 2
    assert tight.waited_pods > default.waited_pods
    assert tight.ec2_calls_total > default.ec2_calls_total


def test_clairvoyant_is_a_lower_bound() -> None:
    trace = generate("batch", 1, nodes=6, hours=1.0)
    for mode in IpMode:
        oracle = clairvoyant(trace, mode).metrics
        assert oracle.waited_pods == 0
        for env in (None, "WARM_IP_TARGET=1", "WARM_IP_TARGET=4,MINIMUM_IP_TARGET=8"):
            other = simulate(trace, StaticStrategy(env), mode).metrics
            assert oracle.idle_ip_hours <= other.idle_ip_hours


def test_typical_pods_per_node() -> None:
    trace = parse_lines(
        [
            '{"t":0,"type":"node_add","node":"n","instance_type":"m5.large"}',
            '{"t":0,"type":"pod_start","node":"n","pod":"a"}',
            '{"t":0,"type":"pod_start","node":"n","pod":"b"}',
            '{"t":50,"type":"pod_stop","node":"n","pod":"b"}',
            '{"t":100,"type":"pod_stop","node":"n","pod":"a"}',
        ]
    )
    assert typical_pods_by_type(trace) == {"m5.large": 2}  # 1.5 on average, rounded half to even


class _FlipOnce(ClosedLoopStrategy):
    name = "flip"
    interval = 60.0

    def __init__(self) -> None:
        self.views: list[ClusterView] = []

    def decide(self, view: ClusterView) -> dict[str, str] | None:
        self.views.append(view)
        if view.now >= 600 and "WARM_IP_TARGET" not in view.env:
            return {**view.env, "WARM_IP_TARGET": "2", "MINIMUM_IP_TARGET": "4"}
        return None


def test_closed_loop_hook_rolls_out_each_change_once() -> None:
    trace = generate("steady", 1, nodes=4, hours=1.0)
    strategy = _FlipOnce()
    m = simulate(trace, strategy).metrics
    assert m.rollouts == 1
    assert m.settings == "WARM_ENI_TARGET=1,WARM_IP_TARGET=2,MINIMUM_IP_TARGET=4"
    assert [t for t, _ in m.settings_history] == [0.0, 600.0]
    view = strategy.views[-1]
    assert len(view.snapshot.nodes) == 4
    assert "m5.large" in view.limits
    assert all(n.subnet_ids[0] in view.subnets for n in view.snapshot.nodes)
    assert sum(n.ip_pods for n in view.snapshot.nodes) > 0
    # After the rollout every node runs the tighter targets: far fewer idle IPs at the end than default.
    final = sum(n.ips_held - n.pods for n in m.nodes)
    default = sum(n.ips_held - n.pods for n in simulate(trace, StaticStrategy()).metrics.nodes)
    assert final < default


def test_warmpool_planner_in_the_loop() -> None:
    trace = generate("steady", 1, nodes=6, hours=1.5)
    m = simulate(trace, PlannerStrategy()).metrics
    default = simulate(trace, StaticStrategy()).metrics
    assert m.rollouts >= 1  # learns and applies once the quiet period has passed
    assert "WARM_IP_TARGET" in m.settings
    assert "MINIMUM_IP_TARGET" in m.settings
    assert m.idle_ip_hours < default.idle_ip_hours


def test_p99_over_all() -> None:
    assert p99_over_all([], 100) == 0.0
    assert p99_over_all([5.0], 100) == 0.0  # 1 of 100 waited: the 99th pod did not
    assert p99_over_all([5.0, 7.0], 100) == 5.0
    assert p99_over_all([3.0] * 10, 10) == 3.0


def test_snapshot_carries_pod_stop_times_of_ip_holding_pods() -> None:
    trace = generate("steady", 1, nodes=4, hours=1.0)
    strategy = _FlipOnce()
    simulate(trace, strategy)
    stops = {e.node: e.t for e in trace.events if isinstance(e, PodStop)}
    views = strategy.views
    assert any(n.pod_stop_times for v in views for n in v.snapshot.nodes)
    for v in views:
        for n in v.snapshot.nodes:
            assert list(n.pod_stop_times) == sorted(n.pod_stop_times)
            assert all(v.now - strategy.lookback <= t <= v.now for t in n.pod_stop_times)
    assert stops  # the trace has stops to see
