"""The policy step: from one policy, the observed facts, the target container and the clock to everything decided.

Order of the refusals once a change is wanted (the first that holds gives the reason):
conflict (reported even without a change) -> the planner's guards (no change, dead band, rollout in
progress, cooldown, daily limit, holds the same, not quiet) -> foreign owner -> valueFrom -> EC2 unknown -> nothing
planned -> still learning -> the safety check on the whole resulting env -> dry run. A release of entries the
policy no longer manages is a change like any other: it waits for the rollout, the cooldown and the quiet
period, and dry run never writes it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import pydantic

from warmpool.api import v1alpha1
from warmpool.api.v1alpha1 import ConditionType as C
from warmpool.api.v1alpha1 import Variable, parse_duration, summarize
from warmpool.apply.daemonset import DaemonSetView
from warmpool.conditions import ConditionUpdate, merge_conditions
from warmpool.ipamd.env import go_atoi, mode_from_env
from warmpool.ipamd.limits import IpMode
from warmpool.ipamd.safety import merge_env
from warmpool.ipamd.version import cni_version_from_image
from warmpool.planner import GuardReason, Recommendation, advice, current_values, holding, plan, profile
from warmpool.planner import decide as guard
from warmpool.snapshot import ClusterSnapshot
from warmpool.step import status as st
from warmpool.step.memory import PolicyMemory, new_memory
from warmpool.step.model import (
    Applied,
    ApplyRefused,
    Event,
    Finished,
    Observed,
    Outcome,
    Pending,
    PolicyInput,
    Reason,
    Started,
    StepResult,
    TargetUnreadable,
    Write,
    WriteRoute,
)
from warmpool.step.target import conflict_winner, refusals, released, runs_ipamd, value_from

# Pod-start history the snapshot carries at least: every burst window closed since the last plan, and more.
MIN_LOOKBACK = 900.0
# Conditions whose True status makes a policy not Ready.
_NOT_READY = (C.DEGRADED.value, C.CONFLICT.value, "TargetInvalid")


def lookback(spec: v1alpha1.WarmPoolPolicySpec) -> float:
    """Seconds of pod starts and stops the snapshot must carry so the tracker sees every burst epoch in full
    between two plans, even when a plan comes late."""
    window = parse_duration(spec.churn.burst_window)
    return max(MIN_LOOKBACK, 4 * window + parse_duration(spec.rollout.interval) + 30)


def target_key(spec: v1alpha1.WarmPoolPolicySpec) -> str:
    return f"{spec.target_ref.namespace}/{spec.target_ref.name}"


# ----- begin: spec, memory, cadence -----


def begin(policy: PolicyInput, memory: PolicyMemory | None, now: float, *, history_since: float) -> Started | Finished:
    """`history_since`: when the caller's pod-start history begins (operator start, or the trace's start)."""
    try:
        spec = v1alpha1.WarmPoolPolicySpec.model_validate(dict(policy.spec))
    except pydantic.ValidationError as error:
        message = f"invalid spec: {error}"
        conditions = [ConditionUpdate("Ready", False, "InvalidSpec", message)]
        conditions.append(ConditionUpdate("Degraded", True, "InvalidSpec", message))
        # The status says it already when the same message is there: one Event, not one per tick.
        old = policy.status.get("conditions")
        told = isinstance(old, list) and any(isinstance(c, Mapping) and c.get("message") == message for c in old)
        told_events = [] if told else [Event("Warning", "InvalidSpec", message)]
        result = StepResult(_finish(policy, conditions, {}, now), told_events, Reason.INPUTS_UNKNOWN, message)
        return Finished(result, memory)

    events: list[Event] = []
    if memory is None or memory.churn != spec.churn:
        memory, problem = new_memory(policy.status, spec.churn, history_since, memory)
        if problem:
            events.append(Event("Warning", "CheckpointDiscarded", problem))
    interval = parse_duration(spec.rollout.interval)
    spec_changed = policy.status.get("observedGeneration") != policy.generation
    if memory.last_plan is not None and now - memory.last_plan < interval - 0.5 and not spec_changed:
        return Finished(StepResult({}), memory)
    memory.last_plan = now

    if spec.paused:
        paused = [ConditionUpdate("Ready", True, "Paused", "the policy is paused: no planning, no changes")]
        return Finished(StepResult(_finish(policy, paused, {}, now), events, Reason.PAUSED), memory)
    return Started(policy, spec, memory, lookback(spec), events)


# ----- decide: plan and every guard -----


def decide(
    start: Started,
    observed: Observed,
    target: DaemonSetView | TargetUnreadable,
    peers: Iterable[tuple[str, str]],
    now: float,
    route: WriteRoute | None = None,
) -> Pending:
    """`peers`: (creation time, name) of every policy aiming at the same DaemonSet, this one included. `route`:
    how a write would reach the DaemonSet (direct server-side apply when None)."""
    route = route or WriteRoute()
    spec, memory = start.spec, start.memory
    memory.node_counts.append((now, len(observed.snapshot.nodes)))
    snapshot = dataclasses.replace(observed.snapshot, node_count_history=tuple(memory.node_counts))
    memory.tracker.observe(snapshot, complete_since=max(memory.complete_since, now - start.lookback))
    memory.replay.observe(snapshot)
    memory.profile.observe(snapshot, memory.tracker.fresh, spec.churn.burst_quantile)
    stats = memory.tracker.stats(spec.churn.burst_quantile, now)
    # The coming cooldown as the profile saw those hours last time (None until each of them has been seen).
    cooldown = parse_duration(spec.rollout.cooldown)
    types = sorted({n.instance_type for n in snapshot.nodes})
    expected = memory.profile.expected_for(types, now, now + cooldown)

    conditions: list[ConditionUpdate] = []
    problems = list(observed.problems)
    view = _usable_target(spec, target, conditions)
    env = view.plain_env() if view else {}
    version = cni_version_from_image(view.image) if view else None
    ahead = this_hour = None
    if expected is not None:
        ahead = profile.ahead_stats(stats, expected)
        hour = memory.profile.expected_for(types, now, now + 1)  # the hour under way, as seen so far
        this_hour = profile.ahead_stats(stats, hour) if hour is not None else None
    rec = plan(
        spec, snapshot, observed.limits, observed.subnets, env, stats, version, ahead=ahead, current_hour=this_hour
    )
    if expected is not None:
        rec = _sized_ahead(rec, expected, spec.rollout.cooldown, now)
    if view is not None:  # once a day is logged, the replay picks the IP targets (planner/advice.py)
        budget = spec.churn.ec2_calls_per_node_hour
        rec = advice.refine(
            rec, memory.replay, spec, observed.limits, env, now, version, ec2_budget=budget, ahead=ahead
        )
    fields: dict[str, Any] = {**st.plan_status(rec), "lastPlannedTime": st.timestamp(now)}
    fields["checkpoint"] = memory.to_checkpoint()
    conditions += [ConditionUpdate(c.type.value, c.status, c.reason, c.message) for c in rec.conditions]
    pending = Pending(start, None, Reason.TARGET_UNREADABLE, "", rec, view, now, conditions, list(start.events))
    pending.problems, pending.status = problems, fields
    if view is None:
        pending.message = next((c.message for c in conditions if c.status and c.type in _NOT_READY), "")
        pending.reason = Reason.TARGET_INVALID if _has(conditions, "TargetInvalid") else Reason.TARGET_UNREADABLE
        return pending

    fields["mode"] = st.mode_name(mode_from_env(env))  # the mode ipamd runs, whatever was planned for
    problems += _unreadable_values(env, spec.managed_variables)
    current = _current(env, spec.managed_variables)
    pending.current = current
    last_applied = max(
        filter(None, [st.parse_timestamp(start.policy.status.get("lastAppliedTime")), view.warmpool_applied_at]),
        default=None,
    )
    pending.last_applied = last_applied
    if last_applied is not None:
        fields["lastAppliedTime"] = st.timestamp(last_applied)
    _detect_foreign_edit(start, current, pending)

    winner = conflict_winner(peers)
    conflict = winner is not None and winner[1] != start.policy.name
    conditions.append(
        ConditionUpdate(
            "Conflict",
            conflict,
            "OtherPolicyOwnsTarget" if conflict else "SoleOwner",
            f"policy {winner[1]} is older and owns {target_key(spec)}" if conflict and winner else "",
        )
    )
    foreign = view.foreign_owners(spec.managed_variables, writer=route.writer)
    blocked_foreign = bool(foreign) and not spec.rollout.allow_foreign_owner
    conditions.append(_foreign_condition(foreign, spec.rollout.allow_foreign_owner, route.foreign_hint))
    if route.problem:
        problems.append(route.problem)
    from_refs = value_from(view, [v.value for v in spec.managed_variables])
    if from_refs:
        problems.append(f"{', '.join(from_refs)} set with valueFrom: remove it there or stop managing it")
    release = pending.release = released(view, spec.managed_variables)

    def hold(reason: Reason, message: str) -> Pending:
        pending.reason, pending.message = reason, message
        return pending

    # The most pods a node of each type may reach before the next change may come: the profile's busiest IPs
    # held over the cooldown; with no profile of those hours, anything up to what the type can hold.
    peaks: dict[str, int] = {}
    for t in types:
        e = memory.profile.expected(t, now, now + cooldown)
        if e is not None:
            peaks[t] = e.held
        elif t in observed.limits:
            lim = observed.limits[t]
            peaks[t] = lim.pod_ip_cap(lim.runs_mode(rec.mode))
    if conflict:  # reported even with nothing to change: the user must know which policy is in charge
        return hold(Reason.CONFLICT, "another, older policy owns this DaemonSet")
    base = guard(
        rec.values,
        current,
        spec.rollout,
        now=now,
        last_applied_time=last_applied,
        quiet_since=stats.quiet_since,
        rollout_in_progress=view.rollout_in_progress,
        urgent=rec.subnet_pressure,
        rescue=rec.rescue,
        rollouts=memory.rollouts,
        holds_same=_holds_same(rec.mode, env, observed, snapshot, (ahead or stats).covered_demand, peaks),
    )
    only_release = bool(release) and base.reason in (
        GuardReason.NO_CHANGE,
        GuardReason.DEAD_BAND,
        GuardReason.HOLDS_SAME,
    )
    if only_release:
        values = {v: current[v] for v in spec.managed_variables if v in current}
        why = _release_hold(view, last_applied, stats.quiet_since, spec.rollout, now)
        if why is not None:
            pending.held_values = values
            return hold(*why)
    elif not base.apply:
        pending.held_values = dict(rec.values)
        message = base.message
        if base.reason is GuardReason.ROLLOUT_IN_PROGRESS and view.rollout_message:
            message = f"{message}: {view.rollout_message}"  # which rollout (aws-node, or an add-on update)
        return hold(base.reason, message)
    else:
        values = dict(base.values)
    pending.held_values = values
    what = summarize(values) + (f" and release {', '.join(release)}" if release else "")

    if blocked_foreign:
        return hold(Reason.FOREIGN_OWNER, "env entries are owned by another manager")
    if from_refs:
        return hold(Reason.VALUE_FROM, f"{', '.join(from_refs)} uses valueFrom")
    if route.problem:
        return hold(Reason.INPUTS_UNKNOWN, route.problem)
    if not only_release:
        if not observed.subnets_known:
            return hold(Reason.INPUTS_UNKNOWN, "subnet free IPs unknown (EC2 unavailable): keeping the values in place")
        if not rec.values:
            return hold(Reason.INPUTS_UNKNOWN, "nothing to plan from")
        learning_left = _learning_left(memory, spec, now)
        if learning_left > 0:
            restarted = f"; learning restarted: {memory.restarted_because}" if memory.restarted_because else ""
            return hold(Reason.LEARNING, f"still learning the churn pattern ({learning_left:.0f}s left){restarted}")

    ref = spec.target_ref
    write = Write(ref.namespace, ref.name, ref.container, values, release, force=not blocked_foreign)
    in_scope = [observed.limits[t] for t in sorted({n.instance_type for n in snapshot.nodes}) if t in observed.limits]
    unsafe = refusals(view, write, rec.mode, in_scope, version)
    if unsafe:
        message = "; ".join(unsafe)
        problems.append("refusing unsafe settings: " + message)
        pending.events.append(Event("Warning", "UnsafeRefused", f"not writing {what}: {message}"))
        return hold(Reason.UNSAFE, message)
    if spec.dry_run:
        return hold(Reason.DRY_RUN, f"dry run: would write {what}")
    pending.write = write
    return hold(Reason.APPLY, f"write {what}")


def _sized_ahead(rec: Recommendation, expected: profile.Expected, cooldown: str, now: float) -> Recommendation:
    """Say in each reason that the values cover the coming cooldown as the profile expects it."""
    which = "week" if expected.weekly else "day"
    note = (
        f"; sized for the next {cooldown} from the hours of the {which} as last seen (busiest: {expected.demand} "
        f"usable IPs at once, {expected.held} IPs held, {expected.pods} pods a node)"
    )
    return dataclasses.replace(rec, reasons={v: why + note for v, why in rec.reasons.items()})


def _holds_same(
    mode: IpMode,
    env: Mapping[str, str],
    observed: Observed,
    snapshot: ClusterSnapshot,
    reach: int,
    peaks: Mapping[str, int],
) -> Callable[[Mapping[Variable, int]], bool]:
    """Whether writing some values would leave every observed node holding what it holds under `env`, from the
    pods it has now through a burst of `reach` starts, and up to the most IPs the profile expects its type to
    need over the coming cooldown."""
    pods = holding.pods_by_type(((n.instance_type, n.ip_pods) for n in snapshot.nodes), reach, peaks)

    def same(values: Mapping[Variable, int]) -> bool:
        return holding.holds_same(mode, env, merge_env(env, values), observed.limits, pods)

    return same


def _usable_target(
    spec: v1alpha1.WarmPoolPolicySpec, target: DaemonSetView | TargetUnreadable, conditions: list[ConditionUpdate]
) -> DaemonSetView | None:
    """The target when warmpool may plan against it and write it; otherwise a condition saying why not."""
    key = target_key(spec)
    if isinstance(target, TargetUnreadable):
        conditions.append(ConditionUpdate("Degraded", True, target.reason, target.message))
        conditions.append(ConditionUpdate("TargetInvalid", False, "Unknown", ""))
        return None
    if not target.container_found:
        message = f"container {spec.target_ref.container} not found in {key}"
        conditions.append(ConditionUpdate("Degraded", True, "ContainerMissing", message))
        conditions.append(ConditionUpdate("TargetInvalid", False, "Unknown", ""))
        return None
    if not runs_ipamd(target.image, target.env):
        message = (
            f"container {spec.target_ref.container} of {key} does not run ipamd (image {target.image or 'unset'}, "
            "no ipamd env): point targetRef at the aws-node container of the VPC CNI's DaemonSet"
        )
        conditions.append(ConditionUpdate("TargetInvalid", True, "NotIpamd", message))
        return None
    conditions.append(ConditionUpdate("TargetInvalid", False, "Ipamd", ""))
    return target


def _release_hold(
    view: DaemonSetView,
    last_applied: float | None,
    quiet_since: float | None,
    rollout: v1alpha1.Rollout,
    now: float,
) -> tuple[Reason, str] | None:
    """A release rolls aws-node like any change: it waits for the rollout, the cooldown and the quiet period."""
    if view.rollout_in_progress:
        which = f": {view.rollout_message}" if view.rollout_message else ""
        return Reason.ROLLOUT_IN_PROGRESS, f"an aws-node rollout is still in progress{which}"
    cooldown = parse_duration(rollout.cooldown)
    if last_applied is not None and now - last_applied < cooldown:
        return Reason.COOLDOWN, f"last change {now - last_applied:.0f}s ago, cooldown {rollout.cooldown}"
    if quiet_since is None:
        return Reason.NOT_QUIET, "churn is high now"
    if now - quiet_since < parse_duration(rollout.quiet_period):
        return (
            Reason.NOT_QUIET,
            f"churn has been low for {now - quiet_since:.0f}s, quiet period {rollout.quiet_period}",
        )
    return None


def _learning_left(memory: PolicyMemory, spec: v1alpha1.WarmPoolPolicySpec, now: float) -> float:
    """A first change waits until the history spans the quiet period (and a few burst windows): with nothing
    learned yet, the plan would only reflect the last few seconds."""
    started = memory.tracker.started_at if memory.tracker.started_at is not None else now
    needed = max(parse_duration(spec.rollout.quiet_period), 3 * parse_duration(spec.churn.burst_window))
    return needed - (now - started)


def _current(env: Mapping[str, str], managed: Iterable[Variable]) -> dict[Variable, int]:
    """The managed values as ipamd reads them: entries Go's Atoi rejects (spaces, beyond int64) count as unset."""
    return {v: n for v, n in current_values(env, managed).items() if go_atoi(env[v.value]) is not None}


