"""Benchmark (not a test): 5,000 nodes and 150,000 pods through warmpool's index functions, then one plan.

Prints index events per second, snapshot-building and plan time, and the process's peak RSS. The index
functions are the real kopf handlers (called directly, as kopf would, with a memo); kopf's own index storage is
stood in for by plain dicts keyed the same way, since this measures our code, not kopf's.

    python benchmarks/bench_observe.py [--nodes 5000] [--pods-per-node 30]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import time
from types import SimpleNamespace
from typing import Any

from warmpool.api.v1alpha1 import WarmPoolPolicySpec
from warmpool.aws.instance_table import fallback_limits
from warmpool.controller.inputs import node_infos, selected_nodes
from warmpool.handlers.observe import node_index, pod_index
from warmpool.observe.startlog import StartLog
from warmpool.planner import ChurnTracker, plan
from warmpool.snapshot import ClusterSnapshot, SubnetInfo

TYPES = ["m5.large", "m5.xlarge", "m5.2xlarge", "c5.4xlarge"]


def node_body(i: int) -> dict[str, Any]:
    zone = f"us-east-1{'abc'[i % 3]}"
    return {
        "metadata": {
            "name": f"ip-10-{i // 250}-{i % 250}",
            "creationTimestamp": "2026-11-01T00:00:00Z",
            "labels": {
                "kubernetes.io/os": "linux",
                "node.kubernetes.io/instance-type": TYPES[i % len(TYPES)],
                "topology.kubernetes.io/zone": zone,
                "eks.amazonaws.com/capacityType": "ON_DEMAND",
            },
        },
        "spec": {"providerID": f"aws:///{zone}/i-{i:017x}"},
        "status": {"allocatable": {"pods": "58"}, "conditions": [{"type": "Ready", "status": "True"}]},
    }


def pod_body(j: int, node: str, t: float) -> dict[str, Any]:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
    return {
        "metadata": {"name": f"p{j}", "namespace": "default", "uid": f"uid-{j}", "creationTimestamp": stamp},
        "spec": {"nodeName": node, "containers": [{"name": "c"}]},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": stamp}],
        },
    }


class Body(dict[str, Any]):
    """Enough of kopf.Body for our index functions: dict access plus `.metadata.uid`."""

    @property
    def metadata(self) -> SimpleNamespace:
        return SimpleNamespace(uid=self["metadata"].get("uid"))


async def main(nodes: int, pods_per_node: int) -> None:
    rng = random.Random(1)
    memo = SimpleNamespace(start_log=StartLog())
    now = time.time()
    node_store: dict[str, list[Any]] = {}
    pod_store: dict[str, dict[str, Any]] = {}

    started = time.perf_counter()
    node_names = []
    for i in range(nodes):
        result = await node_index(body=Body(node_body(i)))  # type: ignore[arg-type]
        for key, value in result.items():
            node_store[key] = [value]
            node_names.append(key)
    events = nodes
    for j in range(nodes * pods_per_node):
        node = node_names[j % nodes]
        result = await pod_index(body=Body(pod_body(j, node, now - rng.uniform(0, 900))), memo=memo)  # type: ignore[arg-type]
        for key, value in result.items():
            pod_store.setdefault(key, {})[value.uid] = value
        events += 1
    index_seconds = time.perf_counter() - started

    spec = WarmPoolPolicySpec()
    started = time.perf_counter()
    facts = selected_nodes(node_store, spec.node_selector)
    subnets_by_node = {n.name: (f"subnet-{n.zone}",) for n in facts}
    snapshot = ClusterSnapshot(
        now=now,
        nodes=node_infos(
            facts, {k: list(v.values()) for k, v in pod_store.items()}, memo.start_log, subnets_by_node, now - 900
        ),
    )
    snapshot_seconds = time.perf_counter() - started

    limits = {t: lim for t in TYPES if (lim := fallback_limits(t)) is not None}
    subnets = {f"subnet-us-east-1{z}": SubnetInfo(f"subnet-us-east-1{z}", f"us-east-1{z}", 60000) for z in "abc"}
    tracker = ChurnTracker(spec.churn)
    started = time.perf_counter()
    tracker.observe(snapshot)
    stats = tracker.stats(spec.churn.burst_quantile, now)
    observe_seconds = time.perf_counter() - started
    started = time.perf_counter()
    rec = plan(spec, snapshot, limits, subnets, {}, stats)
    plan_seconds = time.perf_counter() - started

    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"nodes={nodes} pods={nodes * pods_per_node}")
    print(f"index events: {events} in {index_seconds:.2f}s = {events / index_seconds:,.0f} events/s")
    print(f"snapshot build: {snapshot_seconds * 1000:.0f} ms; churn tracker: {observe_seconds * 1000:.0f} ms")
    print(f"plan: {plan_seconds * 1000:.0f} ms -> {rec.values}")
    print(f"peak RSS: {rss_mib:.0f} MiB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--pods-per-node", type=int, default=30)
    args = parser.parse_args()
    asyncio.run(main(args.nodes, args.pods_per_node))
