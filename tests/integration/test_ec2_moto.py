"""Ec2Client against a moto EC2 server on loopback, through real boto3 and HTTP."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import TYPE_CHECKING

import moto
import pytest

from warmpool.aws import FALLBACK_LIMITS, Ec2Client, Ec2Unavailable, instance_id_from_provider_id
from warmpool.ipamd.limits import IpMode

if TYPE_CHECKING:
    from tests.fixtures.moto import MotoEc2

pytestmark = pytest.mark.integration

TYPES = [
    "t3.small",
    "t3.medium",
    "m5.large",
    "m5.xlarge",
    "m5.4xlarge",
    "c5.9xlarge",
    "m5.24xlarge",
    "p3dn.24xlarge",
    "m6g.medium",
    "c7i.metal-48xl",
    "t3a.small",
]


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make_client(moto_ec2: MotoEc2, clock: Clock, attempts: int = 1) -> Ec2Client:
    # One attempt: the down-endpoint tests must not spend time in botocore's retry backoff.
    settings = moto_ec2.settings(ec2_cache_ttl_seconds=60, ec2_max_attempts=attempts)
    return Ec2Client(settings, now=clock)


def test_instance_limits_match_embedded_table(moto_ec2: MotoEc2, clock: Clock) -> None:
    ec2 = make_client(moto_ec2, clock)
    answer = ec2.instance_limits(TYPES)
    assert not answer.degraded
    assert set(answer) == set(TYPES)
    for name in TYPES:
        assert answer[name] == FALLBACK_LIMITS[name], name
    # One batch, one page: 11 types asked in one DescribeInstanceTypes call over one HTTP request.
    assert ec2.stats.calls == {"DescribeInstanceTypes": 1}
    assert ec2.stats.requests == 1


def test_whole_table_agrees_with_motos_copy_of_ec2_data() -> None:
    # moto bundles DescribeInstanceTypes output captured from AWS; compare every table entry with it.
    data_file = Path(moto.__file__).parent / "ec2" / "resources" / "instance_types.json.gz"
    data = json.loads(gzip.decompress(data_file.read_bytes()))
    for name, limits in FALLBACK_LIMITS.items():
        net = data[name]["NetworkInfo"]
        got = (
            net["MaximumNetworkInterfaces"],
            net["Ipv4AddressesPerInterface"],
            data[name]["VCpuInfo"]["DefaultVCpus"],
        )
        assert got == (limits.max_enis, limits.ipv4_per_eni, limits.vcpus), name


def test_unknown_type_is_missing_without_failing_the_batch(moto_ec2: MotoEc2, clock: Clock) -> None:
    answer = make_client(moto_ec2, clock).instance_limits(["m5.large", "zz9.plural"])
    assert set(answer) == {"m5.large"}
    assert answer.missing == {"zz9.plural"}
    assert answer.error is None


def test_subnet_free_ips_drop_as_enis_and_instances_appear(moto_ec2: MotoEc2, clock: Clock) -> None:
    net = moto_ec2.create_network(subnets={"10.1.0.0/24": "us-east-1a", "10.1.16.0/20": "us-east-1b"})
    small, big = net.subnet_ids
    ec2 = make_client(moto_ec2, clock)
    answer = ec2.subnets(net.subnet_ids)
    assert answer[small].free_ips == 256 - 5  # AWS reserves 5 addresses per subnet
    assert answer[big].free_ips == 4096 - 5
    assert (answer[small].zone, answer[small].cidr) == ("us-east-1a", "10.1.0.0/24")
    assert answer[big].zone == "us-east-1b"

    moto_ec2.run_instances("m5.large", small, count=2)  # two primary ENIs, one IP each
    moto_ec2.create_eni(small, secondary_ips=9)  # an ipamd-style ENI: primary + 9 pod IPs
    clock.t += 60  # past the TTL
    assert ec2.subnets([small])[small].free_ips == 251 - 2 - 10
    assert ec2.stats.calls == {"DescribeSubnets": 2}


def test_primary_subnet_of_instances_from_provider_ids(moto_ec2: MotoEc2, clock: Clock) -> None:
    net = moto_ec2.create_network(subnets={"10.2.0.0/24": "us-east-1a", "10.2.1.0/24": "us-east-1c"})
    in_a = moto_ec2.run_instances("t3.medium", net.subnet_ids[0])
    in_c = moto_ec2.run_instances("m5.large", net.subnet_ids[1], count=2)
    provider_ids = [f"aws:///us-east-1a/{in_a[0]}"] + [f"aws:///us-east-1c/{i}" for i in in_c]
    ids = [i for i in map(instance_id_from_provider_id, provider_ids) if i]
    answer = make_client(moto_ec2, clock).subnets_for_instances([*ids, "i-0000000000000dead"])
    assert dict(answer) == {
        in_a[0]: net.subnet_ids[0],
        in_c[0]: net.subnet_ids[1],
        in_c[1]: net.subnet_ids[1],
    }
    assert answer.missing == {"i-0000000000000dead"}


def test_cache_ttl_with_injected_clock(moto_ec2: MotoEc2, clock: Clock) -> None:
    net = moto_ec2.create_network(subnets={"10.3.0.0/24": "us-east-1a"})
    ec2 = make_client(moto_ec2, clock)
    ec2.subnets(net.subnet_ids)
    ec2.instance_limits(["m5.large"])
    sent = ec2.stats.requests
    clock.t += 59
    ec2.subnets(net.subnet_ids)
    ec2.instance_limits(["m5.large"])
    assert ec2.stats.requests == sent  # nothing reached the server
    assert ec2.stats.cache_hits == 2
    clock.t += 1
    ec2.subnets(net.subnet_ids)
    assert ec2.stats.requests == sent + 1


def test_endpoint_down_then_back(moto_ec2: MotoEc2, clock: Clock) -> None:
    net = moto_ec2.create_network(subnets={"10.4.0.0/24": "us-east-1a"})
    subnet = net.subnet_ids[0]
    ec2 = make_client(moto_ec2, clock)
    cached = ec2.subnets([subnet])
    ec2.instance_limits(["c5.9xlarge"])
    clock.t += 120  # everything cached is now stale

    with moto_ec2.down():
        # Cached subnet: served stale, flagged.
        stale = ec2.subnets([subnet])
        assert stale == cached
        assert stale.stale == {subnet}
        assert stale.error is not None
        assert "cannot reach the EC2 endpoint" in stale.error
        # Never-seen subnet: nothing to serve.
        with pytest.raises(Ec2Unavailable) as info:
            ec2.subnets(["subnet-neverseen"])
        assert info.value.kind == "unreachable"
        # Limits: stale EC2 answer for the cached type, embedded table for the others.
        limits = ec2.instance_limits(["c5.9xlarge", "m5.24xlarge"])
        assert limits.stale == {"c5.9xlarge"}
        assert limits.fallback == {"m5.24xlarge"}
        assert limits["m5.24xlarge"].max_pods(IpMode.SECONDARY) == 737
        assert ec2.stats.errors == {"unreachable": 3}

    moto_ec2.create_eni(subnet, secondary_ips=4)
    recovered = ec2.subnets([subnet])
    assert not recovered.degraded
    assert recovered[subnet].free_ips == cached[subnet].free_ips - 5
    assert ec2.instance_limits(["m5.24xlarge"]).fallback == frozenset()


def test_missing_credentials_become_ec2_unavailable(
    moto_ec2: MotoEc2, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    ec2 = make_client(moto_ec2, clock)
    with pytest.raises(Ec2Unavailable) as info:
        ec2.subnets(["subnet-x"])
    assert info.value.kind == "credentials"
    assert "credentials" in info.value.cause
    assert ec2.stats.requests == 0


def test_cluster_name_discovery_reads_instance_tags_and_says_what_it_tried(moto_ec2: MotoEc2) -> None:
    from warmpool.aws.cluster_name import discover

    network = moto_ec2.create_network()
    plain, tagged = moto_ec2.run_instances("m5.large", network.subnet_ids[0], 2)
    ec2 = Ec2Client(moto_ec2.settings())
    missing = discover({}, [({}, plain)], ec2)
    assert missing.name is None
    tags = "eks:cluster-name, aws:eks:cluster-name, alpha.eksctl.io/cluster-name or kubernetes.io/cluster/NAME"
    assert f"tags {tags} of instances {plain}" in missing.source
    moto_ec2.client().create_tags(Resources=[tagged], Tags=[{"Key": "kubernetes.io/cluster/prod-1", "Value": "owned"}])
    found = discover({}, [({}, plain), ({}, tagged)], ec2)
    assert (found.name, found.source) == ("prod-1", f"EC2 tags of instance {tagged}")
    assert ec2.stats.calls["DescribeInstances"] == 2  # one call per discovery, for all the instances at once
