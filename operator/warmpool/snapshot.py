"""What the planner sees of the cluster: plain, immutable data, built by the observe layer (kopf indexes) or by
the simulator, and never holding Kubernetes objects."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class SubnetInfo:
    """One VPC subnet pods draw IPs from (EC2 DescribeSubnets)."""

    subnet_id: str
    zone: str
    free_ips: int  # AvailableIpAddressCount
    cidr: str = ""


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """One node as far as warm pool sizing cares.

    `pod_start_times` are the times (seconds, same clock as the planner's `now`) at which IP-consuming pods were
    bound to this node recently; the observe layer keeps only those inside the look-back it needs.
    `pod_stop_times` are, on the same clock and look-back, the times at which IP-consuming pods on this node
    stopped (deleted, completed or failed: whenever ipamd got the IP back). A released IP cools down for
    IP_COOLDOWN_PERIOD before reuse while still counting as available, so the planner needs the stops to size
    the warm pool under churn. Empty when the observe layer does not track them: the planner then sizes for
    starts alone.
    """

    name: str
    instance_type: str
    zone: str = ""
    capacity_type: str = ""  # ON_DEMAND / SPOT
    subnet_ids: tuple[str, ...] = ()  # where pod IPs come from: primary ENI subnet or ENIConfig subnet
    allocatable_pods: int = 0
    ready: bool = True
    schedulable: bool = True
    created_at: float = 0.0
    ip_pods: int = 0  # pods currently holding a VPC IP from ipamd
    pod_start_times: tuple[float, ...] = ()
    pod_stop_times: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True)
class ClusterSnapshot:
    """The selected nodes at one instant, plus cluster-wide signals of a scaling event."""

    now: float
    nodes: tuple[NodeInfo, ...] = ()
    pending_pods: int = 0  # pods not yet bound (scheduler backlog): a scale-out signal
    node_count_history: tuple[tuple[float, int], ...] = ()  # (time, node count), oldest first
    extra: Mapping[str, float] = field(default_factory=dict)

    @property
    def ip_pods(self) -> int:
        return sum(n.ip_pods for n in self.nodes)
