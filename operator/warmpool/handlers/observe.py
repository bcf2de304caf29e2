"""Pods and Nodes are watched by the operator's own list + watch loops (`warmpool.observe.cluster`), not by kopf:
this module only exposes their sizes on the liveness endpoint."""

from __future__ import annotations

from typing import Any

import kopf


@kopf.on.probe(id="indexes")
async def index_sizes(memo: kopf.Memo, **_: Any) -> dict[str, int | bool]:
    ctx = getattr(memo, "ctx", None)
    if ctx is None:
        return {}
    cluster = ctx.cluster
    return {"synced": cluster.synced, "nodes": len(cluster.nodes), "pods": len(cluster.pods)}
