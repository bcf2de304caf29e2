"""A policy pass's part of measured pool state: tell the scraper which nodes to read, and turn what it has read
so far into `status.measured`, the Measured condition and the Prometheus gauges. Never waits for a scrape."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from warmpool import metrics
from warmpool.apply.daemonset import DaemonSetView
from warmpool.conditions import ConditionUpdate
from warmpool.ipamd.env import max_eni_from_env, mode_from_env, parse_env
from warmpool.measured.aggregate import Measurement, State, choose_sample, estimate_idle_ips, measure, status_fields
from warmpool.measured.scrape import IpamdScraper, Target, selector_of
from warmpool.step import Observed
from warmpool.step.status import timestamp

OFF_MESSAGE = "reading ipamd's metrics is switched off (WARMPOOL_IPAMD_METRICS=off)"


def measured_pass(
    scraper: IpamdScraper | None,
    policy: str,
    uid: str,
    namespace: str,
    ds: Mapping[str, Any] | None,
    target: DaemonSetView | None,
    observed: Observed,
    now: float,
) -> tuple[dict[str, Any], ConditionUpdate]:
    """(status.measured, the Measured condition) for one pass of one policy."""
    if scraper is None:
        m = Measurement(State.OFF, OFF_MESSAGE)
        metrics.MEASURED.record(policy, None)
        return status_fields(m, "off", timestamp), ConditionUpdate("Measured", None, "Off", OFF_MESSAGE)
    nodes = [(n.name, n.instance_type) for n in observed.snapshot.nodes]
    sample = choose_sample(nodes, scraper.per_type)
    labels = ((ds or {}).get("spec") or {}).get("selector", {}).get("matchLabels") or {}
    if labels:
        scraper.want(uid, (Target(n, namespace, selector_of(labels)) for n in sample))
    m = measure(nodes, sample, scraper.scrapes, _estimates(observed, target, sample), now, scraper.stale_after)
    if not labels:
        m = Measurement(State.MISSING, "the target DaemonSet (and so its pods' selector) could not be read")
    metrics.MEASURED.record(policy, m)
    ok = m.state in (State.FRESH, State.PARTIAL)
    return status_fields(m, scraper.via, timestamp), ConditionUpdate("Measured", ok, m.state.value, m.message)


def _estimates(observed: Observed, target: DaemonSetView | None, sample: list[str]) -> dict[str, int]:
    """The operator's idle-IP estimate for each sampled node, under the env the DaemonSet has now."""
    if target is None:
        return {}
    env = target.plain_env()
    targets, mode, max_eni = parse_env(env), mode_from_env(env), max_eni_from_env(env)
    wanted = set(sample)
    out = {}
    for node in observed.snapshot.nodes:
        limits = observed.limits.get(node.instance_type)
        if node.name in wanted and limits is not None:
            out[node.name] = estimate_idle_ips(limits.with_max_eni(max_eni), mode, targets, node.ip_pods)
    return out
