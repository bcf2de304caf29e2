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
    policy_index: kopf.Index[str, tuple[str, str]],
    **_: Any,
) -> None:
    ctx: OperatorContext = memo.ctx
    cluster = ctx.cluster
    if not cluster.synced:
        # A plan over a partly listed cluster would be wrong: wait for the first lists (in this tick, so the first
        # status follows them at once rather than on the next tick).
        logger.info("waiting for the first list of nodes and pods")
        await cluster.wait_synced()
    now = time.time()
    metrics.INDEX_SIZE.labels("nodes").set(len(cluster.nodes))
    metrics.INDEX_SIZE.labels("pods").set(len(cluster.pods))
    metrics.INDEX_SIZE.labels("pod_events").set(cluster.pods.logged_events)
    cluster.pods.prune(now, live_nodes=cluster.nodes.names())
    result = await reconcile_policy(body=body, ctx=ctx, logger=logger, policy_index=policy_index, now=now)
    if result.status:
        patch.setdefault("status", {}).update(result.status)
    for event in result.events:
        try:
            await asyncio.to_thread(post_event, ctx.api, body, event.type, event.reason, event.message)
        except Exception as error:  # an event lost is not worth failing the plan for
            logger.warning("could not post event %s: %s", event.reason, error)


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
