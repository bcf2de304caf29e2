"""The policy step, pure: every refusal x dry run x rollout in progress x learning as one table, then each input
the API server accepts that used to silence the operator."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.kube import aws_node_daemonset
from warmpool import step
from warmpool.api.v1alpha1 import Churn, Variable
from warmpool.apply.daemonset import DaemonSetView, EnvEntry, view
from warmpool.aws.instance_table import FALLBACK_LIMITS
from warmpool.planner import ChurnTracker
from warmpool.snapshot import ClusterSnapshot, NodeInfo, SubnetInfo
from warmpool.step import Reason
from warmpool.step.status import fit_status, timestamp

NOW = 1_800_000_000.0
NAME = "web"
CREATED = "2026-01-02T00:00:00Z"
IMAGE = "602401143452.dkr.ecr.us-east-1.amazonaws.com/amazon-k8s-cni:v1.19.2"
LIMITS = {"m5.large": FALLBACK_LIMITS["m5.large"]}
SUBNETS = {"subnet-a": SubnetInfo("subnet-a", "us-east-1a", 4000)}
DEFAULT_ENV = {"WARM_ENI_TARGET": "1", "ENABLE_PREFIX_DELEGATION": "false", "AWS_VPC_K8S_CNI_LOGLEVEL": "DEBUG"}


def spec(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "churn": {"burstWindow": "10s", "halfLife": "1h"},
        "rollout": {"interval": "60s", "cooldown": "1h", "quietPeriod": "0s", "deadBand": 0, "deadBandRatio": 0},
    }
    body.update(overrides)
    return body


def nodes(pending: int = 0, pods: int = 8) -> ClusterSnapshot:
    starts = tuple(NOW - 300 + i for i in range(pods))
    infos = tuple(
        NodeInfo(
            name=f"n{i}",
            instance_type="m5.large",
            zone="us-east-1a",
            subnet_ids=("subnet-a",),
            ip_pods=pods,
            pod_start_times=starts,
        )
        for i in range(3)
    )
    return ClusterSnapshot(now=NOW, nodes=infos, pending_pods=pending)


def target(
    env: dict[str, str | None] | None = None,
    owners: dict[str, list[str]] | None = None,
    rollout: bool = False,
    image: str = IMAGE,
) -> DaemonSetView:
    """A target container; an env value of None is a valueFrom entry."""
    entries = env if env is not None else dict(DEFAULT_ENV)
    return DaemonSetView(
        env={k: EnvEntry(v) if v is not None else EnvEntry(None, value_from=True) for k, v in entries.items()},
        owners=owners or {},
        warmpool_applied_at=None,
        rollout_in_progress=rollout,
        rollout_message="",
        generation=1,
        container_found=True,
        image=image,
    )


@dataclass
class Tick:
    spec: dict[str, Any] = field(default_factory=spec)
    status: dict[str, Any] = field(default_factory=dict)
    target: DaemonSetView | step.TargetUnreadable = field(default_factory=target)
    snapshot: ClusterSnapshot = field(default_factory=nodes)
    subnets_known: bool = True
    peers: list[tuple[str, str]] = field(default_factory=lambda: [(CREATED, NAME)])
    learned: bool = True  # the history already spans the learning period
    memory: step.PolicyMemory | None = None

    def decide(self, now: float = NOW) -> step.Pending:
        policy = step.PolicyInput(NAME, "uid-1", 1, CREATED, self.spec, self.status)
        start = step.begin(policy, self.memory, now, history_since=NOW - 3600)
        assert isinstance(start, step.Started)
        self.memory = start.memory
        if self.learned and start.memory.tracker.started_at is None:
            start.memory.tracker.started_at = now - 3600
        observed = step.Observed(self.snapshot, LIMITS, SUBNETS, subnets_known=self.subnets_known)
        return step.decide(start, observed, self.target, self.peers, now)

    def run(self, now: float = NOW, outcome: step.Applied | step.ApplyRefused | None = None) -> step.StepResult:
        return step.report(self.decide(now), outcome)


def recommended() -> dict[Variable, int]:
    return dict(Tick().decide().rec.values)


def in_sync_env() -> dict[str, str | None]:
    return {**DEFAULT_ENV, **{v.value: str(n) for v, n in recommended().items()}}


# ----- the table: every refusal x dry run x rollout in progress x learning -----

# name -> (how the tick differs, the reason when nothing else holds, whether a release-only change)
REFUSALS: dict[str, tuple[dict[str, Any], Reason, bool]] = {
    "none": ({}, Reason.APPLY, False),
    "conflict": ({"peers": [("2025-01-01T00:00:00Z", "older"), (CREATED, NAME)]}, Reason.CONFLICT, False),
    "no_change": ({"target": "in_sync"}, Reason.NO_CHANGE, False),
    "cooldown": ({"status": {"lastAppliedTime": timestamp(NOW - 60)}}, Reason.COOLDOWN, False),
    "not_quiet": ({"snapshot": nodes(pending=50)}, Reason.NOT_QUIET, False),
    "daily_limit": (
        {"status": {"lastAppliedTime": timestamp(NOW - 7200), "checkpoint": "four_rollouts"}},
        Reason.DAILY_LIMIT,
        False,
    ),
    "foreign_owner": ({"target": target(owners={"WARM_IP_TARGET": ["eks"]})}, Reason.FOREIGN_OWNER, False),
    "value_from": ({"target": target({**DEFAULT_ENV, "WARM_IP_TARGET": None})}, Reason.VALUE_FROM, False),
    "ec2_unknown": ({"subnets_known": False}, Reason.INPUTS_UNKNOWN, False),
    # An MTU the aws-node entrypoint refuses: any write would roll a DaemonSet that never starts.
    "unsafe": ({"target": target({**DEFAULT_ENV, "AWS_VPC_ENI_MTU": "100"})}, Reason.UNSAFE, False),
    "target_invalid": (
        {"target": target({"KUBE_PROXY_MODE": "iptables"}, image="registry.k8s.io/kube-proxy:v1.31.0")},
        Reason.TARGET_INVALID,
        False,
    ),
    "forbidden": ({"target": step.TargetUnreadable("Forbidden", "may not get")}, Reason.TARGET_UNREADABLE, False),
    "release": ({"target": "release"}, Reason.APPLY, True),
    "release_in_cooldown": (
        {"target": "release", "status": {"lastAppliedTime": timestamp(NOW - 60)}},
        Reason.COOLDOWN,
        True,
    ),
}
# Reasons that hold before the rollout guard (the planner's own order, and refusals about the target itself).
_BEFORE_ROLLOUT = {Reason.CONFLICT, Reason.NO_CHANGE, Reason.TARGET_INVALID, Reason.TARGET_UNREADABLE}


def build(case: str, dry_run: bool, rollout: bool, learning: bool) -> Tick:
    changes, _, _ = REFUSALS[case]
    tick = Tick(learned=not learning)
    for key, value in changes.items():
        setattr(tick, key, value)
    if tick.status.get("checkpoint") == "four_rollouts":
        tick.status = {**tick.status, "checkpoint": checkpoint_with_rollouts(7200, 4 * 3600, 8 * 3600, 20 * 3600)}
    if tick.target == "in_sync":
        tick.target = target(in_sync_env())
    elif tick.target == "release":
        # In sync on the managed variables; warmpool still owns WARM_PREFIX_TARGET from an older spec.
        tick.target = target({**in_sync_env(), "WARM_PREFIX_TARGET": "1"}, owners={"WARM_PREFIX_TARGET": ["warmpool"]})
    assert isinstance(tick.target, (DaemonSetView, step.TargetUnreadable))
    if rollout and isinstance(tick.target, DaemonSetView):
        tick.target = DaemonSetView(**{**_fields(tick.target), "rollout_in_progress": True})
    tick.spec = {**tick.spec, "dryRun": dry_run}
    return tick


def checkpoint_with_rollouts(*ages: float) -> dict[str, Any]:
    """A readable checkpoint whose counted rollouts were `ages` seconds before NOW."""
    tracker = ChurnTracker(Churn.model_validate(spec()["churn"]))
    tracker.started_at = NOW - 7200
    return {**tracker.to_checkpoint(), "rollouts": {"version": 1, "times": [NOW - a for a in ages]}}


def _fields(v: DaemonSetView) -> dict[str, Any]:
    return {f: getattr(v, f) for f in DaemonSetView.__slots__}  # type: ignore[attr-defined]


def expected(case: str, dry_run: bool, rollout: bool, learning: bool) -> Reason:
    _, reason, release_only = REFUSALS[case]
    if reason in _BEFORE_ROLLOUT:
        return reason
    if rollout:
        return Reason.ROLLOUT_IN_PROGRESS
    if reason is not Reason.APPLY and reason is not Reason.UNSAFE:
        return reason
    if learning and not release_only:  # a release does not depend on what was learned
        return Reason.LEARNING
    if reason is Reason.UNSAFE:
        return reason
    return Reason.DRY_RUN if dry_run else Reason.APPLY


@pytest.mark.parametrize(
    ("case", "dry_run", "rollout", "learning"),
    list(itertools.product(REFUSALS, (False, True), (False, True), (False, True))),
)
def test_every_refusal_under_dry_run_rollout_and_learning(
    case: str, dry_run: bool, rollout: bool, learning: bool
) -> None:
    pending = build(case, dry_run, rollout, learning).decide()
    want = expected(case, dry_run, rollout, learning)
    assert pending.reason is want, pending.message
    # Writes only when nothing holds: never under dry run, a rollout in progress, or a refusal.
    assert (pending.write is not None) == (want is Reason.APPLY)
    if pending.write is not None and REFUSALS[case][2]:
        assert pending.write.release == ("WARM_PREFIX_TARGET",)
        assert pending.write.values == recommended()  # the managed values stay as they are


def test_dry_run_reports_what_a_release_would_write() -> None:
    result = build("release", dry_run=True, rollout=False, learning=False).run()
    assert result.reason is Reason.DRY_RUN
    assert not result.wrote
    assert "release WARM_PREFIX_TARGET" in result.message
    dry = next(c for c in result.status["conditions"] if c["type"] == "DryRun")
    assert dry["status"] == "True"
    assert "release WARM_PREFIX_TARGET" in dry["message"]


def test_a_hold_is_one_event_per_reason_not_one_per_tick() -> None:
    tick = build("cooldown", dry_run=False, rollout=False, learning=False)
    first = tick.run()
    second = tick.run(NOW + 60)
    assert [e.reason for e in first.events] == ["ChangeHeld"]
    assert second.events == []


def test_cadence_skips_ticks_within_the_interval_unless_the_spec_changed() -> None:
    tick = Tick()
    tick.run()
    policy = step.PolicyInput(NAME, "uid-1", 1, CREATED, tick.spec, {"observedGeneration": 1})
    skipped = step.begin(policy, tick.memory, NOW + 30, history_since=0)
    assert isinstance(skipped, step.Finished)
    assert skipped.result.status == {}
    changed = step.PolicyInput(NAME, "uid-1", 2, CREATED, tick.spec, {"observedGeneration": 1})
    assert isinstance(step.begin(changed, tick.memory, NOW + 31, history_since=0), step.Started)


def test_applied_outcome_reports_the_new_values_and_one_event() -> None:
    tick = Tick()
    pending = tick.decide()
    assert pending.write is not None
    after = target(step.env_after(dict(DEFAULT_ENV), pending.write), owners={"WARM_IP_TARGET": ["warmpool"]})
    result = step.report(pending, step.Applied(after))
    assert result.wrote
    assert result.applied == pending.write.values
    assert [e.reason for e in result.events] == ["Applied"]
    assert result.status["lastAppliedTime"] == timestamp(NOW)
    applied = next(c for c in result.status["conditions"] if c["type"] == "Applied")
    assert applied["status"] == "True"
    assert applied["reason"] == "InSync"


# ----- inputs the API server accepts that must not silence the operator -----


@pytest.mark.parametrize(
    "checkpoint",
    [
        {"version": 1, "bursts": "garbage"},
        {"version": 1, "window": "x"},
        {"version": 99},
        {"version": 1, "window": 10, "bursts": {}, "density": {}},
        "not an object",
        [1, 2],
    ],
)
def test_a_malformed_checkpoint_is_discarded_with_an_event_and_learning_restarts(checkpoint: Any) -> None:
    tick = Tick(status={"checkpoint": checkpoint}, learned=False)
    result = tick.run()
    assert any(e.reason == "CheckpointDiscarded" and e.type == "Warning" for e in result.events)
    assert tick.memory is not None
    assert tick.memory.tracker.started_at == NOW
    assert result.reason is Reason.LEARNING
    assert "learning restarted: status.checkpoint" in result.message  # the Applied condition says why
    assert result.status["checkpoint"]["startedAt"] == NOW  # a good one replaces it


def test_a_good_checkpoint_resumes_learning() -> None:
    tracker = ChurnTracker(Tick().decide().start.spec.churn)
    tracker.observe(nodes())
    tracker.started_at = NOW - 7200
    tick = Tick(status={"checkpoint": tracker.to_checkpoint()}, learned=False)
    result = tick.run()
    assert not any(e.reason == "CheckpointDiscarded" for e in result.events)
    assert result.reason is Reason.APPLY


def test_values_beyond_int64_are_reported_not_patched() -> None:
    huge = "99999999999999999999"
    tick = Tick(
        spec=spec(mode="SecondaryIP", manage=[{"name": "WARM_ENI_TARGET"}]),
        target=target({**DEFAULT_ENV, "WARM_ENI_TARGET": huge}),
    )
    result = tick.run()
    assert fit_status(result.status)[1] == []  # nothing left that the API server would refuse
    degraded = next(c for c in result.status["conditions"] if c["type"] == "Degraded")
    assert degraded["status"] == "True"
    assert huge in degraded["message"]
    assert any(e.type == "Warning" and huge in e.message for e in result.events)
    assert "WARM_ENI_TARGET" not in (result.status.get("applied") or {})


def test_fit_status_leaves_out_what_the_schema_refuses() -> None:
    fields = {
        "applied": {"WARM_IP_TARGET": {"value": 2**70, "reason": ""}},
        "nodes": -1,
        "mode": "Prefix",
        "checkpoint": {"anything": 2**70},
    }
    kept, problems = fit_status(fields)
    assert kept == {"mode": "Prefix", "checkpoint": {"anything": 2**70}}
    assert len(problems) == 2
    assert "status.applied" in problems[0]


@pytest.mark.parametrize(
    ("image", "env", "ipamd"),
    [
        (IMAGE, {}, True),
        ("602401143452.dkr.ecr.us-west-2.amazonaws.com/amazon-k8s-cni:v1.10.4-eksbuild.1", {}, True),
        ("my-mirror.example/aws-node@sha256:abc", {}, True),
        ("registry.k8s.io/kube-proxy:v1.31.0", {"KUBE_PROXY_MODE": "iptables"}, False),
        ("602401143452.dkr.ecr.us-west-2.amazonaws.com/amazon/aws-network-policy-agent:v1.1.0", {}, False),
        ("registry.invalid/nodeagent:1", {}, False),
        ("my-build:dev", {"AWS_VPC_K8S_CNI_LOGLEVEL": "DEBUG"}, True),
    ],
)
def test_only_an_ipamd_container_is_a_target(image: str, env: dict[str, str | None], ipamd: bool) -> None:
    result = Tick(target=target(env, image=image)).run()
    invalid = next(c for c in result.status["conditions"] if c["type"] == "TargetInvalid")
    assert invalid["status"] == ("False" if ipamd else "True")
    if not ipamd:
        assert result.reason is Reason.TARGET_INVALID
        assert not result.wrote
        assert [e.reason for e in result.events if e.type == "Warning"] == ["TargetInvalid"]
        assert next(c for c in result.status["conditions"] if c["type"] == "Ready")["status"] == "False"


def test_the_node_agent_container_of_aws_node_is_not_a_target() -> None:
    seen = view(aws_node_daemonset("kube-system"), "aws-eks-nodeagent")
    result = Tick(target=seen).run()
    assert result.reason is Reason.TARGET_INVALID


def test_forbidden_names_the_permission_in_a_condition_and_an_event() -> None:
    message = "the operator may not patch daemonsets.apps kube-system/aws-node-2"
    pending = Tick().decide()
    assert pending.write is not None
    result = step.report(pending, step.ApplyRefused(403, message))
    degraded = next(c for c in result.status["conditions"] if c["type"] == "Degraded")
    assert (degraded["status"], degraded["reason"], degraded["message"]) == ("True", "Forbidden", message)
    assert [(e.type, e.reason, e.message) for e in result.events] == [("Warning", "Forbidden", message)]
    unreadable = Tick(target=step.TargetUnreadable("Forbidden", message)).run()
    assert next(c for c in unreadable.status["conditions"] if c["type"] == "Degraded")["message"] == message
    assert any(e.type == "Warning" and e.message.endswith(message) for e in unreadable.events)


def test_invalid_spec_is_a_condition_and_one_event() -> None:
    policy = step.PolicyInput(NAME, "uid-1", 1, CREATED, {"manage": [{"name": "MINIMUM_IP_TARGET"}]}, {})
    first = step.begin(policy, None, NOW, history_since=0)
    assert isinstance(first, step.Finished)
    assert [e.reason for e in first.result.events] == ["InvalidSpec"]
    again = step.PolicyInput(NAME, "uid-1", 1, CREATED, policy.spec, first.result.status)
    second = step.begin(again, None, NOW + 60, history_since=0)
    assert isinstance(second, step.Finished)
    assert second.result.events == []


def test_garbage_last_applied_time_is_ignored() -> None:
    result = Tick(status={"lastAppliedTime": "yesterday"}).run()
    assert result.reason is Reason.APPLY
