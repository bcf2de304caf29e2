"""The nodes as far as planning cares: name -> NodeFacts, replaced whole by a relist."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from warmpool.observe.facts import NodeFacts, node_facts


class NodeStore:
    def __init__(self) -> None:
        self._nodes: dict[str, NodeFacts] = {}
        self._relist: dict[str, NodeFacts] | None = None

    def all(self) -> list[NodeFacts]:
        return list(self._nodes.values())

    def names(self) -> set[str]:
        return set(self._nodes)

    def __len__(self) -> int:
        return len(self._nodes)

    def apply(self, event: str, body: Mapping[str, Any]) -> None:
        name = str((body.get("metadata") or {}).get("name") or "")
        facts = None if event == "DELETED" else node_facts(body)
        if facts is None:  # deleted, or a node ipamd does not serve (Fargate, Windows)
            self._nodes.pop(name, None)
        else:
            self._nodes[name] = facts

    def begin_relist(self) -> None:
        self._relist = {}

    def relist_add(self, body: Mapping[str, Any]) -> None:
        assert self._relist is not None, "begin_relist first"
        facts = node_facts(body)
        if facts is not None:
            self._relist[facts.name] = facts

    def end_relist(self) -> None:
        assert self._relist is not None, "begin_relist first"
        self._nodes, self._relist = self._relist, None

    def abort_relist(self) -> None:
        self._relist = None
