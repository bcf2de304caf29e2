"""One pass of one WarmPoolPolicy: read -> step -> apply -> report. Every decision is in `warmpool.step`; this
module only does the I/O around it (the DaemonSet, the write, metrics) and never lets an API error escape."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import urllib3
from kubernetes import client

from warmpool import metrics, step
from warmpool.api import v1alpha1
from warmpool.api.v1alpha1 import summarize
from warmpool.apply.addon import Route
from warmpool.apply.client import DaemonSetMissing, apply_env, read_daemonset
from warmpool.apply.daemonset import DaemonSetView, view
from warmpool.conditions import merge_conditions
from warmpool.controller import addon_route
from warmpool.controller.context import OperatorContext
from warmpool.controller.inputs import observe_policy, selected_nodes
from warmpool.controller.measured import measured_pass
from warmpool.step.status import timestamp

Logger = logging.Logger | logging.LoggerAdapter[Any]


def target_key(spec: v1alpha1.WarmPoolPolicySpec) -> str:
    return f"{spec.target_ref.namespace}/{spec.target_ref.name}"


async def reconcile_policy(
    *,
    body: Mapping[str, Any],
    ctx: OperatorContext,
    logger: Logger,
    policy_index: Mapping[str, Iterable[tuple[str, str]]],
    now: float,
) -> step.StepResult:
    """The status to patch and the Events to post; an empty status means: not due this tick."""
    policy = step.PolicyInput.from_body(body)
    start = step.begin(policy, ctx.policies.get(policy.uid), now, history_since=ctx.started_at)
    if isinstance(start, step.Finished):
        if start.memory is not None:
            ctx.policies[policy.uid] = start.memory
        return start.result
    ctx.policies[policy.uid] = start.memory
    started = time.perf_counter()

    observed = await observe_policy(ctx, start.spec, now, start.lookback)
    ds, target = await read_target(ctx, start.spec)
    addon, route = None, step.WriteRoute()
    if ds is not None and isinstance(target, DaemonSetView) and target.container_found:
        eks = addon_route.client(ctx)
        nodes = selected_nodes(ctx.cluster, start.spec.node_selector)
        await addon_route.find_cluster_name(eks, ctx.ec2, start.spec, ds, nodes)
        addon, target = await addon_route.prepare(eks, start.spec, ds, target, policy.status)
        route = step.WriteRoute(addon.writer, addon.problem, _addon_hint(ctx))
    peers = policy_index.get(target_key(start.spec), ())
    pending = step.decide(start, observed, target, peers, now, route)
    outcome: step.Applied | step.ApplyRefused | None = None
    if pending.write and addon is not None and addon.route is Route.EKS_ADDON:
        outcome = await apply_through_addon(ctx, pending.write, now, addon)
    elif pending.write:
        outcome = await apply_write(ctx, pending.write)
    result = step.report(pending, outcome)
    if addon is not None:  # what the add-on route did: its own status field and Events
        result.events[:0] = [step.Event(*e) for e in addon.events]
        if addon.status:
            result.status["addonUpdate"] = addon.status
    # ipamd's own figures beside the estimate: read by the scraper in the background, never waited for here.
    view_now = target if isinstance(target, DaemonSetView) else None
    measured, condition = measured_pass(
        ctx.scraper, policy.name, policy.uid, start.spec.target_ref.namespace, ds, view_now, observed, now
    )
    result.status["measured"] = measured
    result.status["conditions"] = merge_conditions(
        result.status.get("conditions") or [], [condition], datetime.fromtimestamp(now, UTC), policy.generation
    )

    _record_metrics(policy.name, result, time.perf_counter() - started, now)
    logger.info("planned %s: %s", policy.name, result.summary)
    return result


async def read_target(
    ctx: OperatorContext, spec: v1alpha1.WarmPoolPolicySpec
) -> tuple[dict[str, Any] | None, DaemonSetView | step.TargetUnreadable]:
    """The target DaemonSet as read (None when it could not be) and the step's view of its container."""
    ref = spec.target_ref
    try:
        ds = await asyncio.to_thread(read_daemonset, ctx.api, ref.namespace, ref.name)
    except DaemonSetMissing as error:
        return None, step.TargetUnreadable("DaemonSetMissing", str(error))
    except client.ApiException as error:
        return None, step.TargetUnreadable(*_api_problem(error, "get", ref.namespace, ref.name))
    except (urllib3.exceptions.HTTPError, OSError) as error:
        message = f"could not read DaemonSet {ref.namespace}/{ref.name}: {error}"
        return None, step.TargetUnreadable("Unreachable", message)
    return ds, view(ds, ref.container)


