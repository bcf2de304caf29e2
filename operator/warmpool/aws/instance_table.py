"""Embedded network limits of common EKS instance types, for when EC2 cannot be asked.

Numbers are EC2 DescribeInstanceTypes' `NetworkInfo.MaximumNetworkInterfaces` x `Ipv4AddressesPerInterface`
and `VCpuInfo.DefaultVCpus`; each one agrees with the VPC CNI's misc/eni-max-pods.txt through
`max pods = ENIs * (IPv4 per ENI - 1) + 2` (checked in tests/unit/test_aws_instance_table.py).
The live answer from EC2 always wins; this table only keeps planning going during an EC2 outage.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from warmpool.ipamd.limits import InstanceLimits

# size -> (ENIs, IPv4 per ENI, vCPUs). Most Nitro families share one ladder from large up to 24xlarge.
_Ladder = dict[str, tuple[int, int, int]]

_NITRO_2XL: _Ladder = {"large": (3, 10, 2), "xlarge": (4, 15, 4), "2xlarge": (4, 15, 8)}
_NITRO_24XL: _Ladder = {
    **_NITRO_2XL,
    "4xlarge": (8, 30, 16),
    "8xlarge": (8, 30, 32),
    "12xlarge": (8, 30, 48),
    "16xlarge": (15, 50, 64),
    "24xlarge": (15, 50, 96),
}
_GEN6_INTEL: _Ladder = {**_NITRO_24XL, "32xlarge": (15, 50, 128), "metal": (15, 50, 128)}
_GEN7_INTEL: _Ladder = {
    **_NITRO_24XL,
    "48xlarge": (15, 50, 192),
    "metal-24xl": (15, 50, 96),
    "metal-48xl": (15, 50, 192),
}
_GRAVITON: _Ladder = {
    "medium": (2, 4, 1),
    **_NITRO_2XL,
    "4xlarge": (8, 30, 16),
    "8xlarge": (8, 30, 32),
    "12xlarge": (8, 30, 48),
    "16xlarge": (15, 50, 64),
    "metal": (15, 50, 64),
}
_BURSTABLE: _Ladder = {
    "nano": (2, 2, 2),
    "micro": (2, 2, 2),
    "small": (3, 4, 2),
    "medium": (3, 6, 2),
    "large": (3, 12, 2),
    "xlarge": (4, 15, 4),
    "2xlarge": (4, 15, 8),
}
_C5: _Ladder = {
    **_NITRO_2XL,
    "4xlarge": (8, 30, 16),
    "9xlarge": (8, 30, 36),
    "12xlarge": (8, 30, 48),
    "18xlarge": (15, 50, 72),
    "24xlarge": (15, 50, 96),
    "metal": (15, 50, 96),
}

_FAMILIES: dict[str, _Ladder] = {
    "t3": _BURSTABLE,
    "t3a": {**_BURSTABLE, "small": (2, 4, 2)},  # unlike t3.small: 2 ENIs, max pods 8
    "m5": {**_NITRO_24XL, "metal": (15, 50, 96)},
    "m5a": _NITRO_24XL,
    "r5": {**_NITRO_24XL, "metal": (15, 50, 96)},
    "c5": _C5,
    "m6i": _GEN6_INTEL,
    "c6i": _GEN6_INTEL,
    "r6i": _GEN6_INTEL,
    "m7i": _GEN7_INTEL,
    "c7i": _GEN7_INTEL,
    "m6g": _GRAVITON,
    "c6g": _GRAVITON,
    "m7g": _GRAVITON,
    "p3dn": {"24xlarge": (15, 50, 96)},
}


def _build() -> dict[str, InstanceLimits]:
    table: dict[str, InstanceLimits] = {}
    for family, ladder in _FAMILIES.items():
        for size, (enis, ips, vcpus) in ladder.items():
            name = f"{family}.{size}"
            # EC2 reports no hypervisor for bare metal (BareMetal=true); those hosts are built on the Nitro
            # System and take prefix delegation, so the table calls them "nitro" as ec2.py does.
            table[name] = InstanceLimits(name, enis, ips, hypervisor="nitro", vcpus=vcpus)
    return table


FALLBACK_LIMITS: Mapping[str, InstanceLimits] = MappingProxyType(_build())


def fallback_limits(instance_type: str) -> InstanceLimits | None:
    """The embedded limits of `instance_type`, or None when the table does not know it."""
    return FALLBACK_LIMITS.get(instance_type)
