"""Measured pool state, the pure parts: reading ipamd's exposition, choosing the sample, aggregating per
instance type, staleness, the no-IP counter's increase, and the status fields."""

from __future__ import annotations

import pytest

from warmpool.api.v1alpha1 import WarmPoolPolicyStatus
from warmpool.aws.instance_table import FALLBACK_LIMITS
from warmpool.ipamd.env import parse_env
from warmpool.ipamd.limits import IpMode
from warmpool.ipamd.pool import steady_state
from warmpool.measured.aggregate import (
    ERRORS_WINDOW,
    NodeScrape,
    State,
    choose_sample,
    estimate_idle_ips,
    measure,
    status_fields,
)
from warmpool.measured.exposition import IpamdSample, NotIpamdMetrics, parse_ipamd_metrics, render_ipamd_metrics
from warmpool.step.status import timestamp

# Trimmed from a real aws-node v1.19 scrape: counters without `_total`, labelled series beside the plain ones.
IPAMD_SCRAPE = """\
# HELP awscni_add_ip_req_count The number of add IP address requests
# TYPE awscni_add_ip_req_count counter
awscni_add_ip_req_count 41
# HELP awscni_assigned_ip_addresses The number of IP addresses assigned to pods
# TYPE awscni_assigned_ip_addresses gauge
awscni_assigned_ip_addresses 7
# HELP awscni_assigned_ip_per_cidr The total number of IP addresses assigned per cidr
# TYPE awscni_assigned_ip_per_cidr gauge
awscni_assigned_ip_per_cidr{cidr="10.0.1.23/32"} 1
# HELP awscni_eni_allocated The number of ENIs allocated
# TYPE awscni_eni_allocated gauge
awscni_eni_allocated 2
# HELP awscni_ip_max The maximum number of IP addresses that can be allocated to the instance
# TYPE awscni_ip_max gauge
awscni_ip_max 27
# HELP awscni_no_available_ip_addresses The number of pod IP assignments that fail due to no available IP addresses
# TYPE awscni_no_available_ip_addresses counter
awscni_no_available_ip_addresses 4
# HELP awscni_total_ip_addresses The total number of IP addresses
# TYPE awscni_total_ip_addresses gauge
awscni_total_ip_addresses 18
# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 57
"""


def test_reads_ipamds_figures_and_ignores_the_rest() -> None:
    sample = parse_ipamd_metrics(IPAMD_SCRAPE)
    assert sample == IpamdSample(total_ips=18, assigned_ips=7, no_ip_errors=4, enis=2, prefixes=None, ip_max=27)
    assert sample.idle_ips == 11


def test_a_counter_written_with_total_reads_the_same() -> None:
    text = IPAMD_SCRAPE.replace("awscni_no_available_ip_addresses 4", "awscni_no_available_ip_addresses_total 4")
    assert parse_ipamd_metrics(text).no_ip_errors == 4


def test_rendered_figures_read_back_the_same() -> None:
    sample = IpamdSample(total_ips=32, assigned_ips=30, no_ip_errors=0, enis=1, prefixes=2, ip_max=110)
    assert parse_ipamd_metrics(render_ipamd_metrics(sample)) == sample


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("<html>404 page not found</html>\n", "not Prometheus text"),
        ("# TYPE up gauge\nup 1\n", "no awscni_total_ip_addresses or awscni_assigned_ip_addresses"),
        ("awscni_total_ip_addresses 3\n", "no awscni_assigned_ip_addresses"),
    ],
)
def test_anything_else_is_refused_with_a_reason(text: str, says: str) -> None:
    with pytest.raises(NotIpamdMetrics, match=says):
        parse_ipamd_metrics(text)


