"""Prometheus metrics the operator exports on its metrics port."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from warmpool.aws import Ec2Stats
from warmpool.measured.aggregate import Measurement

RECOMMENDED = Gauge(
    "warmpool_recommended_value", "Value warmpool recommends for an ipamd variable.", ["policy", "variable"]
)
APPLIED = Gauge("warmpool_applied_value", "Value warmpool last applied to the DaemonSet.", ["policy", "variable"])
CHANGES_APPLIED = Counter("warmpool_changes_applied_total", "DaemonSet env changes applied.", ["policy"])
CHANGES_REFUSED = Counter(
    "warmpool_changes_refused_total", "Recommended changes held back, by guard.", ["policy", "reason"]
)
PLAN_SECONDS = Histogram("warmpool_plan_duration_seconds", "Time to observe and plan one policy.", ["policy"])
INDEX_SIZE = Gauge("warmpool_index_size", "Objects in the operator's in-memory indexes.", ["index"])
LAST_PLAN = Gauge("warmpool_last_plan_timestamp_seconds", "Unix time of the last completed plan.", ["policy"])


def start_metrics_server(port: int) -> None:
    start_http_server(port)


class Ec2StatsCollector(Collector):
    """Exports the EC2 client's own counters at scrape time (one source of truth for the numbers)."""

    def __init__(self, stats: Ec2Stats) -> None:
        self.stats = stats

    def collect(self) -> Iterator[CounterMetricFamily]:
        calls = CounterMetricFamily("warmpool_ec2_calls", "EC2 API calls made, by operation.", labels=["operation"])
        for operation, count in sorted(self.stats.calls.items()):
            calls.add_metric([operation], count)
        yield calls
        errors = CounterMetricFamily(
            "warmpool_ec2_errors", "EC2 lookups that failed after retries, by kind.", labels=["kind"]
        )
        for kind, count in sorted(self.stats.errors.items()):
            errors.add_metric([kind], count)
        yield errors


def register_ec2_stats(stats: Ec2Stats) -> None:
    REGISTRY.register(Ec2StatsCollector(stats))


# ----- measured pool state (ipamd's own metrics, read from aws-node) -----

IPAMD_SCRAPES = Counter(
    "warmpool_ipamd_scrapes_total", "Scrapes of ipamd's metrics, by path and result.", ["via", "result"]
)
IPAMD_SCRAPE_SECONDS = Histogram(
    "warmpool_ipamd_scrape_duration_seconds",
    "Time to read one node's ipamd metrics (pod lookup included when not cached).",
    ["via"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
IPAMD_SCRAPE_ROUND_SECONDS = Histogram(
    "warmpool_ipamd_scrape_round_duration_seconds", "Time of one round over every sampled node."
)


class MeasuredCollector(Collector):
    """The last measurement of each policy, per instance type, exported at scrape time (so an instance type
    or policy that went away leaves no stale series)."""

    # A policy not planned for longer than the longest rollout.interval (24h) is gone (deleted, or this replica
    # lost the peering lease): it leaves the export.
    FORGET_AFTER_SECONDS = 25 * 3600.0

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.latest: dict[str, Measurement] = {}
        self.updated: dict[str, float] = {}
        self._clock = clock

    def record(self, policy: str, m: Measurement | None) -> None:
        if m is None:
            self.latest.pop(policy, None)
            self.updated.pop(policy, None)
        else:
            self.latest[policy], self.updated[policy] = m, self._clock()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        labels = ["policy", "instance_type"]
        families = {
            "idle": GaugeMetricFamily(
                "warmpool_measured_idle_ips_per_node",
                "Idle IPs per node as ipamd reports them (total - assigned), mean over the sampled nodes.",
                labels=labels,
            ),
            "estimated": GaugeMetricFamily(
                "warmpool_estimated_idle_ips_per_node",
                "Idle IPs per node as the operator's model of ipamd estimates them, for the same nodes.",
                labels=labels,
            ),
            "errors": GaugeMetricFamily(
                "warmpool_measured_no_ip_errors",
                "Pod IP assignments that failed for want of a free IP in the last 10 minutes of scrapes, summed.",
                labels=labels,
            ),
            "sampled": GaugeMetricFamily(
                "warmpool_measured_nodes", "Nodes whose ipamd figures the measurement uses.", labels=labels
            ),
            "at": GaugeMetricFamily(
                "warmpool_measured_scrape_timestamp_seconds", "Unix time of the oldest scrape used.", labels=labels
            ),
        }
        now = self._clock()
        for policy in [p for p, t in self.updated.items() if now - t > self.FORGET_AFTER_SECONDS]:
            self.record(policy, None)
        for policy, m in sorted(self.latest.items()):
            for t in m.types:
                key = [policy, t.instance_type]
                for name, value in (
                    ("idle", t.idle_ips_per_node),
                    ("estimated", t.estimated_idle_ips_per_node),
                    ("errors", t.no_ip_errors),
                    ("sampled", t.measured),
                    ("at", t.scraped_at),
                ):
                    if value is not None:
                        families[name].add_metric(key, float(value))
        yield from families.values()


MEASURED = MeasuredCollector()
REGISTRY.register(MEASURED)
