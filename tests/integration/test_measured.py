"""Measured pool state on the real apiserver: ipamd's metrics read from an aws-node pod's endpoint, through the
API server's pod proxy by the operator (with its own RBAC) into status, `kubectl get -o wide` and Prometheus;
and the direct path (pod IP) by the scraper itself."""

from __future__ import annotations

import urllib.request
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.fixtures.moto import MotoEc2
from tests.integration.test_plan_status import create_policy, eks_nodes, fast_spec, wait_status
from tests.kube import container_env, create_aws_node, create_bound_pod, create_node, unique, wide_columns
from tests.operator_proc import OperatorProcess
from warmpool.aws.instance_table import FALLBACK_LIMITS
from warmpool.ipamd.env import parse_env
from warmpool.ipamd.limits import IpMode
from warmpool.measured.aggregate import estimate_idle_ips
from warmpool.measured.exposition import IpamdSample
from warmpool.measured.scrape import IpamdScraper, Target
from warmpool.settings import Settings
from warmpool_dev.devcluster.cluster import DevCluster
from warmpool_dev.e2e.ipamd_metrics import IpamdEndpoints, free_port_on, routable_host_ip, run_aws_node_pod

pytestmark = pytest.mark.integration


def test_operator_reads_ipamd_through_the_pod_proxy_into_status_columns_and_prometheus(
    cluster: DevCluster,
    admin_api: client.ApiClient,
    namespace: str,
    moto_ec2: MotoEc2,
    run_operator: OperatorProcess,
) -> None:
    host_ip = routable_host_ip()
    if host_ip is None:
        pytest.skip("no routable address on this machine: kube-apiserver proxies only to global unicast IPs")
    core = client.CoreV1Api(admin_api)
    ds = create_aws_node(admin_api, namespace)
    group = unique("measured")
    # Two nodes; only one has an aws-node pod: the other's scrape fails, alone, and planning goes on.
    (node, silent), _ = eks_nodes(core, moto_ec2, group, 2)
    for i in range(3):
        create_bound_pod(core, namespace, f"app-{i}", node)
    figures = {"sample": IpamdSample(total_ips=20, assigned_ips=3, no_ip_errors=2, enis=2)}
    with IpamdEndpoints(free_port_on(host_ip)) as endpoints:
        endpoints.add(node, "aws-node-m1", host_ip, lambda: figures["sample"])
        run_aws_node_pod(core, "aws-node-m1", namespace, node, host_ip)
        run_operator.env.update(
            WARMPOOL_IPAMD_METRICS="proxy",
            WARMPOOL_IPAMD_METRICS_PORT=str(endpoints.port),
            WARMPOOL_IPAMD_SCRAPE_INTERVAL_SECONDS="5",
        )
        run_operator.start()
        name = unique("wpp")
        create_policy(admin_api, name, fast_spec(namespace, group))

        def read(s: dict[str, Any]) -> bool:
            return (s.get("measured") or {}).get("state") == "Partial"

        status = wait_status(admin_api, name, run_operator, "measured figures", read, timeout=90)
        measured = status["measured"]
        # ipamd's own figure: 20 held - 3 assigned.
        assert measured["idleIpsPerNode"] == 17
        assert measured["via"] == "proxy"
        assert (measured["nodesSampled"], measured["nodesMeasured"]) == (2, 1)
        (by_type,) = measured["byInstanceType"]
        assert (by_type["instanceType"], by_type["nodes"], by_type["nodesSampled"]) == ("m5.large", 2, 2)
        assert (by_type["idleIpsPerNode"], by_type["totalIpsPerNode"], by_type["enisPerNode"]) == (17, 20, 2)
        assert by_type["noIpErrorsSinceStart"] == 2
        assert by_type.get("noIpErrors", 0) == 0  # absent after one scrape, 0 after two: no increase yet
        # Beside it, the model's estimate for the same node: the DaemonSet's env (WARM_ENI_TARGET=1) with 3 pods
        # holds the primary ENI's 9 IPs plus a whole spare ENI of 9: 15 idle.
        env = container_env(ds)
        expected = estimate_idle_ips(FALLBACK_LIMITS["m5.large"], IpMode.SECONDARY, parse_env(env), 3)
        assert measured["estimatedIdleIpsPerNode"] == expected == 15
        measured_condition = next(c for c in status["conditions"] if c["type"] == "Measured")
        assert (measured_condition["status"], measured_condition["reason"]) == ("True", "Partial")
        assert f"{silent}: no running pod matching k8s-app=aws-node in {namespace}" in measured_condition["message"]
        ready = next(c for c in status["conditions"] if c["type"] == "Ready")
        assert ready["status"] == "True"  # a failed scrape never holds planning
        assert status["recommendedSummary"]

        # Five more failed assignments on the node: the next scrape shows the increase.
        figures["sample"] = IpamdSample(total_ips=20, assigned_ips=3, no_ip_errors=7, enis=2)
        status = wait_status(
            admin_api, name, run_operator, "no-IP errors", lambda s: (s.get("measured") or {}).get("noIpErrors") == 5
        )
        assert status["measured"]["byInstanceType"][0]["noIpErrors"] == 5

        # `kubectl get wpp -o wide` shows measured beside estimated.
        columns = wide_columns(cluster.kubectl("get", "wpp", name, "-o", "wide").stdout)
        assert (columns["MEASURED-IDLE"], columns["ESTIMATED-IDLE"], columns["NO-IP-ERRORS"]) == ("17", "15", "5")
        assert columns["MEASURED"] == "Partial"

        # And on the operator's Prometheus endpoint, per instance type.
        with urllib.request.urlopen(f"http://127.0.0.1:{run_operator.metrics_port}/metrics", timeout=5) as answer:
            text = answer.read().decode()
        labels = f'{{instance_type="m5.large",policy="{name}"}}'
        assert f"warmpool_measured_idle_ips_per_node{labels} 17.0" in text
        assert f"warmpool_estimated_idle_ips_per_node{labels} 15.0" in text
        assert f"warmpool_measured_no_ip_errors{labels} 5.0" in text
        assert f"warmpool_measured_nodes{labels} 1.0" in text
        assert 'warmpool_ipamd_scrapes_total{result="ok",via="proxy"}' in text


