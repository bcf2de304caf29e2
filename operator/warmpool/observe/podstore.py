"""The pods as far as planning cares, in structures sized by nodes and by the look-back, not by every pod ever seen.

Each pod event is reduced at once to a `PodRecord` (a handful of fields) by the rules in `facts`; the body is not
kept. What stays:
- running pods that hold a VPC IP, as uid -> node (the uid packed into an int, node names shared), and a count
  per node;
- per node, the times at which such pods were bound and stopped, pruned to the look-back;
- the uids of pods that wait for the scheduler.

A relist replaces the whole set: pods absent from it are gone, whether or not a DELETED event was ever seen.
"""

from __future__ import annotations

from array import array
from collections.abc import Mapping
from typing import Any, NamedTuple

from warmpool.observe.facts import is_pending_unbound, pod_facts, stop_of

Uid = int | str
UNBOUND = ""


def pack_uid(uid: str) -> Uid:
    """A UUID as a 128-bit int (44 bytes instead of 85 for the str); any other uid as it is."""
    try:
        return int(uid.replace("-", ""), 16) if len(uid) == 36 else uid
    except ValueError:
        return uid


class PodRecord(NamedTuple):
    """One pod event, reduced to what the store needs."""

    uid: Uid
    node: str  # where it holds a VPC IP; "" when it holds none (unbound, finished, hostNetwork, Fargate, ...)
    bound_at: float  # when it was bound (only meaningful with a node)
    stopping: bool  # it is being deleted or has finished: its IP is (being) released
    pending: bool  # waiting for the scheduler


def reduce_pod(body: Mapping[str, Any]) -> PodRecord:
    uid = pack_uid(str((body.get("metadata") or {}).get("uid") or ""))
    found = pod_facts(body)
    node, bound_at = (found[0], found[1].started_at) if found else (UNBOUND, 0.0)
    stopping = found is not None and stop_of(body, 0.0) is not None
    return PodRecord(uid, node, bound_at, stopping, is_pending_unbound(body))


class _TimeLog:
    """Per node, a list of event times (8 bytes each), pruned to a horizon."""

    __slots__ = ("_times",)

    def __init__(self) -> None:
        self._times: dict[str, array[float]] = {}

    def add(self, node: str, when: float) -> None:
        times = self._times.get(node)
        if times is None:
            times = self._times[node] = array("d")
        times.append(when)

    def merge(self, other: _TimeLog) -> None:
        for node, times in other._times.items():
            mine = self._times.get(node)
            if mine is None:
                self._times[node] = times
            else:
                mine.extend(times)

    def since(self, node: str, since: float) -> tuple[float, ...]:
        return tuple(sorted(t for t in self._times.get(node, ()) if t >= since))

    def prune(self, cutoff: float, live_nodes: set[str] | None) -> None:
        for node in list(self._times):
            kept = array("d", (t for t in self._times[node] if t >= cutoff))
            if kept and (live_nodes is None or node in live_nodes):
                self._times[node] = kept
            else:
                del self._times[node]

    def __len__(self) -> int:
        return sum(len(t) for t in self._times.values())


class _Relist:
    """The replacement set under construction; starts and stops wait here so that an aborted list leaves no
    trace (the next one would record them again)."""

    __slots__ = ("pending", "per_node", "running", "starts", "stopping", "stops")

    def __init__(self) -> None:
        self.running: dict[Uid, str] = {}
        self.stopping: dict[Uid, str] = {}
        self.per_node: dict[str, int] = {}
        self.pending: set[Uid] = set()
        self.starts = _TimeLog()
        self.stops = _TimeLog()


