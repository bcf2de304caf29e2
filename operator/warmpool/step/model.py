"""The step's inputs and outputs: plain data, built by the operator from the API server and by the simulator from
its model, and never holding a Kubernetes object."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from warmpool.api.v1alpha1 import Variable, WarmPoolPolicySpec
from warmpool.apply.daemonset import FIELD_MANAGER, DaemonSetView
from warmpool.conditions import ConditionUpdate
from warmpool.ipamd.limits import InstanceLimits
from warmpool.planner import Recommendation
from warmpool.planner.guards import GuardReason
from warmpool.snapshot import ClusterSnapshot, SubnetInfo
from warmpool.step.memory import PolicyMemory

# The planner's guard reasons and the step's own refusals are one list, so a decision keeps its reason.
Reason = GuardReason


class Event(NamedTuple):
    type: str  # Normal or Warning
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class PolicyInput:
    """One WarmPoolPolicy as the API server holds it: the spec is not yet validated."""

    name: str
    uid: str = ""
    generation: int | None = None
    created: str = ""  # metadata.creationTimestamp (RFC 3339), which decides conflicts
    spec: Mapping[str, Any] = field(default_factory=dict)
    status: Mapping[str, Any] = field(default_factory=dict)  # what the previous step reported

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> PolicyInput:
        meta = body.get("metadata") or {}
        spec, status = body.get("spec"), body.get("status")
        return cls(
            name=str(meta.get("name", "")),
            uid=str(meta.get("uid", "")),
            generation=meta.get("generation"),
            created=str(meta.get("creationTimestamp", "")),
            spec=spec if isinstance(spec, Mapping) else {},
            status=status if isinstance(status, Mapping) else {},
        )


@dataclass(frozen=True, slots=True)
class Observed:
    """The facts the plan is made from: the selected nodes and what EC2 said about them."""

    snapshot: ClusterSnapshot
    limits: Mapping[str, InstanceLimits]
    subnets: Mapping[str, SubnetInfo]
    problems: tuple[str, ...] = ()  # EC2 trouble, for the Degraded condition
    subnets_known: bool = True  # False when EC2 could not say which subnets the nodes draw from


@dataclass(frozen=True, slots=True)
class TargetUnreadable:
    """The target DaemonSet or its container could not be read; `reason` is CamelCase for the condition."""

    reason: str  # DaemonSetMissing, ContainerMissing, Forbidden, Unreachable
    message: str


@dataclass(frozen=True, slots=True)
class WriteRoute:
    """How a write would reach the DaemonSet: server-side apply as warmpool, or through the EKS managed add-on
    (which writes as `eks`, so `eks` owning an entry is then no foreign owner)."""

    writer: str = FIELD_MANAGER
    problem: str | None = None  # why nothing can be written this way now (the add-on cannot be read)
    foreign_hint: str = ""  # appended to the ForeignOwner message: how to take the other route


@dataclass(frozen=True, slots=True)
class Write:
    """A server-side apply of exactly these env entries of one container. Entries warmpool owned before and
    left out of `values` are released by the API server (ipamd falls back to its default)."""

    namespace: str
    name: str
    container: str
    values: dict[Variable, int]
    release: tuple[str, ...]
    force: bool  # take entries over from other field managers (rollout.allowForeignOwner)


@dataclass(frozen=True, slots=True)
class Applied:
    """The write landed; `target` is the DaemonSet as the API server returned it."""

    target: DaemonSetView


@dataclass(frozen=True, slots=True)
class ApplyRefused:
    """The API server refused the write (409 conflict, 403 forbidden, 422 invalid, or unreachable)."""

    status: int
    message: str


Outcome = Applied | ApplyRefused | None


@dataclass(slots=True)
class Started:
    """`begin` found the policy due: what `decide` needs, and what the caller must observe for it."""

    policy: PolicyInput
    spec: WarmPoolPolicySpec
    memory: PolicyMemory
    lookback: float  # seconds of pod starts and stops the snapshot must carry
    events: list[Event] = field(default_factory=list)


@dataclass(slots=True)
class StepResult:
    """Everything decided, after the write (if any): the status patch and the Events to post. An empty status
    means nothing to report (the policy was not due)."""

    status: dict[str, Any]
    events: list[Event] = field(default_factory=list)
    reason: Reason | None = None
    message: str = ""
    wrote: bool = False
    recommended: dict[Variable, int] = field(default_factory=dict)
    applied: dict[Variable, int] = field(default_factory=dict)
    summary: str = ""  # one log line


@dataclass(slots=True)
class Finished:
    """`begin` decided alone (not due, invalid spec, paused): nothing to observe or write."""

    result: StepResult
    memory: PolicyMemory | None


@dataclass(slots=True)
class Pending:
    """`decide`'s answer: the write to make (or None, and why), and what `report` completes once it is done."""

    start: Started
    write: Write | None
    reason: Reason
    message: str
    rec: Recommendation
    target: DaemonSetView | None  # None when the target is unreadable or not an ipamd container
    now: float
    conditions: list[ConditionUpdate] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    status: dict[str, Any] = field(default_factory=dict)
    current: dict[Variable, int] = field(default_factory=dict)
    held_values: dict[Variable, int] = field(default_factory=dict)  # what a hold would have written
    release: tuple[str, ...] = ()  # entries warmpool owns that the policy no longer manages
    last_applied: float | None = None  # warmpool's last change before this step (None: a write is its first)
