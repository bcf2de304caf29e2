"""Per-instance-type network limits and the arithmetic ipamd derives from them."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

IPS_PER_PREFIX = 16  # an IPv4 /28 prefix
# ipamd counts two host-network pods (aws-node, kube-proxy) on top of the pod IPs (misc/eni-max-pods.txt).
HOST_NETWORK_PODS = 2


class IpMode(StrEnum):
    """How ipamd fills an ENI's slots: one IP each, or one /28 prefix each."""

    SECONDARY = "secondary"
    PREFIX = "prefix"


@dataclass(frozen=True, slots=True)
class InstanceLimits:
    """What EC2 DescribeInstanceTypes says about one instance type's networking."""

    instance_type: str
    max_enis: int
    ipv4_per_eni: int
    hypervisor: str = "nitro"  # prefix delegation needs Nitro
    vcpus: int = 0

    def __post_init__(self) -> None:
        if self.max_enis < 1 or self.ipv4_per_eni < 2:
            raise ValueError(f"{self.instance_type}: an instance needs at least 1 ENI with 2 IPv4 addresses")

    @property
    def slots_per_eni(self) -> int:
        """Usable slots per ENI: its own primary address never goes to a pod (GetENIIPv4Limit)."""
        return self.ipv4_per_eni - 1

    def ips_per_eni(self, mode: IpMode) -> int:
        return self.slots_per_eni * (IPS_PER_PREFIX if mode is IpMode.PREFIX else 1)

    def max_pods(self, mode: IpMode, cap_prefix_pods: bool = True) -> int:
        """Max pods kubelet is told. In prefix mode EKS caps it at 110 (<= 30 vCPUs) or 250."""
        pods = self.max_enis * self.ips_per_eni(mode) + HOST_NETWORK_PODS
        if mode is IpMode.PREFIX and cap_prefix_pods:
            cap = 110 if 0 < self.vcpus <= 30 else 250
            pods = min(pods, cap)
        return pods

    def max_pod_ips(self, mode: IpMode) -> int:
        """The IPs all ENIs of the node hold in this mode."""
        return self.max_enis * self.ips_per_eni(mode)

    def pod_ip_cap(self, mode: IpMode) -> int:
        """The most pod IPs a node of this type can use: all its ENIs' IPs, and no more than max pods minus the
        host-network pods (ipamd stops growing once total IPs reach max pods)."""
        return min(self.max_pod_ips(mode), self.max_pods(mode) - HOST_NETWORK_PODS)

    def with_max_eni(self, max_eni: int | None) -> InstanceLimits:
        """The limits ipamd uses under MAX_ENI (`getMaxENI`): it can lower the ENIs, never raise them."""
        if max_eni is None or not 1 <= max_eni < self.max_enis:
            return self
        return replace(self, max_enis=max_eni)

    @property
    def supports_prefixes(self) -> bool:
        """`IsPrefixDelegationSupported`: Nitro (bare metal is normalized to Nitro when limits are read)."""
        return self.hypervisor == "nitro"

    def runs_mode(self, requested: IpMode) -> IpMode:
        """The mode ipamd runs on a node of this type: asked for prefixes on a non-Nitro instance, it falls back
        to secondary IPs (`isConfigValid`)."""
        return requested if requested is IpMode.SECONDARY or self.supports_prefixes else IpMode.SECONDARY
