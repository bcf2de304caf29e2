"""Indexes over Nodes and Pods. Index functions only: no per-object handlers, so kopf never writes to a Pod or
a Node (no annotations, no finalizers)."""

from __future__ import annotations

from typing import Any

import kopf

from warmpool.observe.facts import NodeFacts, PodFacts, is_pending_unbound, node_facts, pod_facts


@kopf.index("nodes")
async def node_index(body: kopf.Body, **_: Any) -> dict[str, NodeFacts] | None:
    facts = node_facts(body)
    return {facts.name: facts} if facts is not None else None


@kopf.index("pods")
async def pod_index(body: kopf.Body, memo: kopf.Memo, **_: Any) -> dict[str, PodFacts] | None:
    found = pod_facts(body)
    if found is None:
        return None
    node, facts = found
    start_log = getattr(memo, "start_log", None)
    if start_log is not None:
        start_log.record(node, facts.uid, facts.started_at)
    return {node: facts}


@kopf.index("pods")
async def pending_pod_index(body: kopf.Body, **_: Any) -> dict[str, str] | None:
    return {"pending": body.metadata.uid or ""} if is_pending_unbound(body) else None


@kopf.on.probe(id="indexes")
async def index_sizes(
    node_index: kopf.Index[str, NodeFacts], pod_index: kopf.Index[str, PodFacts], **_: Any
) -> dict[str, int]:
    return {"nodes": len(node_index), "pods": sum(len(v) for v in pod_index.values())}
