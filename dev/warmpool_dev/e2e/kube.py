"""Kubernetes objects for KWOK runs: EKS-like nodes with their instance type's real pod capacity, bound pods,
the aws-node DaemonSet, and what the absent DaemonSet controller would write when a rollout finishes."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from warmpool.aws.instance_table import FALLBACK_LIMITS
from warmpool.ipamd.limits import IpMode

# KWOK manages only nodes carrying this label (`--manage-nodes-with-label-selector`).
KWOK_LABEL = "warmpool.io/kwok"
CHURN_LABEL = "warmpool.io/churn"


def max_pods(instance_type: str, mode: IpMode = IpMode.SECONDARY) -> int:
    """What EKS tells kubelet: `ENIs * (IPs per ENI - 1) + 2` (prefix mode capped at 110/250)."""
    return FALLBACK_LIMITS[instance_type].max_pods(mode)


def eks_node(
    name: str, instance_type: str, zone: str, instance_id: str, nodegroup: str, labels: dict[str, str]
) -> dict[str, Any]:
    """A Node as an EKS managed node group registers it: the well-known labels and the EC2 provider ID."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/hostname": name,
                "node.kubernetes.io/instance-type": instance_type,
                "topology.kubernetes.io/zone": zone,
                "topology.kubernetes.io/region": zone[:-1],
                "eks.amazonaws.com/capacityType": "ON_DEMAND",
                "eks.amazonaws.com/nodegroup": nodegroup,
                **labels,
            },
        },
        "spec": {"providerID": f"aws:///{zone}/{instance_id}"},
    }


def node_body(
    name: str, instance_type: str, zone: str, instance_id: str, mode: IpMode = IpMode.SECONDARY
) -> dict[str, Any]:
    pods = str(max_pods(instance_type, mode))
    vcpus = str(FALLBACK_LIMITS[instance_type].vcpus or 2)
    resources = {"pods": pods, "cpu": vcpus, "memory": "8Gi"}
    body = eks_node(name, instance_type, zone, instance_id, "churn", {KWOK_LABEL: "true"})
    body["metadata"]["annotations"] = {"kwok.x-k8s.io/node": "fake"}
    # KWOK's nodes run nothing real; the taint keeps anything but the driver's bound pods off them.
    body["spec"]["taints"] = [{"key": "kwok.x-k8s.io/node", "value": "fake", "effect": "NoSchedule"}]
    # Kept by the API server on create and by the Stage's template, so allocatable pods is the real figure.
    body["status"] = {"allocatable": resources, "capacity": resources}
    return body


def pod_body(name: str, namespace: str, node: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {CHURN_LABEL: "true"}},
        "spec": {
            "nodeName": node,  # no scheduler runs: bound at creation, so creationTimestamp is the bind time
            "containers": [{"name": "app", "image": "registry.invalid/app:1"}],
            "tolerations": [{"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}],
            "terminationGracePeriodSeconds": 0,
        },
    }


# The aws-node container env as the EKS add-on ships it (VPC CNI v1.19), trimmed to what matters here.
AWS_NODE_ENV: list[dict[str, Any]] = [
    {"name": "ADDITIONAL_ENI_TAGS", "value": "{}"},
    {"name": "AWS_VPC_CNI_NODE_PORT_SUPPORT", "value": "true"},
    {"name": "AWS_VPC_ENI_MTU", "value": "9001"},
    {"name": "AWS_VPC_K8S_CNI_EXTERNALSNAT", "value": "false"},
    {"name": "AWS_VPC_K8S_CNI_LOGLEVEL", "value": "DEBUG"},
    {"name": "ENABLE_IPv4", "value": "true"},
    {"name": "ENABLE_IPv6", "value": "false"},
    {"name": "ENABLE_POD_ENI", "value": "false"},
    {"name": "ENABLE_PREFIX_DELEGATION", "value": "false"},
    {"name": "MY_NODE_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "spec.nodeName"}}},
    {"name": "WARM_ENI_TARGET", "value": "1"},
    {"name": "WARM_PREFIX_TARGET", "value": "1"},
]


def aws_node_daemonset(namespace: str = "kube-system", env: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """An aws-node DaemonSet shaped like EKS's: the aws-node container beside a node agent and an init container,
    so a test can tell that only the aws-node env changed."""
    labels = {"k8s-app": "aws-node"}
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "aws-node", "namespace": namespace, "labels": labels},
        "spec": {
            "selector": {"matchLabels": labels},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "10%"}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "hostNetwork": True,
                    "priorityClassName": "system-node-critical",
                    "containers": [
                        {
                            "name": "aws-node",
                            "image": "602401143452.dkr.ecr.us-east-1.amazonaws.com/amazon-k8s-cni:v1.19.2",
                            "env": env if env is not None else [dict(e) for e in AWS_NODE_ENV],
                            "ports": [{"containerPort": 61678, "name": "metrics"}],
                        },
                        {"name": "aws-eks-nodeagent", "image": "registry.invalid/nodeagent:1", "env": []},
                    ],
                    "initContainers": [{"name": "aws-vpc-cni-init", "image": "registry.invalid/init:1"}],
                },
            },
        },
    }


def rollout_pending(ds: Any) -> bool:
    """The template changed and no 'controller' has caught up with it yet."""
    return (ds.status.observed_generation or 0) < (ds.metadata.generation or 0)


def mark_rollout_complete(api: client.ApiClient, namespace: str, desired: int = 3, name: str = "aws-node") -> None:
    """What the DaemonSet controller writes once every node runs the current template."""
    apps = client.AppsV1Api(api)
    generation = apps.read_namespaced_daemon_set(name, namespace).metadata.generation
    count = max(desired, 0)
    apps.patch_namespaced_daemon_set_status(
        name,
        namespace,
        {
            "status": {
                "observedGeneration": generation,
                "desiredNumberScheduled": count,
                "currentNumberScheduled": count,
                "updatedNumberScheduled": count,
                "numberAvailable": count,
                "numberReady": count,
                "numberMisscheduled": 0,
            }
        },
    )


def container_env(ds: Any, container: str = "aws-node") -> dict[str, str]:
    found = next(c for c in ds.spec.template.spec.containers if c.name == container)
    return {e.name: e.value for e in found.env or [] if e.value is not None}
