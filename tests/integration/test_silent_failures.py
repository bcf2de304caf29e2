"""Inputs the API server accepts that used to silence the operator (an uncaught exception every interval, a status
patch refused with 422, a write to something that is not ipamd): each must become a condition and an Event a
person can act on, with no traceback in the operator's log. One operator serves all five policies."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from tests.fixtures.moto import MotoEc2
from tests.integration.test_apply import events_for
from tests.integration.test_plan_status import condition, create_policy, eks_nodes, fast_spec, wait_status
from tests.kube import AWS_NODE_ENV, aws_node_daemonset, ensure_namespace, grant_target, mark_rollout_complete, unique
from tests.operator_proc import OperatorProcess
from warmpool.api import v1alpha1

pytestmark = pytest.mark.integration

HUGE = "99999999999999999999"  # beyond int64: the CRD's integer fields cannot hold it


def create_daemonset(
    api: client.ApiClient, namespace: str, name: str, image: str | None = None, env: list[dict[str, Any]] | None = None
) -> int:
    body = aws_node_daemonset(namespace, env=env)
    body["metadata"]["name"] = name
    if image is not None:
        body["spec"]["template"]["spec"]["containers"][0]["image"] = image
    client.AppsV1Api(api).create_namespaced_daemon_set(namespace, body)
    mark_rollout_complete(api, namespace, name=name)
    generation: int = client.AppsV1Api(api).read_namespaced_daemon_set(name, namespace).metadata.generation
    return generation


def grant(api: client.ApiClient, namespace: str, name: str, verbs: list[str]) -> None:
    """A Role letting the operator's ServiceAccount use DaemonSet `name`, as a user would add for a target."""
    rbac = client.RbacAuthorizationV1Api(api)
    role = f"warmpool-{name}"
    rbac.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": role},
            "rules": [{"apiGroups": ["apps"], "resources": ["daemonsets"], "resourceNames": [name], "verbs": verbs}],
        },
    )
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": role},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": "warmpool-operator", "namespace": "kube-system"}],
        },
    )


def spec_for(namespace: str, name: str, container: str, group: str, **overrides: Any) -> dict[str, Any]:
    spec = fast_spec(namespace, group, **overrides)
    spec["targetRef"] = {"namespace": namespace, "name": name, "container": container}
    return spec