def _unreadable_values(env: Mapping[str, str], managed: Iterable[Variable]) -> list[str]:
    """Managed entries ipamd cannot read as a count (not an integer, beyond int64, negative): it runs on its
    default instead, and the status cannot show them as values."""
    out = []
    for v in managed:
        raw = env.get(v.value)
        if raw is None:
            continue
        parsed = go_atoi(raw)
        if parsed is None or parsed < 0:
            out.append(f"{v.value}={raw!r} on the DaemonSet is not a count ipamd reads: it uses its default")
    return out


def _foreign_condition(foreign: Mapping[str, list[str]], allowed: bool, hint: str) -> ConditionUpdate:
    if not foreign:
        return ConditionUpdate("ForeignOwner", False, "NoForeignOwner", "")
    message = "; ".join(f"{k} is also managed by {', '.join(m)}" for k, m in sorted(foreign.items()))
    message += "" if allowed else ": not taking over (rollout.allowForeignOwner)"
    if hint and any("eks" in m for ms in foreign.values() for m in ms):
        message += f"; {hint}"
    return ConditionUpdate("ForeignOwner", True, "EnvOwnedElsewhere", message)


def _detect_foreign_edit(start: Started, current: Mapping[Variable, int], pending: Pending) -> None:
    """A managed value warmpool had applied that someone else changed since: report it once."""
    previous = start.policy.status.get("applied")
    edits = []
    for v in Variable:
        entry = previous.get(v.value) if isinstance(previous, Mapping) else None
        ours = isinstance(entry, Mapping) and "warmpool" in str(entry.get("reason", ""))
        if ours and isinstance(entry, Mapping) and current.get(v) != entry.get("value"):
            edits.append(f"{v.value} {entry.get('value')} -> {current.get(v, 'unset')}")
    signature = ", ".join(edits) or None
    if start.memory.report_once("ForeignEdit", signature):
        pending.events.append(Event("Warning", "ForeignEdit", f"managed values changed outside warmpool: {signature}"))


