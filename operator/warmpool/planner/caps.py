"""Stage "limits" (its first half): the most each variable may be, given the instance types in scope.

One value applies to every node, so the smallest type in scope bounds each variable; each type counts in the
mode ipamd runs on it (secondary IPs on non-Nitro types, whatever ENABLE_PREFIX_DELEGATION asks).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from warmpool.api.v1alpha1 import Variable
from warmpool.ipamd.limits import InstanceLimits, IpMode
from warmpool.ipamd.version import CniVersion, eni_request_uncapped


@dataclass(frozen=True, slots=True)
class Caps:
    smallest: InstanceLimits  # the type with the fewest IPs per ENI (in the mode ipamd runs on it)
    eni_ips: int  # IPs one ENI of the smallest type holds
    pod_ips: int  # pod IPs the smallest type can use (all ENIs, within max pods)
    by_variable: dict[Variable, tuple[int, str]]  # the cap of each variable, and why

    def cap(self, v: Variable) -> int:
        return self.by_variable[v][0]

    def why(self, v: Variable) -> str:
        return self.by_variable[v][1]

    @property
    def warm_ip(self) -> int:
        return self.cap(Variable.WARM_IP_TARGET)

    @property
    def minimum_ip(self) -> int:
        return self.cap(Variable.MINIMUM_IP_TARGET)

    @property
    def one_eni_binds(self) -> bool:
        """The #1872 cap, not the pod IPs, bounds WARM_IP_TARGET: whole ENIs could hold more."""
        return self.warm_ip < self.pod_ips


def instance_caps(known: Sequence[InstanceLimits], mode: IpMode, cni_version: CniVersion | None) -> Caps:
    """`known`: the instance types in scope with known limits (at least one). Before the #1872 fix (or with
    the version unknown) a new ENI is asked for max(WARM_IP_TARGET - available, MINIMUM_IP_TARGET - total)
    addresses once every ENI is full: WARM_IP_TARGET within one ENI's IPs and MINIMUM_IP_TARGET within two
    keep that request within what the ENI holds (see ipamd/version.py)."""
    smallest = min(
        known,
        key=lambda lim: (lim.ips_per_eni(lim.runs_mode(mode)), lim.pod_ip_cap(lim.runs_mode(mode)), lim.instance_type),
    )
    eni_ips = smallest.ips_per_eni(smallest.runs_mode(mode))
    pod_ips = min(lim.pod_ip_cap(lim.runs_mode(mode)) for lim in known)
    prefix_types = [lim for lim in known if lim.runs_mode(mode) is IpMode.PREFIX] or [smallest]
    uncapped = eni_request_uncapped(cni_version)
    warm_cap = min(eni_ips, pod_ips) if uncapped else pod_ips
    minimum_cap = min(2 * eni_ips, pod_ips) if uncapped else pod_ips
    version = f"VPC CNI {cni_version}" if cni_version is not None else "a VPC CNI of unknown version"
    pods_why = "the pod IPs the smallest instance type in scope can hold"
    return Caps(
        smallest=smallest,
        eni_ips=eni_ips,
        pod_ips=pod_ips,
        by_variable={
            Variable.WARM_IP_TARGET: (
                warm_cap,
                f"one ENI's worth of IPs on {smallest.instance_type} (VPC CNI issue #1872, {version})"
                if warm_cap < pod_ips
                else pods_why,
            ),
            Variable.MINIMUM_IP_TARGET: (
                minimum_cap,
                f"two ENIs' worth of IPs on {smallest.instance_type} (VPC CNI issue #1872, {version})"
                if minimum_cap < pod_ips
                else pods_why,
            ),
            Variable.WARM_ENI_TARGET: (
                min(lim.max_enis for lim in known),
                "the ENIs of the smallest instance type in scope",
            ),
            Variable.WARM_PREFIX_TARGET: (
                min(lim.slots_per_eni for lim in prefix_types),
                "one ENI's worth of prefixes on the smallest instance type in scope",
            ),
        },
    )
