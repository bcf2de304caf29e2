"""Issue 5 on the real apiserver, with the operator's own RBAC identity: what the operator writes to aws-node,
and every guard that stops it from writing. Each test names the mutation (a guard removed or weakened) it
catches."""

from __future__ import annotations

import copy
import json
import signal
import time
from datetime import datetime
from typing import Any

import pytest
from kubernetes import client, watch

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
    aws_node_env_apply,
    container_env,
    create_aws_node,
    create_bound_pod,
    mark_rollout_complete,
    read_aws_node,
    rfc3339,
    unique,
    wait_for,
)
from tests.operator_proc import OperatorProcess
from warmpool.api import v1alpha1
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
    # Asserted once learning is over and with a change pending, so no other guard can be what holds it.
    # Mutations caught: without the guard, an apply without force meets a 409 (an ApplyConflict Event) and one
    # with force steals the entry (the generation moves).
    status = wait_status(
        admin_api,
        policy,
        run_operator,
        "the foreign-owner hold after learning",
        lambda s: condition(s, "Applied").get("reason") == "ForeignOwner" and learned_for(s) >= 10,
    )
    assert "eks" in condition(status, "ForeignOwner")["message"]
    assert "owned by another manager" in condition(status, "Applied")["message"]
    assert status["recommendedSummary"] != "WARM_IP_TARGET=5"  # a change is wanted
    after = read_aws_node(admin_api, namespace)
    assert after["metadata"]["generation"] == generation
    assert container_env(after)["WARM_IP_TARGET"] == "5"
    assert not owned_env(after, "warmpool")
    assert "ApplyConflict" not in events_for(admin_api, policy)


