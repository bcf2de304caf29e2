"""Long-lived operator state kept in kopf's memo: clients, the watched cluster, and per-policy learning."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from warmpool.api.v1alpha1 import Churn
from warmpool.aws import Ec2Client
from warmpool.observe.cluster import ClusterView
from warmpool.planner import ChurnTracker
from warmpool.settings import Settings


@dataclass
class PolicyState:
    tracker: ChurnTracker
    churn: Churn  # the churn spec the tracker was built for; a change rebuilds it
    complete_since: float  # pod-start history is complete from here on (operator start)
    last_plan: float | None = None
    node_counts: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=120))
    last_hold: str | None = None  # last refusal reported as an Event, to report each kind once
    last_foreign_edit: str | None = None


@dataclass
class OperatorContext:
    settings: Settings
    api: Any  # kubernetes.client.ApiClient
    ec2: Ec2Client
    cluster: ClusterView  # nodes and pods, from the operator's own watches
    started_at: float
    policies: dict[str, PolicyState] = field(default_factory=dict)
    eks: Any = None  # warmpool.aws.eks.EksAddonClient, made on first use (clusters on the add-on route only)
