"""Dependencies going away under a running operator: the last applied values stay, the policy says why it is
Degraded, and everything recovers by itself."""

from __future__ import annotations

import time

import pytest
from kubernetes import client

from tests.fixtures.moto import MotoEc2
from tests.integration.test_apply import MANAGED, live_spec
from tests.integration.test_plan_status import condition, create_policy, eks_nodes, policy_status, wait_status
from tests.kube import (
    container_env,
    create_aws_node,
    create_bound_pod,
    create_node,
    mark_rollout_complete,
    read_aws_node,
    unique,
    wait_for,
)
from tests.operator_proc import OperatorProcess
from warmpool_dev.devcluster.cluster import DevCluster

pytestmark = pytest.mark.integration


def _running_with_applied_values(
    admin_api: client.ApiClient, namespace: str, moto_ec2: MotoEc2, run_operator: OperatorProcess, prefix: str
) -> tuple[str, dict[str, str], int, str, str]:
    """A live policy on two nodes whose first change has landed and rolled out: (policy, env, generation, node
    group, subnet)."""
    create_aws_node(admin_api, namespace)
    group = unique("ng")
    _, subnet = eks_nodes(client.CoreV1Api(admin_api), moto_ec2, group, 2)
    policy = unique(prefix)
    create_policy(admin_api, policy, live_spec(namespace, group))
    run_operator.start()
    env = wait_for(
        lambda: (e := container_env(read_aws_node(admin_api, namespace))) and set(e) >= MANAGED and e,
        "the first apply",
        timeout=90,
    )
    mark_rollout_complete(admin_api, namespace)
    return policy, env, read_aws_node(admin_api, namespace)["metadata"]["generation"], group, subnet


def test_ec2_outage_keeps_values_reports_degraded_and_recovers(
    admin_api: client.ApiClient, namespace: str, moto_ec2: MotoEc2, run_operator: OperatorProcess
) -> None:
    """During the outage a new node joins (its subnet is in no cache) and a burst on it makes the plan want a
    change: the change must wait for EC2. Mutation caught: dropping the "EC2 unavailable" hold writes it."""
    # Short cache and few retries, so the outage shows within a plan or two.
    run_operator.env.update({"WARMPOOL_EC2_CACHE_TTL_SECONDS": "1", "WARMPOOL_EC2_MAX_ATTEMPTS": "1"})
    policy, env, generation, group, subnet = _running_with_applied_values(
        admin_api, namespace, moto_ec2, run_operator, "ec2-down"
    )
    core = client.CoreV1Api(admin_api)
    (instance,) = moto_ec2.run_instances("m5.large", subnet, 1)

    with moto_ec2.down():
        node = unique("node")
        create_node(core, node, labels={"eks.amazonaws.com/nodegroup": group}, instance_id=instance)
        for i in range(6):
            create_bound_pod(core, namespace, f"burst-{i}", node)
        status = wait_status(
            admin_api,
            policy,
            run_operator,
            "the change held while EC2 is down",
            lambda s: (
                "EC2 unavailable" in condition(s, "Applied").get("message", "")
                and s.get("recommendedSummary") != s.get("appliedSummary")
            ),
        )
        assert condition(status, "Applied")["reason"] == "InputsUnknown"
        assert condition(status, "Degraded")["status"] == "True"
        assert "EC2" in condition(status, "Degraded")["message"]
        assert condition(status, "Ready")["status"] == "False"
        ds = read_aws_node(admin_api, namespace)
        assert container_env(ds) == env
        assert ds["metadata"]["generation"] == generation
    healthy = wait_status(
        admin_api,
        policy,
        run_operator,
        "recovery once EC2 is back",
        lambda s: condition(s, "Degraded").get("status") == "False" and condition(s, "Ready").get("status") == "True",
    )
    assert healthy["subnets"]
    wait_for(
        lambda: read_aws_node(admin_api, namespace)["metadata"]["generation"] == generation + 1,
        "the held change to land once EC2 is back",
        timeout=60,
    )


def test_apiserver_restart_under_a_running_operator(
    cluster: DevCluster, admin_api: client.ApiClient, namespace: str, moto_ec2: MotoEc2, run_operator: OperatorProcess
) -> None:
    policy, env, generation, _, _ = _running_with_applied_values(
        admin_api, namespace, moto_ec2, run_operator, "api-restart"
    )

    args = cluster.stop_apiserver()
    time.sleep(5)  # an outage of a few seconds: long enough for watches and requests to fail
    cluster.start_apiserver(args)
    before = policy_status(admin_api, policy)["lastPlannedTime"]
    after = wait_status(
        admin_api,
        policy,
        run_operator,
        "planning to resume after the restart",
        lambda s: s.get("lastPlannedTime", "") > before and condition(s, "Ready").get("status") == "True",
    )
    assert run_operator.proc is not None
    assert run_operator.proc.poll() is None, "the operator must survive an API server restart"
    assert after["appliedSummary"]
    ds = read_aws_node(admin_api, namespace)
    assert container_env(ds) == env
    assert ds["metadata"]["generation"] == generation
