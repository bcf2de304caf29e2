"""Helpers for integration tests: EKS-like Node and Pod objects created through the real API server."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import yaml
from kubernetes import client, config

from warmpool_dev.devcluster.cluster import DevCluster, free_port
from warmpool_dev.e2e.kube import AWS_NODE_ENV, aws_node_daemonset, mark_rollout_complete

__all__ = ["AWS_NODE_ENV", "aws_node_daemonset", "mark_rollout_complete"]

T = TypeVar("T")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def rfc3339(ts: float | None = None) -> str:
    return datetime.fromtimestamp(ts if ts is not None else time.time(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def wait_for(predicate: Callable[[], T | None], what: str, timeout: float = 60.0, every: float = 0.5) -> T:
    """Poll until predicate returns something truthy. Waiting for an outcome, not asserting a duration."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}; last value: {last!r}")


def create_node(
    core: client.CoreV1Api,
    name: str,
    instance_type: str = "m5.large",
    zone: str = "us-east-1a",
    labels: dict[str, str] | None = None,
    max_pods: int = 29,
    ready: bool = True,
    instance_id: str | None = None,
) -> None:
    all_labels = {
        "kubernetes.io/os": "linux",
        "node.kubernetes.io/instance-type": instance_type,
        "topology.kubernetes.io/zone": zone,
        "eks.amazonaws.com/capacityType": "ON_DEMAND",
        **(labels or {}),
    }
    body = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": all_labels},
        "spec": {"providerID": f"aws:///{zone}/{instance_id or 'i-' + uuid.uuid4().hex[:17]}"},
    }
    core.create_node(body)
    status = {
        "status": {
            "allocatable": {"pods": str(max_pods), "cpu": "2", "memory": "8Gi"},
            "capacity": {"pods": str(max_pods), "cpu": "2", "memory": "8Gi"},
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True" if ready else "False",
                    "reason": "KubeletReady",
                    "message": "test",
                    "lastHeartbeatTime": rfc3339(),
                    "lastTransitionTime": rfc3339(),
                }
            ],
        }
    }
    core.patch_node_status(name, status)


def create_bound_pod(
    core: client.CoreV1Api,
    namespace: str,
    name: str,
    node: str,
    host_network: bool = False,
    phase: str = "Running",
    scheduled_at: float | None = None,
    extra_spec: dict[str, Any] | None = None,
) -> str:
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": "churn"}},
        "spec": {
            "nodeName": node,
            "hostNetwork": host_network,
            "containers": [{"name": "app", "image": "registry.invalid/app:1"}],
            **(extra_spec or {}),
        },
    }
    created = core.create_namespaced_pod(namespace, body)
    core.patch_namespaced_pod_status(
        name,
        namespace,
        {
            "status": {
                "phase": phase,
                "podIP": "10.0.0.1",
                "conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": rfc3339(scheduled_at)}],
            }
        },
    )
    return str(created.metadata.uid)


def ensure_namespace(core: client.CoreV1Api, name: str) -> None:
    try:
        core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    except client.ApiException as error:
        if error.status != 409:
            raise


TARGET_RBAC = Path(__file__).resolve().parents[1] / "deploy" / "kustomize" / "base" / "rbac.yaml"
TARGET_ROLE = "warmpool-operator-target"


def grant_target(api: client.ApiClient, namespace: str) -> None:
    """Make `namespace` a policy target, as a user would (Helm `rbac.targets`): the base's target Role and
    RoleBinding (get/patch on aws-node only), copied into that namespace."""
    rbac = client.RbacAuthorizationV1Api(api)
    for doc in yaml.safe_load_all(TARGET_RBAC.read_text()):
        if doc["kind"] not in ("Role", "RoleBinding") or doc["metadata"]["name"] != TARGET_ROLE:
            continue
        doc["metadata"]["namespace"] = namespace
        create = rbac.create_namespaced_role if doc["kind"] == "Role" else rbac.create_namespaced_role_binding
        try:
            create(namespace, doc)
        except client.ApiException as error:
            if error.status != 409:
                raise


def create_aws_node(
    api: client.ApiClient, namespace: str, field_manager: str = "kubectl-client-side-apply", apply: bool = False
) -> dict[str, Any]:
    """Create the DaemonSet as a given field manager (server-side apply when `apply`, e.g. as 'eks')."""
    apps = client.AppsV1Api(api)
    body = aws_node_daemonset(namespace)
    if apply:
        result = apps.patch_namespaced_daemon_set(
            "aws-node",
            namespace,
            body,
            field_manager=field_manager,
            force=True,
            _content_type="application/apply-patch+yaml",
        )
    else:
        result = apps.create_namespaced_daemon_set(namespace, body, field_manager=field_manager)
    mark_rollout_complete(api, namespace, desired=3)
    out: dict[str, Any] = api.sanitize_for_serialization(result)
    return out


def read_aws_node(api: client.ApiClient, namespace: str) -> dict[str, Any]:
    out: dict[str, Any] = api.sanitize_for_serialization(
        client.AppsV1Api(api).read_namespaced_daemon_set("aws-node", namespace)
    )
    return out


def container_env(ds: dict[str, Any], container: str = "aws-node") -> dict[str, Any]:
    found = next(c for c in ds["spec"]["template"]["spec"]["containers"] if c["name"] == container)
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in found.get("env") or []}


def aws_node_env_apply(namespace: str, env: dict[str, str], image: str | None = None) -> dict[str, Any]:
    """A server-side apply body for aws-node that names only these env entries (and the image, when given)."""
    container: dict[str, Any] = {"name": "aws-node"}
    if image is not None:
        container["image"] = image
    container["env"] = [{"name": k, "value": v} for k, v in env.items()]
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "aws-node", "namespace": namespace},
        "spec": {"template": {"spec": {"containers": [container]}}},
    }


def swap_to_other_apiserver(cluster: DevCluster, tmp_path: Path) -> tuple[list[str], client.ApiClient]:
    """Stop the cluster's API server and start another on a free port over the same etcd, so a change can be made
    behind the back of whoever watched the first. Returns the first's arguments (to start it again) and an admin
    client of the other."""
    assert cluster.state is not None
    args = cluster.stop_apiserver()
    port = free_port()
    cluster.start_apiserver([a if not a.startswith("--secure-port=") else f"--secure-port={port}" for a in args])
    kubeconfig = yaml.safe_load(Path(cluster.state.admin_kubeconfig).read_text())
    kubeconfig["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{port}"
    other_file = tmp_path / "other.kubeconfig"
    other_file.write_text(yaml.safe_dump(kubeconfig))
    return args, config.new_client_from_config(config_file=str(other_file))


def wide_columns(table: str) -> dict[str, str]:
    """kubectl's one-row table by column: headers start where their values start (some hold spaces)."""
    header, row = table.splitlines()[:2]
    starts = [m.start() for m in re.finditer(r"\S+(?: \S+)*", header)]
    names = [header[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)]
    values = [row[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)]
    return dict(zip(names, values, strict=True))
