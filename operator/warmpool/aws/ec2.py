"""The operator's only EC2 client: instance limits, subnet free IPs and node subnets, cached.

Every lookup is served from a TTL cache when fresh. When EC2 fails, the last good answer is served and flagged
stale; instance limits fall back to the embedded table. Calls block (boto3): run them in a worker thread from
async code. The caches are guarded by a lock so concurrent lookups from threads are safe.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import boto3
from botocore.config import Config

from warmpool.aws.cache import Answer, TtlCache
from warmpool.aws.errors import EC2_FAILURES, Ec2Unavailable, classify
from warmpool.aws.instance_table import fallback_limits
from warmpool.ipamd.limits import InstanceLimits
from warmpool.settings import Settings
from warmpool.snapshot import SubnetInfo

V = TypeVar("V")
_Fetch = Callable[[list[str]], dict[str, V]]

BATCH = 100  # DescribeInstanceTypes takes at most 100 names; reuse the bound for filter values elsewhere
_PROVIDER_ID = re.compile(r"^aws:///[^/]*/(i-[0-9a-f]+)$")


@dataclass
class Ec2Stats:
    """Plain counters, exported as Prometheus metrics by the caller."""

    calls: dict[str, int] = field(default_factory=dict)  # API calls (pages) by operation
    requests: int = 0  # HTTP requests actually sent, botocore retries included
    errors: dict[str, int] = field(default_factory=dict)  # failed EC2 lookups by Ec2Unavailable.kind
    cache_hits: int = 0
    stale_served: int = 0
    fallback_served: int = 0
    last_error: str | None = None
    last_success: float | None = None  # injected-clock time of the last successful EC2 call


def instance_id_from_provider_id(provider_id: str) -> str | None:
    """`aws:///us-east-1a/i-0abc` (a Node's spec.providerID) -> `i-0abc`; None for anything else."""
    match = _PROVIDER_ID.match(provider_id)
    return match.group(1) if match else None


def limits_from_description(info: dict[str, Any]) -> InstanceLimits | None:
    """InstanceLimits from one DescribeInstanceTypes entry, or None when it lacks usable network info."""
    net = info.get("NetworkInfo") or {}
    enis = net.get("MaximumNetworkInterfaces")
    ips = net.get("Ipv4AddressesPerInterface")
    # ipamd attaches ENIs on the default network card only; multi-card types (p4d, trn1, c6in.32xlarge) report
    # the total over all cards in MaximumNetworkInterfaces.
    default_card = net.get("DefaultNetworkCardIndex", 0)
    for card in net.get("NetworkCards") or ():
        if card.get("NetworkCardIndex") == default_card and card.get("MaximumNetworkInterfaces"):
            enis = card["MaximumNetworkInterfaces"]
    if not isinstance(enis, int) or not isinstance(ips, int) or enis < 1 or ips < 2:
        return None
    # Bare metal reports no hypervisor; it runs on Nitro hardware and supports prefix delegation.
    hypervisor = info.get("Hypervisor") or ("nitro" if info.get("BareMetal") else "")
    vcpus = (info.get("VCpuInfo") or {}).get("DefaultVCpus", 0)
    return InstanceLimits(
        str(info["InstanceType"]), max_enis=enis, ipv4_per_eni=ips, hypervisor=hypervisor, vcpus=int(vcpus)
    )


def _chunks(items: Sequence[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def _snake(operation: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()


def build_boto_client(settings: Settings) -> Any:
    """A boto3 EC2 client: adaptive retries (client-side rate limiting under throttling), short timeouts so a
    dead endpoint fails a planning cycle quickly instead of hanging it."""
    config = Config(
        # total_max_attempts counts the first request too; botocore's Config "max_attempts" counts only
        # retries (one more request than the setting's name says).
        retries={"mode": "adaptive", "total_max_attempts": settings.ec2_max_attempts},
        connect_timeout=3,
        read_timeout=10,
    )
    session = boto3.session.Session(region_name=settings.aws_region)
    return session.client("ec2", endpoint_url=settings.ec2_endpoint_url, config=config)


class Ec2Client:
    def __init__(
        self,
        settings: Settings,
        *,
        now: Callable[[], float] = time.monotonic,
        client: Any = None,
        keep_stale_for: float | None = None,
    ) -> None:
        """`client` replaces the boto3 client (tests); otherwise one is built on first use, so a missing
        region or credentials surface as Ec2Unavailable from a lookup, not as a crash at startup."""
        self.stats = Ec2Stats()
        self._settings = settings
        self._now = now
        self._client = client
        self._lock = threading.Lock()
        ttl = settings.ec2_cache_ttl_seconds
        self._limits: TtlCache[InstanceLimits] = TtlCache(ttl, now, keep_stale_for)
        self._subnets: TtlCache[SubnetInfo] = TtlCache(ttl, now, keep_stale_for)
        # An instance's primary ENI never moves to another subnet: cache it for much longer.
        self._instance_subnets: TtlCache[str] = TtlCache(max(ttl, 24 * 3600.0), now, keep_stale_for)
        self._instance_tags: TtlCache[tuple[tuple[str, str], ...]] = TtlCache(ttl, now, keep_stale_for)

    # --- public lookups -------------------------------------------------------------------------------

    def instance_limits(self, types: Iterable[str]) -> Answer[InstanceLimits]:
        """Limits per instance type; types EC2 does not know or cannot be asked about come from the embedded
        table (listed in `.fallback`). Raises Ec2Unavailable only if some type is covered by nothing."""
        answer, unanswered, failure = self._lookup(
            "DescribeInstanceTypes", types, self._limits, self._fetch_instance_types
        )
        fallback: set[str] = set()
        for key in sorted(answer.missing | unanswered):
            limits = fallback_limits(key)
            if limits is not None:
                answer[key] = limits
                fallback.add(key)
        self.stats.fallback_served += len(fallback)
        result = Answer(
            answer,
            stale=answer.stale,
            fallback=fallback,
            missing=answer.missing - fallback,
            error=answer.error,
        )
        if failure is not None and unanswered - fallback:
            failure.partial = result
            raise failure
        return result

    def subnets(self, subnet_ids: Iterable[str]) -> Answer[SubnetInfo]:
        """Free IPs, zone and CIDR per subnet.

        Raises Ec2Unavailable when EC2 fails and some subnet was never seen before."""
        return self._strict("DescribeSubnets", subnet_ids, self._subnets, self._fetch_subnets)

    def subnets_for_instances(self, instance_ids: Iterable[str]) -> Answer[str]:
        """The subnet of each instance's primary ENI (device index 0).

        Terminated or unknown instance ids are listed in `.missing`."""
        cache, fetch = self._instance_subnets, self._fetch_instance_subnets
        return self._strict("DescribeInstances", instance_ids, cache, fetch)

    def instance_tags(self, instance_ids: Iterable[str]) -> Answer[tuple[tuple[str, str], ...]]:
        """Each instance's tags as sorted (key, value) pairs (DescribeInstances; the cluster-name discovery of
        the add-on route reads them). Unknown instance ids are listed in `.missing`."""
        return self._strict("DescribeInstances", instance_ids, self._instance_tags, self._fetch_instance_tags)

    # --- EC2 calls --------------------------------------------------------------------------------------

    def _fetch_instance_types(self, types: list[str]) -> dict[str, InstanceLimits]:
        found: dict[str, InstanceLimits] = {}
        for batch in _chunks(types, BATCH):
            # A filter, not InstanceTypes=: one unknown name there fails the whole call (InvalidInstanceType).
            flt = [{"Name": "instance-type", "Values": batch}]
            for page in self._pages("DescribeInstanceTypes", Filters=flt):
                for info in page.get("InstanceTypes", ()):
                    limits = limits_from_description(info)
                    if limits is not None and limits.instance_type in batch:
                        found[limits.instance_type] = limits
        return found

    def _fetch_subnets(self, subnet_ids: list[str]) -> dict[str, SubnetInfo]:
        found: dict[str, SubnetInfo] = {}
        for batch in _chunks(subnet_ids, BATCH):
            # A filter, not SubnetIds=: a deleted subnet must not fail the lookup of the others.
            for page in self._pages("DescribeSubnets", Filters=[{"Name": "subnet-id", "Values": batch}]):
                for sn in page.get("Subnets", ()):
                    found[sn["SubnetId"]] = SubnetInfo(
                        subnet_id=sn["SubnetId"],
                        zone=sn.get("AvailabilityZone", ""),
                        free_ips=int(sn.get("AvailableIpAddressCount", 0)),
                        cidr=sn.get("CidrBlock", ""),
                    )
        return found

    def _fetch_instance_subnets(self, instance_ids: list[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for batch in _chunks(instance_ids, BATCH):
            for page in self._pages("DescribeInstances", Filters=[{"Name": "instance-id", "Values": batch}]):
                for reservation in page.get("Reservations", ()):
                    for inst in reservation.get("Instances", ()):
                        subnet = _primary_subnet(inst)
                        if subnet:
                            found[inst["InstanceId"]] = subnet
        return found

    def _fetch_instance_tags(self, instance_ids: list[str]) -> dict[str, tuple[tuple[str, str], ...]]:
        found: dict[str, tuple[tuple[str, str], ...]] = {}
        for batch in _chunks(instance_ids, BATCH):
            for page in self._pages("DescribeInstances", Filters=[{"Name": "instance-id", "Values": batch}]):
                for reservation in page.get("Reservations", ()):
                    for inst in reservation.get("Instances", ()):
                        tags = ((str(t.get("Key", "")), str(t.get("Value", ""))) for t in inst.get("Tags") or ())
                        found[inst["InstanceId"]] = tuple(sorted(tags))
        return found

    def _pages(self, operation: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        method = getattr(self._boto(), _snake(operation))
        token: str | None = None
        while True:
            self.stats.calls[operation] = self.stats.calls.get(operation, 0) + 1
            page: dict[str, Any] = method(**kwargs, **({"NextToken": token} if token else {}))
            yield page
            token = page.get("NextToken")
            if not token:
                return

    def _boto(self) -> Any:
        if self._client is None:
            client = build_boto_client(self._settings)
            client.meta.events.register("before-send.ec2", self._count_request)
            self._client = client
        return self._client

    def _count_request(self, **_: Any) -> None:
        self.stats.requests += 1  # returning None lets botocore send the request as usual

    # --- cache + failure policy ---------------------------------------------------------------------------

    def _strict(self, operation: str, keys: Iterable[str], cache: TtlCache[V], fetch: _Fetch[V]) -> Answer[V]:
        answer, unanswered, failure = self._lookup(operation, keys, cache, fetch)
        if failure is not None and unanswered:
            failure.partial = answer
            raise failure
        return answer

    def _lookup(
        self, operation: str, keys: Iterable[str], cache: TtlCache[V], fetch: _Fetch[V]
    ) -> tuple[Answer[V], set[str], Ec2Unavailable | None]:
        """Fresh cache hits, then one EC2 fetch for the rest; on failure, stale entries. Returns the answer,
        the keys nothing could answer, and the failure if EC2 failed."""
        wanted = sorted({k for k in keys if k})
        values: dict[str, V] = {}
        missing: set[str] = set()
        with self._lock:
            cache.prune()
            todo = []
            for key in wanted:
                hit = cache.get(key)
                if hit is None or not hit.fresh:
                    todo.append(key)
                    continue
                self.stats.cache_hits += 1
                if hit.value is None:
                    missing.add(key)
                else:
                    values[key] = hit.value
        if not todo:
            return Answer(values, missing=missing), set(), None

        try:
            fetched = fetch(todo)
        except EC2_FAILURES as exc:
            failure = classify(exc, operation, self._settings.ec2_max_attempts)
            self.stats.errors[failure.kind] = self.stats.errors.get(failure.kind, 0) + 1
            self.stats.last_error = failure.cause
            stale: set[str] = set()
            unanswered: set[str] = set()
            with self._lock:
                for key in todo:
                    hit = cache.get(key)
                    if hit is None:
                        unanswered.add(key)
                    elif hit.value is None:
                        missing.add(key)
                    else:
                        values[key] = hit.value
                        stale.add(key)
            self.stats.stale_served += len(stale)
            return Answer(values, stale=stale, missing=missing, error=failure.cause), unanswered, failure

        self.stats.last_success = self._now()
        with self._lock:
            for key in todo:
                value = fetched.get(key)
                cache.put(key, value)  # None: remember that EC2 does not know it, until the TTL runs out
                if value is None:
                    missing.add(key)
                else:
                    values[key] = value
        return Answer(values, missing=missing), set(), None


def _primary_subnet(instance: dict[str, Any]) -> str | None:
    for eni in instance.get("NetworkInterfaces", ()):
        attachment = eni.get("Attachment") or {}
        if attachment.get("DeviceIndex") == 0 and attachment.get("NetworkCardIndex", 0) == 0:
            return str(eni["SubnetId"]) if eni.get("SubnetId") else None
    subnet = instance.get("SubnetId")  # the instance-level field is the primary ENI's subnet too
    return str(subnet) if subnet else None
