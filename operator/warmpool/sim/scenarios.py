"""Seeded churn scenarios. The same seed always gives the same trace, whatever the platform.

Pods come from "slots": each slot on a node runs one pod after another, with exponential lifetimes and a
short gap while the replacement is scheduled, so a node holds a steady number of pods with realistic churn.
Densities are a share of the node's max pods in the stricter mode, so every scenario is valid in both.
Default sizes keep each run to seconds; pass larger `nodes`/`hours` for benchmarks.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

from warmpool.aws.instance_table import FALLBACK_LIMITS
from warmpool.ipamd.limits import HOST_NETWORK_PODS, IpMode
from warmpool.sim.trace import TRACE_VERSION, Event, Header, NodeAdd, NodeRemove, PodStart, PodStop, SubnetFree, Trace

ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")
SUBNET_FREE_IPS = 4091  # a /20 per zone


class _Builder:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.items: list[tuple[float, int, Event]] = []
        self.pods = 0
        self.nodes = 0

    def add(self, event: Event) -> None:
        self.items.append((event.t, len(self.items), event))

    def node(self, t: float, instance_type: str, zone: str) -> str:
        self.nodes += 1
        name = f"n{self.nodes:04d}"
        self.add(NodeAdd(t=t, node=name, instance_type=instance_type, zone=zone))
        return name

    def pod(self, node: str, start: float, stop: float | None) -> None:
        self.pods += 1
        name = f"p{self.pods:06d}"
        self.add(PodStart(t=round(start, 3), node=node, pod=name))
        if stop is not None:
            self.add(PodStop(t=round(stop, 3), node=node, pod=name))

    def slots(
        self,
        node: str,
        t0: float,
        t1: float,
        count: int,
        mean_life: float,
        ramp: float,
        active: Callable[[int, float], bool] | None = None,
    ) -> None:
        """`count` slots on `node` from t0 (first pods spread over `ramp` s) until t1 (pods running then stay)."""
        rng = self.rng
        for i in range(count):
            t = t0 + rng.uniform(0, ramp)
            while t < t1:
                if active is not None and not active(i, t):
                    t += rng.uniform(30, 90)
                    continue
                stop = t + rng.expovariate(1 / mean_life)
                self.pod(node, t, stop if stop < t1 else None)
                t = stop + rng.uniform(2, 20)

    def build(self, scenario: str, seed: int, **params: Any) -> Trace:
        self.items.sort(key=lambda x: (x[0], x[1]))
        meta = {"scenario": scenario, "seed": seed, **params}
        return Trace(
            events=[e for _, _, e in self.items],
            header=Header(type="header", version=TRACE_VERSION, **meta),
            meta=meta,
        )


def pod_cap(instance_type: str) -> int:
    """IP-consuming pods the node can run in either mode (prefix mode's max pods is capped at 110/250)."""
    lim = FALLBACK_LIMITS[instance_type]
    return min(lim.max_pods(m) for m in IpMode) - HOST_NETWORK_PODS


def _subnets(b: _Builder, free: int | None) -> None:
    if free is not None:
        for z in ZONES:
            b.add(SubnetFree(t=0, zone=z, free_ips=free))


def steady(
    seed: int = 1,
    nodes: int = 20,
    hours: float = 2.0,
    instance_type: str = "m5.large",
    density: float = 0.6,
    mean_life: float = 1800.0,
    subnet_free_ips: int | None = SUBNET_FREE_IPS,
) -> Trace:
    """Constant pods per node, pods replaced as they end."""
    b = _Builder(random.Random(seed))
    _subnets(b, subnet_free_ips)
    end = hours * 3600
    for i in range(nodes):
        n = b.node(0, instance_type, ZONES[i % len(ZONES)])
        b.slots(n, 0, end, round(density * pod_cap(instance_type)), mean_life, ramp=300)
    return b.build("steady", seed, nodes=nodes, hours=hours, instance_type=instance_type, density=density)


def diurnal(
    seed: int = 1,
    nodes: int = 20,
    hours: float = 6.0,
    instance_type: str = "m5.large",
    low: float = 0.2,
    high: float = 0.9,
    mean_life: float = 1200.0,
    subnet_free_ips: int | None = SUBNET_FREE_IPS,
    days: int = 1,
    name: str = "diurnal",
) -> Trace:
    """Pods per node follow a day-like cycle (one cycle per `hours`, repeated `days` times), low at the start
    and end of each."""
    b = _Builder(random.Random(seed))
    _subnets(b, subnet_free_ips)
    cycle = hours * 3600
    end = cycle * days
    cap = pod_cap(instance_type)

    def active(slot: int, t: float) -> bool:
        share = low + (high - low) * (1 - math.cos(2 * math.pi * t / cycle)) / 2
        return slot < share * cap

    for i in range(nodes):
        n = b.node(0, instance_type, ZONES[i % len(ZONES)])
        b.slots(n, 0, end, round(high * cap), mean_life, ramp=300, active=active)
    return b.build(name, seed, nodes=nodes, hours=hours, days=days, instance_type=instance_type, low=low, high=high)


def diurnal_3d(seed: int = 1, nodes: int = 20, hours: float = 24.0, days: int = 3, **params: Any) -> Trace:
    """Three real days of the diurnal cycle: what a daily profile can learn from the first day shows on the
    next two (the simulator reports the first day and the rest apart)."""
    return diurnal(seed=seed, nodes=nodes, hours=hours, days=days, name="diurnal-3d", **params)


def batch(
    seed: int = 1,
    nodes: int = 20,
    hours: float = 2.0,
    instance_type: str = "m5.large",
    background: float = 0.3,
    every: float = 900.0,
    job_pods: tuple[int, int] = (5, 12),
    share_of_nodes: float = 0.5,
    subnet_free_ips: int | None = SUBNET_FREE_IPS,
) -> Trace:
    """A steady background plus jobs: every `every` s, half the nodes get 5-12 pods within 5 s, which run
    for 3-8 minutes and end together."""
    rng = random.Random(seed)
    b = _Builder(rng)
    _subnets(b, subnet_free_ips)
    end = hours * 3600
    cap = pod_cap(instance_type)
    names = []
    for i in range(nodes):
        n = b.node(0, instance_type, ZONES[i % len(ZONES)])
        names.append(n)
        b.slots(n, 0, end, round(background * cap), 1800.0, ramp=300)
    room = cap - round(background * cap)
    t = every / 2
    while t < end - 600:
        duration = rng.uniform(180, 480)
        for n in rng.sample(names, max(1, round(share_of_nodes * nodes))):
            for _ in range(min(rng.randint(*job_pods), room)):
                b.pod(n, t + rng.uniform(0, 5), t + duration + rng.uniform(0, 10))
        t += every
    return b.build("batch", seed, nodes=nodes, hours=hours, instance_type=instance_type, every=every)


def scale_out(
    seed: int = 1,
    nodes: int = 10,
    new_nodes: int = 20,
    hours: float = 2.0,
    instance_type: str = "m5.large",
    density: float = 0.6,
    subnet_free_ips: int | None = SUBNET_FREE_IPS,
) -> Trace:
    """A base fleet; after 30 min `new_nodes` join within 2 min and fill up within a minute of joining (a
    deployment scaling out); they leave again after an hour."""
    rng = random.Random(seed)
    b = _Builder(rng)
    _subnets(b, subnet_free_ips)
    end = hours * 3600
    per_node = round(density * pod_cap(instance_type))
    for i in range(nodes):
        n = b.node(0, instance_type, ZONES[i % len(ZONES)])
        b.slots(n, 0, end, per_node, 1800.0, ramp=300)
    t_out, t_in = 1800.0, 5400.0
    for i in range(new_nodes):
        added = t_out + rng.uniform(0, 120)
        n = b.node(round(added, 3), instance_type, ZONES[i % len(ZONES)])
        b.slots(n, added + 5, t_in, per_node, 1800.0, ramp=60)
        b.add(NodeRemove(t=t_in + i, node=n))
    return b.build("scale-out", seed, nodes=nodes, new_nodes=new_nodes, hours=hours, instance_type=instance_type)


MIXED_TYPES = ("t3.medium", "m5.large", "m5.xlarge", "m5.4xlarge")


def mixed(
    seed: int = 1,
    nodes: int = 20,
    hours: float = 2.0,
    density: float = 0.5,
    subnet_free_ips: int | None = SUBNET_FREE_IPS,
) -> Trace:
    """Several instance types (t3.medium to m5.4xlarge) at the same share of their max pods, with short-lived
    pods on the big ones."""
    rng = random.Random(seed)
    b = _Builder(rng)
    _subnets(b, subnet_free_ips)
    end = hours * 3600
    for i in range(nodes):
        itype = MIXED_TYPES[i % len(MIXED_TYPES)]
        n = b.node(0, itype, ZONES[i % len(ZONES)])
        life = 600.0 if pod_cap(itype) > 50 else 1800.0
        b.slots(n, 0, end, round(density * pod_cap(itype)), life, ramp=300)
    return b.build("mixed", seed, nodes=nodes, hours=hours, density=density)


SCENARIOS: dict[str, Callable[..., Trace]] = {
    "steady": steady,
    "diurnal": diurnal,
    "diurnal-3d": diurnal_3d,
    "batch": batch,
    "scale-out": scale_out,
    "mixed": mixed,
}


def generate(name: str, seed: int = 1, **params: Any) -> Trace:
    try:
        factory = SCENARIOS[name]
    except KeyError:
        raise ValueError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}") from None
    return factory(seed=seed, **params)