def test_sample_is_capped_per_type_and_stable_as_nodes_come_and_go() -> None:
    nodes = [(f"a-{i}", "m5.large") for i in range(30)] + [(f"b-{i}", "c5.xlarge") for i in range(3)]
    chosen = choose_sample(nodes, per_type=5)
    assert sum(n.startswith("a-") for n in chosen) == 5
    assert {n for n in chosen if n.startswith("b-")} == {"b-0", "b-1", "b-2"}
    assert choose_sample(list(reversed(nodes)), per_type=5) == chosen  # order of listing does not matter
    # One unchosen node leaving changes nothing; one chosen node leaving changes one choice.
    unchosen = next(n for n, _ in nodes if n.startswith("a-") and n not in chosen)
    assert choose_sample([x for x in nodes if x[0] != unchosen], per_type=5) == chosen
    gone = next(n for n in chosen if n.startswith("a-"))
    after = choose_sample([x for x in nodes if x[0] != gone], per_type=5)
    assert len(set(chosen) - set(after)) == 1


def scrape(node: str, total: int, assigned: int, at: float, errors: int | None = None) -> NodeScrape:
    return NodeScrape(node).with_sample(IpamdSample(total, assigned, errors), at)


def test_per_type_means_beside_the_estimate() -> None:
    nodes = [("n1", "m5.large"), ("n2", "m5.large"), ("n3", "c5.xlarge")]
    scrapes = {"n1": scrape("n1", 18, 3, 100), "n2": scrape("n2", 27, 20, 100), "n3": scrape("n3", 28, 14, 90)}
    m = measure(nodes, ["n1", "n2", "n3"], scrapes, {"n1": 15, "n2": 7, "n3": 14}, now=110, stale_after=60)
    assert (m.state, m.sampled, m.measured) == (State.FRESH, 3, 3)
    large, xlarge = sorted(m.types, key=lambda t: t.instance_type, reverse=True)
    assert (large.instance_type, large.idle_ips_per_node, large.estimated_idle_ips_per_node) == ("m5.large", 11, 11)
    assert (large.total_ips_per_node, large.assigned_ips_per_node, large.nodes) == (22.5, 11.5, 2)
    assert (xlarge.idle_ips_per_node, xlarge.scraped_at) == (14, 90)
    assert m.idle_ips_per_node == round((15 + 7 + 14) / 3, 2)
    assert m.scraped_at == 90  # the oldest scrape behind the figures


def test_some_nodes_failing_is_partial_and_names_them() -> None:
    nodes = [("n1", "m5.large"), ("n2", "m5.large")]
    failed = NodeScrape("n2", error="no answer from ipamd in 5s (proxy)", error_at=100)
    m = measure(nodes, ["n1", "n2"], {"n1": scrape("n1", 18, 3, 100), "n2": failed}, {}, now=101, stale_after=60)
    assert m.state is State.PARTIAL
    assert "1 of 2 sampled nodes" in m.message
    assert "n2: no answer from ipamd in 5s" in m.message
    assert (m.types[0].measured, m.idle_ips_per_node, m.estimated_idle_ips_per_node) == (1, 15, None)
    # The estimate is for the nodes measured, not for the one that did not answer.
    with_estimates = measure(
        nodes, ["n1", "n2"], {"n1": scrape("n1", 18, 3, 100), "n2": failed}, {"n1": 15, "n2": 9}, 101, 60
    )
    assert (with_estimates.estimated_idle_ips_per_node, with_estimates.types[0].estimated_idle_ips_per_node) == (15, 15)


def test_old_figures_are_shown_as_stale_and_nothing_is_missing() -> None:
    nodes = [("n1", "m5.large")]
    old = {"n1": scrape("n1", 18, 3, 100)}
    stale = measure(nodes, ["n1"], old, {}, now=500, stale_after=130)
    assert (stale.state, stale.idle_ips_per_node) == (State.STALE, 15)
    assert "no fresh scrape of ipamd in 130s" in stale.message
    missing = measure(nodes, ["n1"], {}, {"n1": 9}, now=500, stale_after=130)
    assert (missing.state, missing.idle_ips_per_node, missing.message) == (State.MISSING, None, "first scrape pending")
    assert missing.estimated_idle_ips_per_node == 9  # the estimate stands alone


