"""Replays a churn trace (the simulator's JSON-lines format) against a real API server, time-scaled.

node_add -> an EC2 instance (moto) and a Node KWOK manages; pod_start -> a Pod bound to its node (no scheduler
runs); pod_stop -> a graceful delete (KWOK finishes it, as a kubelet would); node_remove -> its pods deleted,
then the Node. Events due at the same moment go out together, in dependency order (nodes, starts, stops,
removals), spread over a few worker threads so large clusters keep up.

The driver also records the trace it actually played, in the operator's own time base: pod starts and node
adds at their creationTimestamp (whole seconds, which is all the operator can see), stops and removals when
they were sent. Feeding that realized trace to the simulator predicts what the operator should do, free of
the driver's lag and of timestamp rounding.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client

from warmpool.ipamd.limits import IpMode
from warmpool.sim.trace import (
    TRACE_VERSION,
    Event,
    Header,
    NodeAdd,
    NodeRemove,
    PodStart,
    PodStop,
    SubnetFree,
    Trace,
)
from warmpool_dev.e2e.ec2 import MotoEc2
from warmpool_dev.e2e.kube import node_body, pod_body

# Order of kinds within one batch of simultaneous events: a pod needs its node, a removal comes last.
_ORDER = {NodeAdd: 0, SubnetFree: 0, PodStart: 1, PodStop: 2, NodeRemove: 3}
# A removed node's pods get this long (wall seconds) for KWOK to finish their deletion before the node goes.
NODE_DRAIN_SECONDS = 2.0


@dataclass
class ReplayStats:
    applied: int = 0
    errors: int = 0
    max_lag: float = 0.0  # how late (wall seconds) the latest batch went out, at worst
    nodes: int = 0
    pods: int = 0
    last_error: str = ""


@dataclass
class ChurnDriver:
    api: client.ApiClient
    namespace: str
    ec2: MotoEc2
    speed: float = 60.0
    mode: IpMode = IpMode.SECONDARY
    workers: int = 4
    name_prefix: str = "kwok-"
    stats: ReplayStats = field(default_factory=ReplayStats)
    instance_ids: dict[str, str] = field(default_factory=dict)
    _realized: list[tuple[float, int, Event]] = field(default_factory=list)
    _pods_on: dict[str, set[str]] = field(default_factory=dict)
    _drain: list[tuple[float, str]] = field(default_factory=list)  # (due wall time, trace node name)
    _seeded: set[str] = field(default_factory=set)  # trace nodes `seed` created before the replay
    _lock: threading.Lock = field(default_factory=threading.Lock)
    t0: float = 0.0

    def node_name(self, node: str) -> str:
        return f"{self.name_prefix}{node}"

    @property
    def live_nodes(self) -> int:
        return self.stats.nodes

    # ----- preparation -----

    def prepare(self, trace: Trace) -> None:
        """Launch every node's EC2 instance up front, in one call per (type, zone): moto takes ~30 ms a call,
        which would make node adds lag in big scale-outs."""
        groups: dict[tuple[str, str], list[str]] = {}
        for e in trace.events:
            if isinstance(e, NodeAdd):
                groups.setdefault((e.instance_type, e.zone), []).append(e.node)
        missing = {zone for _, zone in groups} - set(self.ec2.subnets)
        if missing:
            self.ec2.create_network(missing)
        for (itype, zone), nodes in groups.items():
            for start in range(0, len(nodes), 500):
                chunk = nodes[start : start + 500]
                ids = self.ec2.run_instances(itype, zone, len(chunk))
                self.instance_ids.update(zip(chunk, ids, strict=True))

    def seed(self, trace: Trace) -> None:
        """Create the nodes the trace starts with (its node_adds at time 0) now, before the replay: the cluster
        a controller started next finds already there, as the trace means it. Started on an empty cluster, the
        operator would count them as a scale-out, which the simulator of the trace never sees."""
        if not self.instance_ids:
            self.prepare(trace)
        initial = [e for e in trace.events if isinstance(e, NodeAdd) and e.t == 0.0 and e.node not in self._seeded]
        with ThreadPoolExecutor(self.workers, thread_name_prefix="seed") as pool:
            for e, _ in zip(initial, pool.map(self._create_node, initial), strict=True):
                self._seeded.add(e.node)

    # ----- replay -----

    def replay(
        self,
        trace: Trace,
        stop: threading.Event | None = None,
        on_progress: Callable[[float, ReplayStats], None] | None = None,
        until: float | None = None,
    ) -> Trace:
        """Play `trace` (up to trace time `until`) at `speed`; returns the realized trace. Starts on a whole
        second so that realized times line up with the API server's whole-second timestamps."""
        stop = stop or threading.Event()
        events = [e for e in trace.events if until is None or e.t <= until]
        if not self.instance_ids:
            self.prepare(trace)
        self.t0 = math.floor(time.time()) + 1.0
        time.sleep(max(0.0, self.t0 - time.time()))
        free = self.ec2.free_ips()
        for zone, count in sorted(free.items()):
            self._record(0.0, SubnetFree(t=0.0, zone=zone, free_ips=count))
        seeded, self._seeded = self._seeded, set()
        for e in events:
            if isinstance(e, NodeAdd) and e.node in seeded:  # there since before t0: at the trace's start
                self._record(0.0, e)
        events = [e for e in events if not (isinstance(e, NodeAdd) and e.node in seeded)]
        with ThreadPoolExecutor(self.workers, thread_name_prefix="churn") as pool:
            i = 0
            last_progress = 0.0
            while i < len(events) and not stop.is_set():
                due_t = events[i].t
                j = i
                while j < len(events) and events[j].t == due_t:
                    j += 1
                due_wall = self.t0 + due_t / self.speed
                self._drain_nodes(pool, until_wall=due_wall, stop=stop)
                if stop.wait(max(0.0, due_wall - time.time())):
                    break
                self.stats.max_lag = max(self.stats.max_lag, time.time() - due_wall)
                self._run_batch(pool, events[i:j])
                i = j
                if on_progress is not None and time.time() - last_progress >= 1.0:
                    last_progress = time.time()
                    on_progress(due_t, self.stats)
            self._drain_nodes(pool, until_wall=math.inf, stop=stop)
        if on_progress is not None:
            on_progress(events[-1].t if events else 0.0, self.stats)
        return self.realized(trace)

    def realized(self, trace: Trace | None = None, pad_until: float | None = None) -> Trace:
        """The trace as played, times in wall seconds since `t0`. `pad_until` appends a no-op subnet event so a
        simulation of it runs (ticks) until then: the operator goes on planning after the churn ends."""
        with self._lock:
            items = sorted(self._realized, key=lambda x: (x[0], x[1]))
        events = [e for _, _, e in items]
        if pad_until is not None and events:
            last_free = next((e for e in reversed(events) if isinstance(e, SubnetFree)), None)
            if last_free is not None and pad_until > events[-1].t:
                events.append(SubnetFree(t=pad_until, zone=last_free.zone, free_ips=last_free.free_ips))
        meta: dict[str, Any] = {"realized": True, "speed": self.speed}
        if trace is not None and trace.meta:
            meta["source"] = dict(trace.meta)
        return Trace(events=events, header=Header(type="header", version=TRACE_VERSION, **meta), meta=meta)

    # ----- one batch -----

    def _run_batch(self, pool: ThreadPoolExecutor, batch: Sequence[Event]) -> None:
        by_kind: dict[int, list[Event]] = {}
        for e in batch:
            by_kind.setdefault(_ORDER[type(e)], []).append(e)
        for kind in sorted(by_kind):
            self._parallel(pool, by_kind[kind])

    def _parallel(self, pool: ThreadPoolExecutor, events: Iterable[Event]) -> None:
        for future in [pool.submit(self._apply, e) for e in events]:
            try:
                future.result()
                self.stats.applied += 1
            except Exception as error:  # a failed call is counted and reported, the replay goes on
                self.stats.errors += 1
                self.stats.last_error = str(error)[:300]

    def _apply(self, e: Event) -> None:
        core = client.CoreV1Api(self.api)
        if isinstance(e, NodeAdd):
            t = self._create_node(e).metadata.creation_timestamp.timestamp() - self.t0
            self._record(t, e.model_copy(update={"t": max(t, 0.0)}))
        elif isinstance(e, PodStart):
            body = pod_body(e.pod, self.namespace, self.node_name(e.node))
            created = core.create_namespaced_pod(self.namespace, body)
            with self._lock:
                self._pods_on[e.node].add(e.pod)
                self.stats.pods += 1
            t = created.metadata.creation_timestamp.timestamp() - self.t0
            self._record(t, e.model_copy(update={"t": max(t, 0.0)}))
        elif isinstance(e, PodStop):
            self._delete_pod(core, e.node, e.pod)
        elif isinstance(e, NodeRemove):
            with self._lock:
                pods = sorted(self._pods_on.get(e.node, ()))
            for pod in pods:
                self._delete_pod(core, e.node, pod)
            with self._lock:
                self._drain.append((time.time() + NODE_DRAIN_SECONDS, e.node))
        # SubnetFree: the subnets are moto's; their free IPs are recorded once at the start.

    def _create_node(self, e: NodeAdd) -> Any:
        name = self.node_name(e.node)
        body = node_body(name, e.instance_type, e.zone, self.instance_ids[e.node], self.mode)
        created = client.CoreV1Api(self.api).create_node(body)
        with self._lock:
            self._pods_on[e.node] = set()
            self.stats.nodes += 1
        return created

    def _delete_pod(self, core: client.CoreV1Api, node: str, pod: str) -> None:
        try:
            core.delete_namespaced_pod(pod, self.namespace)
        except client.ApiException as error:
            if error.status != 404:
                raise
        t = time.time() - self.t0
        with self._lock:
            self._pods_on[node].discard(pod)
            self.stats.pods -= 1
        self._record(t, PodStop(t=t, node=node, pod=pod))

    def _drain_nodes(self, pool: ThreadPoolExecutor, until_wall: float, stop: threading.Event) -> None:
        """Delete the nodes whose pods have had their drain time, up to `until_wall` (waiting for them)."""
        while True:
            with self._lock:
                self._drain.sort()
                if not self._drain or self._drain[0][0] > until_wall:
                    return
                due, node = self._drain.pop(0)
            if stop.wait(max(0.0, due - time.time())):
                return
            pool.submit(self._delete_node, node).result()

    def _delete_node(self, node: str) -> None:
        try:
            client.CoreV1Api(self.api).delete_node(self.node_name(node))
        except client.ApiException as error:
            if error.status != 404:
                raise
        t = time.time() - self.t0
        with self._lock:
            self._pods_on.pop(node, None)
            self.stats.nodes -= 1
        self._record(t, NodeRemove(t=t, node=node))

    def _record(self, t: float, e: Event) -> None:
        with self._lock:
            self._realized.append((t, _ORDER[type(e)], e))


def scaled(trace: Trace, speed: float) -> Trace:
    """The trace with every time divided by `speed` (what a replay at that speed aims for)."""
    return Trace(
        events=[e.model_copy(update={"t": e.t / speed}) for e in trace.events], header=trace.header, meta=trace.meta
    )
