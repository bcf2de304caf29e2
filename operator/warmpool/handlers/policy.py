"""The one timer: on each WarmPoolPolicy, observe + plan + (guarded) apply, and write status."""

from __future__ import annotations

import time
from typing import Any

import kopf

from warmpool.api import v1alpha1
from warmpool.controller import reconcile_policy
from warmpool.observe.facts import NodeFacts, PodFacts

# kopf's timer fires on this fixed tick; each policy's own `rollout.interval` decides whether a tick plans.
TICK_SECONDS = 10.0


@kopf.timer(v1alpha1.GROUP, v1alpha1.VERSION, v1alpha1.PLURAL, interval=TICK_SECONDS, initial_delay=1.0)
async def plan_policy(
    body: kopf.Body,
    patch: kopf.Patch,
    memo: kopf.Memo,
    logger: kopf.Logger,
    node_index: kopf.Index[str, NodeFacts],
    pod_index: kopf.Index[str, PodFacts],
    pending_pod_index: kopf.Index[str, str],
    **_: Any,
) -> None:
    status_patch = await reconcile_policy(
        body=body,
        memo=memo,
        logger=logger,
        node_index=node_index,
        pod_index=pod_index,
        pending_pods=len(pending_pod_index.get("pending", ())),
        now=time.time(),
    )
    if status_patch:
        patch.setdefault("status", {}).update(status_patch)
