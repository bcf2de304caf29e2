"""Remembers recent pod starts and stops per node, including pods that have already gone.

kopf's pod index holds only pods that exist now; a job pod that starts and ends between two plans would leave
no trace there, yet it took an IP from the warm pool. The index function records each bound pod here once
(keyed by UID, so repeated watch events and relists do not double count). Stops matter too: a released IP
cools down for 30 s in ipamd, counted as available but unusable, so the planner needs to know how many IPs are
cooling on a node at a time.
"""

from __future__ import annotations

from collections import defaultdict


class StartLog:
    def __init__(self, horizon_seconds: float = 3600.0) -> None:
        self.horizon = horizon_seconds
        self._starts: defaultdict[str, dict[str, float]] = defaultdict(dict)
        self._stops: defaultdict[str, dict[str, float]] = defaultdict(dict)

    def record(self, node: str, uid: str, started_at: float) -> None:
        self._starts[node].setdefault(uid, started_at)

    def record_stop(self, node: str, uid: str, stopped_at: float) -> None:
        self._stops[node].setdefault(uid, stopped_at)

    def times(self, node: str, since: float) -> tuple[float, ...]:
        return tuple(sorted(t for t in self._starts.get(node, {}).values() if t >= since))

    def stop_times(self, node: str, since: float) -> tuple[float, ...]:
        return tuple(sorted(t for t in self._stops.get(node, {}).values() if t >= since))

    def prune(self, now: float, live_nodes: set[str] | None = None) -> None:
        """Forget starts older than the horizon, and nodes that are gone."""
        cutoff = now - self.horizon
        for log in (self._starts, self._stops):
            for node in list(log):
                kept = {uid: t for uid, t in log[node].items() if t >= cutoff}
                if kept and (live_nodes is None or node in live_nodes):
                    log[node] = kept
                else:
                    del log[node]

    def __len__(self) -> int:
        return sum(len(v) for v in self._starts.values()) + sum(len(v) for v in self._stops.values())