# ----- report: after the write -----


def report(pending: Pending, outcome: Outcome) -> StepResult:
    """Completes the status once the caller has made (or skipped) the write. `outcome` is None when there was
    no write."""
    start, rec, now = pending.start, pending.rec, pending.now
    conditions, events, problems, fields = pending.conditions, pending.events, pending.problems, pending.status
    memory = start.memory
    reason, message, current, wrote = pending.reason, pending.message, dict(pending.current), False
    view = pending.target
    if isinstance(outcome, Applied):
        wrote, view = True, outcome.target
        current = _current(view.plain_env(), start.spec.managed_variables)
        fields["lastAppliedTime"] = st.timestamp(now)
        if pending.last_applied is not None:  # warmpool's first change is not counted against rollout.maxPerDay
            memory.record_rollout(now)
            fields["checkpoint"] = memory.to_checkpoint()
        assert pending.write is not None
        message = f"applied {summarize(pending.write.values)} to {pending.write.namespace}/{pending.write.name}"
        if pending.write.release:
            message += f", released {', '.join(pending.write.release)}"
        events.append(Event("Normal", "Applied", message))
        memory.report_once("ChangeHeld", None)
    elif isinstance(outcome, ApplyRefused):
        message = outcome.message
        kind = {409: "ApplyConflict", 403: "Forbidden", 422: "ApplyInvalid"}.get(outcome.status, "ApplyFailed")
        if outcome.status == 409:
            conditions.append(ConditionUpdate("ForeignOwner", True, kind, message))
            reason = Reason.FOREIGN_OWNER
        else:
            conditions.append(ConditionUpdate("Degraded", True, kind, message))
            reason = Reason.TARGET_UNREADABLE
        if memory.report_once(kind, message):
            events.append(Event("Warning", kind, message))
    elif reason is not Reason.APPLY:
        shown = summarize(pending.held_values or rec.values)
        about_target = reason in (Reason.TARGET_INVALID, Reason.TARGET_UNREADABLE)
        held = f"{shown}: {message}" if shown and not about_target else message
        if reason is not Reason.NO_CHANGE and memory.report_once("ChangeHeld", reason.value):
            kind = "Warning" if about_target else "Normal"
            events.append(Event(kind, reason.camel if about_target else "ChangeHeld", held))
        elif reason is Reason.NO_CHANGE:
            memory.report_once("ChangeHeld", None)
    applied_message = message if wrote or isinstance(outcome, ApplyRefused) else f"held: {message}"

    if view is not None:
        dry = start.spec.dry_run
        conditions.append(
            ConditionUpdate("DryRun", dry, "DryRun" if dry else "Live", message if reason is Reason.DRY_RUN else "")
        )
        fields.update(st.applied_status(current, view.owners, view.warmpool_applied_at if not wrote else now))
        in_sync = bool(rec.values) and all(current.get(v) == n for v, n in rec.values.items())
        in_sync = in_sync and (wrote or not pending.release)  # a release still to make is a change to make
        applied_reason = "InSync" if in_sync else (Reason.APPLY.camel if wrote else reason.camel)
        conditions.append(ConditionUpdate("Applied", in_sync, applied_reason, applied_message))
    else:
        conditions.append(ConditionUpdate("Applied", False, reason.camel, pending.message))

    fields, status_problems = st.fit_status(fields)
    problems += status_problems
    if problems and memory.report_once("Degraded", "; ".join(problems)):
        events.append(Event("Warning", "Degraded", "; ".join(problems)))
    elif not problems:
        memory.report_once("Degraded", None)
    conditions = _merge_degraded(conditions, problems)
    problem = next((c for c in conditions if c.type in _NOT_READY and c.status), None)
    ready_message = f"{rec.nodes} nodes, {rec.pods} pods with VPC IPs; {applied_message}"
    conditions.append(
        ConditionUpdate(
            "Ready",
            problem is None,
            "Planned" if problem is None else problem.reason,
            ready_message if problem is None else problem.message,
        )
    )
    return StepResult(
        status=_finish(start.policy, conditions, fields, now),
        events=events,
        reason=Reason.APPLY if wrote else reason,
        message=applied_message,
        wrote=wrote,
        recommended=dict(rec.values),
        applied=current,
        summary=f"recommended {summarize(rec.values) or 'nothing'}; {applied_message}",
    )


