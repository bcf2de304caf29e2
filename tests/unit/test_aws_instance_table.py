"""The embedded instance table against the VPC CNI's published max pods (misc/eni-max-pods.txt)."""

from __future__ import annotations

import pytest

from warmpool.aws.instance_table import FALLBACK_LIMITS, fallback_limits
from warmpool.ipamd.limits import IpMode

# "type max-pods" as published in eni-max-pods.txt, written out independently of the table's size ladders.
_PUBLISHED = """
t3.nano 4  t3.micro 4  t3.small 11  t3.medium 17  t3.large 35  t3.xlarge 58  t3.2xlarge 58
t3a.nano 4  t3a.micro 4  t3a.small 8  t3a.medium 17  t3a.large 35  t3a.xlarge 58  t3a.2xlarge 58
m5.large 29  m5.xlarge 58  m5.2xlarge 58  m5.4xlarge 234  m5.8xlarge 234  m5.12xlarge 234
m5.16xlarge 737  m5.24xlarge 737  m5.metal 737
m5a.large 29  m5a.xlarge 58  m5a.2xlarge 58  m5a.4xlarge 234  m5a.8xlarge 234  m5a.12xlarge 234
m5a.16xlarge 737  m5a.24xlarge 737
r5.large 29  r5.xlarge 58  r5.2xlarge 58  r5.4xlarge 234  r5.8xlarge 234  r5.12xlarge 234
r5.16xlarge 737  r5.24xlarge 737  r5.metal 737
c5.large 29  c5.xlarge 58  c5.2xlarge 58  c5.4xlarge 234  c5.9xlarge 234  c5.12xlarge 234
c5.18xlarge 737  c5.24xlarge 737  c5.metal 737
m6i.large 29  m6i.xlarge 58  m6i.2xlarge 58  m6i.4xlarge 234  m6i.8xlarge 234  m6i.12xlarge 234
m6i.16xlarge 737  m6i.24xlarge 737  m6i.32xlarge 737  m6i.metal 737
c6i.large 29  c6i.xlarge 58  c6i.2xlarge 58  c6i.4xlarge 234  c6i.8xlarge 234  c6i.12xlarge 234
c6i.16xlarge 737  c6i.24xlarge 737  c6i.32xlarge 737  c6i.metal 737
r6i.large 29  r6i.xlarge 58  r6i.2xlarge 58  r6i.4xlarge 234  r6i.8xlarge 234  r6i.12xlarge 234
r6i.16xlarge 737  r6i.24xlarge 737  r6i.32xlarge 737  r6i.metal 737
m7i.large 29  m7i.xlarge 58  m7i.2xlarge 58  m7i.4xlarge 234  m7i.8xlarge 234  m7i.12xlarge 234
m7i.16xlarge 737  m7i.24xlarge 737  m7i.48xlarge 737  m7i.metal-24xl 737  m7i.metal-48xl 737
c7i.large 29  c7i.xlarge 58  c7i.2xlarge 58  c7i.4xlarge 234  c7i.8xlarge 234  c7i.12xlarge 234
c7i.16xlarge 737  c7i.24xlarge 737  c7i.48xlarge 737  c7i.metal-24xl 737  c7i.metal-48xl 737
m6g.medium 8  m6g.large 29  m6g.xlarge 58  m6g.2xlarge 58  m6g.4xlarge 234  m6g.8xlarge 234
m6g.12xlarge 234  m6g.16xlarge 737  m6g.metal 737
c6g.medium 8  c6g.large 29  c6g.xlarge 58  c6g.2xlarge 58  c6g.4xlarge 234  c6g.8xlarge 234
c6g.12xlarge 234  c6g.16xlarge 737  c6g.metal 737
m7g.medium 8  m7g.large 29  m7g.xlarge 58  m7g.2xlarge 58  m7g.4xlarge 234  m7g.8xlarge 234
m7g.12xlarge 234  m7g.16xlarge 737  m7g.metal 737
p3dn.24xlarge 737
"""
_WORDS = _PUBLISHED.split()
PUBLISHED_MAX_PODS = {name: int(pods) for name, pods in zip(_WORDS[::2], _WORDS[1::2], strict=True)}


def test_every_entry_has_a_published_max_pods() -> None:
    assert set(FALLBACK_LIMITS) == set(PUBLISHED_MAX_PODS)


@pytest.mark.parametrize(("instance_type", "published"), sorted(PUBLISHED_MAX_PODS.items()))
def test_max_pods_formula_matches_published(instance_type: str, published: int) -> None:
    limits = FALLBACK_LIMITS[instance_type]
    assert limits.max_enis * (limits.ipv4_per_eni - 1) + 2 == published
    assert limits.max_pods(IpMode.SECONDARY) == published


@pytest.mark.parametrize(
    ("instance_type", "enis", "ips"),
    [
        ("t3.small", 3, 4),
        ("t3.medium", 3, 6),
        ("m5.large", 3, 10),
        ("m5.xlarge", 4, 15),
        ("m5.2xlarge", 4, 15),
        ("m5.4xlarge", 8, 30),
        ("c5.9xlarge", 8, 30),
        ("m5.24xlarge", 15, 50),
        ("p3dn.24xlarge", 15, 50),
    ],
)
def test_reference_examples_exactly(instance_type: str, enis: int, ips: int) -> None:
    limits = fallback_limits(instance_type)
    assert limits is not None
    assert (limits.max_enis, limits.ipv4_per_eni) == (enis, ips)


def test_entries_are_nitro_with_vcpus() -> None:
    for name, limits in FALLBACK_LIMITS.items():
        assert limits.instance_type == name
        assert limits.hypervisor == "nitro"
        assert limits.vcpus > 0


def test_vcpus_drive_the_prefix_mode_cap() -> None:
    # <= 30 vCPUs caps prefix-mode max pods at 110, more at 250 (EKS guidance).
    assert FALLBACK_LIMITS["m5.large"].max_pods(IpMode.PREFIX) == 110
    assert FALLBACK_LIMITS["m5.8xlarge"].vcpus == 32
    assert FALLBACK_LIMITS["m5.8xlarge"].max_pods(IpMode.PREFIX) == 250
    assert FALLBACK_LIMITS["c5.9xlarge"].vcpus == 36


def test_unknown_type_is_none() -> None:
    assert fallback_limits("x99.huge") is None
    assert fallback_limits("") is None
