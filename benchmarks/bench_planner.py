"""How long one planning round takes on a 5,000-node cluster. Prints numbers; asserts nothing.

    python benchmarks/bench_planner.py [--nodes 5000] [--rounds 5]

A round is what the operator's timer does each interval: feed the snapshot to the churn tracker, read the
statistics, plan, decide. Measured separately, and once with a tight subnet so the budget search runs.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable

from warmpool.api.v1alpha1 import WarmPoolPolicySpec, summarize
from warmpool.ipamd.limits import InstanceLimits, IpMode
from warmpool.planner import ChurnTracker, decide, plan
from warmpool.snapshot import ClusterSnapshot, NodeInfo, SubnetInfo

LIMITS = {
    lim.instance_type: lim
    for lim in (
        InstanceLimits("t3.medium", 3, 6, vcpus=2),
        InstanceLimits("m5.large", 3, 10, vcpus=2),
        InstanceLimits("m5.xlarge", 4, 15, vcpus=4),
        InstanceLimits("m5.4xlarge", 8, 30, vcpus=16),
        InstanceLimits("c5.9xlarge", 8, 30, vcpus=36),
    )
}
SUBNETS = [f"subnet-{i}" for i in range(6)]


def snapshot(rng: random.Random, nodes: int, now: float, lookback: float) -> ClusterSnapshot:
    out = []
    types = sorted(LIMITS)
    for i in range(nodes):
        itype = rng.choice(types)
        pods = rng.randint(0, LIMITS[itype].max_pods(IpMode.SECONDARY) - 2)
        # About one pod start per node per minute, some in bursts.
        starts: list[float] = []
        t = now - lookback
        while t < now:
            t += rng.expovariate(1 / 60)
            starts.extend(t + rng.random() for _ in range(rng.choice([1, 1, 1, 2, 5])))
        out.append(
            NodeInfo(
                name=f"node-{i:05d}",
                instance_type=itype,
                subnet_ids=(SUBNETS[i % len(SUBNETS)],),
                ip_pods=pods,
                pod_start_times=tuple(s for s in starts if s <= now),
            )
        )
    return ClusterSnapshot(now=now, nodes=tuple(out), node_count_history=((now - 120, nodes), (now, nodes)))


def timed(fn: Callable[[], object], rounds: int) -> tuple[float, float]:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000, max(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    rng = random.Random(1)
    spec = WarmPoolPolicySpec()
    now = 1_000_000.0
    snap = snapshot(rng, args.nodes, now, lookback=600.0)
    starts = sum(len(n.pod_start_times) for n in snap.nodes)
    roomy = {s: SubnetInfo(s, "z", 50_000) for s in SUBNETS}
    tight = {s: SubnetInfo(s, "z", 2_000) for s in SUBNETS}

    tracker = ChurnTracker(spec.churn)
    tracker.observe(snap)  # first sight: takes in the whole look-back (~20 epochs)
    fresh = ChurnTracker(spec.churn)
    t0 = time.perf_counter()
    fresh.observe(snap)
    first_ms = (time.perf_counter() - t0) * 1000

    # A steady round: one interval (60 s) later, two new epochs to finalize.
    later = ClusterSnapshot(now=now + 60, nodes=snap.nodes, node_count_history=snap.node_count_history)

    def steady_observe() -> None:
        t = ChurnTracker.from_checkpoint(tracker.to_checkpoint(), spec.churn)
        t.observe(later)

    stats = tracker.stats(spec.churn.burst_quantile, now)
    env: dict[str, str] = {}
    rec_roomy = plan(spec, snap, LIMITS, roomy, env, stats)
    rec_tight = plan(spec, snap, LIMITS, tight, env, stats)

    print(f"nodes={args.nodes} pod starts in look-back={starts} rounds={args.rounds}")
    print(f"  tracker first observe (whole look-back): {first_ms:8.1f} ms")
    med, worst = timed(steady_observe, args.rounds)
    print(f"  tracker steady observe (+ checkpoint restore): median {med:8.1f} ms  max {worst:8.1f} ms")
    med, worst = timed(lambda: tracker.stats(spec.churn.burst_quantile, now), args.rounds)
    print(f"  stats:                                   median {med:8.2f} ms  max {worst:8.2f} ms")
    med, worst = timed(lambda: plan(spec, snap, LIMITS, roomy, env, stats), args.rounds)
    print(f"  plan, subnets roomy:                     median {med:8.1f} ms  max {worst:8.1f} ms")
    med, worst = timed(lambda: plan(spec, snap, LIMITS, tight, env, stats), args.rounds)
    print(f"  plan, subnets tight (budget search):     median {med:8.1f} ms  max {worst:8.1f} ms")
    med, worst = timed(
        lambda: decide(rec_roomy.values, {}, spec.rollout, now=now, last_applied_time=None, quiet_since=0.0),
        args.rounds,
    )
    print(f"  decide:                                  median {med:8.3f} ms  max {worst:8.3f} ms")
    print(f"  checkpoint size: {len(str(tracker.to_checkpoint()))} chars")
    print(f"  burst p95={stats.covered_burst} max={stats.max_burst} pods/node={stats.pods_per_node}")
    print(f"  roomy plan: {summarize(rec_roomy.values)}")
    print(f"  tight plan: {summarize(rec_tight.values)} pressure={rec_tight.subnet_pressure}")


if __name__ == "__main__":
    main()
