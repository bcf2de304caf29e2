"""Indexes over Nodes and Pods. Index functions only: no per-object handlers, so kopf never writes to a Pod or
a Node (no annotations, no finalizers).

Index functions return `{}` (never None) for objects that should not be indexed: kopf keeps an object's previous
value when the function returns None, so a pod that finished would go on being counted."""

from __future__ import annotations

import time
from typing import Any

import kopf

from warmpool.observe.facts import NodeFacts, PodFacts, is_pending_unbound, node_facts, pod_facts, stop_of


@kopf.index("nodes")
async def node_index(body: kopf.Body, **_: Any) -> dict[str, NodeFacts]:
    facts = node_facts(body)
    return {facts.name: facts} if facts is not None else {}


@kopf.index("pods")
async def pod_index(body: kopf.Body, memo: kopf.Memo, **_: Any) -> dict[str, PodFacts]:
    start_log = getattr(memo, "start_log", None)
    stop = stop_of(body, time.time())
    if stop is not None and start_log is not None:
        start_log.record_stop(*stop)
    found = pod_facts(body)
    if found is None:
        return {}
    node, facts = found
    if start_log is not None:
        start_log.record(node, facts.uid, facts.started_at)
    return {node: facts}


@kopf.index("pods")
async def pending_pod_index(body: kopf.Body, **_: Any) -> dict[str, str]:
    return {"pending": body.metadata.uid or ""} if is_pending_unbound(body) else {}


@kopf.on.probe(id="indexes")  # type: ignore[arg-type]  # kopf passes indexes as extra kwargs
async def index_sizes(
    node_index: kopf.Index[str, NodeFacts], pod_index: kopf.Index[str, PodFacts], **_: Any
) -> dict[str, int]:
    return {"nodes": len(node_index), "pods": sum(len(v) for v in pod_index.values())}
