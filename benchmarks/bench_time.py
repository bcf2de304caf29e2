"""What the time side of the policy does on a multi-day trace: rollouts, idle IP-hours and waits per day, for
warmpool as it runs and for warmpool restarted at every day boundary (the step's memory dropped, only the status
checkpoint kept, as after an operator restart), against AWS's default.

    python benchmarks/bench_time.py [--scenario diurnal-3d] [--mode secondary|prefix|both]

Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

from warmpool.ipamd.limits import IpMode
from warmpool.sim.engine import ClusterView, EngineConfig, RunResult, StaticStrategy, simulate
from warmpool.sim.scenarios import generate
from warmpool.sim.strategies import PlannerStrategy

DAY = 86400.0


class RestartedDaily(PlannerStrategy):
    """warmpool whose operator restarts at every day boundary: the step's memory (the replay log, the in-memory
    accumulators) is lost; the status, with its checkpoint, is what the next process reads."""

    name = "warmpool-restarted"

    def decide(self, view: ClusterView) -> dict[str, str] | None:
        if self.memory is not None and int(view.now // DAY) != int((view.now - self.interval) // DAY):
            self.memory = None
        return super().decide(view)


def per_day(result: RunResult, days: int) -> list[tuple[int, float]]:
    """(rollouts, idle IP-hours) of each day, from the settings history and the held/in-use series."""
    out = []
    series = result.series
    for d in range(days):
        lo, hi = d * DAY, (d + 1) * DAY
        rollouts = sum(1 for t, _ in result.metrics.settings_history if lo < t <= hi)
        points = [(t, held - used) for t, held, used in series if lo <= t < hi]
        step = points[1][0] - points[0][0] if len(points) > 1 else 60.0
        out.append((rollouts, sum(idle for _, idle in points) * step / 3600))
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scenario", default="diurnal-3d")
    parser.add_argument("--mode", default="both", choices=["secondary", "prefix", "both"])
    args = parser.parse_args(argv)
    trace = generate(args.scenario)
    days = max(1, round(trace.duration / DAY))
    modes = [IpMode.SECONDARY, IpMode.PREFIX] if args.mode == "both" else [IpMode(args.mode)]
    config = EngineConfig(split_at=DAY if trace.duration > DAY else None)
    for mode in modes:
        print(f"{args.scenario} {mode.value}: {trace.pod_starts} pod starts, {days} days")
        for strategy in (PlannerStrategy(), RestartedDaily(), StaticStrategy(None)):
            began = time.process_time()
            result = simulate(trace, strategy, mode, config)
            m = result.metrics
            days_text = ", ".join(
                f"d{d + 1}: {r} rollouts {idle:.0f} idle IP-h" for d, (r, idle) in enumerate(per_day(result, days))
            )
            periods = "; ".join(
                f"{k}: {p.idle_ip_hours:.0f} idle IP-h, {p.waited_pods} waits, "
                f"{p.ec2_calls_per_node_hour:.2f} EC2/node-h"
                for k, p in m.periods.items()
            )
            print(f"  {strategy.name:<20} {days_text} | {periods} | {time.process_time() - began:.0f}s CPU")


if __name__ == "__main__":
    main()
