"""One reconcile pass of one WarmPoolPolicy: observe, plan, guard, apply, and the status patch that reports it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pydantic
from kubernetes import client

from warmpool import metrics
from warmpool.api import v1alpha1
from warmpool.api.v1alpha1 import ConditionType as C
from warmpool.api.v1alpha1 import Variable, parse_duration, summarize
from warmpool.apply.addon import Route
from warmpool.apply.client import DaemonSetMissing, apply_env, read_daemonset
from warmpool.apply.daemonset import DaemonSetView, view
from warmpool.conditions import ConditionUpdate, merge_conditions
from warmpool.controller import addon_route
from warmpool.controller.context import OperatorContext, PolicyState
from warmpool.controller.inputs import build_snapshot, fetch_ec2, selected_nodes
from warmpool.controller.status import applied_status, parse_timestamp, plan_status, timestamp
from warmpool.ipamd.env import parse_env
from warmpool.ipamd.limits import InstanceLimits
from warmpool.ipamd.safety import unsafe_settings
from warmpool.planner import ChurnTracker, Decision, GuardReason, Recommendation, current_values, decide, plan

Logger = logging.Logger | logging.LoggerAdapter[Any]

# Pod-start history the snapshot carries: enough for the tracker to read every closed window since the last plan.
START_LOOKBACK_MIN = 600.0


@dataclass
class Outcome:
    """What one pass decided, for status, events and metrics."""

    conditions: list[ConditionUpdate] = field(default_factory=list)
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)
    status: dict[str, Any] = field(default_factory=dict)


def target_key(spec: v1alpha1.WarmPoolPolicySpec) -> str:
    return f"{spec.target_ref.namespace}/{spec.target_ref.name}"


def conflict_winner(policies: Iterable[tuple[str, str]]) -> tuple[str, str] | None:
    """Oldest policy (creation time, then name) targeting a DaemonSet wins; the others report Conflict."""
    return min(policies, default=None)


def _policy_state(
    ctx: OperatorContext, uid: str, spec: v1alpha1.WarmPoolPolicySpec, status: Mapping[str, Any]
) -> PolicyState:
    state = ctx.policies.get(uid)
    if state is not None and state.churn == spec.churn:
        return state
    checkpoint = status.get("checkpoint")
    tracker: ChurnTracker | None = None
    if checkpoint and state is None:
        try:
            tracker = ChurnTracker.from_checkpoint(checkpoint, spec.churn)
        except (KeyError, TypeError, ValueError):
            tracker = None  # an unreadable checkpoint only costs the learned history
    state = PolicyState(tracker=tracker or ChurnTracker(spec.churn), churn=spec.churn, complete_since=ctx.started_at)
    ctx.policies[uid] = state
    return state


async def reconcile_policy(
    *,
    body: Mapping[str, Any],
    ctx: OperatorContext,
    logger: Logger,
    policy_index: Mapping[str, Iterable[tuple[str, str]]],
    now: float,
) -> tuple[dict[str, Any], list[tuple[str, str, str]]]:
    """Returns (status fields to patch, events to post). An empty status means: nothing to report this tick."""
    meta = body.get("metadata", {})
    name, uid, generation = meta.get("name", ""), meta.get("uid", ""), meta.get("generation")
    old_status: Mapping[str, Any] = body.get("status") or {}
    stamp_now = _utc(now)

    try:
        spec = v1alpha1.WarmPoolPolicySpec.model_validate(body.get("spec") or {})
    except pydantic.ValidationError as error:
        message = f"invalid spec: {error}"
        conditions = [ConditionUpdate("Ready", False, "InvalidSpec", message)]
        conditions.append(ConditionUpdate("Degraded", True, "InvalidSpec", message))
        return _finish(old_status, conditions, {}, stamp_now, generation), []

    state = _policy_state(ctx, uid, spec, old_status)
    interval = parse_duration(spec.rollout.interval)
    spec_changed = old_status.get("observedGeneration") != generation
    if state.last_plan is not None and now - state.last_plan < interval - 0.5 and not spec_changed:
        return {}, []
    state.last_plan = now

    if spec.paused:
        return _finish(
            old_status,
            [ConditionUpdate("Ready", True, "Paused", "the policy is paused: no planning, no changes")],
            {},
            stamp_now,
            generation,
        ), []

    started = time.perf_counter()
    out = Outcome()
    out.status["lastPlannedTime"] = timestamp(now)

    # ----- observe -----
    facts = selected_nodes(ctx.cluster, spec.node_selector)
    ec2 = await fetch_ec2(ctx.ec2, ctx.api, facts)
    state.node_counts.append((now, len(facts)))
    lookback = max(START_LOOKBACK_MIN, 3 * interval + parse_duration(spec.churn.burst_window))
    snapshot = build_snapshot(ctx.cluster, facts, ec2.node_subnets, now, lookback, tuple(state.node_counts))
    state.tracker.observe(snapshot, complete_since=state.complete_since)
    stats = state.tracker.stats(spec.churn.burst_quantile, now)

    # ----- the DaemonSet -----
    ds_view: DaemonSetView | None = None
    try:
        ds = await asyncio.to_thread(read_daemonset, ctx.api, spec.target_ref.namespace, spec.target_ref.name)
        ds_view = view(ds, spec.target_ref.container)
    except DaemonSetMissing as error:
        out.conditions.append(ConditionUpdate("Degraded", True, "DaemonSetMissing", str(error)))
    env = ds_view.plain_env() if ds_view else {}
    if ds_view is not None and not ds_view.container_found:
        message = f"container {spec.target_ref.container} not found in {target_key(spec)}"
        out.conditions.append(ConditionUpdate("Degraded", True, "ContainerMissing", message))
        ds_view = None
    addon: addon_route.AddonPass | None = None
    if ds_view is not None:
        addon, ds_view = await addon_route.prepare(addon_route.client(ctx), spec, ds, ds_view, old_status)
        out.events.extend(addon.events)
        if addon.status:
            out.status["addonUpdate"] = addon.status

    # ----- plan -----
    rec = plan(spec, snapshot, ec2.limits, ec2.subnets, env, stats)
    out.status.update(plan_status(rec))
    out.status["checkpoint"] = state.tracker.to_checkpoint()
    for v, n in rec.values.items():
        metrics.RECOMMENDED.labels(name, v.value).set(n)
    for cond in rec.conditions:
        out.conditions.append(ConditionUpdate(cond.type.value, cond.status, cond.reason, cond.message))
    problems = list(ec2.problems)
    if addon is not None and addon.problem:
        problems.append(addon.problem)

    # ----- decide and apply -----
    applied_message = "no change applied yet"
    if ds_view is not None:
        managed = list(rec.values)
        current = current_values(env, spec.managed_variables)
        last_applied = max(
            filter(None, [parse_timestamp(old_status.get("lastAppliedTime")), ds_view.warmpool_applied_at]),
            default=None,
        )
        if last_applied is not None:
            out.status["lastAppliedTime"] = timestamp(last_applied)
        _detect_foreign_edit(old_status, current, state, out)

        winner = conflict_winner(policy_index.get(target_key(spec), ()))
        conflict = winner is not None and winner[1] != name
        out.conditions.append(
            ConditionUpdate(
                "Conflict",
                conflict,
                "OtherPolicyOwnsTarget" if conflict else "SoleOwner",
                f"policy {winner[1]} is older and owns {target_key(spec)}" if conflict and winner else "",
            )
        )
        foreign = ds_view.foreign_owners(spec.managed_variables)
        blocked_foreign = bool(foreign) and not spec.rollout.allow_foreign_owner
        out.conditions.append(
            ConditionUpdate(
                "ForeignOwner",
                bool(foreign),
                "EnvOwnedElsewhere" if foreign else "NoForeignOwner",
                (
                    "; ".join(f"{k} is also managed by {', '.join(m)}" for k, m in sorted(foreign.items()))
                    + ("" if spec.rollout.allow_foreign_owner else ": not taking over (rollout.allowForeignOwner)")
                    + (
                        "; set WARMPOOL_EKS_CLUSTER_NAME to apply through the EKS add-on"
                        if any("eks" in m for m in foreign.values()) and not ctx.settings.eks_cluster_name
                        else ""
                    )
                )
                if foreign
                else "",
            )
        )
        value_from = [
            v.value
            for v in spec.managed_variables
            if ds_view.env.get(v.value, None) and ds_view.env[v.value].value_from
        ]
        if value_from:
            problems.append(f"{', '.join(value_from)} set with valueFrom: remove it there or stop managing it")

        release = _released_variables(ds_view, spec)
        decision = decide(
            rec.values,
            current,
            spec.rollout,
            now=now,
            last_applied_time=last_applied,
            quiet_since=stats.quiet_since,
            dry_run=spec.dry_run,
            paused=False,
            rollout_in_progress=ds_view.rollout_in_progress,
            urgent=rec.subnet_pressure,
            rescue=rec.rescue,
        )
        decision = _hold_for_inputs(decision, conflict, blocked_foreign, value_from, ec2.subnets_known, rec, release)
        if addon is not None and addon.hold and decision.reason is GuardReason.ROLLOUT_IN_PROGRESS:
            decision = Decision(False, decision.values, decision.reason, addon.hold)  # say which rollout
        if decision.apply and addon is not None and addon.problem:
            decision = Decision(False, {}, GuardReason.INPUTS_UNKNOWN, addon.problem)
        learning_left = _learning_left(state, spec, now)
        if decision.apply and learning_left > 0 and not release:
            decision = Decision(
                False, {}, GuardReason.INPUTS_UNKNOWN, f"still learning the churn pattern ({learning_left:.0f}s left)"
            )
        if release and not decision.apply and decision.reason in (GuardReason.NO_CHANGE, GuardReason.DEAD_BAND):
            keep = {v: current[v] for v in managed if v in current}
            decision = Decision(True, keep, GuardReason.APPLY, f"releasing {', '.join(release)}")
        out.conditions.append(
            ConditionUpdate(
                "DryRun", spec.dry_run, "DryRun" if spec.dry_run else "Live", decision.message if spec.dry_run else ""
            )
        )
        unsafe = _unsafe_result(decision, env, release, rec, ec2.limits) if decision.apply else []
        if unsafe:
            problems.append("refusing unsafe settings: " + "; ".join(unsafe))
            decision = Decision(False, {}, GuardReason.UNSAFE, "; ".join(unsafe))
        if decision.apply and addon is not None and addon.route is Route.EKS_ADDON:
            applied_message = await _apply_addon(ctx, spec, decision, release, name, now, out, state)
            current = current_values(out.status.pop("_env", env), spec.managed_variables)
        elif decision.apply:
            applied_message = await _apply(ctx, spec, decision, name, now, out, state, force=not blocked_foreign)
            current = current_values(out.status.pop("_env", env), spec.managed_variables)
        else:
            applied_message = f"held: {decision.message}"
            metrics.CHANGES_REFUSED.labels(name, decision.reason.value).inc()
            if decision.reason not in (GuardReason.NO_CHANGE,) and state.last_hold != decision.reason.value:
                out.events.append(
                    ("Normal", "ChangeHeld", f"{summarize(decision.values or rec.values)}: {decision.message}")
                )
            state.last_hold = None if decision.reason is GuardReason.NO_CHANGE else decision.reason.value
        out.status.update(applied_status(current, ds_view.owners, ds_view.warmpool_applied_at))
        for v, n in current.items():
            metrics.APPLIED.labels(name, v.value).set(n)
        in_sync = bool(rec.values) and all(current.get(v) == n for v, n in rec.values.items())
        out.conditions.append(
            ConditionUpdate(
                "Applied",
                in_sync,
                "InSync" if in_sync else decision.reason.value.title().replace("_", ""),
                applied_message,
            )
        )

    degraded = [c for c in out.conditions if c.type == "Degraded" and c.status]
    if problems:
        out.conditions.append(ConditionUpdate("Degraded", True, "DependencyProblem", "; ".join(problems)))
    elif not degraded and not any(c.type == "Degraded" for c in out.conditions):
        out.conditions.append(ConditionUpdate("Degraded", False, "Healthy", ""))
    # Not ready: something is broken (Degraded) or another policy owns the target (Conflict).
    ready_problem = next((c for c in out.conditions if c.type in ("Degraded", "Conflict") and c.status), None)
    out.conditions.append(
        ConditionUpdate(
            "Ready",
            ready_problem is None,
            "Planned" if ready_problem is None else ready_problem.reason,
            f"{rec.nodes} nodes, {rec.pods} pods with VPC IPs; {applied_message}"
            if ready_problem is None
            else ready_problem.message,
        )
    )
    metrics.PLAN_SECONDS.labels(name).observe(time.perf_counter() - started)
    metrics.LAST_PLAN.labels(name).set(now)
    logger.info("planned %s: recommended %s; %s", name, summarize(rec.values) or "nothing", applied_message)
    return _finish(old_status, _dedupe(out.conditions), out.status, stamp_now, generation), out.events


async def _apply(
    ctx: OperatorContext,
    spec: v1alpha1.WarmPoolPolicySpec,
    decision: Decision,
    name: str,
    now: float,
    out: Outcome,
    state: PolicyState,
    force: bool,
) -> str:
    ref = spec.target_ref
    try:
        result = await asyncio.to_thread(
            apply_env, ctx.api, ref.namespace, ref.name, ref.container, decision.values, force
        )
    except client.ApiException as error:
        if error.status == 409:
            message = f"server-side apply conflict: {error.reason}; another field manager owns these entries"
            out.conditions.append(ConditionUpdate("ForeignOwner", True, "ApplyConflict", message))
            out.events.append(("Warning", "ApplyConflict", message))
            metrics.CHANGES_REFUSED.labels(name, "conflict").inc()
            return message
        raise
    applied = view(result, ref.container)
    out.status["_env"] = applied.plain_env()
    out.status["lastAppliedTime"] = timestamp(now)
    message = f"applied {summarize(decision.values)} to {ref.namespace}/{ref.name}"
    out.events.append(("Normal", "Applied", message))
    metrics.CHANGES_APPLIED.labels(name).inc()
    state.last_hold = None
    return message


async def _apply_addon(
    ctx: OperatorContext,
    spec: v1alpha1.WarmPoolPolicySpec,
    decision: Decision,
    release: list[str],
    name: str,
    now: float,
    out: Outcome,
    state: PolicyState,
) -> str:
    """The same values, through eks:UpdateAddon: EKS writes them onto the DaemonSet as the add-on."""
    ref = spec.target_ref
    result, update_status, events = await addon_route.write(
        addon_route.client(ctx), decision.values, release, ctx.settings.eks_update_wait_seconds, timestamp(now)
    )
    out.events.extend(events)
    if update_status:
        out.status["addonUpdate"] = update_status
    if not result.sent or result.status == "Failed":
        metrics.CHANGES_REFUSED.labels(name, "addon").inc()
        return f"eks:UpdateAddon {summarize(decision.values)}: {result.message}"
    out.status["lastAppliedTime"] = timestamp(now)
    metrics.CHANGES_APPLIED.labels(name).inc()
    state.last_hold = None
    ds = await asyncio.to_thread(read_daemonset, ctx.api, ref.namespace, ref.name)
    out.status["_env"] = view(ds, ref.container).plain_env()
    return f"set {summarize(decision.values)} through the EKS add-on ({result.update_id}: {result.status})"


def _unsafe_result(
    decision: Decision,
    env: Mapping[str, str],
    release: list[str],
    rec: Recommendation,
    limits: Mapping[str, InstanceLimits],
) -> list[str]:
    """The last check before writing: would the DaemonSet's env after this apply be one ipamd rejects or that
    hurts nodes (reference/vpc-cni.md, "Settings the operator must never write")? The planner should never get
    here with such values; this guards against a planner bug reaching every node."""
    after = {k: v for k, v in env.items() if k not in release}
    after.update({v.value: str(n) for v, n in decision.values.items()})
    smallest = limits.get(rec.smallest_instance_type or "")
    written = {v.value: after[v.value] for v in decision.values}
    return unsafe_settings(parse_env(after), rec.mode, smallest, env=written)


def _learning_left(state: PolicyState, spec: v1alpha1.WarmPoolPolicySpec, now: float) -> float:
    """A first change waits until the history spans the quiet period (and a few burst windows): with nothing
    learned yet, the plan would only reflect the last few seconds."""
    started = state.tracker.started_at if state.tracker.started_at is not None else now
    needed = max(parse_duration(spec.rollout.quiet_period), 3 * parse_duration(spec.churn.burst_window))
    return needed - (now - started)


def _released_variables(ds_view: DaemonSetView, spec: v1alpha1.WarmPoolPolicySpec) -> list[str]:
    """Env entries warmpool owns but the policy no longer manages: the next apply releases them."""
    managed = {v.value for v in spec.managed_variables}
    return sorted(
        k
        for k, owners in ds_view.owners.items()
        if "warmpool" in owners and k not in managed and k in {v.value for v in Variable}
    )


def _hold_for_inputs(
    decision: Decision,
    conflict: bool,
    blocked_foreign: bool,
    value_from: list[str],
    subnets_known: bool,
    rec: Any,
    release: list[str],
) -> Decision:
    """Refusals the planner's guards do not know about: they depend on the live objects and EC2."""
    if conflict:  # reported even in dry run: the user must know which policy is in charge
        return Decision(False, {}, GuardReason.CONFLICT, "another policy owns this DaemonSet")
    if not decision.apply and not release:
        return decision
    if blocked_foreign:
        return Decision(False, {}, GuardReason.FOREIGN_OWNER, "env entries are owned by another manager")
    if value_from:
        return Decision(False, {}, GuardReason.VALUE_FROM, f"{', '.join(value_from)} uses valueFrom")
    if not subnets_known:
        return Decision(
            False,
            {},
            GuardReason.INPUTS_UNKNOWN,
            "subnet free IPs unknown (EC2 unavailable): keeping the values in place",
        )
    if not rec.values:
        return Decision(False, {}, GuardReason.INPUTS_UNKNOWN, "nothing to plan from")
    return decision


