"""Catching index entries for objects that no longer exist.

When a watch is resumed from a resource version the API server no longer has (HTTP 410 Gone), kopf relists
the resource, but objects deleted meanwhile never get a DELETED event, so their index entries linger. A cheap
metadata-only list every few minutes tells which objects really exist; entries for objects that existed before
that list began and are not in it are stale and are ignored (and the start log forgets their nodes).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

# Objects bound or created within this margin of the list's start may be missing from it only because the
# operator's clock and the API server's differ: they are never called stale.
CLOCK_MARGIN = 30.0
METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"


@dataclass(frozen=True)
class LiveSet:
    """The UIDs (pods) and names (nodes) present when a list started at `listed_at`."""

    listed_at: float
    pod_uids: frozenset[str] = field(default_factory=frozenset)
    node_names: frozenset[str] = field(default_factory=frozenset)

    def pod_is_stale(self, uid: str, started_at: float) -> bool:
        return started_at < self.listed_at - CLOCK_MARGIN and uid not in self.pod_uids

    def node_is_stale(self, name: str, created_at: float) -> bool:
        return created_at < self.listed_at - CLOCK_MARGIN and name not in self.node_names


def _list_metadata(api: Any, path: str, page: int = 5000) -> Iterable[dict[str, Any]]:
    token: str | None = None
    while True:
        query: list[tuple[str, Any]] = [("limit", page)]
        if token:
            query.append(("continue", token))
        body = api.call_api(
            path,
            "GET",
            query_params=query,
            header_params={"Accept": METADATA_LIST},
            response_types_map={200: "object"},
            auth_settings=["BearerToken"],
            _return_http_data_only=True,
        )
        yield from body.get("items", [])
        token = (body.get("metadata") or {}).get("continue")
        if not token:
            return


def list_live(api: Any, listed_at: float) -> LiveSet:
    """Blocking: one paginated metadata-only list of pods and of nodes."""
    pods = frozenset(item["metadata"]["uid"] for item in _list_metadata(api, "/api/v1/pods"))
    nodes = frozenset(item["metadata"]["name"] for item in _list_metadata(api, "/api/v1/nodes"))
    return LiveSet(listed_at=listed_at, pod_uids=pods, node_names=nodes)