def test_every_accepted_input_becomes_a_condition_and_an_event(
    admin_api: client.ApiClient, namespace: str, moto_ec2: MotoEc2, run_operator: OperatorProcess
) -> None:
    core, apps = client.CoreV1Api(admin_api), client.AppsV1Api(admin_api)
    group = unique("ng")
    eks_nodes(core, moto_ec2, group, 1)
    others = [unique("t") for _ in range(2)]
    for ns in others:
        ensure_namespace(core, ns)
        grant_target(admin_api, ns)

    # 1. A malformed checkpoint (the schema lets any object through): discarded with an Event, learning restarts
    #    and the Applied condition says why. Mutation caught: restoring without the checks (AttributeError).
    checkpoint = unique("checkpoint")
    create_daemonset(admin_api, namespace, "aws-node")
    create_policy(
        admin_api,
        checkpoint,
        spec_for(namespace, "aws-node", "aws-node", group, churn={"burstWindow": "20s", "halfLife": "1h"}),
    )
    client.CustomObjectsApi(admin_api).patch_cluster_custom_object_status(
        v1alpha1.GROUP,
        v1alpha1.VERSION,
        v1alpha1.PLURAL,
        checkpoint,
        {"status": {"checkpoint": {"version": 1, "window": 20, "bursts": "garbage", "density": {}}}},
    )

    # 2. An aws-node value beyond int64 on a managed variable: reported, and the status still lands (no 422
    #    loop). Mutation caught: putting the parsed value into status.applied.
    huge = unique("int64")
    env = [dict(e) for e in AWS_NODE_ENV if e["name"] != "WARM_ENI_TARGET"] + [
        {"name": "WARM_ENI_TARGET", "value": HUGE}
    ]
    create_daemonset(admin_api, others[0], "aws-node", env=env)
    create_policy(
        admin_api,
        huge,
        spec_for(others[0], "aws-node", "aws-node", group, mode="SecondaryIP", manage=[{"name": "WARM_ENI_TARGET"}]),
    )

    # 3 and 4. Targets that are not ipamd, though RBAC lets the operator patch them: kube-proxy, and the node
    #    agent beside ipamd in aws-node. Mutation caught: planning for (and writing) any container.
    grant(admin_api, namespace, "kube-proxy", ["get", "patch"])
    proxy = unique("kube-proxy")
    proxy_generation = create_daemonset(
        admin_api, namespace, "kube-proxy", image="registry.k8s.io/kube-proxy:v1.31.0", env=[]
    )
    create_policy(admin_api, proxy, spec_for(namespace, "kube-proxy", "aws-node", group, dryRun=False))
    agent = unique("nodeagent")
    agent_generation = create_daemonset(admin_api, others[1], "aws-node")
    create_policy(admin_api, agent, spec_for(others[1], "aws-node", "aws-eks-nodeagent", group, dryRun=False))

    # 5. An ipamd DaemonSet the operator's RBAC may read but not patch: the condition names the missing
    #    permission. Mutation caught: letting the ApiException escape (a traceback every interval).
    grant(admin_api, namespace, "aws-node-canary", ["get"])
    forbidden = unique("canary")
    create_daemonset(admin_api, namespace, "aws-node-canary")
    create_policy(
        admin_api,
        forbidden,
        spec_for(namespace, "aws-node-canary", "aws-node", group, dryRun=False),
    )

    run_operator.start()

    restarted = wait_status(
        admin_api,
        checkpoint,
        run_operator,
        "learning restarted after the bad checkpoint",
        lambda s: "learning restarted" in condition(s, "Applied").get("message", ""),
    )
    assert condition(restarted, "Applied")["reason"] == "Learning"
    assert restarted["checkpoint"]["bursts"] != "garbage"  # replaced by a readable one
    assert "CheckpointDiscarded" in events_for(admin_api, checkpoint)

    reported = wait_status(
        admin_api,
        huge,
        run_operator,
        "the value beyond int64 reported",
        lambda s: HUGE in condition(s, "Degraded").get("message", ""),
    )
    assert reported["mode"] == "SecondaryIP"
    assert "WARM_ENI_TARGET" not in (reported.get("applied") or {})
    assert "Degraded" in events_for(admin_api, huge)

    for name, ns, ds, generation in (
        (proxy, namespace, "kube-proxy", proxy_generation),
        (agent, others[1], "aws-node", agent_generation),
    ):
        invalid = wait_status(
            admin_api,
            name,
            run_operator,
            f"TargetInvalid on {name}",
            lambda s: condition(s, "TargetInvalid").get("status") == "True",
        )
        assert "does not run ipamd" in condition(invalid, "TargetInvalid")["message"]
        assert condition(invalid, "Ready")["status"] == "False"
        assert "TargetInvalid" in events_for(admin_api, name)
        assert apps.read_namespaced_daemon_set(ds, ns).metadata.generation == generation

    denied = wait_status(
        admin_api,
        forbidden,
        run_operator,
        "Forbidden naming the permission",
        lambda s: condition(s, "Degraded").get("reason") == "Forbidden",
    )
    assert (
        f'"patch" on resource "daemonsets" in API group "apps" for {namespace}/aws-node-canary'
        in (condition(denied, "Degraded")["message"])
    )
    assert "Forbidden" in events_for(admin_api, forbidden)

    log = run_operator.logs()
    assert "Traceback" not in log
    assert "Unprocessable Entity" not in log  # no status patch was refused
