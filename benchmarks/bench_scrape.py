"""Benchmark (not a test): what reading ipamd's metrics costs, per node and per round.

Prints the parse time of one body the size of a real scrape (ipamd's gauges plus one
`awscni_assigned_ip_per_cidr` line per pod IP). Then starts the loopback control plane and N nodes, each with an
aws-node pod whose metrics endpoint is a stand-in ipamd (`warmpool_dev.e2e.ipamd_metrics`, ipamd's gauges only),
runs the operator's scraper over them, through the API server's pod proxy and directly to the pod IP, and prints
the round time and the time per node. The concurrency is the operator's default (8) unless given.

    python benchmarks/bench_scrape.py [--nodes 100] [--rounds 3] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from kubernetes import client, config

from warmpool.kubeclient import load_configuration
from warmpool.measured.exposition import IpamdSample, parse_ipamd_metrics, render_ipamd_metrics
from warmpool.measured.scrape import IpamdScraper, Target
from warmpool.settings import Settings
from warmpool_dev.devcluster.cluster import DevCluster
from warmpool_dev.e2e.ipamd_metrics import IpamdEndpoints, free_port_on, routable_host_ip, run_aws_node_pod

CIDR_LINES = 30  # pod IPs on a busy m5.xlarge-sized node


def body() -> str:
    lines = [render_ipamd_metrics(IpamdSample(total_ips=45, assigned_ips=CIDR_LINES, no_ip_errors=3, enis=3))]
    lines.append("# TYPE awscni_assigned_ip_per_cidr gauge\n")
    lines += [f'awscni_assigned_ip_per_cidr{{cidr="10.0.{i // 250}.{i % 250}/32"}} 1\n' for i in range(CIDR_LINES)]
    return "".join(lines)


async def rounds(settings: Settings, namespace: str, nodes: list[str], count: int) -> list[float]:
    async def load() -> client.Configuration:
        return load_configuration(settings)

    scraper = IpamdScraper(settings, load)
    scraper.want("bench", [Target(n, namespace, "k8s-app=aws-node") for n in nodes])
    times = []
    try:
        for _ in range(count):
            stats = await scraper.scrape_round()
            assert stats.failed == 0, [s.error for s in scraper.scrapes.values() if s.error][:3]
            times.append(stats.seconds)
    finally:
        await scraper.stop()
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    text = body()
    started = time.perf_counter()
    for _ in range(1000):
        parse_ipamd_metrics(text)
    print(f"parse one scrape ({len(text)} bytes): {(time.perf_counter() - started):.3f} ms")

    host = routable_host_ip()
    assert host is not None, "no routable address: the API server proxies only to global unicast pod IPs"
    with DevCluster() as state, IpamdEndpoints(free_port_on(host)) as proxied:
        api = config.new_client_from_config(config_file=state.admin_kubeconfig)
        core = client.CoreV1Api(api)
        core.create_namespace({"metadata": {"name": "bench"}})
        sample = parse_ipamd_metrics(text)
        names = [f"node-{i}" for i in range(args.nodes)]
        for i, name in enumerate(names):
            core.create_node({"metadata": {"name": name}})
            proxied.add(name, f"aws-node-{i}", host, lambda: sample)
            run_aws_node_pod(core, f"aws-node-{i}", "bench", name, host)
        # Direct: the pods' IP is this host's, where the one listener answers for every node (as the proxy's).
        for via in ("proxy", "direct"):
            settings = Settings(
                kubeconfig=state.admin_kubeconfig,
                ipamd_metrics=via,  # type: ignore[arg-type]
                ipamd_metrics_port=proxied.port,
                ipamd_scrape_concurrency=args.concurrency,
            )
            times = asyncio.run(rounds(settings, "bench", names, args.rounds))
            first, rest = times[0], times[1:] or times
            best = min(rest)
            print(
                f"{via:6s} {args.nodes} nodes, {args.concurrency} in flight: first round {first:.2f}s "
                f"(pod lookups included), then {best:.2f}s = {best / args.nodes * 1000:.1f} ms per node"
            )
        api.close()


if __name__ == "__main__":
    main()
