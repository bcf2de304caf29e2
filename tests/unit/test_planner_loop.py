"""The policy step in a closed loop, driven as the simulator drives it (`sim.strategies.PlannerStrategy`): time
is passed in, the status it reports is what the next tick reads, and a write changes the env it sees next."""

from __future__ import annotations

import random

from warmpool.api.v1alpha1 import WarmPoolPolicySpec
from warmpool.ipamd.limits import InstanceLimits
from warmpool.sim.engine import ClusterView
from warmpool.sim.strategies import PlannerStrategy
from warmpool.snapshot import ClusterSnapshot, NodeInfo, SubnetInfo

LIMITS = {"m5.xlarge": InstanceLimits("m5.xlarge", 4, 15, vcpus=4)}
SUBNETS = {"subnet-a": SubnetInfo("subnet-a", "z", 4000)}
HOURS = 5
SCALE_OUT = 2 * 3600.0


def test_loop_learns_bursts_applies_once_and_holds_through_a_scale_out() -> None:
    rng = random.Random(5)
    spec = WarmPoolPolicySpec.model_validate(
        {"rollout": {"cooldown": "2h", "quietPeriod": "10m", "interval": "60s"}, "churn": {"halfLife": "6h"}}
    )
    # Every 5 minutes each node gets a burst of 6 pod starts within 10 s.
    starts = {
        f"n{i}": sorted(t + rng.uniform(0, 10) for t in range(0, HOURS * 3600, 300) for _ in range(6)) for i in range(8)
    }
    strategy = PlannerStrategy(spec)
    env: dict[str, str] = {"WARM_ENI_TARGET": "1"}
    applied: list[tuple[float, dict[str, str]]] = []
    busy: dict[float, bool] = {}
    for tick in range(1, HOURS * 60):
        now = tick * 60.0
        # A scale-out with a scheduler backlog in the third hour; nodes run twice the pods from then on.
        pending = 40 if SCALE_OUT <= now < SCALE_OUT + 600 else 0
        density = 20 if now < SCALE_OUT else 40
        nodes = tuple(
            NodeInfo(
                name=name,
                instance_type="m5.xlarge",
                subnet_ids=("subnet-a",),
                ip_pods=density,
                pod_start_times=tuple(t for t in ts if now - strategy.lookback <= t <= now),
            )
            for name, ts in starts.items()
        )
        snapshot = ClusterSnapshot(now=now, nodes=nodes, pending_pods=pending)
        # The rollout of a change takes the tick after it.
        rolling = bool(applied) and applied[-1][0] == now - 60
        new_env = strategy.decide(ClusterView(now, snapshot, dict(env), LIMITS, SUBNETS, rolling))
        assert strategy.memory is not None
        busy[now] = bool(strategy.memory.tracker.busy_reasons)
        if new_env is not None:
            env = new_env
            applied.append((now, {k: v for k, v in env.items() if k != "WARM_ENI_TARGET"}))
    reasons = {t: r for t, r, _ in strategy.decisions}

    # Nothing is written before the history spans the quiet period; then the replay chooser's values: a warm
    # target that covers the burst of 6 by itself, over a minimum at the pod density plus that burst.
    first_time, first = applied[0]
    assert reasons[60.0] == "not_quiet"
    assert first_time >= 600
    assert 6 <= int(first["WARM_IP_TARGET"]) <= 16
    assert 20 + 6 <= int(first["MINIMUM_IP_TARGET"]) <= 20 + 6 + int(first["WARM_IP_TARGET"])
    # The backlog makes the loop "not quiet" and nothing is written then or in the quiet period after its last
    # busy tick.
    assert busy[SCALE_OUT + 300]
    assert not busy[SCALE_OUT - 60]
    quiet_again = SCALE_OUT + 600 - 60 + 600
    assert all(not (SCALE_OUT <= t < quiet_again) for t, _ in applied)
    # After the cooldown the minimum follows the doubled density in one more rollout, and nothing else changes.
    assert len(applied) == 2
    second_time, second = applied[1]
    assert quiet_again <= second_time < HOURS * 3600
    assert second["WARM_IP_TARGET"] == first["WARM_IP_TARGET"]
    assert 40 + 6 <= int(second["MINIMUM_IP_TARGET"]) <= 40 + 6 + int(second["WARM_IP_TARGET"])
    assert reasons[HOURS * 3600 - 60] == "no_change"
    # The status the step reported is what a user would read.
    assert (
        strategy.status["appliedSummary"]
        == f"WARM_IP_TARGET={second['WARM_IP_TARGET']},MINIMUM_IP_TARGET={second['MINIMUM_IP_TARGET']}"
    )