def test_two_policies_on_one_daemonset_conflict(
    admin_api: client.ApiClient, namespace: str, moto_ec2: MotoEc2, run_operator: OperatorProcess
) -> None:
    create_aws_node(admin_api, namespace)
    group = unique("ng")
    eks_nodes(client.CoreV1Api(admin_api), moto_ec2, group, 1)
    # The older policy's name sorts last: only the creation time can make it the winner. Mutation caught:
    # deciding by name (both created in the same second, as before, would hide it).
    older, younger = unique("z-older"), unique("a-younger")
    create_policy(admin_api, older, fast_spec(namespace, group))
    created = policy_body(admin_api, older)["metadata"]["creationTimestamp"]
    wait_for(lambda: rfc3339() > created, "the clock to pass the older policy's second", timeout=5, every=0.05)
    create_policy(admin_api, younger, fast_spec(namespace, group))
    assert policy_body(admin_api, younger)["metadata"]["creationTimestamp"] > created
    run_operator.start()
    loser = wait_status(
        admin_api,
        younger,
        run_operator,
        "Conflict on the younger policy",
        lambda s: condition(s, "Conflict").get("status") == "True",
    )
    assert older in condition(loser, "Conflict")["message"]
    assert condition(loser, "Ready")["status"] == "False"
    assert condition(loser, "Applied")["reason"] == "Conflict"
    winner = wait_status(
        admin_api,
        older,
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


def test_kill_9_inside_the_apply_window_neither_loses_nor_repeats_the_change(
    admin_api: client.ApiClient, namespace: str, moto_ec2: MotoEc2, run_operator: OperatorProcess
) -> None:
    """SIGKILL the moment the DaemonSet write lands, before the status patch that records it. The restarted
    operator must learn warmpool's apply time from managedFields and keep the cooldown. Mutation caught: a
    restart that trusts only status.lastAppliedTime applies the next change at once."""
    core, apps = client.CoreV1Api(admin_api), client.AppsV1Api(admin_api)
    create_aws_node(admin_api, namespace)
    before = read_aws_node(admin_api, namespace)
    group = unique("ng")
    eks_nodes(core, moto_ec2, group, 2)
    policy = unique("crash")
    spec = live_spec(namespace, group)
    spec["rollout"]["cooldown"] = "1h"
    create_policy(admin_api, policy, spec)

    stream = watch.Watch()
    run_operator.start()
    assert run_operator.proc is not None
    # Watch (re-watching from the last version seen if a stream ends) until the write lands: the operator may
    # need a while on a loaded machine, and a watch that merely ended must not pass for the write.
    seen, killed, deadline = before["metadata"]["resourceVersion"], False, time.monotonic() + 180
    while not killed and time.monotonic() < deadline:
        for event in stream.stream(
            apps.list_namespaced_daemon_set, namespace, resource_version=seen, timeout_seconds=60
        ):
            seen = event["object"].metadata.resource_version
            if event["object"].metadata.generation > before["metadata"]["generation"]:
                run_operator.proc.send_signal(signal.SIGKILL)
                killed = True
                break
    stream.stop()
    run_operator.stop(signal.SIGKILL)
    assert killed, "the operator never wrote to aws-node within 180 s"
    written = read_aws_node(admin_api, namespace)
    assert set(container_env(written)) >= MANAGED
    # Inside the window: the status never heard of the write.
    assert "lastAppliedTime" not in policy_status(admin_api, policy)
    mark_rollout_complete(admin_api, namespace)
    applied_at = next(e["time"] for e in written["metadata"]["managedFields"] if e["manager"] == "warmpool")

    restart = policy_status(admin_api, policy)["lastPlannedTime"]
    run_operator.start()
    wait_status(admin_api, policy, run_operator, "a plan after the restart", lambda s: s["lastPlannedTime"] > restart)
    # A higher floor for WARM_IP_TARGET makes the plan want a change (not a rescue: no pod waits); only the
    # cooldown may hold it.
    set_spec(admin_api, policy, {"manage": [{"name": "WARM_IP_TARGET", "min": 4}, {"name": "MINIMUM_IP_TARGET"}]})
    held = wait_status(
        admin_api,
        policy,
        run_operator,
        "the new floor held by the cooldown",
        lambda s: (
            condition(s, "Applied").get("reason") == "Cooldown"
            and s.get("recommendedSummary") != s.get("appliedSummary")
            and learned_for(s) >= 10
        ),
    )
    assert _when(held["lastAppliedTime"]) == _when(applied_at)  # learned from managedFields
    assert "applied by warmpool" in held["applied"]["WARM_IP_TARGET"]["reason"]
    after = read_aws_node(admin_api, namespace)
    assert after["metadata"]["generation"] == written["metadata"]["generation"]
    assert container_env(after) == container_env(written)


def test_dry_run_never_writes_and_a_release_waits_like_any_change(
    admin_api: client.ApiClient, namespace: str, moto_ec2: MotoEc2, run_operator: OperatorProcess
) -> None:
    """warmpool owns MINIMUM_IP_TARGET from an older spec; the policy now manages WARM_IP_TARGET only, so that
    entry is released. Mutations caught: a release that skips the rollout guard (written during the rollout)
    or dry run (written under dryRun: true)."""
    apps = client.AppsV1Api(admin_api)
    create_aws_node(admin_api, namespace)
    owned = aws_node_env_apply(namespace, {"MINIMUM_IP_TARGET": "3", "WARM_IP_TARGET": "1"})
    apps.patch_namespaced_daemon_set(
        "aws-node", namespace, owned, field_manager="warmpool", _content_type="application/apply-patch+yaml"
    )
    pending_rollout = read_aws_node(admin_api, namespace)  # the DaemonSet controller has not caught up
    group = unique("ng")
    eks_nodes(client.CoreV1Api(admin_api), moto_ec2, group, 1)
    policy = unique("release")
    create_policy(admin_api, policy, live_spec(namespace, group, manage=[{"name": "WARM_IP_TARGET"}]))
    run_operator.start()

    wait_status(
        admin_api,
        policy,
        run_operator,
        "the release held by the rollout",
        lambda s: condition(s, "Applied").get("reason") == "RolloutInProgress",
    )
    assert (
        read_aws_node(admin_api, namespace)["metadata"]["resourceVersion"]
        == pending_rollout["metadata"]["resourceVersion"]
    )

    set_spec(admin_api, policy, {"dryRun": True})
    mark_rollout_complete(admin_api, namespace)
    untouched = read_aws_node(admin_api, namespace)
    dry = wait_status(
        admin_api,
        policy,
        run_operator,
        "dry run reporting the release",
        lambda s: "release MINIMUM_IP_TARGET" in condition(s, "DryRun").get("message", ""),
    )
    planned = dry["lastPlannedTime"]
    wait_status(admin_api, policy, run_operator, "another plan", lambda s: s["lastPlannedTime"] > planned)
    now = read_aws_node(admin_api, namespace)
    assert now["metadata"]["resourceVersion"] == untouched["metadata"]["resourceVersion"]
    assert container_env(now)["MINIMUM_IP_TARGET"] == "3"

    set_spec(admin_api, policy, {"dryRun": False})
    released = wait_for(
        lambda: (ds := read_aws_node(admin_api, namespace)) and "MINIMUM_IP_TARGET" not in container_env(ds) and ds,
        "the release once live",
        timeout=60,
    )
    assert "WARM_IP_TARGET" in container_env(released)
    assert owned_env(released, "warmpool") == {"aws-node/WARM_IP_TARGET"}


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def learned_for(status: dict[str, Any]) -> float:
    """Seconds between the start of learning (in the checkpoint) and the last plan."""
    started = (status.get("checkpoint") or {}).get("startedAt")
    planned = status.get("lastPlannedTime")
    if started is None or not planned:
        return 0.0
    return datetime.fromisoformat(planned.replace("Z", "+00:00")).timestamp() - float(started)


def policy_body(api: client.ApiClient, name: str) -> dict[str, Any]:
    body: dict[str, Any] = client.CustomObjectsApi(api).get_cluster_custom_object(
        v1alpha1.GROUP, v1alpha1.VERSION, v1alpha1.PLURAL, name
    )
    return body


def set_spec(api: client.ApiClient, name: str, spec: dict[str, Any]) -> None:
    client.CustomObjectsApi(api).patch_cluster_custom_object(
        v1alpha1.GROUP, v1alpha1.VERSION, v1alpha1.PLURAL, name, {"spec": spec}
    )
