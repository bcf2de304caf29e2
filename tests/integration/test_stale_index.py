"""Objects deleted while the operator's watch was away must not linger in what the policy reports: the API
server that comes back cannot resume the watch (410 Gone), and the relist that follows replaces the whole set
(a relist sends no DELETED events)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from kubernetes import client

from tests.fixtures.moto import MotoEc2
from tests.integration.test_plan_status import create_policy, eks_nodes, fast_spec, wait_status
from tests.kube import create_aws_node, create_bound_pod, swap_to_other_apiserver, unique
from tests.operator_proc import OperatorProcess
from warmpool_dev.devcluster.cluster import DevCluster

pytestmark = pytest.mark.integration


def test_pods_deleted_behind_the_watch_do_not_linger(
    cluster: DevCluster,
    admin_api: client.ApiClient,
    namespace: str,
    moto_ec2: MotoEc2,
    run_operator: OperatorProcess,
    tmp_path: Path,
) -> None:
    assert cluster.state is not None
    core = client.CoreV1Api(admin_api)
    create_aws_node(admin_api, namespace)
    group = unique("ng")
    nodes, _ = eks_nodes(core, moto_ec2, group, 1)
    policy = unique("stale")
    create_policy(admin_api, policy, fast_spec(namespace, group))
    old = time.time() - 300  # bound well before any later list, so "not listed" can only mean "gone"
    names = [f"p{i}" for i in range(4)]
    for name in names:
        create_bound_pod(core, namespace, name, nodes[0], scheduled_at=old)
    run_operator.start()
    wait_status(admin_api, policy, run_operator, "4 pods seen", lambda s: s.get("podsObserved") == 4)

    # The operator's API server goes away; another one on the same etcd deletes three pods meanwhile.
    args, other = swap_to_other_apiserver(cluster, tmp_path)
    for name in names[1:]:
        client.CoreV1Api(other).delete_namespaced_pod(name, namespace, grace_period_seconds=0)
    cluster.stop_apiserver()
    # Back on the original port: its fresh watch cache cannot resume the operator's old resource versions.
    cluster.start_apiserver(args)

    status = wait_status(
        admin_api,
        policy,
        run_operator,
        "only the surviving pod to be counted",
        lambda s: s.get("podsObserved") == 1,
        timeout=120,
    )
    assert status["nodes"] == 1
    log = run_operator.log.read_text()
    assert "/api/v1/pods: resourceVersion" in log  # the 410 that forced the relist
    assert "relisting" in log
    assert run_operator.proc is not None
    assert run_operator.proc.poll() is None