async def test_direct_path_reads_the_pod_ip_and_reports_a_dead_endpoint(
    cluster: DevCluster, admin_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    """The scraper alone, `direct`: the pod found by node name on the real apiserver, its IP dialled (a loopback
    address of its own per node); a node whose endpoint does not answer fails alone, with a message."""
    assert cluster.state is not None
    core = client.CoreV1Api(admin_api)
    alive, dead = unique("node"), unique("node")
    for node in (alive, dead):
        create_node(core, node)
    port = free_port_on("127.0.0.1")
    with IpamdEndpoints(port) as endpoints:
        endpoints.add(
            alive, "aws-node-a", "127.0.0.21", lambda: IpamdSample(total_ips=30, assigned_ips=12, no_ip_errors=0)
        )
        run_aws_node_pod(core, "aws-node-a", namespace, alive, "127.0.0.21")
        run_aws_node_pod(core, "aws-node-b", namespace, dead, "127.0.0.22")  # nothing listens there

        settings = Settings(
            kubeconfig=cluster.state.admin_kubeconfig,
            ipamd_metrics="direct",
            ipamd_metrics_port=port,
            ipamd_scrape_timeout_seconds=3,
        )
        from warmpool.kubeclient import load_configuration

        async def load() -> client.Configuration:
            return load_configuration(settings)

        scraper = IpamdScraper(settings, load)
        try:
            scraper.want("p", [Target(n, namespace, "k8s-app=aws-node") for n in (alive, dead)])
            stats = await scraper.scrape_round()
        finally:
            await scraper.stop()
    assert (stats.nodes, stats.failed) == (2, 1)
    good, bad = scraper.scrapes[alive], scraper.scrapes[dead]
    assert good.sample is not None
    assert (good.sample.idle_ips, good.error) == (18, "")
    assert bad.sample is None
    assert "ClientConnectorError" in bad.error, bad.error