def test_no_ip_errors_count_increases_in_the_window_and_survive_an_ipamd_restart() -> None:
    s = NodeScrape("n1")
    for at, counter in [(0, 5), (60, 7), (120, 7), (180, 2), (240, 4)]:  # restart between 120 s and 180 s
        s = s.with_sample(IpamdSample(10, 5, counter), at)
    assert s.no_ip_errors_within(now=240) == 2 + 0 + 2 + 2
    assert NodeScrape("n1").with_sample(IpamdSample(10, 5, 9), 0).no_ip_errors_within(now=0) is None
    # Readings older than the window fall out.
    late = s.with_sample(IpamdSample(10, 5, 4), 240 + ERRORS_WINDOW - 1)
    assert late.no_ip_errors_within(now=240 + ERRORS_WINDOW - 1) == 0


def test_estimate_is_ipamds_steady_state_idle_ips() -> None:
    limits = FALLBACK_LIMITS["m5.large"]
    default = parse_env({"WARM_ENI_TARGET": "1"})
    # 3 pods: the primary ENI's 9 IPs are not a spare ENI's worth, so a second ENI of 9 is attached.
    assert estimate_idle_ips(limits, IpMode.SECONDARY, default, 3) == 15
    tight = parse_env({"WARM_IP_TARGET": "2", "MINIMUM_IP_TARGET": "5"})
    assert estimate_idle_ips(limits, IpMode.SECONDARY, tight, 3) == 2
    assert (
        estimate_idle_ips(limits, IpMode.SECONDARY, tight, 3)
        == steady_state(limits, IpMode.SECONDARY, tight, 3).free_ips
    )


def test_status_fields_fit_the_crd_and_clear_what_is_absent() -> None:
    nodes = [("n1", "m5.large")]
    m = measure(nodes, ["n1"], {"n1": scrape("n1", 18, 3, 100, errors=1)}, {"n1": 15}, now=101, stale_after=60)
    fields = status_fields(m, "proxy", timestamp)
    WarmPoolPolicyStatus.model_validate({"measured": fields})  # what the API server's schema accepts
    assert fields["noIpErrors"] is None  # one reading: written as null, so an old count is deleted by the patch
    (item,) = fields["byInstanceType"]
    assert "noIpErrors" not in item  # list items are replaced whole: absent, never null
    assert (item["idleIpsPerNode"], item["estimatedIdleIpsPerNode"], item["noIpErrorsSinceStart"]) == (15, 15, 1)
    assert fields["scrapedTime"] == timestamp(100)
    off = status_fields(measure([], [], {}, {}, now=0, stale_after=1), "off", timestamp)
    assert (off["state"], off["byInstanceType"], off["idleIpsPerNode"]) == ("Missing", [], None)


def test_prometheus_export_per_type_and_forgets_a_policy_no_longer_planned() -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from warmpool.metrics import MeasuredCollector

    now = [1000.0]
    collector = MeasuredCollector(clock=lambda: now[0])
    registry = CollectorRegistry()
    registry.register(collector)
    m = measure([("n1", "m5.large")], ["n1"], {"n1": scrape("n1", 18, 3, 990)}, {"n1": 13}, now=1000, stale_after=60)
    collector.record("web", m)
    text = generate_latest(registry).decode()
    assert 'warmpool_measured_idle_ips_per_node{instance_type="m5.large",policy="web"} 15.0' in text
    assert 'warmpool_estimated_idle_ips_per_node{instance_type="m5.large",policy="web"} 13.0' in text
    assert "warmpool_measured_no_ip_errors{" not in text  # one reading: no increase to tell
    now[0] += MeasuredCollector.FORGET_AFTER_SECONDS + 1
    assert 'policy="web"' not in generate_latest(registry).decode()