class PodStore:
    """Counts, start and stop logs of IP-holding pods. Not thread-safe: one event loop feeds and reads it."""

    def __init__(self, horizon_seconds: float = 3600.0) -> None:
        self.horizon = horizon_seconds
        self._running: dict[Uid, str] = {}  # IP-holding pods that are not (yet) stopping or gone
        self._stopping: dict[Uid, str] = {}  # IP-holding pods being deleted: still hold the IP, stop recorded
        self._per_node: dict[str, int] = {}
        self._pending: set[Uid] = set()
        self._names: dict[str, str] = {}  # one str per node name, shared by all its pods
        self._starts = _TimeLog()
        self._stops = _TimeLog()
        self._relist: _Relist | None = None

    # ----- reading -----
    def ip_pods(self, node: str) -> int:
        return self._per_node.get(node, 0)

    def start_times(self, node: str, since: float) -> tuple[float, ...]:
        return self._starts.since(node, since)

    def stop_times(self, node: str, since: float) -> tuple[float, ...]:
        return self._stops.since(node, since)

    @property
    def pending(self) -> int:
        return len(self._pending)

    def __len__(self) -> int:
        """IP-holding pods (running or terminating)."""
        return len(self._running) + len(self._stopping)

    @property
    def logged_events(self) -> int:
        return len(self._starts) + len(self._stops)

    # ----- watch events -----
    def apply(self, event: str, rec: PodRecord, now: float) -> None:
        """ADDED / MODIFIED / DELETED of one pod."""
        if event == "DELETED":
            self._pending.discard(rec.uid)
            self._drop(rec.uid, now)
            return
        if rec.pending:
            self._pending.add(rec.uid)
        else:
            self._pending.discard(rec.uid)
        if not rec.node:  # holds no IP (any more): finished, or never took one
            self._drop(rec.uid, now)
        elif rec.stopping:
            if rec.uid in self._running:
                del self._running[rec.uid]
                self._stopping[rec.uid] = self._node(rec.node)
                self._stops.add(rec.node, now)
            elif rec.uid not in self._stopping:  # first seen while terminating: it still holds its IP
                self._add_counted(rec, self._stopping)
        elif rec.uid not in self._running and rec.uid not in self._stopping:
            self._add_counted(rec, self._running)
            self._starts.add(rec.node, rec.bound_at)

    def _node(self, name: str) -> str:
        return self._names.setdefault(name, name)

    def _add_counted(self, rec: PodRecord, into: dict[Uid, str]) -> None:
        node = self._node(rec.node)
        into[rec.uid] = node
        self._per_node[node] = self._per_node.get(node, 0) + 1

    def _uncount(self, node: str) -> None:
        left = self._per_node[node] - 1
        if left:
            self._per_node[node] = left
        else:
            del self._per_node[node]

    def _drop(self, uid: Uid, now: float) -> None:
        """The pod no longer holds an IP: record its stop unless already recorded."""
        node = self._running.pop(uid, None)
        if node is not None:
            self._stops.add(node, now)
        else:
            node = self._stopping.pop(uid, None)
        if node is not None:
            self._uncount(node)

    # ----- relisting -----
    def begin_relist(self) -> None:
        """Start building the replacement set; reads keep seeing the current one until `end_relist`."""
        self._relist = _Relist()

    def relist_add(self, rec: PodRecord, now: float) -> None:
        """One listed pod. Pods seen for the first time count as starts (at their bind time); a pod that was
        running and is now listed as stopping counts as a stop."""
        new = self._relist
        assert new is not None, "begin_relist first"
        if rec.pending:
            new.pending.add(rec.uid)
        if not rec.node:
            return
        node = self._node(rec.node)
        new.per_node[node] = new.per_node.get(node, 0) + 1
        if rec.stopping:
            new.stopping[rec.uid] = node
            if rec.uid in self._running:
                new.stops.add(node, now)
        else:
            new.running[rec.uid] = node
            if rec.uid not in self._running and rec.uid not in self._stopping:
                new.starts.add(node, rec.bound_at)

    def end_relist(self) -> None:
        """Replace the whole set with the listed pods. Pods that vanished while unwatched are dropped without a
        stop: when they stopped is unknown, and recording them all now would fake a burst of stops."""
        new, self._relist = self._relist, None
        assert new is not None, "begin_relist first"
        self._running, self._stopping, self._per_node, self._pending = (
            new.running,
            new.stopping,
            new.per_node,
            new.pending,
        )
        self._names = {n: n for n in self._per_node}
        self._starts.merge(new.starts)
        self._stops.merge(new.stops)

    def abort_relist(self) -> None:
        self._relist = None

    def prune(self, now: float, live_nodes: set[str] | None = None) -> None:
        """Forget starts and stops older than the horizon, and logs of nodes that are gone."""
        cutoff = now - self.horizon
        self._starts.prune(cutoff, live_nodes)
        self._stops.prune(cutoff, live_nodes)
        self._names = {n: n for n in self._per_node}
