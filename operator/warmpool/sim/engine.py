"""Discrete-event simulation: a trace drives one `ipamd.node.NodePool` per node under a strategy.

Events come from two sources merged in time order: the trace (already sorted) and a heap of timers (node
wake-ups, samples, closed-loop ticks, aws-node restarts). Timers due at a trace event's time run first, so a
grow landing at t serves a pod starting at t. Idle IPs are integrated exactly between events by each node;
idle nodes cost nothing until their next pod event or time-driven change.
"""

from __future__ import annotations

import heapq
import math
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from warmpool.aws.instance_table import FALLBACK_LIMITS
from warmpool.ipamd.env import (
    ENABLE_PREFIX_DELEGATION,
    TARGET_NAMES,
    WARM_ENI_TARGET,
    WARM_PREFIX_TARGET,
    parse_env,
    parse_settings,
)
from warmpool.ipamd.limits import InstanceLimits, IpMode
from warmpool.ipamd.node import NodePool, Subnet, Timing
from warmpool.ipamd.pool import INF
from warmpool.sim.metrics import NodeFinal, PeriodMetrics, StrategyMetrics, merge_calls, p99_over_all
from warmpool.sim.trace import NodeAdd, NodeRemove, PodStart, PodStop, SubnetFree, Trace
from warmpool.snapshot import ClusterSnapshot, NodeInfo, SubnetInfo

LimitsLookup = Callable[[NodeAdd], InstanceLimits]


def default_env(mode: IpMode) -> dict[str, str]:
    """What AWS ships: WARM_ENI_TARGET=1, or WARM_PREFIX_TARGET=1 with prefix delegation."""
    if mode is IpMode.PREFIX:
        return {ENABLE_PREFIX_DELEGATION: "true", WARM_PREFIX_TARGET: "1"}
    return {WARM_ENI_TARGET: "1"}


def settings_of(env: Mapping[str, str]) -> str:
    return ",".join(f"{k}={env[k]}" for k in TARGET_NAMES if k in env)


def subnet_id(zone: str) -> str:
    return f"subnet-{zone or 'default'}"


# ----- strategies -----


class Strategy(ABC):
    name: str

    @abstractmethod
    def initial_env(self, mode: IpMode) -> dict[str, str]: ...

    def node_env(self, node: NodeAdd, mode: IpMode) -> Mapping[str, str] | None:
        """The env one node boots with when it differs from the cluster's (hindsight baselines only: a real
        aws-node DaemonSet has one env for every node)."""
        return None


class StaticStrategy(Strategy):
    """Fixed targets for the whole trace: AWS's default when `env` is None, else a mapping or a
    'WARM_IP_TARGET=2,MINIMUM_IP_TARGET=5' string."""

    def __init__(self, env: Mapping[str, str] | str | None = None, name: str | None = None) -> None:
        self.env = parse_settings(env) if isinstance(env, str) else (dict(env) if env is not None else None)
        self.name = name or ("default" if self.env is None else settings_of(self.env))

    def initial_env(self, mode: IpMode) -> dict[str, str]:
        if self.env is None:
            return default_env(mode)
        env = dict(self.env)
        if mode is IpMode.PREFIX:
            env[ENABLE_PREFIX_DELEGATION] = "true"
        return env


