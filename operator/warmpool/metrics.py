"""Prometheus metrics the operator exports on its metrics port."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

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
EC2_ERRORS = Counter("warmpool_ec2_errors_total", "EC2 API calls that failed after retries.", ["operation"])
EC2_CALLS = Counter("warmpool_ec2_calls_total", "EC2 API calls made.", ["operation"])
LAST_PLAN = Gauge("warmpool_last_plan_timestamp_seconds", "Unix time of the last completed plan.", ["policy"])


def start_metrics_server(port: int) -> None:
    start_http_server(port)
