"""How fast the simulator runs a day of 200 nodes with about 30 pods each. Prints numbers; asserts nothing.

python benchmarks/bench_simulate.py [--nodes 200] [--hours 24] [--mode secondary|prefix]
"""

from __future__ import annotations

import argparse
import time

from warmpool.ipamd.limits import IpMode
from warmpool.sim.engine import StaticStrategy, simulate
from warmpool.sim.scenarios import pod_cap, steady
from warmpool.sim.strategies import PlannerStrategy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--mode", choices=[m.value for m in IpMode], default="secondary")
    args = parser.parse_args()
    itype = "m5.xlarge"  # 56 IP pods: 30 pods is a little over half
    started = time.perf_counter()
    trace = steady(seed=1, nodes=args.nodes, hours=args.hours, instance_type=itype, density=30 / pod_cap(itype))
    generated = time.perf_counter() - started
    print(f"trace: {len(trace.events)} events, {trace.pod_starts} pod starts, generated in {generated:.1f}s")
    mode = IpMode(args.mode)
    for strategy in (StaticStrategy(), StaticStrategy("WARM_IP_TARGET=2,MINIMUM_IP_TARGET=30"), PlannerStrategy()):
        started = time.perf_counter()
        m = simulate(trace, strategy, mode).metrics
        wall = time.perf_counter() - started
        print(
            f"{strategy.name:<40} {wall:6.1f}s wall  {trace.duration / wall:9.0f} simulated s per wall s  "
            f"idle {m.idle_ip_hours:8.0f} IP-h  waited {m.waited_pods}"
        )


if __name__ == "__main__":
    main()
