"""One scrape of ipamd's metrics endpoint (port 61678), read with prometheus_client's text parser.

Names as the VPC CNI registers them (utils/prometheusmetrics/prometheusmetrics.go): the datastore's gauges
`awscni_total_ip_addresses` (IPs held, prefix-mode /28s counted as 16), `awscni_assigned_ip_addresses` (IPs pods
use), `awscni_eni_allocated`, `awscni_total_ipv4_prefixes`, `awscni_ip_max`, and the counter
`awscni_no_available_ip_addresses` (pod IP assignments that failed for want of a free IP, since ipamd started).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

TOTAL_IPS = "awscni_total_ip_addresses"
ASSIGNED_IPS = "awscni_assigned_ip_addresses"
NO_IP_ERRORS = "awscni_no_available_ip_addresses"
ENIS = "awscni_eni_allocated"
PREFIXES = "awscni_total_ipv4_prefixes"
IP_MAX = "awscni_ip_max"


class NotIpamdMetrics(ValueError):
    """The body is not Prometheus text, or lacks the gauges every ipamd publishes."""


@dataclass(frozen=True, slots=True)
class IpamdSample:
    total_ips: int
    assigned_ips: int
    no_ip_errors: int | None  # a counter since ipamd started; None when not published
    enis: int | None = None
    prefixes: int | None = None
    ip_max: int | None = None

    @property
    def idle_ips(self) -> int:
        """IPs held and not assigned to a pod (ipamd's `available`; IPs in their cooldown count as idle)."""
        return max(self.total_ips - self.assigned_ips, 0)


def _value(family: Metric) -> float | None:
    """The family's one value: the sample without labels that is not a counter's `_created`."""
    for sample in family.samples:
        if not sample.labels and not sample.name.endswith("_created"):
            return float(sample.value)
    return None


def _values(families: Iterable[Metric]) -> dict[str, float]:
    out: dict[str, float] = {}
    for family in families:
        value = _value(family)
        if value is not None:
            out[family.name] = value
            # A counter may be written with or without `_total` (ipamd's Go client writes none): either reads.
            out.setdefault(family.name.removesuffix("_total"), value)
    return out


def parse_ipamd_metrics(text: str) -> IpamdSample:
    """The pool figures from one scrape's body; raises NotIpamdMetrics for anything else."""
    try:
        values = _values(text_string_to_metric_families(text))
    except ValueError as error:  # the parser's way of saying "not the text format"
        raise NotIpamdMetrics(f"not Prometheus text: {error}") from error
    missing = [name for name in (TOTAL_IPS, ASSIGNED_IPS) if name not in values]
    if missing:
        raise NotIpamdMetrics(f"no {' or '.join(missing)} in the scrape: is this ipamd's metrics port?")

    def optional(name: str) -> int | None:
        return int(values[name]) if name in values else None

    return IpamdSample(
        total_ips=int(values[TOTAL_IPS]),
        assigned_ips=int(values[ASSIGNED_IPS]),
        no_ip_errors=optional(NO_IP_ERRORS),
        enis=optional(ENIS),
        prefixes=optional(PREFIXES),
        ip_max=optional(IP_MAX),
    )


def render_ipamd_metrics(sample: IpamdSample) -> str:
    """The same figures as ipamd exposes them (text format 0.0.4): for test and dev endpoints that stand in for
    ipamd, so the operator's parser reads what the real one would send."""
    lines: list[str] = []

    def emit(name: str, kind: str, help_text: str, value: int | None) -> None:
        if value is not None:
            lines.extend((f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", f"{name} {value}"))

    emit(ENIS, "gauge", "The number of ENIs allocated", sample.enis)
    emit(TOTAL_IPS, "gauge", "The total number of IP addresses", sample.total_ips)
    emit(ASSIGNED_IPS, "gauge", "The number of IP addresses assigned to pods", sample.assigned_ips)
    emit(NO_IP_ERRORS, "counter", "Pod IP assignments that failed for want of a free IP", sample.no_ip_errors)
    emit(PREFIXES, "gauge", "The total number of IPv4 prefixes", sample.prefixes)
    emit(IP_MAX, "gauge", "The maximum number of IP addresses", sample.ip_max)
    return "\n".join(lines) + "\n"