async def apply_write(ctx: OperatorContext, write: step.Write) -> step.Applied | step.ApplyRefused:
    try:
        result = await asyncio.to_thread(
            apply_env, ctx.api, write.namespace, write.name, write.container, write.values, write.force
        )
    except client.ApiException as error:
        if error.status == 409:
            message = f"server-side apply conflict: {error.reason}; another field manager owns these entries"
            return step.ApplyRefused(409, message)
        return step.ApplyRefused(error.status or 0, _api_problem(error, "patch", write.namespace, write.name)[1])
    except (urllib3.exceptions.HTTPError, OSError) as error:
        return step.ApplyRefused(0, f"could not patch DaemonSet {write.namespace}/{write.name}: {error}")
    return step.Applied(view(result, write.container))


async def apply_through_addon(
    ctx: OperatorContext, write: step.Write, now: float, addon: addon_route.AddonPass
) -> step.Applied | step.ApplyRefused:
    """The same values through eks:UpdateAddon: EKS writes them onto the DaemonSet as the add-on."""
    result, update_status, events = await addon_route.write(
        addon_route.client(ctx), write.values, write.release, ctx.settings.eks_update_wait_seconds, timestamp(now)
    )
    addon.events.extend(events)
    if update_status:
        addon.status = update_status
    if not result.sent or result.status == "Failed":
        return step.ApplyRefused(0, f"eks:UpdateAddon {summarize(write.values)}: {result.message}")
    _, target = await read_target(ctx, _spec_for(write))
    if isinstance(target, step.TargetUnreadable):
        return step.ApplyRefused(0, target.message)
    return step.Applied(target)


def _spec_for(write: step.Write) -> v1alpha1.WarmPoolPolicySpec:
    ref = {"namespace": write.namespace, "name": write.name, "container": write.container}
    return v1alpha1.WarmPoolPolicySpec.model_validate({"targetRef": ref})


def _addon_hint(ctx: OperatorContext) -> str:
    eks = ctx.eks
    if ctx.settings.eks_cluster_name or (eks is not None and eks.cluster):
        return ""
    why = f"the EKS cluster name is unknown ({eks.discovery}); " if eks is not None and eks.discovery else ""
    return why + "set WARMPOOL_EKS_CLUSTER_NAME to apply through the EKS add-on"


def _api_problem(error: client.ApiException, verb: str, namespace: str, name: str) -> tuple[str, str]:
    """(condition reason, message) for an API error on the target; a 403 names the permission to grant."""
    denial = _server_message(error)
    if error.status == 403 and "ValidatingAdmissionPolicy" in denial:
        # RBAC allowed the write and an admission policy refused it: the server's message names the rule and
        # the field; advice to grant RBAC would be wrong.
        return "AdmissionDenied", f"{verb} DaemonSet {namespace}/{name} refused by an admission policy: {denial}"
    if error.status == 403:
        return (
            "Forbidden",
            f"the operator may not {verb} daemonsets.apps {namespace}/{name}: grant its ServiceAccount "
            f'"{verb}" on resource "daemonsets" in API group "apps" for {namespace}/{name} (a Role in '
            f"{namespace}: Helm value rbac.targets or the kustomize custom-target overlay)",
        )
    return "Unreachable", f"{verb} DaemonSet {namespace}/{name} failed: HTTP {error.status} {error.reason}"


def _server_message(error: client.ApiException) -> str:
    """The `message` of the API server's Status body, or "" when the body is not one."""
    try:
        body = json.loads(error.body or "")
    except (TypeError, ValueError):
        return ""
    message = body.get("message") if isinstance(body, dict) else None
    return message if isinstance(message, str) else ""


def _record_metrics(name: str, result: step.StepResult, seconds: float, now: float) -> None:
    for v, n in result.recommended.items():
        metrics.RECOMMENDED.labels(name, v.value).set(n)
    for v, n in result.applied.items():
        metrics.APPLIED.labels(name, v.value).set(n)
    if result.wrote:
        metrics.CHANGES_APPLIED.labels(name).inc()
    elif result.reason is not None:
        metrics.CHANGES_REFUSED.labels(name, result.reason.value).inc()
    metrics.PLAN_SECONDS.labels(name).observe(seconds)
    metrics.LAST_PLAN.labels(name).set(now)
