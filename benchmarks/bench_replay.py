"""CPU of the replay planner at 5,000 nodes: one snapshot ingested (the log keeps a sample per instance type, so
this is the part that grows with the cluster), and one replay choice over a day of the sample's history (the part
bounded by the sample). Prints numbers; asserts nothing.

python benchmarks/bench_replay.py [--nodes 5000] [--types 4] [--pods 30]
"""

from __future__ import annotations

import argparse
import random
import time

from warmpool.aws.instance_table import FALLBACK_LIMITS
from warmpool.ipamd.limits import IpMode
from warmpool.planner import replay as rp
from warmpool.snapshot import ClusterSnapshot, NodeInfo

TYPES = ("m5.large", "m5.xlarge", "m5.2xlarge", "m5.4xlarge", "c5.9xlarge", "t3.medium")


def node(name: str, itype: str, now: float, rng: random.Random, pods: int, lookback: float = 900.0) -> NodeInfo:
    """A node whose pods live ~30 min: about pods/1800 starts and stops a second over the look-back."""
    rate = pods / 1800
    n = int(rate * lookback)
    starts = tuple(sorted(now - rng.uniform(0, lookback) for _ in range(n)))
    stops = tuple(sorted(now - rng.uniform(0, lookback) for _ in range(n)))
    return NodeInfo(name=name, instance_type=itype, ip_pods=pods, pod_start_times=starts, pod_stop_times=stops)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--types", type=int, default=4)
    parser.add_argument("--pods", type=int, default=30)
    parser.add_argument("--hours", type=float, default=26.0, help="history logged before the choice")
    args = parser.parse_args()
    rng = random.Random(1)
    types = TYPES[: args.types]
    names = [(f"n{i:05d}", types[i % len(types)]) for i in range(args.nodes)]
    log = rp.ReplayLog()
    t = 600.0
    full = ClusterSnapshot(now=t, nodes=tuple(node(n, it, t, rng, args.pods) for n, it in names))
    started = time.process_time()
    log.observe(full)
    first = time.process_time() - started
    sampled = set(log.logs)
    # The day of history: only the sampled nodes matter to the log after the first snapshot.
    tick = 60.0
    ingest = 0.0
    ticks = 0
    while t < args.hours * 3600:
        t += tick
        snap = ClusterSnapshot(
            now=t, nodes=tuple(node(n, it, t, rng, args.pods, lookback=tick + 60) for n, it in names if n in sampled)
        )
        started = time.process_time()
        log.observe(snap)
        ingest += time.process_time() - started
        ticks += 1
    full = ClusterSnapshot(now=t + tick, nodes=tuple(node(n, it, t + tick, rng, args.pods) for n, it in names))
    started = time.process_time()
    log.observe(full)
    steady_full = time.process_time() - started
    limits = {it: FALLBACK_LIMITS[it] for it in types}
    planner = rp.ReplayPlanner(log=log)
    started = time.process_time()
    choice = planner.advise(
        IpMode.SECONDARY, limits, {"WARM_ENI_TARGET": "1"}, rp.Bounds((0, 64), (0, 1000)), 0.999, 6 * 3600, t
    )
    replay_cpu = time.process_time() - started
    # Within the cooldown after a change: a check of the values in effect (them and the default over the last hour).
    applied = {"WARM_ENI_TARGET": "1", "WARM_IP_TARGET": "4", "MINIMUM_IP_TARGET": str(args.pods + 4)}
    bounds = rp.Bounds((0, 64), (0, 1000))
    planner.advise(IpMode.SECONDARY, limits, {"WARM_ENI_TARGET": "1"}, bounds, 0.999, 6 * 3600, t + 1)
    planner.advise(IpMode.SECONDARY, limits, applied, bounds, 0.999, 6 * 3600, t + 2)
    started = time.process_time()
    check = planner.advise(IpMode.SECONDARY, limits, applied, bounds, 0.999, 6 * 3600, t + 2 + rp.CHECK_EVERY)
    check_cpu = time.process_time() - started
    events = sum(len(x.times) for x in log.logs.values())
    print(f"{args.nodes} nodes, {len(types)} instance types, {len(log.logs)} sampled, {events} events logged")
    print(f"observe, first full snapshot: {first * 1000:8.1f} ms CPU")
    print(f"observe, a later full snapshot: {steady_full * 1000:8.1f} ms CPU")
    print(f"observe, sampled nodes only: {ingest / max(ticks, 1) * 1000:8.2f} ms CPU a tick ({ticks} ticks)")
    windows = log.windows(6 * 3600)
    hours = sum(b - a for a, b in windows) / 3600
    evaluated = choice.evaluated if choice else 0
    print(
        f"one replay choice: {replay_cpu:6.2f} s CPU ({evaluated} candidates + default + current, "
        f"{len(windows)} windows = {hours:.1f} h x {len(log.logs)} nodes); at most one per "
        f"{rp.REPLAN_EVERY / 60:.0f} min: {replay_cpu / rp.REPLAN_EVERY * 100:.2f}% of a core"
    )
    print(
        f"one check within the cooldown: {check_cpu:6.2f} s CPU ({check.reason if check else 'none'}); at most one "
        f"per {rp.CHECK_EVERY / 60:.0f} min: {check_cpu / rp.CHECK_EVERY * 100:.2f}% of a core"
    )


if __name__ == "__main__":
    main()