def _detect_foreign_edit(
    old_status: Mapping[str, Any], current: Mapping[Variable, int], state: PolicyState, out: Outcome
) -> None:
    """A managed value warmpool had applied that someone else changed since: report it once."""
    previous = old_status.get("applied") or {}
    edits = []
    for v in Variable:
        entry = previous.get(v.value)
        if entry and "warmpool" in entry.get("reason", "") and current.get(v) != entry.get("value"):
            edits.append(f"{v.value} {entry.get('value')} -> {current.get(v, 'unset')}")
    signature = ", ".join(edits) or None
    if signature and signature != state.last_foreign_edit:
        out.events.append(("Warning", "ForeignEdit", f"managed values changed outside warmpool: {signature}"))
    state.last_foreign_edit = signature


def _dedupe(conditions: list[ConditionUpdate]) -> list[ConditionUpdate]:
    """The first condition of each type wins: specific causes are appended before generic ones."""
    seen: dict[str, ConditionUpdate] = {}
    for c in conditions:
        if c.type not in seen or (
            c.status and not seen[c.type].status and c.type in (C.DEGRADED.value, C.FOREIGN_OWNER.value)
        ):
            seen[c.type] = c
    return list(seen.values())


def _utc(now: float) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(now, UTC)


def _finish(
    old_status: Mapping[str, Any],
    conditions: list[ConditionUpdate],
    fields: dict[str, Any],
    stamp: Any,
    generation: int | None,
) -> dict[str, Any]:
    return {
        **fields,
        "observedGeneration": generation,
        "conditions": merge_conditions(list(old_status.get("conditions") or []), conditions, stamp, generation),
    }
