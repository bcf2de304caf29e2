"""The two repros of issue 12 on the real apiserver: aws-node env that Python and Go read differently. Whatever the
operator writes must be safe as ipamd and the aws-node entrypoint read the whole env, the status must show the
mode ipamd runs, and the conditions must say why."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import pytest
from kubernetes import client

from tests.fixtures.moto import MotoEc2
from tests.integration.test_apply import live_spec
from tests.integration.test_plan_status import condition, create_policy, eks_nodes, wait_status
from tests.kube import AWS_NODE_ENV, aws_node_daemonset, create_bound_pod, mark_rollout_complete, unique, wait_for
from tests.operator_proc import OperatorProcess
from warmpool.api.v1alpha1 import parse_duration
from warmpool.aws.instance_table import FALLBACK_LIMITS
from warmpool.ipamd.entrypoint import start_refusals
from warmpool.ipamd.env import ENABLE_PREFIX_DELEGATION, TARGET_NAMES, mode_from_env
from warmpool.ipamd.limits import IpMode
from warmpool.ipamd.safety import check_env
from warmpool.ipamd.version import cni_version_from_image

pytestmark = pytest.mark.integration

M5_LARGE = FALLBACK_LIMITS["m5.large"]
IMAGE = aws_node_daemonset()["spec"]["template"]["spec"]["containers"][0]["image"]


def aws_node_with(
    api: client.ApiClient, namespace: str, env: dict[str, str], image: str | None = None
) -> dict[str, Any]:
    entries = [dict(e) for e in AWS_NODE_ENV if e["name"] not in env and e["name"] not in TARGET_NAMES]
    entries += [{"name": k, "value": v} for k, v in env.items()]
    body = aws_node_daemonset(namespace, env=entries)
    if image:
        body["spec"]["template"]["spec"]["containers"][0]["image"] = image
    client.AppsV1Api(api).create_namespaced_daemon_set(namespace, body)
    mark_rollout_complete(api, namespace)
    return body


def env_now(api: client.ApiClient, namespace: str) -> dict[str, str]:
    ds = client.AppsV1Api(api).read_namespaced_daemon_set("aws-node", namespace)
    container = next(c for c in ds.spec.template.spec.containers if c.name == "aws-node")
    return {e.name: e.value for e in container.env or [] if e.value is not None}


def burst_on_one_node(core: client.CoreV1Api, namespace: str, node: str, pods: int) -> None:
    """`pods` pods bound to one node within the same second."""
    at = time.time()
    for i in range(pods):
        create_bound_pod(core, namespace, f"burst-{i}", node, scheduled_at=at)


def settle(api: client.ApiClient, policy: str, operator: OperatorProcess, burst: int) -> dict[str, Any]:
    """The status once the burst is learned and two more plans have passed (any change had its chance)."""
    status = wait_status(
        api, policy, operator, f"the burst of {burst}", lambda s: (s.get("burst") or {}).get("max") == burst
    )
    for _ in range(2):
        status = wait_status(api, policy, operator, "another plan", later_than(status["lastPlannedTime"]))
    return status


def plan_after_a_burst(
    api: client.ApiClient, namespace: str, moto_ec2: MotoEc2, operator: OperatorProcess, policy_prefix: str
) -> dict[str, Any]:
    """One EKS node and an Auto-mode policy on it; after the first plan, 15 pods start on the node. The status
    once the operator has planned for them."""
    core = client.CoreV1Api(api)
    group = unique("ng")
    (node,), _ = eks_nodes(core, moto_ec2, group, 1)
    policy = unique(policy_prefix)
    create_policy(api, policy, live_spec(namespace, group, mode="Auto"))
    operator.start()
    first = wait_status(api, policy, operator, "the first plan", lambda s: s.get("nodes") == 1)
    wait_past_the_first_epochs(first)
    burst_on_one_node(core, namespace, node, 15)
    return settle(api, policy, operator, 15)


def wait_past_the_first_epochs(first_plan: dict[str, Any]) -> None:
    """Pod bind times have whole-second resolution, and the tracker skips the burst windows that began before
    the operator started (they are only partly observed). A burst bound within the same couple of seconds as the
    first plan can fall into such a window and go uncounted, so the burst waits until the clock is two windows
    and a second past the first plan (window: the policy's burstWindow)."""
    window = parse_duration(first_plan["burst"]["window"])
    planned = datetime.fromisoformat(first_plan["lastPlannedTime"].replace("Z", "+00:00")).timestamp()
    wait_for(lambda: time.time() >= planned + 2 * window + 1.0, "the clock past the first burst windows", timeout=60)


def later_than(planned: str) -> Any:
    return lambda s: s["lastPlannedTime"] > planned


def assert_safe_for_ipamd(env: dict[str, str], mode: IpMode, image: str | None = None) -> None:
    """As ipamd and the aws-node entrypoint read the whole env on m5.large, with this image's VPC CNI."""
    assert mode_from_env(env) is mode
    assert start_refusals(env) == []
    assert check_env(env, [M5_LARGE], cni_version_from_image(image)).messages() == []


def test_prefix_delegation_written_as_1_is_prefix_mode(
    admin_api: client.ApiClient, namespace: str, moto_ec2: MotoEc2, run_operator: OperatorProcess
) -> None:
    """ENABLE_PREFIX_DELEGATION="1" is true for Go's ParseBool: prefix mode. Mutation caught: planning for
    secondary-IP mode and writing WARM_IP_TARGET=0,MINIMUM_IP_TARGET=0 (aws-node would not start)."""
    aws_node_with(admin_api, namespace, {ENABLE_PREFIX_DELEGATION: "1", "WARM_IP_TARGET": "3"})
    status = plan_after_a_burst(admin_api, namespace, moto_ec2, run_operator, "pd-1")
    assert status["mode"] == "Prefix"
    env = env_now(admin_api, namespace)
    assert_safe_for_ipamd(env, IpMode.PREFIX, IMAGE)
    applied = condition(status, "Applied")
    assert applied["message"]  # what was applied, or why not
    if env.get("WARM_IP_TARGET") == "3" and "MINIMUM_IP_TARGET" not in env:  # nothing written: the status says why
        assert applied["reason"] != "InSync"
    assert "Traceback" not in run_operator.logs()


def test_prefix_delegation_with_a_leading_space_is_secondary_mode_on_an_old_cni(
    admin_api: client.ApiClient, namespace: str, moto_ec2: MotoEc2, run_operator: OperatorProcess
) -> None:
    """ENABLE_PREFIX_DELEGATION=" true" is not a Go boolean: ipamd runs secondary-IP mode. On a VPC CNI before
    v1.12.0 a WARM_IP_TARGET above one ENI's IPs (9 on m5.large) makes new ENIs take minutes (#1872).
    Mutation caught: planning for prefix mode and writing WARM_IP_TARGET=16."""
    old_cni = "602401143452.dkr.ecr.us-west-2.amazonaws.com/amazon-k8s-cni:v1.10.4-eksbuild.1"
    aws_node_with(admin_api, namespace, {ENABLE_PREFIX_DELEGATION: " true", "WARM_ENI_TARGET": "1"}, image=old_cni)
    status = plan_after_a_burst(admin_api, namespace, moto_ec2, run_operator, "pd-space")
    assert status["mode"] == "SecondaryIP"
    env = env_now(admin_api, namespace)
    assert_safe_for_ipamd(env, IpMode.SECONDARY, old_cni)
    assert int(env.get("WARM_IP_TARGET", "0")) <= M5_LARGE.ips_per_eni(IpMode.SECONDARY)
    assert condition(status, "Applied")["message"]
    assert "Traceback" not in run_operator.logs()
