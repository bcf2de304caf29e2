"""Issue 5 on the real apiserver, with the operator's own RBAC identity: what the operator writes to aws-node,
and every guard that stops it from writing."""

from __future__ import annotations

import copy
import json
import signal
from typing import Any

import pytest
from kubernetes import client

from tests.fixtures.moto import MotoEc2
from tests.integration.test_plan_status import (
    condition,
    create_policy,
    eks_nodes,
    fast_spec,
    policy_status,
    wait_status,
)
from tests.kube import (
    container_env,
    create_aws_node,
    create_bound_pod,
    mark_rollout_complete,
    read_aws_node,
    unique,
    wait_for,
)
from tests.operator_proc import OperatorProcess
from warmpool_dev.devcluster.cluster import DevCluster

pytestmark = pytest.mark.integration

MANAGED = {"WARM_IP_TARGET", "MINIMUM_IP_TARGET"}


def live_spec(namespace: str, group: str, **overrides: Any) -> dict[str, Any]:
    spec = fast_spec(namespace, group, dryRun=False)
    spec["rollout"] = {"interval": "10s", "cooldown": "10s", "quietPeriod": "0s", "deadBand": 0, "deadBandRatio": 0}
    spec.update(overrides)
    return spec


def owned_env(ds: dict[str, Any], manager: str) -> set[str]:
    names: set[str] = set()
    for entry in ds["metadata"].get("managedFields") or []:
        if entry["manager"] != manager:
            continue
        containers = entry["fieldsV1"].get("f:spec", {}).get("f:template", {}).get("f:spec", {}).get("f:containers", {})
        for ckey, cfields in containers.items():
            for ekey in cfields.get("f:env", {}):
                if ekey.startswith("k:"):
                    names.add(f"{json.loads(ckey[2:])['name']}/{json.loads(ekey[2:])['name']}")
    return names


def without_volatile(ds: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(ds)
    for key in ("resourceVersion", "generation", "managedFields"):
        out["metadata"].pop(key, None)
    out.pop("status", None)
    # The API server bumps this one itself on every template change.
    (out["metadata"].get("annotations") or {}).pop("deprecated.daemonset.template.generation", None)
    return out


def events_for(api: client.ApiClient, name: str) -> list[str]:
    found = client.CoreV1Api(api).list_event_for_all_namespaces(field_selector=f"involvedObject.name={name}")
    return [e.reason for e in found.items]


def test_applies_exactly_the_managed_entries_then_guards_hold(
    cluster: DevCluster, admin_api: client.ApiClient, namespace: str, moto_ec2: MotoEc2, run_operator: OperatorProcess
) -> None:
    core = client.CoreV1Api(admin_api)
    before = create_aws_node(admin_api, namespace)
    before = read_aws_node(admin_api, namespace)
    group = unique("ng")
    nodes, _ = eks_nodes(core, moto_ec2, group, 2)
    policy = unique("live")
    create_policy(admin_api, policy, live_spec(namespace, group))
    run_operator.start()

    after = wait_for(
        lambda: (ds := read_aws_node(admin_api, namespace)) and set(container_env(ds)) >= MANAGED and ds,
        "the operator to write the managed env entries",
        timeout=90,
    )
    # Exactly two env entries of one container changed; everything else is byte-for-byte the same.
    expected = without_volatile(before)
    expected_env = container_env(after)
    for item in expected["spec"]["template"]["spec"]["containers"]:
        if item["name"] == "aws-node":
            item["env"] = item["env"] + [
                {"name": n, "value": expected_env[n]} for n in ("WARM_IP_TARGET", "MINIMUM_IP_TARGET")
            ]
    got = without_volatile(after)
    got_env = next(c for c in got["spec"]["template"]["spec"]["containers"] if c["name"] == "aws-node")["env"]
    want_env = next(c for c in expected["spec"]["template"]["spec"]["containers"] if c["name"] == "aws-node")["env"]
    assert sorted(got_env, key=lambda e: e["name"]) == sorted(want_env, key=lambda e: e["name"])
    for side in (got, expected):
        for item in side["spec"]["template"]["spec"]["containers"]:
            item.pop("env") if item["name"] == "aws-node" else None
    assert got == expected
    assert after["metadata"]["generation"] == before["metadata"]["generation"] + 1
    assert owned_env(after, "warmpool") == {"aws-node/WARM_IP_TARGET", "aws-node/MINIMUM_IP_TARGET"}
    assert all(e["operation"] == "Apply" for e in after["metadata"]["managedFields"] if e["manager"] == "warmpool")
    assert container_env(after)["WARM_ENI_TARGET"] == "1"  # not ours: untouched

    status = wait_status(
        admin_api, policy, run_operator, "applied values in status", lambda s: s.get("lastAppliedTime")
    )
    assert (
        status["appliedSummary"]
        == f"WARM_IP_TARGET={expected_env['WARM_IP_TARGET']},MINIMUM_IP_TARGET={expected_env['MINIMUM_IP_TARGET']}"
    )
    assert "Applied" in events_for(admin_api, policy)
    # ...and `kubectl describe` shows them (involvedObject without a namespace, as for any cluster-scoped object).
    assert "Applied" in cluster.kubectl("describe", "wpp", policy).stdout

    # The rollout has not finished (no DaemonSet controller here updates its status): a new burst must wait.
    for i in range(6):
        create_bound_pod(core, namespace, f"burst-{i}", nodes[0])
    held = wait_status(
        admin_api,
        policy,
        run_operator,
        "a held change",
        lambda s: (
            s.get("recommended", {}).get("WARM_IP_TARGET", {}).get("value") == 7
            and "rollout" in condition(s, "Applied").get("message", "")
        ),
    )
    assert condition(held, "Applied")["status"] == "False"
    assert read_aws_node(admin_api, namespace)["metadata"]["generation"] == after["metadata"]["generation"]

    # Once the rollout is done, the change lands: one more generation, no more.
    mark_rollout_complete(admin_api, namespace)
    final = wait_for(
        lambda: (ds := read_aws_node(admin_api, namespace)) and container_env(ds)["WARM_IP_TARGET"] == "7" and ds,
        "the held change to be applied",
        timeout=60,
    )
    assert final["metadata"]["generation"] == after["metadata"]["generation"] + 1

    # Killed right after that, a new operator finds the values in place and rolls nothing again.
    run_operator.stop(signal.SIGKILL)
    mark_rollout_complete(admin_api, namespace)
    run_operator.start()
    planned = policy_status(admin_api, policy)["lastPlannedTime"]
    wait_status(admin_api, policy, run_operator, "two plans after restart", lambda s: s["lastPlannedTime"] > planned)
    planned = policy_status(admin_api, policy)["lastPlannedTime"]
    wait_status(admin_api, policy, run_operator, "another plan", lambda s: s["lastPlannedTime"] > planned)
    assert read_aws_node(admin_api, namespace)["metadata"]["generation"] == final["metadata"]["generation"]


def test_eks_owned_entries_are_not_stolen(
    admin_api: client.ApiClient, namespace: str, moto_ec2: MotoEc2, run_operator: OperatorProcess
) -> None:
    core = client.CoreV1Api(admin_api)
    apps = client.AppsV1Api(admin_api)
    create_aws_node(admin_api, namespace, field_manager="eks", apply=True)
    # The add-on's configuration sets WARM_IP_TARGET itself.
    ds = read_aws_node(admin_api, namespace)
    body = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "aws-node", "namespace": namespace},
        "spec": ds["spec"],
    }
    body["spec"]["template"]["spec"]["containers"][0]["env"].append({"name": "WARM_IP_TARGET", "value": "5"})
    for key in ("revisionHistoryLimit",):
        body["spec"].pop(key, None)
    apps.patch_namespaced_daemon_set(
        "aws-node", namespace, body, field_manager="eks", force=True, _content_type="application/apply-patch+yaml"
    )
    mark_rollout_complete(admin_api, namespace)
    generation = read_aws_node(admin_api, namespace)["metadata"]["generation"]
    group = unique("ng")
    eks_nodes(core, moto_ec2, group, 1)
    policy = unique("foreign")
    create_policy(admin_api, policy, live_spec(namespace, group))
    run_operator.start()
    status = wait_status(
        admin_api, policy, run_operator, "ForeignOwner", lambda s: condition(s, "ForeignOwner").get("status") == "True"
    )
    assert "eks" in condition(status, "ForeignOwner")["message"]
    after = read_aws_node(admin_api, namespace)
    assert after["metadata"]["generation"] == generation
    assert container_env(after)["WARM_IP_TARGET"] == "5"
    assert not owned_env(after, "warmpool")


