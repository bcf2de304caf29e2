"""Measured pool state end to end: KWOK nodes, each running the project's ipamd model fed by the pods bound to it
and serving its pool as ipamd's metrics behind the node's aws-node pod; the operator reads them through the API
server's pod proxy and status shows the same idle IPs the models hold."""

from __future__ import annotations

import time
from statistics import fmean
from typing import Any

import pytest

from warmpool.measured.aggregate import choose_sample
from warmpool.measured.exposition import IpamdSample
from warmpool.sim.trace import TRACE_VERSION, Event, Header, NodeAdd, PodStart, PodStop, Trace
from warmpool.step.status import parse_timestamp
from warmpool_dev.e2e.harness import KwokEnv, e2e_policy_spec, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

# Pods per node: a node under the first ENI's 9 IPs, one that needs a second ENI at once, one that bursts past
# two ENIs, and one that loses most of its pods again (IPs cooling down, an ENI that may go).
PODS = {"n1": 4, "n2": 12, "n3": 22, "n4": 16}
STOPPED = {"n4": 12}


def small_trace() -> Trace:
    events: list[Event] = [NodeAdd(t=0.0, node=n, instance_type="m5.large", zone="us-east-1a") for n in PODS]
    for n, count in PODS.items():
        events += [PodStart(t=5.0 + 0.5 * i, node=n, pod=f"{n}-p{i}") for i in range(count)]
    for n, count in STOPPED.items():
        events += [PodStop(t=30.0 + 0.5 * i, node=n, pod=f"{n}-p{i}") for i in range(count)]
    events.sort(key=lambda e: e.t)
    return Trace(events=events, header=Header(type="header", version=TRACE_VERSION))


def test_status_shows_the_idle_ips_the_ipamd_models_hold(kwok_env_with_ipamd: KwokEnv) -> None:
    env = kwok_env_with_ipamd
    assert env.models is not None
    assert env.driver is not None
    models, driver = env.models, env.driver
    spec = {**e2e_policy_spec(), "dryRun": True}  # the env stays as it is: the models keep their targets
    env.create_policy("measured", spec)
    env.start_operator()
    driver.speed = 1.0
    driver.replay(small_trace())
    nodes = sorted(models.models)
    assert len(nodes) == len(PODS), (nodes, models.errors)

    # Wait until the models have been still for a while and a scrape after that is in status.
    last: dict[str, IpamdSample] = {}
    still_since = time.time()

    def settled_and_scraped() -> dict[str, Any] | None:
        nonlocal last, still_since
        env.check_alive()
        now_samples = {n: models.sample(n) for n in nodes}
        if now_samples != last:
            last, still_since = now_samples, time.time()
        measured = (env.policy("measured").get("status") or {}).get("measured") or {}
        scraped = parse_timestamp(measured.get("scrapedTime"))
        fresh = measured.get("state") == "Fresh" and scraped is not None and scraped >= still_since + 1
        return measured if fresh and time.time() - still_since >= 15 else None

    measured = wait_for(settled_and_scraped, "the models to settle and a later scrape in status", timeout=400, every=1)
    sampled = choose_sample([(n, "m5.large") for n in nodes], per_type=10)
    assert sampled == nodes  # four nodes of one type: all of them are read
    (by_type,) = measured["byInstanceType"]
    model_idle = round(fmean(last[n].idle_ips for n in sampled), 2)
    model_total = round(fmean(last[n].total_ips for n in sampled), 2)
    print(  # numbers for the report: what ipamd's model holds, what status says, what the operator estimates
        f"\nmodel idle per node {[last[n].idle_ips for n in nodes]} mean {model_idle}; "
        f"status measured {by_type['idleIpsPerNode']}, estimated {by_type.get('estimatedIdleIpsPerNode')}; "
        f"no-IP {[last[n].no_ip_errors for n in nodes]}; scrapes served {models.endpoints.requests}"
    )
    assert by_type["nodesMeasured"] == len(nodes)
    assert by_type["idleIpsPerNode"] == model_idle == measured["idleIpsPerNode"]
    assert by_type["totalIpsPerNode"] == model_total
    assert by_type["enisPerNode"] == round(fmean(last[n].enis or 0 for n in sampled), 2)
    assert by_type.get("noIpErrorsSinceStart", 0) == sum(last[n].no_ip_errors or 0 for n in sampled)
    assert by_type["estimatedIdleIpsPerNode"] >= 0
    assert models.errors == []