class PerNodeStaticStrategy(Strategy):
    """A fixed env per node, chosen in hindsight: the bound a per-node (or per-instance-type) override would
    reach. Nodes without an entry get `fallback`."""

    def __init__(self, name: str, envs: Mapping[str, Mapping[str, str]], fallback: Mapping[str, str] | None) -> None:
        self.name = name
        self.envs = {node: dict(env) for node, env in envs.items()}
        self.fallback = StaticStrategy(fallback)

    def initial_env(self, mode: IpMode) -> dict[str, str]:
        return self.fallback.initial_env(mode)

    def node_env(self, node: NodeAdd, mode: IpMode) -> Mapping[str, str] | None:
        env = self.envs.get(node.node)
        return None if env is None else StaticStrategy(env).initial_env(mode)

    def describe(self) -> str:
        """The settings used and on how many nodes, most used first."""
        counts: dict[str, int] = {}
        for env in self.envs.values():
            label = settings_of(env)
            counts[label] = counts.get(label, 0) + 1
        return "; ".join(f"{n}x {label}" for label, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


@dataclass(frozen=True, slots=True)
class ClusterView:
    """What a closed-loop strategy sees at each tick: what warmpool's observe layer would see."""

    now: float
    snapshot: ClusterSnapshot
    env: Mapping[str, str]
    limits: Mapping[str, InstanceLimits]
    subnets: Mapping[str, SubnetInfo]
    rollout_in_progress: bool


class ClosedLoopStrategy(Strategy):
    """Every `interval` seconds gets a ClusterView and may return a new env (each change is a rollout)."""

    interval: float = 60.0
    lookback: float = 900.0  # how far back pod start times are kept in NodeInfo

    def initial_env(self, mode: IpMode) -> dict[str, str]:
        return default_env(mode)

    @abstractmethod
    def decide(self, view: ClusterView) -> dict[str, str] | None: ...


# ----- the engine -----


@dataclass(frozen=True, slots=True)
class EngineConfig:
    timing: Timing = field(default_factory=Timing)
    sample_every: float = 60.0  # seconds between points of the held/in-use series
    rollout_batch_share: float = 0.1  # aws-node maxUnavailable: 10%
    rollout_batch_seconds: float = 20.0  # one batch of aws-node pods replaced and ready
    seed: int = 1  # of each node's placement order (ipamd's random map walks)
    split_at: float | None = None  # also report the figures before and after this time (e.g. the first day)


@dataclass(frozen=True, slots=True)
class NodeOutcome:
    """One node's share of a run, for choosing settings per node or per instance type in hindsight."""

    instance_type: str
    idle_ip_seconds: float
    waited_pods: int
    pod_starts: int
    ec2_calls: int


@dataclass(slots=True)
class RunResult:
    metrics: StrategyMetrics
    series: list[tuple[float, int, int]]  # (t, IPs held, IPs in use), whole cluster
    per_node: dict[str, NodeOutcome] = field(default_factory=dict)


def limits_for(event: NodeAdd) -> InstanceLimits:
    if event.max_enis is not None and event.ipv4_per_eni is not None:
        return InstanceLimits(event.instance_type, event.max_enis, event.ipv4_per_eni)
    try:
        return FALLBACK_LIMITS[event.instance_type]
    except KeyError:
        raise ValueError(
            f"unknown instance type {event.instance_type!r} (node {event.node}); give max_enis and ipv4_per_eni"
        ) from None


_WAKE, _SAMPLE, _TICK, _RESTART, _SPLIT = 0, 1, 2, 3, 4


class Engine:
    def __init__(
        self,
        trace: Trace,
        strategy: Strategy,
        mode: IpMode,
        config: EngineConfig | None = None,
        limits: LimitsLookup = limits_for,
    ) -> None:
        self.trace = trace
        self.strategy = strategy
        self.mode = mode
        self.config = config or EngineConfig()
        self.limits_lookup = limits
        self.env = strategy.initial_env(mode)
        self.targets = parse_env(self.env)
        self.nodes: dict[str, NodePool] = {}
        self.node_meta: dict[str, tuple[NodeAdd, InstanceLimits]] = {}
        self.recent_starts: dict[str, deque[float]] = {}
        self.recent_stops: dict[str, deque[float]] = {}
        self.subnets: dict[str, Subnet] = {}
        self.heap: list[tuple[float, int, int, Any]] = []
        self.seq = 0
        self.scheduled: dict[str, float] = {}
        self.held = 0
        self.in_use = 0
        self.peak = 0
        self.series: list[tuple[float, int, int]] = []
        self.rollouts = 0
        self.rollout_until = -INF
        self.settings_history: list[tuple[float, str]] = [(0.0, settings_of(self.env))]
        self.node_counts: list[tuple[float, int]] = []
        # accounting of nodes that have left
        self.done_idle = 0.0
        self.done_waits: list[float] = []
        self.done_starts = 0
        self.done_rejected = 0
        self.done_calls: list[Mapping[str, int]] = []
        self.done_node_seconds = 0.0
        self.per_node: dict[str, NodeOutcome] = {}
        self.at_split: PeriodMetrics | None = None

    # ----- plumbing -----

    def _push(self, t: float, kind: int, payload: Any = None) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (t, self.seq, kind, payload))

    def _schedule(self, node: NodePool) -> None:
        w = node.wake_at
        if w < INF and self.scheduled.get(node.name) != w:
            self.scheduled[node.name] = w
            self._push(w, _WAKE, node.name)

    def _op(self, node: NodePool, fn: Callable[..., None], *args: Any) -> None:
        h0, a0 = node.held_ips, node.assigned
        fn(*args)
        self.held += node.held_ips - h0
        self.in_use += node.assigned - a0
        if self.held > self.peak:
            self.peak = self.held
        self._schedule(node)

    def _run_timers(self, until: float) -> None:
        heap = self.heap
        while heap and heap[0][0] <= until:
            t, _, kind, payload = heapq.heappop(heap)
            if kind == _WAKE:
                node = self.nodes.get(payload)
                if node is None or self.scheduled.get(payload) != t:
                    continue
                del self.scheduled[payload]
                self._op(node, node.advance, t)
            elif kind == _SAMPLE:
                self.series.append((t, self.held, self.in_use))
                self._push(t + self.config.sample_every, _SAMPLE)
            elif kind == _TICK:
                self._tick(t)
            elif kind == _RESTART:
                name, targets = payload
                node = self.nodes.get(name)
                if node is not None:
                    self._op(node, node.restart, t, targets)
            elif kind == _SPLIT:
                self.at_split = self._totals(t)

    # ----- trace events -----

    def _subnet(self, zone: str) -> Subnet:
        s = self.subnets.get(zone)
        if s is None:
            s = self.subnets[zone] = Subnet(zone, None)
        return s

    def _handle(self, e: Any) -> None:
        if isinstance(e, PodStart):
            node = self.nodes[e.node]
            self._op(node, node.pod_start, e.pod, e.t)
            starts = self.recent_starts[e.node]
            starts.append(e.t)
        elif isinstance(e, PodStop):
            node = self.nodes[e.node]
            if e.pod in node.pods:  # a pod rejected at start never held an IP
                self.recent_stops[e.node].append(e.t)
            self._op(node, node.pod_stop, e.pod, e.t)
        elif isinstance(e, NodeAdd):
            lim = self.limits_lookup(e)
            own = self.strategy.node_env(e, self.mode)
            targets = self.targets if own is None else parse_env(own)
            node = NodePool(
                e.node, lim, self.mode, targets, e.t, self._subnet(e.zone), self.config.timing, self.config.seed
            )
            self.nodes[e.node] = node
            self.node_meta[e.node] = (e, lim)
            self.recent_starts[e.node] = deque()
            self.recent_stops[e.node] = deque()
            self.node_counts.append((e.t, len(self.nodes)))
            self._schedule(node)
        elif isinstance(e, NodeRemove):
            node = self.nodes[e.node]
            self._op(node, node.finish, e.t)
            self.held -= node.held_ips
            self.in_use -= node.assigned
            self._retire(node, e.t)
            del self.nodes[e.node]
            del self.recent_starts[e.node], self.recent_stops[e.node]
            self.scheduled.pop(e.node, None)
            self.node_counts.append((e.t, len(self.nodes)))
        elif isinstance(e, SubnetFree):
            self._subnet(e.zone).set_free(e.free_ips)

    def _retire(self, node: NodePool, now: float) -> None:
        self.done_idle += node.idle_ip_seconds
        self.done_waits.extend(node.waits)
        self.done_starts += node.pod_starts
        self.done_rejected += node.rejected
        self.done_calls.append(node.ec2_calls)
        add, _ = self.node_meta[node.name]
        self.done_node_seconds += now - add.t
        waited = sum(1 for w in node.waits if w > 0)
        calls = sum(node.ec2_calls.values())
        before = self.per_node.get(node.name)  # a name that joins again adds to its first stay
        self.per_node[node.name] = NodeOutcome(
            add.instance_type,
            node.idle_ip_seconds + (before.idle_ip_seconds if before else 0.0),
            waited + (before.waited_pods if before else 0),
            node.pod_starts + (before.pod_starts if before else 0),
            calls + (before.ec2_calls if before else 0),
        )

    def _totals(self, now: float) -> PeriodMetrics:
        """Figures from the start until `now`, nodes still running included."""
        idle, waited, starts, calls, node_seconds = (
            self.done_idle,
            sum(1 for w in self.done_waits if w > 0),
            self.done_starts,
            sum(sum(c.values()) for c in self.done_calls),
            self.done_node_seconds,
        )
        for node in self.nodes.values():
            node._accrue(now)
            idle += node.idle_ip_seconds
            waited += sum(1 for w in node.waits if w > 0)
            starts += node.pod_starts
            calls += sum(node.ec2_calls.values())
            node_seconds += now - self.node_meta[node.name][0].t
        return PeriodMetrics(
            start=0.0,
            end=now,
            idle_ip_hours=idle / 3600,
            waited_pods=waited,
            pod_starts=starts,
            ec2_calls=calls,
            rollouts=self.rollouts,
            node_hours=node_seconds / 3600,
        )

    # ----- closed loop -----

    def _view(self, now: float, lookback: float) -> ClusterView:
        infos = []
        limits: dict[str, InstanceLimits] = {}
        for name, node in self.nodes.items():
            add, lim = self.node_meta[name]
            limits[lim.instance_type] = lim
            starts = self.recent_starts[name]
            stops = self.recent_stops[name]
            for times in (starts, stops):
                while times and times[0] < now - lookback:
                    times.popleft()
            infos.append(
                NodeInfo(
                    name=name,
                    instance_type=add.instance_type,
                    zone=add.zone,
                    subnet_ids=(subnet_id(add.zone),),
                    allocatable_pods=lim.max_pods(self.mode),
                    created_at=add.t,
                    ip_pods=len(node.pods),
                    pod_start_times=tuple(starts),
                    pod_stop_times=tuple(stops),
                )
            )
        history = tuple((t, c) for t, c in self.node_counts if t >= now - 900)
        snapshot = ClusterSnapshot(now=now, nodes=tuple(infos), node_count_history=history)
        subnets = {
            subnet_id(z): SubnetInfo(subnet_id(z), z, s.free) for z, s in self.subnets.items() if s.free is not None
        }
        return ClusterView(now, snapshot, dict(self.env), limits, subnets, now < self.rollout_until)

    def _tick(self, now: float) -> None:
        strategy = self.strategy
        assert isinstance(strategy, ClosedLoopStrategy)
        new_env = strategy.decide(self._view(now, strategy.lookback))
        if new_env is not None and dict(new_env) != self.env:
            self._rollout(now, dict(new_env))
        self._push(now + strategy.interval, _TICK)

    def _rollout(self, now: float, env: dict[str, str]) -> None:
        """The DaemonSet template changed: aws-node restarts node by node, a share of nodes at a time."""
        self.rollouts += 1
        self.env = env
        self.targets = parse_env(env)
        self.settings_history.append((now, settings_of(env)))
        names = sorted(self.nodes)
        batch = max(1, math.ceil(self.config.rollout_batch_share * len(names)))
        last = now
        for i, name in enumerate(names):
            at = now + (i // batch) * self.config.rollout_batch_seconds
            self._push(at, _RESTART, (name, self.targets))
            last = at
        self.rollout_until = last + self.config.timing.restart_downtime

    # ----- run -----

    def run(self) -> RunResult:
        end = self.trace.duration
        self._push(0.0, _SAMPLE)
        split = self.config.split_at
        if split is not None and 0 < split < end:
            self._push(split, _SPLIT)
        if isinstance(self.strategy, ClosedLoopStrategy):
            self._push(self.strategy.interval, _TICK)
        for e in self.trace.events:
            self._run_timers(e.t)
            self._handle(e)
        self._run_timers(end)
        finals = []
        for name, node in sorted(self.nodes.items()):
            node.finish(end)
            self._retire(node, end)
            add, _ = self.node_meta[name]
            finals.append(
                NodeFinal(
                    node=name,
                    instance_type=add.instance_type,
                    enis=node.eni_count,
                    ips_held=node.held_ips,
                    prefixes_held=node.cidr_count if self.mode is IpMode.PREFIX else 0,
                    pods=len(node.pods),
                )
            )
        tracked = [s.min_free for s in self.subnets.values() if s.min_free is not None]
        metrics = StrategyMetrics(
            name=self.strategy.name,
            settings=settings_of(self.env),
            idle_ip_hours=self.done_idle / 3600,
            peak_ips_held=self.peak,
            waited_pods=sum(1 for w in self.done_waits if w > 0),
            wait_seconds_total=sum(self.done_waits),
            wait_seconds_p99=p99_over_all(self.done_waits, self.done_starts),
            ec2_calls=merge_calls(self.done_calls),
            rollouts=self.rollouts,
            min_subnet_free_ips=min(tracked) if tracked else None,
            nodes=finals,
            pod_starts=self.done_starts,
            rejected_pods=self.done_rejected,
            settings_history=self.settings_history,
            node_hours=self.done_node_seconds / 3600,
        )
        if self.at_split is not None:
            metrics.periods = self.at_split.split(
                PeriodMetrics(
                    start=0.0,
                    end=end,
                    idle_ip_hours=metrics.idle_ip_hours,
                    waited_pods=metrics.waited_pods,
                    pod_starts=metrics.pod_starts,
                    ec2_calls=metrics.ec2_calls_total,
                    rollouts=metrics.rollouts,
                    node_hours=metrics.node_hours,
                )
            )
        return RunResult(metrics, self.series, self.per_node)


def simulate(
    trace: Trace,
    strategy: Strategy,
    mode: IpMode = IpMode.SECONDARY,
    config: EngineConfig | None = None,
    limits: LimitsLookup = limits_for,
) -> RunResult:
    return Engine(trace, strategy, mode, config, limits).run()