def _has(conditions: Iterable[ConditionUpdate], kind: str) -> bool:
    return any(c.type == kind and c.status for c in conditions)


def _merge_degraded(conditions: list[ConditionUpdate], problems: list[str]) -> list[ConditionUpdate]:
    """One Degraded condition naming every problem: the specific ones first (their reason wins), then the
    dependency problems."""
    found = [c for c in conditions if c.type == C.DEGRADED.value and c.status]
    messages = [c.message for c in found] + problems
    rest = [c for c in conditions if c.type != C.DEGRADED.value]
    if not messages:
        default = next((c for c in conditions if c.type == C.DEGRADED.value), None)
        return _dedupe([*rest, default or ConditionUpdate("Degraded", False, "Healthy", "")])
    reason = found[0].reason if found else "DependencyProblem"
    return _dedupe([*rest, ConditionUpdate("Degraded", True, reason, "; ".join(dict.fromkeys(messages)))])


def _dedupe(conditions: list[ConditionUpdate]) -> list[ConditionUpdate]:
    """The first condition of each type wins, except that a True Degraded or ForeignOwner beats a False one:
    specific causes are appended before generic ones."""
    seen: dict[str, ConditionUpdate] = {}
    for c in conditions:
        if c.type not in seen or (
            c.status and not seen[c.type].status and c.type in (C.DEGRADED.value, C.FOREIGN_OWNER.value)
        ):
            seen[c.type] = c
    return list(seen.values())


def _finish(
    policy: PolicyInput, conditions: list[ConditionUpdate], fields: dict[str, Any], now: float
) -> dict[str, Any]:
    old = policy.status.get("conditions")
    return {
        **fields,
        "observedGeneration": policy.generation,
        "conditions": merge_conditions(
            list(old) if isinstance(old, list) else [],
            conditions,
            datetime.fromtimestamp(now, UTC),
            policy.generation,
        ),
    }
