"""Ec2Client's cache, fallback and error policy against a scripted fake of the boto3 client (no network)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from warmpool.aws import Ec2Client, Ec2Unavailable, instance_id_from_provider_id
from warmpool.aws.cache import TtlCache
from warmpool.aws.ec2 import build_boto_client, limits_from_description
from warmpool.aws.errors import classify
from warmpool.settings import Settings


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _type(name: str, enis: int, ips: int, **extra: Any) -> dict[str, Any]:
    net = {"MaximumNetworkInterfaces": enis, "Ipv4AddressesPerInterface": ips}
    return {
        "InstanceType": name,
        "Hypervisor": "nitro",
        "VCpuInfo": {"DefaultVCpus": 2},
        "NetworkInfo": net,
        **extra,
    }


class FakeEc2:
    """Answers from dicts; `fail` makes every call raise; `page_size` forces NextToken pagination."""

    def __init__(self) -> None:
        self.types = {"m5.large": _type("m5.large", 3, 10), "x1.fake": _type("x1.fake", 2, 5)}
        self.subnets = {
            "subnet-a": {
                "SubnetId": "subnet-a",
                "AvailabilityZone": "z-a",
                "AvailableIpAddressCount": 100,
                "CidrBlock": "10.0.0.0/24",
            },
        }
        self.instances: dict[str, dict[str, Any]] = {}
        self.fail: Exception | None = None
        self.page_size = 1000
        self.calls: list[tuple[str, list[str], str | None]] = []

    def _page(self, op: str, key: str, table: dict[str, Any], kw: dict[str, Any]) -> dict[str, Any]:
        values = kw["Filters"][0]["Values"]
        self.calls.append((op, values, kw.get("NextToken")))
        if self.fail is not None:
            raise self.fail
        hits = [table[v] for v in values if v in table]
        start = int(kw.get("NextToken") or 0)
        page: dict[str, Any] = {key: hits[start : start + self.page_size]}
        if start + self.page_size < len(hits):
            page["NextToken"] = str(start + self.page_size)
        return page

    def describe_instance_types(self, **kw: Any) -> dict[str, Any]:
        return self._page("types", "InstanceTypes", self.types, kw)

    def describe_subnets(self, **kw: Any) -> dict[str, Any]:
        return self._page("subnets", "Subnets", self.subnets, kw)

    def describe_instances(self, **kw: Any) -> dict[str, Any]:
        page = self._page("instances", "Instances", self.instances, kw)
        return {"Reservations": [{"Instances": page.pop("Instances")}], **page}


@pytest.fixture
def fake() -> FakeEc2:
    return FakeEc2()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ec2(fake: FakeEc2, clock: Clock) -> Ec2Client:
    return Ec2Client(Settings(ec2_cache_ttl_seconds=60), now=clock, client=fake)


DOWN = EndpointConnectionError(endpoint_url="http://127.0.0.1:1")


def test_second_lookup_within_ttl_is_served_from_cache(ec2: Ec2Client, fake: FakeEc2, clock: Clock) -> None:
    first = ec2.subnets(["subnet-a"])
    clock.t += 59
    second = ec2.subnets(["subnet-a"])
    assert first == second
    assert second["subnet-a"].free_ips == 100
    assert len(fake.calls) == 1
    assert ec2.stats.calls == {"DescribeSubnets": 1}
    assert ec2.stats.cache_hits == 1


def test_lookup_after_ttl_asks_again_and_sees_new_value(ec2: Ec2Client, fake: FakeEc2, clock: Clock) -> None:
    ec2.subnets(["subnet-a"])
    fake.subnets["subnet-a"]["AvailableIpAddressCount"] = 40
    clock.t += 60
    assert ec2.subnets(["subnet-a"])["subnet-a"].free_ips == 40
    assert len(fake.calls) == 2


def test_only_uncached_keys_are_asked(ec2: Ec2Client, fake: FakeEc2) -> None:
    fake.subnets["subnet-b"] = {
        "SubnetId": "subnet-b",
        "AvailabilityZone": "z-b",
        "AvailableIpAddressCount": 7,
    }
    ec2.subnets(["subnet-a"])
    both = ec2.subnets(["subnet-a", "subnet-b", "subnet-b", ""])
    assert set(both) == {"subnet-a", "subnet-b"}
    assert fake.calls[-1][1] == ["subnet-b"]


def test_unknown_subnet_is_missing_and_negatively_cached(ec2: Ec2Client, fake: FakeEc2) -> None:
    answer = ec2.subnets(["subnet-a", "subnet-gone"])
    assert set(answer) == {"subnet-a"}
    assert answer.missing == {"subnet-gone"}
    again = ec2.subnets(["subnet-gone"])
    assert again.missing == {"subnet-gone"}
    assert len(fake.calls) == 1


def test_failure_serves_stale_cache_flagged(ec2: Ec2Client, fake: FakeEc2, clock: Clock) -> None:
    ec2.subnets(["subnet-a"])
    clock.t += 3600
    fake.fail = DOWN
    answer = ec2.subnets(["subnet-a"])
    assert answer["subnet-a"].free_ips == 100
    assert answer.stale == {"subnet-a"}
    assert answer.degraded
    assert answer.error is not None
    assert "cannot reach the EC2 endpoint" in answer.error
    assert ec2.stats.errors == {"unreachable": 1}
    assert ec2.stats.stale_served == 1


def test_failure_for_uncached_raises_with_partial(ec2: Ec2Client, fake: FakeEc2) -> None:
    ec2.subnets(["subnet-a"])
    fake.fail = DOWN
    with pytest.raises(Ec2Unavailable) as info:
        ec2.subnets(["subnet-a", "subnet-new"])
    assert info.value.kind == "unreachable"
    assert dict(info.value.partial) == {"subnet-a": ec2.subnets(["subnet-a"])["subnet-a"]}


def test_stale_entries_expire_after_keep_for(fake: FakeEc2, clock: Clock) -> None:
    ec2 = Ec2Client(Settings(ec2_cache_ttl_seconds=60), now=clock, client=fake, keep_stale_for=600)
    ec2.subnets(["subnet-a"])
    clock.t += 600
    fake.fail = DOWN
    with pytest.raises(Ec2Unavailable):
        ec2.subnets(["subnet-a"])


def test_recovery_after_failure_refreshes(ec2: Ec2Client, fake: FakeEc2, clock: Clock) -> None:
    ec2.subnets(["subnet-a"])
    clock.t += 61
    fake.fail = DOWN
    assert ec2.subnets(["subnet-a"]).stale
    fake.fail = None
    fake.subnets["subnet-a"]["AvailableIpAddressCount"] = 5
    fresh = ec2.subnets(["subnet-a"])
    assert not fresh.degraded
    assert fresh["subnet-a"].free_ips == 5


def test_limits_fall_back_to_table_for_types_ec2_does_not_know(ec2: Ec2Client) -> None:
    answer = ec2.instance_limits(["m5.large", "t3.small", "zz.unknown"])
    assert answer.fallback == {"t3.small"}
    assert answer.missing == {"zz.unknown"}
    assert (answer["t3.small"].max_enis, answer["t3.small"].ipv4_per_eni) == (3, 4)
    assert not answer.stale


def test_limits_prefer_ec2_over_table(ec2: Ec2Client, fake: FakeEc2) -> None:
    fake.types["m5.large"] = _type("m5.large", 5, 10)  # EC2 wins even if it disagrees with the table
    assert ec2.instance_limits(["m5.large"])["m5.large"].max_enis == 5


def test_limits_when_ec2_down_stale_then_table_then_raise(ec2: Ec2Client, fake: FakeEc2, clock: Clock) -> None:
    ec2.instance_limits(["x1.fake"])
    clock.t += 10_000
    fake.fail = NoCredentialsError()
    answer = ec2.instance_limits(["x1.fake", "m5.large"])
    assert answer.stale == {"x1.fake"}
    assert answer.fallback == {"m5.large"}
    assert answer["x1.fake"].max_enis == 2
    assert answer.error is not None
    assert "credentials" in answer.error
    with pytest.raises(Ec2Unavailable) as info:
        ec2.instance_limits(["m5.large", "zz.unknown"])
    assert info.value.kind == "credentials"
    assert set(info.value.partial) == {"m5.large"}


def test_types_are_batched_by_100_and_paginated(ec2: Ec2Client, fake: FakeEc2) -> None:
    names = [f"f{i}.large" for i in range(250)]
    fake.types.update({n: _type(n, 3, 10) for n in names})
    fake.page_size = 60
    answer = ec2.instance_limits(names)
    assert set(answer) == set(names)
    assert all(len(values) <= 100 for _, values, _ in fake.calls)
    # 3 batches (100, 100, 50) of 60-entry pages: 2 + 2 + 1 pages
    assert len(fake.calls) == 5
    assert ec2.stats.calls == {"DescribeInstanceTypes": 5}


def test_instance_primary_subnet(ec2: Ec2Client, fake: FakeEc2) -> None:
    fake.instances["i-1"] = {
        "InstanceId": "i-1",
        "SubnetId": "subnet-a",
        "NetworkInterfaces": [
            {"SubnetId": "subnet-pods", "Attachment": {"DeviceIndex": 1}},
            {"SubnetId": "subnet-a", "Attachment": {"DeviceIndex": 0, "NetworkCardIndex": 0}},
        ],
    }
    fake.instances["i-2"] = {"InstanceId": "i-2", "SubnetId": "subnet-b", "NetworkInterfaces": []}
    fake.instances["i-3"] = {"InstanceId": "i-3", "NetworkInterfaces": []}  # terminated: no subnet any more
    answer = ec2.subnets_for_instances(["i-1", "i-2", "i-3", "i-4"])
    assert dict(answer) == {"i-1": "subnet-a", "i-2": "subnet-b"}
    assert answer.missing == {"i-3", "i-4"}


def test_provider_id_parsing() -> None:
    assert instance_id_from_provider_id("aws:///us-east-1a/i-0123456789abcdef0") == "i-0123456789abcdef0"
    assert instance_id_from_provider_id("aws:///us-east-1a/fargate-ip-10-0-0-1") is None
    assert instance_id_from_provider_id("kind://docker/kind/node") is None


def test_limits_from_description_uses_default_network_card_and_maps_bare_metal() -> None:
    info = _type("p4d.24xlarge", 60, 50)
    info["NetworkInfo"]["NetworkCards"] = [{"NetworkCardIndex": i, "MaximumNetworkInterfaces": 15} for i in range(4)]
    info["NetworkInfo"]["DefaultNetworkCardIndex"] = 0
    limits = limits_from_description(info)
    assert limits is not None
    assert limits.max_enis == 15
    metal = _type("m5.metal", 15, 50, BareMetal=True)
    del metal["Hypervisor"]
    metal_limits = limits_from_description(metal)
    assert metal_limits is not None
    assert metal_limits.hypervisor == "nitro"
    xen = _type("m4.large", 2, 10)
    xen["Hypervisor"] = "xen"
    xen_limits = limits_from_description(xen)
    assert xen_limits is not None
    assert xen_limits.hypervisor == "xen"
    assert limits_from_description({"InstanceType": "odd", "NetworkInfo": {}}) is None


@pytest.mark.parametrize(
    ("code", "kind", "words"),
    [
        ("RequestLimitExceeded", "throttled", "throttled DescribeSubnets even after 5 attempts"),
        ("UnauthorizedOperation", "denied", "ec2:DescribeSubnets"),
        ("AuthFailure", "credentials", "rejected the AWS credentials"),
        ("InternalError", "other", "InternalError"),
    ],
)
def test_classify_client_errors(code: str, kind: str, words: str) -> None:
    exc = ClientError({"Error": {"Code": code, "Message": "boom"}}, "DescribeSubnets")
    failure = classify(exc, "DescribeSubnets", 5)
    assert failure.kind == kind
    assert words in failure.cause
    assert failure.cause in str(failure)


def test_boto_client_config_uses_adaptive_retries_and_endpoint() -> None:
    settings = Settings(aws_region="eu-west-1", ec2_endpoint_url="http://127.0.0.1:9", ec2_max_attempts=7)
    client = build_boto_client(settings)
    assert client.meta.config.retries == {"mode": "adaptive", "total_max_attempts": 7}
    assert client.meta.endpoint_url == "http://127.0.0.1:9"
    assert client.meta.region_name == "eu-west-1"
    assert client.meta.config.connect_timeout <= 5


def test_ttl_cache_fresh_then_stale_then_pruned(clock: Clock) -> None:
    cache: TtlCache[int] = TtlCache(10, clock, keep_for=100)
    cache.put("k", 1)
    hit = cache.get("k")
    assert hit is not None
    assert hit.fresh
    clock.t += 10
    stale = cache.get("k")
    assert stale is not None
    assert not stale.fresh
    clock.t += 90
    cache.prune()
    assert cache.get("k") is None
    assert len(cache) == 0
