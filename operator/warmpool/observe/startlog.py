"""Remembers recent pod starts per node, including pods that have already gone.

kopf's pod index holds only pods that exist now; a job pod that starts and ends between two plans would leave
no trace there, yet it took an IP from the warm pool. The index function records each bound pod here once
(keyed by UID, so repeated watch events and relists do not double count).
"""

from __future__ import annotations

from collections import defaultdict


class StartLog:
    def __init__(self, horizon_seconds: float = 3600.0) -> None:
        self.horizon = horizon_seconds
        self._starts: defaultdict[str, dict[str, float]] = defaultdict(dict)

    def record(self, node: str, uid: str, started_at: float) -> None:
        self._starts[node].setdefault(uid, started_at)

    def times(self, node: str, since: float) -> tuple[float, ...]:
        return tuple(sorted(t for t in self._starts.get(node, {}).values() if t >= since))

    def prune(self, now: float, live_nodes: set[str] | None = None) -> None:
        """Forget starts older than the horizon, and nodes that are gone."""
        cutoff = now - self.horizon
        for node in list(self._starts):
            if live_nodes is not None and node not in live_nodes:
                del self._starts[node]
                continue
            kept = {uid: t for uid, t in self._starts[node].items() if t >= cutoff}
            if kept:
                self._starts[node] = kept
            else:
                del self._starts[node]

    def __len__(self) -> int:
        return sum(len(v) for v in self._starts.values())
