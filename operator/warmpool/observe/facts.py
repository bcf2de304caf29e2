"""Pure extraction of the few facts warmpool needs from Node and Pod bodies.

Index functions call these on every watch event, so they must be cheap and return small immutable values:
kopf keeps one per object, for every pod in the cluster.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

# Labels EKS, Karpenter and the VPC CNI put on nodes.
INSTANCE_TYPE_LABELS = ("node.kubernetes.io/instance-type", "beta.kubernetes.io/instance-type")
ZONE_LABELS = ("topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/zone")
CAPACITY_TYPE_LABELS = ("eks.amazonaws.com/capacityType", "karpenter.sh/capacity-type")
ENI_CONFIG_LABEL = "k8s.amazonaws.com/eniConfig"
OS_LABEL = "kubernetes.io/os"
COMPUTE_TYPE_LABEL = "eks.amazonaws.com/compute-type"
# Security groups for pods: the VPC resource controller gives such pods a branch ENI, not an ipamd IP.
POD_ENI_RESOURCE = "vpc.amazonaws.com/pod-eni"
FARGATE_PROFILE_LABEL = "eks.amazonaws.com/fargate-profile"
FINISHED_PHASES = frozenset({"Succeeded", "Failed"})


def parse_time(text: str | None) -> float | None:
    """Kubernetes RFC 3339 timestamps to Unix seconds."""
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _first_label(labels: Mapping[str, str], keys: tuple[str, ...]) -> str:
    return next((labels[k] for k in keys if labels.get(k)), "")


@dataclass(frozen=True, slots=True)
class NodeFacts:
    name: str
    instance_type: str
    zone: str
    capacity_type: str
    instance_id: str  # from spec.providerID; EC2 tells its primary ENI's subnet
    eni_config: str  # custom networking: the ENIConfig whose subnet pod IPs come from
    allocatable_pods: int
    ready: bool
    schedulable: bool
    created_at: float
    labels: tuple[tuple[str, str], ...]  # sorted; for the policy's nodeSelector


def node_facts(body: Mapping[str, Any]) -> NodeFacts | None:
    """Facts of a node whose pods get IPs from ipamd; None for Fargate and Windows nodes."""
    metadata = body.get("metadata", {})
    labels: Mapping[str, str] = metadata.get("labels") or {}
    if labels.get(COMPUTE_TYPE_LABEL) == "fargate" or labels.get(OS_LABEL, "linux") != "linux":
        return None
    spec = body.get("spec") or {}
    status = body.get("status") or {}
    provider_id: str = spec.get("providerID") or ""
    instance_id = provider_id.rsplit("/", 1)[-1] if provider_id.startswith("aws://") else ""
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
    try:
        allocatable_pods = int((status.get("allocatable") or {}).get("pods", 0))
    except (TypeError, ValueError):
        allocatable_pods = 0
    return NodeFacts(
        name=metadata.get("name", ""),
        instance_type=_first_label(labels, INSTANCE_TYPE_LABELS),
        zone=_first_label(labels, ZONE_LABELS),
        capacity_type=_first_label(labels, CAPACITY_TYPE_LABELS),
        instance_id=instance_id,
        eni_config=labels.get(ENI_CONFIG_LABEL, ""),
        allocatable_pods=allocatable_pods,
        ready=ready,
        schedulable=not spec.get("unschedulable", False),
        created_at=parse_time(metadata.get("creationTimestamp")) or 0.0,
        labels=tuple(sorted(labels.items())),
    )


@dataclass(frozen=True, slots=True)
class PodFacts:
    uid: str
    started_at: float  # when it was bound to its node


def _uses_branch_eni(body: Mapping[str, Any]) -> bool:
    annotations = body.get("metadata", {}).get("annotations") or {}
    if POD_ENI_RESOURCE in annotations:
        return True
    for container in (body.get("spec") or {}).get("containers") or []:
        resources = container.get("resources") or {}
        if POD_ENI_RESOURCE in (resources.get("limits") or {}) or POD_ENI_RESOURCE in (resources.get("requests") or {}):
            return True
    return False


def takes_vpc_ip(body: Mapping[str, Any]) -> bool:
    """Whether this pod holds (or will hold) an IP from ipamd's warm pool."""
    spec = body.get("spec") or {}
    if spec.get("hostNetwork"):
        return False
    if (body.get("status") or {}).get("phase") in FINISHED_PHASES:
        return False
    if FARGATE_PROFILE_LABEL in (body.get("metadata", {}).get("labels") or {}):
        return False
    if (spec.get("nodeSelector") or {}).get(OS_LABEL) == "windows":
        return False
    return not _uses_branch_eni(body)


def bound_time(body: Mapping[str, Any]) -> float:
    """When the pod was bound: the PodScheduled condition's transition, else its creation time."""
    for condition in (body.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "True":
            when = parse_time(condition.get("lastTransitionTime"))
            if when is not None:
                return when
    return parse_time(body.get("metadata", {}).get("creationTimestamp")) or 0.0


def pod_facts(body: Mapping[str, Any]) -> tuple[str, PodFacts] | None:
    """(node name, facts) of a bound pod that holds a VPC IP; None for every other pod."""
    node = (body.get("spec") or {}).get("nodeName")
    if not node or not takes_vpc_ip(body):
        return None
    return node, PodFacts(uid=body.get("metadata", {}).get("uid", ""), started_at=bound_time(body))


def stop_of(body: Mapping[str, Any], now: float) -> tuple[str, str, float] | None:
    """(node, uid, when) for a bound pod that is releasing its VPC IP: it finished, or is being deleted. The
    time is when it was first seen so (the IP is freed as its sandbox goes, at about that moment)."""
    spec = body.get("spec") or {}
    node = spec.get("nodeName")
    meta = body.get("metadata", {})
    if not node or spec.get("hostNetwork"):
        return None
    finished = (body.get("status") or {}).get("phase") in FINISHED_PHASES
    if not finished and not meta.get("deletionTimestamp"):
        return None
    return node, meta.get("uid", ""), now


def is_pending_unbound(body: Mapping[str, Any]) -> bool:
    """A pod waiting for the scheduler: many of them signal a scale-out."""
    spec = body.get("spec") or {}
    return not spec.get("nodeName") and (body.get("status") or {}).get("phase", "Pending") == "Pending"


def selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """metav1.LabelSelector semantics (matchLabels AND matchExpressions); an empty selector matches all."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        present = key in labels
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True
