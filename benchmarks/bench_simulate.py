"""How fast `warmpool simulate` runs: one day of 100 nodes (the diurnal scenario), warmpool's closed loop (the
policy step with its replay chooser) side by side with a static run on the same trace, then every strategy and
baseline on one worker process and on all CPUs; optionally single runs of a day of 200 busier nodes. Prints
numbers (wall and CPU seconds, and their ratios); asserts nothing.

python benchmarks/bench_simulate.py [--nodes 100] [--hours 24] [--mode secondary|prefix] [--scenario diurnal]
"""

from __future__ import annotations

import argparse
import resource
import time

from warmpool.api.v1alpha1 import WarmPoolPolicySpec
from warmpool.ipamd.limits import IpMode
from warmpool.sim.baselines import default_jobs
from warmpool.sim.cli import run_all
from warmpool.sim.engine import StaticStrategy, simulate
from warmpool.sim.scenarios import generate, pod_cap, steady
from warmpool.sim.strategies import PlannerStrategy


def cpu_seconds() -> float:
    """This process and its finished children (the worker processes)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scenario", default="diurnal")
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--mode", choices=[m.value for m in IpMode], default="secondary")
    parser.add_argument("--single-runs", action="store_true", help="also time single strategies on 200 nodes")
    args = parser.parse_args()
    mode = IpMode(args.mode)
    started = time.perf_counter()
    trace = generate(args.scenario, 1, nodes=args.nodes, hours=args.hours)
    print(
        f"{args.scenario}: {args.nodes} nodes, {args.hours:g} h, {trace.pod_starts} pod starts, "
        f"generated in {time.perf_counter() - started:.1f}s"
    )
    costs = {}
    for strategy in (StaticStrategy(), PlannerStrategy()):
        wall0, cpu0 = time.perf_counter(), cpu_seconds()
        m = simulate(trace, strategy, mode).metrics
        costs[strategy.name] = cpu_seconds() - cpu0
        print(
            f"{strategy.name:<20} {time.perf_counter() - wall0:6.1f}s wall {costs[strategy.name]:6.1f}s CPU  "
            f"idle {m.idle_ip_hours:8.0f} IP-h  waited {m.waited_pods}  rollouts {m.rollouts}"
        )
    static, planner = costs.values()
    print(f"warmpool's closed loop costs {planner / static:.1f}x a static run's CPU (the replay chooser's share)")
    for jobs in sorted({1, default_jobs()}):
        wall0, cpu0 = time.perf_counter(), cpu_seconds()
        results = run_all(trace, mode, WarmPoolPolicySpec(), (), jobs=jobs)
        wall, cpu = time.perf_counter() - wall0, cpu_seconds() - cpu0
        print(f"full simulate, {jobs} process(es): {wall:6.1f}s wall, {cpu:6.1f}s CPU, {len(results)} strategies")
    if args.single_runs:
        itype = "m5.xlarge"  # 56 IP pods: 30 pods is a little over half
        big = steady(seed=1, nodes=200, hours=24, instance_type=itype, density=30 / pod_cap(itype))
        print(f"steady: 200 nodes, 24 h, {big.pod_starts} pod starts")
        for strategy in (StaticStrategy(), StaticStrategy("WARM_IP_TARGET=2,MINIMUM_IP_TARGET=30"), PlannerStrategy()):
            wall0, cpu0 = time.perf_counter(), cpu_seconds()
            m = simulate(big, strategy, mode).metrics
            wall, cpu = time.perf_counter() - wall0, cpu_seconds() - cpu0
            print(
                f"{strategy.name:<40} {wall:6.1f}s wall {cpu:6.1f}s CPU  idle {m.idle_ip_hours:8.0f} IP-h  "
                f"waited {m.waited_pods}"
            )


if __name__ == "__main__":
    main()
