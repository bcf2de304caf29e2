"""How big a KWOK cluster this machine holds with warmpool watching it. Prints numbers, asserts nothing.

    python benchmarks/bench_kwok_scale.py                       # 1,000 nodes x 30 pods (m5.xlarge, 58 max pods)
    python benchmarks/bench_kwok_scale.py --nodes 300 --pods-per-node 20 --churn-seconds 60

Phases: create the nodes and bound pods (KWOK marks them Ready/Running), start the operator and time its first
status, then churn (stop one pod, start another on the same node) at a steady rate while sampling CPU of the
operator and of the control plane. Peak RSS is the operator's VmHWM from /proc.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

from kubernetes import client

from warmpool.sim.scenarios import ZONES
from warmpool.sim.trace import Event, NodeAdd, PodStart, PodStop, Trace
from warmpool_dev.e2e.harness import CHURN_NAMESPACE, KwokEnv, e2e_policy_spec, wait_for

TICKS = 100  # os.sysconf("SC_CLK_TCK") on Linux


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def vm_hwm_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--pods-per-node", type=int, default=30)
    parser.add_argument("--instance-type", default="m5.xlarge")
    parser.add_argument("--churn-rate", type=float, default=20.0, help="pod replacements per second")
    parser.add_argument("--churn-seconds", type=float, default=120.0)
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()

    nodes = [f"n{i:05d}" for i in range(args.nodes)]
    build: list[Event] = [
        NodeAdd(t=0, node=n, instance_type=args.instance_type, zone=ZONES[i % len(ZONES)]) for i, n in enumerate(nodes)
    ]
    pods_on = {n: [f"p{i:05d}-{j:03d}" for j in range(args.pods_per_node)] for i, n in enumerate(nodes)}
    # Pods go out in waves of one second of trace time so the progress line moves and the API server breathes.
    wave = max(1, args.workers * 20)
    flat = [(n, p) for n in nodes for p in pods_on[n]]
    build += [PodStart(t=1 + k // wave, node=n, pod=p) for k, (n, p) in enumerate(flat)]

    rng = random.Random(1)
    churn: list[Event] = []
    t, serial = 0.0, 0
    while t < args.churn_seconds:
        node = rng.choice(nodes)
        old = pods_on[node].pop(rng.randrange(len(pods_on[node])))
        serial += 1
        new = f"c{serial:06d}"
        pods_on[node].append(new)
        churn += [PodStop(t=t, node=node, pod=old), PodStart(t=t, node=node, pod=new)]
        t += 1 / args.churn_rate

    print(f"target: {args.nodes} nodes x {args.pods_per_node} pods = {len(flat)} pods ({args.instance_type})")
    with KwokEnv(workers=args.workers, log=lambda m: print(f"-- {m}", flush=True)) as env:
        assert env.driver is not None
        assert env.api is not None
        assert env.kwok is not None
        driver = env.driver
        driver.speed = 1.0
        started = time.monotonic()
        driver.replay(
            Trace(events=build),
            on_progress=lambda tt, s: print(f"   building: {s.nodes} nodes, {s.pods} pods", end="\r", flush=True),
        )
        built = time.monotonic() - started
        core = client.CoreV1Api(env.api)
        print(
            f"\ncreated {driver.stats.nodes} nodes and {driver.stats.pods} pods in {built:.0f}s "
            f"({driver.stats.errors} errors{': ' + driver.stats.last_error if driver.stats.errors else ''})"
        )

        def running() -> int:
            # The API server gives no remaining count for field-selected lists: count them.
            listed = core.list_namespaced_pod(CHURN_NAMESPACE, field_selector="status.phase=Running")
            return len(listed.items)

        running_now = wait_for(lambda: (n := running()) >= driver.stats.pods * 0.99 and n, "KWOK", 600, 5.0)
        print(f"KWOK: {running_now} pods Running {time.monotonic() - started:.0f}s after the first create")

        env.create_policy("scale", {**e2e_policy_spec(), "dryRun": True})
        op_started = time.monotonic()
        operator = env.start_operator()

        def first_status() -> int | None:
            env.check_alive()
            pods: int | None = (env.policy("scale").get("status") or {}).get("podsObserved")
            return pods

        wait_for(first_status, "the operator's first status", 600, 0.5)
        startup = time.monotonic() - op_started
        status = env.policy("scale")["status"]
        print(
            f"operator: first status {startup:.1f}s after start (nodes={status.get('nodes')}, "
            f"pods={status.get('podsObserved')}), VmHWM {vm_hwm_mib(operator.pid):.0f} MiB"
        )

        pids = {"operator": operator.pid, "kwok": env.kwok.pid, **(env.cluster.state.pids if env.cluster.state else {})}
        before = {k: cpu_seconds(p) for k, p in pids.items()}
        churn_started = time.monotonic()
        driver.replay(Trace(events=churn))
        wall = time.monotonic() - churn_started
        after = {k: cpu_seconds(p) for k, p in pids.items()}
        planned_after = (env.policy("scale").get("status") or {}).get("lastPlannedTime")
        print(
            f"churn: {len(churn) // 2} replacements in {wall:.0f}s ({len(churn) / 2 / wall:.1f}/s, "
            f"max lag {driver.stats.max_lag:.1f}s); last plan {planned_after}"
        )
        for name in pids:
            print(f"   CPU {name:15s} {100 * (after[name] - before[name]) / wall:5.1f}% of one core")
        print(f"operator VmHWM (peak RSS): {vm_hwm_mib(operator.pid):.0f} MiB")


if __name__ == "__main__":
    main()
