"""`warmpool run` as a subprocess against the real apiserver, authenticated as its own ServiceAccount."""

from __future__ import annotations

import urllib.request
from typing import Any

import pytest
from kubernetes import client

from tests.kube import create_bound_pod, create_node, unique, wait_for
from tests.operator_proc import OperatorProcess
from warmpool.api import v1alpha1
from warmpool.devcluster.cluster import DevCluster

pytestmark = pytest.mark.integration


def _status(api: client.ApiClient, name: str) -> dict[str, Any]:
    body = client.CustomObjectsApi(api).get_cluster_custom_object(
        v1alpha1.GROUP, v1alpha1.VERSION, v1alpha1.PLURAL, name
    )
    status: dict[str, Any] = body.get("status") or {}
    return status


def _important(log: str) -> str:
    text = "\n".join(line for line in log.splitlines() if " DEBUG " not in line)
    return text[:3000] + "\n...\n" + text[-3000:]


def test_operator_observes_selected_nodes_and_ip_pods(
    cluster: DevCluster, admin_api: client.ApiClient, namespace: str
) -> None:
    assert cluster.state is not None
    core = client.CoreV1Api(admin_api)
    group = unique("ng")
    nodes = [unique("node") for _ in range(3)]
    for node in nodes:
        create_node(core, node, labels={"eks.amazonaws.com/nodegroup": group})
    create_node(core, unique("other"))  # not selected
    for i in range(4):
        create_bound_pod(core, namespace, f"web-{i}", nodes[i % 3])
    create_bound_pod(core, namespace, "hostnet", nodes[0], host_network=True)  # takes no VPC IP
    create_bound_pod(core, namespace, "done", nodes[1], phase="Succeeded")  # released its IP

    policy = unique("observe")
    client.CustomObjectsApi(admin_api).create_cluster_custom_object(
        v1alpha1.GROUP,
        v1alpha1.VERSION,
        v1alpha1.PLURAL,
        {
            "apiVersion": v1alpha1.API_VERSION,
            "kind": v1alpha1.KIND,
            "metadata": {"name": policy},
            "spec": {"nodeSelector": {"matchLabels": {"eks.amazonaws.com/nodegroup": group}}, "dryRun": True},
        },
    )
    with OperatorProcess(cluster.state.operator_kubeconfig) as operator:
        seen: list[dict[str, Any]] = []

        def reported() -> dict[str, Any] | None:
            seen.append(_status(admin_api, policy))
            return seen[-1] if seen[-1].get("podsObserved") == 4 else None

        try:
            status = wait_for(reported, "the operator to report 4 IP pods on 3 nodes", timeout=90)
        except AssertionError:
            pytest.fail(f"last status {seen[-1:]}\noperator log:\n{_important(operator.logs())}")
        assert status["nodes"] == 3
        assert status["observedGeneration"] == 1
        ready = next(c for c in status["conditions"] if c["type"] == "Ready")
        assert ready["status"] == "True"
        with urllib.request.urlopen(f"http://127.0.0.1:{operator.liveness_port}/healthz", timeout=5) as r:
            assert r.status == 200
        assert operator.stop() == 0, operator.logs()[-3000:]

    # kopf never wrote to Pods or Nodes: no annotations, no finalizers.
    for pod in core.list_namespaced_pod(namespace).items:
        assert not pod.metadata.finalizers
        assert not any(k.startswith(("kopf", "warmpool")) for k in (pod.metadata.annotations or {}))
    for node in nodes:
        meta = core.read_node(node).metadata
        assert not meta.finalizers
        assert not any(k.startswith(("kopf", "warmpool")) for k in (meta.annotations or {}))