def test_two_policies_on_one_daemonset_conflict(
    admin_api: client.ApiClient, namespace: str, moto_ec2: MotoEc2, run_operator: OperatorProcess
) -> None:
    create_aws_node(admin_api, namespace)
    group = unique("ng")
    eks_nodes(client.CoreV1Api(admin_api), moto_ec2, group, 1)
    first, second = unique("a-first"), unique("b-second")
    create_policy(admin_api, first, fast_spec(namespace, group))
    create_policy(admin_api, second, fast_spec(namespace, group))
    run_operator.start()
    loser = wait_status(
        admin_api,
        second,
        run_operator,
        "Conflict on the younger policy",
        lambda s: condition(s, "Conflict").get("status") == "True",
    )
    assert first in condition(loser, "Conflict")["message"]
    assert condition(loser, "Ready")["status"] == "False"
    assert condition(loser, "Applied")["reason"] == "Conflict"
    winner = wait_status(
        admin_api,
        first,
        run_operator,
        "no Conflict on the older",
        lambda s: condition(s, "Conflict").get("status") == "False",
    )
    assert condition(winner, "Ready")["status"] == "True"


def test_missing_daemonset_is_a_condition_and_recovers(
    admin_api: client.ApiClient, namespace: str, moto_ec2: MotoEc2, run_operator: OperatorProcess
) -> None:
    group = unique("ng")
    eks_nodes(client.CoreV1Api(admin_api), moto_ec2, group, 1)
    policy = unique("missing")
    create_policy(admin_api, policy, live_spec(namespace, group))
    run_operator.start()
    status = wait_status(
        admin_api,
        policy,
        run_operator,
        "Degraded: DaemonSetMissing",
        lambda s: condition(s, "Degraded").get("reason") == "DaemonSetMissing",
    )
    assert condition(status, "Ready")["status"] == "False"
    create_aws_node(admin_api, namespace)
    wait_for(
        lambda: set(container_env(read_aws_node(admin_api, namespace))) >= MANAGED,
        "the operator to apply once the DaemonSet exists",
        timeout=60,
    )
    healthy = wait_status(
        admin_api, policy, run_operator, "Ready again", lambda s: condition(s, "Ready").get("status") == "True"
    )
    assert condition(healthy, "Degraded")["status"] == "False"
