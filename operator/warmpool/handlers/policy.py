"""The one timer: on each WarmPoolPolicy, observe + plan + (guarded) apply, and write status."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import kopf

from warmpool import metrics
from warmpool.api import v1alpha1
from warmpool.controller import reconcile_policy
from warmpool.controller.context import OperatorContext
from warmpool.events import post_event
from warmpool.observe.facts import NodeFacts, PodFacts
from warmpool.observe.liveness import list_live

# kopf's timer fires on this fixed tick; each policy's own `rollout.interval` decides whether a tick plans.
TICK_SECONDS = 10.0


@kopf.index(v1alpha1.GROUP, v1alpha1.VERSION, v1alpha1.PLURAL)
async def policy_index(spec: kopf.Spec, meta: kopf.Meta, **_: Any) -> dict[str, tuple[str, str]]:
    """Target DaemonSet -> (creation time, name) of every policy aiming at it, to find conflicts."""
    target = spec.get("targetRef") or {}
    key = f"{target.get('namespace', 'kube-system')}/{target.get('name', 'aws-node')}"
    return {key: (str(meta.get("creationTimestamp", "")), str(meta.get("name", "")))}


@kopf.timer(  # type: ignore[arg-type]  # kopf passes indexes as extra kwargs
    v1alpha1.GROUP, v1alpha1.VERSION, v1alpha1.PLURAL, interval=TICK_SECONDS, initial_delay=1.0
)
async def plan_policy(
    body: kopf.Body,
    patch: kopf.Patch,
    memo: kopf.Memo,
    logger: kopf.Logger,
    node_index: kopf.Index[str, NodeFacts],
    pod_index: kopf.Index[str, PodFacts],
    pending_pod_index: kopf.Index[str, str],
    policy_index: kopf.Index[str, tuple[str, str]],
    **_: Any,
) -> None:
    ctx: OperatorContext = memo.ctx
    now = time.time()
    await _refresh_live_set(ctx, now, logger)
    metrics.INDEX_SIZE.labels("nodes").set(len(node_index))
    metrics.INDEX_SIZE.labels("pods").set(sum(len(store) for store in pod_index.values()))
    metrics.INDEX_SIZE.labels("pod_events").set(len(ctx.start_log))
    ctx.start_log.prune(now, live_nodes=set(node_index))
    status, events = await reconcile_policy(
        body=body,
        ctx=ctx,
        logger=logger,
        node_index=node_index,
        pod_index=pod_index,
        policy_index=policy_index,
        pending_pods=len(pending_pod_index.get("pending", ())),
        now=now,
    )
    if status:
        patch.setdefault("status", {}).update(status)
    for event_type, reason, message in events:
        try:
            await asyncio.to_thread(post_event, ctx.api, body, event_type, reason, message)
        except Exception as error:  # an event lost is not worth failing the plan for
            logger.warning("could not post event %s: %s", reason, error)


_live_lock = asyncio.Lock()


async def _refresh_live_set(ctx: OperatorContext, now: float, logger: kopf.Logger) -> None:
    """Every `index_reconcile_seconds`, one metadata-only list of pods and nodes (shared by all policies)."""
    async with _live_lock:
        if ctx.live is not None and now - ctx.live.listed_at < ctx.settings.index_reconcile_seconds:
            return
        try:
            ctx.live = await asyncio.to_thread(list_live, ctx.api, now)
        except Exception as error:  # the check is a safety net; planning goes on without it
            logger.warning("could not list pods and nodes to check the indexes: %s", error)


@kopf.on.probe(id="planning")
async def planning_is_alive(memo: kopf.Memo, **_: Any) -> dict[str, float]:
    """Liveness fails when policies exist but none was planned for `stale_after_seconds`."""
    ctx: OperatorContext | None = getattr(memo, "ctx", None)
    if ctx is None or not ctx.policies:
        return {}
    newest = max((s.last_plan or ctx.started_at) for s in ctx.policies.values())
    age = time.time() - newest
    if age > ctx.settings.stale_after_seconds:
        raise kopf.PermanentError(f"no policy planned for {age:.0f}s")
    return {"seconds_since_last_plan": round(age, 1)}
