"""Prometheus metrics the operator exports on its metrics port."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from warmpool.aws import Ec2Stats

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
