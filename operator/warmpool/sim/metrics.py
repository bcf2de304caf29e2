"""What one strategy did over a trace: the figures the report compares."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class NodeFinal:
    node: str
    instance_type: str
    enis: int
    ips_held: int
    prefixes_held: int
    pods: int

    def to_json(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "instance_type": self.instance_type,
            "enis": self.enis,
            "ips_held": self.ips_held,
            "prefixes_held": self.prefixes_held,
            "pods": self.pods,
        }


@dataclass(frozen=True, slots=True)
class PeriodMetrics:
    """A strategy's figures over part of a run (a multi-day trace's first day, or the days after it)."""

    start: float
    end: float
    idle_ip_hours: float
    waited_pods: int
    pod_starts: int
    ec2_calls: int
    rollouts: int
    node_hours: float

    def split(self, whole: PeriodMetrics) -> dict[str, PeriodMetrics]:
        """This period (from the start) and what `whole` adds after it."""
        rest = PeriodMetrics(
            start=self.end,
            end=whole.end,
            idle_ip_hours=whole.idle_ip_hours - self.idle_ip_hours,
            waited_pods=whole.waited_pods - self.waited_pods,
            pod_starts=whole.pod_starts - self.pod_starts,
            ec2_calls=whole.ec2_calls - self.ec2_calls,
            rollouts=whole.rollouts - self.rollouts,
            node_hours=whole.node_hours - self.node_hours,
        )
        return {"first": self, "rest": rest}

    @property
    def ec2_calls_per_node_hour(self) -> float:
        return self.ec2_calls / self.node_hours if self.node_hours > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "start_s": self.start,
            "end_s": self.end,
            "idle_ip_hours": round(self.idle_ip_hours, 3),
            "waited_pods": self.waited_pods,
            "pod_starts": self.pod_starts,
            "ec2_calls": self.ec2_calls,
            "ec2_calls_per_node_hour": round(self.ec2_calls_per_node_hour, 3),
            "rollouts": self.rollouts,
            "node_hours": round(self.node_hours, 3),
        }


@dataclass(slots=True)
class StrategyMetrics:
    name: str
    settings: str  # the targets in effect at the end ("WARM_IP_TARGET=3,MINIMUM_IP_TARGET=10")
    idle_ip_hours: float  # integral of (IPs held - IPs assigned to pods), all nodes
    peak_ips_held: int  # most pod IPs held at once, whole cluster
    waited_pods: int  # pods that started without an IP and waited for one
    wait_seconds_total: float
    wait_seconds_p99: float  # over all pod starts (nearest rank), so 0 when fewer than 1% waited
    ec2_calls: dict[str, int]
    rollouts: int
    min_subnet_free_ips: int | None  # lowest free IPs seen in any tracked subnet; None when none tracked
    nodes: list[NodeFinal]
    pod_starts: int = 0
    rejected_pods: int = 0  # beyond a node's max pods: would not have been scheduled there
    settings_history: list[tuple[float, str]] = field(default_factory=list)
    node_hours: float = 0.0  # integral of the node count
    periods: dict[str, PeriodMetrics] = field(default_factory=dict)  # "first" (day) and "rest", multi-day runs

    @property
    def ec2_calls_total(self) -> int:
        return sum(self.ec2_calls.values())

    @property
    def ec2_calls_per_node_hour(self) -> float:
        return self.ec2_calls_total / self.node_hours if self.node_hours > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "settings": self.settings,
            "idle_ip_hours": round(self.idle_ip_hours, 3),
            "peak_ips_held": self.peak_ips_held,
            "waited_pods": self.waited_pods,
            "wait_seconds_total": round(self.wait_seconds_total, 3),
            "wait_seconds_p99": round(self.wait_seconds_p99, 3),
            "ec2_calls": dict(sorted(self.ec2_calls.items())),
            "ec2_calls_total": self.ec2_calls_total,
            "ec2_calls_per_node_hour": round(self.ec2_calls_per_node_hour, 3),
            "node_hours": round(self.node_hours, 3),
            "rollouts": self.rollouts,
            "min_subnet_free_ips": self.min_subnet_free_ips,
            "pod_starts": self.pod_starts,
            "rejected_pods": self.rejected_pods,
            "settings_history": [{"t": t, "settings": s} for t, s in self.settings_history],
            **({"periods": {k: p.to_json() for k, p in self.periods.items()}} if self.periods else {}),
            "nodes": [n.to_json() for n in self.nodes],
        }


def p99_over_all(waits: Iterable[float], pod_starts: int) -> float:
    """Nearest-rank 99th percentile of the waits of all pod starts, those that did not wait counting as 0."""
    positive = sorted(w for w in waits if w > 0)
    if pod_starts <= 0 or not positive:
        return 0.0
    n = max(pod_starts, len(positive))
    rank = math.ceil(0.99 * n)  # 1-based
    zeros = n - len(positive)
    return 0.0 if rank <= zeros else positive[rank - zeros - 1]


def merge_calls(calls: Iterable[Mapping[str, int]]) -> dict[str, int]:
    total: Counter[str] = Counter()
    for c in calls:
        total.update(c)
    return dict(total)
