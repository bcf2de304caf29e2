"""The planner in a closed loop, as the operator's timer and the simulator drive it: time is passed in."""

from __future__ import annotations

import random

from warmpool.api.v1alpha1 import Variable, WarmPoolPolicySpec
from warmpool.ipamd.limits import InstanceLimits
from warmpool.ipamd.version import CniVersion
from warmpool.planner import ChurnTracker, GuardReason, decide, plan
from warmpool.snapshot import ClusterSnapshot, NodeInfo, SubnetInfo

LIMITS = {"m5.xlarge": InstanceLimits("m5.xlarge", 4, 15, vcpus=4)}
SUBNETS = {"subnet-a": SubnetInfo("subnet-a", "z", 4000)}
CNI = CniVersion(1, 18, 3)  # past the #1872 fix: MINIMUM_IP_TARGET may exceed two ENIs' IPs
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
    tracker = ChurnTracker(spec.churn)
    env: dict[str, str] = {}
    applied: list[tuple[float, dict[Variable, int]]] = []
    reasons: dict[float, GuardReason] = {}
    quiet: dict[float, bool] = {}
    last_applied: float | None = None
    for step in range(HOURS * 60):
        now = step * 60.0
        # A scale-out with a scheduler backlog in the third hour; nodes run twice the pods from then on.
        pending = 40 if SCALE_OUT <= now < SCALE_OUT + 600 else 0
        density = 20 if now < SCALE_OUT else 40
        nodes = tuple(
            NodeInfo(
                name=name,
                instance_type="m5.xlarge",
                subnet_ids=("subnet-a",),
                ip_pods=density,
                pod_start_times=tuple(t for t in ts if now - 600 <= t <= now),
            )
            for name, ts in starts.items()
        )
        snapshot = ClusterSnapshot(now=now, nodes=nodes, pending_pods=pending)
        tracker.observe(snapshot)
        stats = tracker.stats(spec.churn.burst_quantile, now)
        rec = plan(spec, snapshot, LIMITS, SUBNETS, env, stats, cni_version=CNI)
        current = {Variable(k): int(v) for k, v in env.items()}
        d = decide(
            rec.values,
            current,
            spec.rollout,
            now=now,
            last_applied_time=last_applied,
            quiet_since=stats.quiet_since,
        )
        reasons[now] = d.reason
        quiet[now] = stats.quiet
        if d.apply:
            env.update({k.value: str(v) for k, v in d.values.items()})
            applied.append((now, d.values))
            last_applied = now

    # The burst of 6 plus 1 headroom is learned and written, with MINIMUM_IP_TARGET at the pod density.
    first_time, first = applied[0]
    assert first == {Variable.WARM_IP_TARGET: 7, Variable.MINIMUM_IP_TARGET: 20}
    assert first_time >= 600  # the quiet period after start
    # The backlog makes the loop "not quiet" and nothing is written then or in the quiet period after it.
    assert not quiet[SCALE_OUT + 300]
    assert all(not (SCALE_OUT <= t < SCALE_OUT + 1200) for t, _ in applied)
    # Once the doubled density outweighs the decayed history (about 1.6 h with a 6 h half-life), the minimum
    # follows it in one more rollout, and nothing else changes.
    assert len(applied) == 2
    second_time, second = applied[1]
    assert SCALE_OUT + 3600 < second_time < HOURS * 3600
    assert second == {Variable.WARM_IP_TARGET: 7, Variable.MINIMUM_IP_TARGET: 40}
    assert reasons[HOURS * 3600 - 60] is GuardReason.NO_CHANGE
