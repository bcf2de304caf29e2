"""Benchmark (not a test): 5,000 nodes and 150,000 pods through the watcher's stores, then one plan.

Prints store events per second (pod bodies as dicts, as the watcher hands them over after json.loads), the
memory the stores hold (tracemalloc), snapshot-building and plan time, and the process's peak RSS. The HTTP and
JSON path is measured by bench_ingest.py, the whole operator by bench_kwok_scale.py.

    python benchmarks/bench_observe.py [--nodes 5000] [--pods-per-node 30]
"""

from __future__ import annotations

import argparse
import random
import resource
import time
import tracemalloc
from typing import Any

from kubernetes import client

from warmpool.api.v1alpha1 import WarmPoolPolicySpec
from warmpool.aws.instance_table import fallback_limits
from warmpool.controller.inputs import build_snapshot, selected_nodes
from warmpool.observe.cluster import ClusterView, NodeSink, PodSink
from warmpool.planner import ChurnTracker, plan
from warmpool.snapshot import SubnetInfo

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


async def no_config() -> client.Configuration:
    raise RuntimeError("the benchmark never connects")


def main(nodes: int, pods_per_node: int) -> None:
    rng = random.Random(1)
    now = time.time()
    node_names = [node_body(i)["metadata"]["name"] for i in range(nodes)]
    pods = nodes * pods_per_node

    def feed(cluster: ClusterView) -> None:
        node_sink, pod_sink = NodeSink(cluster.nodes), PodSink(cluster.pods)
        for i in range(nodes):
            node_sink.on_event("ADDED", node_body(i), now)
        for j in range(pods):
            pod_sink.on_event("ADDED", pod_body(j, node_names[j % nodes], now - rng.uniform(0, 900)), now)

    # Once under tracemalloc for what the stores hold, once without it for the rate.
    tracemalloc.start()
    measured = ClusterView(no_config)
    feed(measured)
    held_mib = tracemalloc.get_traced_memory()[0] / 2**20
    tracemalloc.stop()
    del measured
    cluster = ClusterView(no_config)  # its watches are never started: this feeds the stores directly
    started = time.perf_counter()
    feed(cluster)
    index_seconds = time.perf_counter() - started
    events = nodes + pods

    spec = WarmPoolPolicySpec()
    started = time.perf_counter()
    facts = selected_nodes(cluster, spec.node_selector)
    subnets_by_node = {n.name: (f"subnet-{n.zone}",) for n in facts}
    snapshot = build_snapshot(cluster, facts, subnets_by_node, now, 900)
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
    print(f"store events: {events} in {index_seconds:.2f}s = {events / index_seconds:,.0f} events/s")
    print(f"held by the stores: {held_mib:.1f} MiB ({held_mib * 2**20 / pods:.0f} bytes a pod, with logs)")
    print(f"snapshot build: {snapshot_seconds * 1000:.0f} ms; churn tracker: {observe_seconds * 1000:.0f} ms")
    print(f"plan: {plan_seconds * 1000:.0f} ms -> {rec.values}")
    print(f"peak RSS: {rss_mib:.0f} MiB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--pods-per-node", type=int, default=30)
    args = parser.parse_args()
    main(args.nodes, args.pods_per_node)
