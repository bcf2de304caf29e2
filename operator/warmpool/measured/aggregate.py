"""From scrapes of ipamd's metrics to what status shows: per instance type, the idle IPs a node really holds
(ipamd's total - assigned), the pod IP assignments that failed for want of one, and beside them the operator's
own estimate for the same nodes (ipamd's steady state under the env in force). Pure: time is an argument."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from itertools import pairwise
from statistics import fmean
from typing import Any

from warmpool.ipamd.env import IpamdTargets
from warmpool.ipamd.limits import InstanceLimits, IpMode
from warmpool.ipamd.pool import steady_state
from warmpool.measured.exposition import IpamdSample


class State(StrEnum):
    FRESH = "Fresh"  # every sampled node answered within the last scrape intervals
    PARTIAL = "Partial"  # some did; the figures are over those
    STALE = "Stale"  # none did lately: the figures are the last ones read, as old as `scrapedTime` says
    MISSING = "Missing"  # nothing read yet (or nothing readable)
    OFF = "Off"  # scraping is switched off in the operator's settings


ERRORS_WINDOW = 600.0  # no-IP errors are counted over the last 10 minutes of scrapes


@dataclass(frozen=True, slots=True)
class NodeScrape:
    """What the scraper knows of one node's ipamd: the last sample read and when, the no-IP error counter as
    read over the last ERRORS_WINDOW (for its increase), and the last failure (cleared by the next success)."""

    node: str
    sample: IpamdSample | None = None
    at: float | None = None
    counts: tuple[tuple[float, int], ...] = ()  # (time, awscni_no_available_ip_addresses), oldest first
    error: str = ""
    error_at: float | None = None

    def with_sample(self, sample: IpamdSample, at: float) -> NodeScrape:
        counts = self.counts
        if sample.no_ip_errors is not None:
            counts = (*(c for c in counts if at - c[0] <= ERRORS_WINDOW), (at, sample.no_ip_errors))
        return NodeScrape(node=self.node, sample=sample, at=at, counts=counts)

    def no_ip_errors_within(self, now: float, window: float = ERRORS_WINDOW) -> int | None:
        """The counter's increase between scrapes within `window` seconds of `now` (a drop means ipamd restarted
        and counts from 0 again). None until two readings exist."""
        recent = [(t, n) for t, n in self.counts if now - t <= window]
        if len(recent) < 2:
            return None
        return sum(b - a if b >= a else b for (_, a), (_, b) in pairwise(recent))


@dataclass(frozen=True, slots=True)
class TypeMeasure:
    instance_type: str
    nodes: int  # nodes of this type the policy selects
    sampled: int  # of them, the ones chosen to be scraped
    measured: int  # of those, the ones whose figures are below
    idle_ips_per_node: float | None
    estimated_idle_ips_per_node: float | None
    assigned_ips_per_node: float | None
    total_ips_per_node: float | None
    enis_per_node: float | None
    no_ip_errors: int | None  # within ERRORS_WINDOW, summed over the measured nodes
    no_ip_errors_since_start: int | None  # ipamd's counters as read, summed
    scraped_at: float | None  # the oldest scrape the figures use


@dataclass(frozen=True, slots=True)
class Measurement:
    state: State
    message: str
    types: tuple[TypeMeasure, ...] = ()
    idle_ips_per_node: float | None = None
    estimated_idle_ips_per_node: float | None = None
    no_ip_errors: int | None = None
    sampled: int = 0
    measured: int = 0
    scraped_at: float | None = None


def _rank(node: str) -> bytes:
    return hashlib.sha256(node.encode()).digest()


def choose_sample(nodes: Iterable[tuple[str, str]], per_type: int) -> list[str]:
    """Up to `per_type` nodes of each instance type, by a hash of the name: the same nodes pass after pass (so
    a counter's increase is read on the same nodes), and a node joining or leaving moves at most one choice."""
    by_type: dict[str, list[str]] = defaultdict(list)
    for name, itype in nodes:
        by_type[itype].append(name)
    chosen = [n for names in by_type.values() for n in sorted(names, key=_rank)[: max(per_type, 0)]]
    return sorted(chosen)


def estimate_idle_ips(limits: InstanceLimits, mode: IpMode, targets: IpamdTargets, ip_pods: int) -> int:
    """The operator's estimate of the idle IPs of a node with `ip_pods` pods: ipamd's settled pool under
    `targets`, in the mode ipamd runs on that instance type."""
    return steady_state(limits, limits.runs_mode(mode), targets, ip_pods).free_ips


def _mean(values: Sequence[float]) -> float | None:
    return round(fmean(values), 2) if values else None


def _sum(values: Iterable[int | None]) -> int | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def measure(
    nodes: Sequence[tuple[str, str]],
    sample: Iterable[str],
    scrapes: Mapping[str, NodeScrape],
    estimated: Mapping[str, int],
    now: float,
    stale_after: float,
) -> Measurement:
    """Per instance type figures over the sampled nodes. `nodes` are the selected (name, instance type) pairs,
    `estimated` the operator's idle-IP estimate by node. A scrape older than `stale_after` seconds is stale:
    used only when no sampled node has a fresh one."""
    type_of = dict(nodes)
    chosen = [n for n in sample if n in type_of]
    fresh = {n for n in chosen if (r := scrapes.get(n)) and r.sample and r.at is not None and now - r.at <= stale_after}
    have = {n for n in chosen if (r := scrapes.get(n)) and r.sample}
    used = fresh or have
    if not chosen:
        state, message = State.MISSING, "no selected node to scrape"
    elif not have:
        state, message = State.MISSING, _failures(chosen, scrapes) or "first scrape pending"
    elif not fresh:
        state = State.STALE
        message = f"no fresh scrape of ipamd in {stale_after:.0f}s; " + (
            _failures(chosen, scrapes) or "figures are the last ones read"
        )
    elif len(fresh) < len(chosen):
        state, message = (
            State.PARTIAL,
            f"{len(fresh)} of {len(chosen)} sampled nodes read; "
            + (_failures([n for n in chosen if n not in fresh], scrapes) or "the others not scraped yet"),
        )
    else:
        state, message = State.FRESH, f"ipamd read on {len(fresh)} nodes"

    count_by_type: dict[str, int] = defaultdict(int)
    for _, itype in nodes:
        count_by_type[itype] += 1
    chosen_by_type: dict[str, list[str]] = defaultdict(list)
    for n in chosen:
        chosen_by_type[type_of[n]].append(n)
    types = []
    for itype in sorted(count_by_type):
        names = chosen_by_type.get(itype, [])
        got = [scrapes[n] for n in names if n in used]
        samples = [s.sample for s in got if s.sample is not None]
        # The estimate for the same nodes as the measurement; for every sampled one while none was read.
        compared = [n for n in names if n in used] or names
        types.append(
            TypeMeasure(
                instance_type=itype,
                nodes=count_by_type[itype],
                sampled=len(names),
                measured=len(samples),
                idle_ips_per_node=_mean([s.idle_ips for s in samples]),
                estimated_idle_ips_per_node=_mean([estimated[n] for n in compared if n in estimated]),
                assigned_ips_per_node=_mean([s.assigned_ips for s in samples]),
                total_ips_per_node=_mean([s.total_ips for s in samples]),
                enis_per_node=_mean([s.enis for s in samples if s.enis is not None]),
                no_ip_errors=_sum(s.no_ip_errors_within(now) for s in got),
                no_ip_errors_since_start=_sum(s.no_ip_errors for s in samples),
                scraped_at=min((s.at for s in got if s.at is not None), default=None),
            )
        )
    used_samples = [read for n in used if (read := scrapes[n].sample) is not None]
    return Measurement(
        state=state,
        message=message,
        types=tuple(types),
        idle_ips_per_node=_mean([s.idle_ips for s in used_samples]),
        estimated_idle_ips_per_node=_mean([estimated[n] for n in (used or chosen) if n in estimated]),
        no_ip_errors=_sum(t.no_ip_errors for t in types),
        sampled=len(chosen),
        measured=len(used_samples),
        scraped_at=min((t.scraped_at for t in types if t.scraped_at is not None), default=None),
    )


def _failures(names: Iterable[str], scrapes: Mapping[str, NodeScrape], shown: int = 3) -> str:
    failed = [(n, s.error) for n in names if (s := scrapes.get(n)) and s.error]
    if not failed:
        return ""
    text = "; ".join(f"{n}: {e}" for n, e in failed[:shown])
    more = f" (and {len(failed) - shown} more)" if len(failed) > shown else ""
    return f"scrape failed on {len(failed)} node(s): {text}{more}"


def status_fields(m: Measurement, via: str, timestamp: Any) -> dict[str, Any]:
    """`status.measured`, every key present (None deletes it in the merge patch, so old figures never linger).
    `timestamp` formats Unix seconds as the status's RFC 3339 strings."""

    def when(t: float | None) -> str | None:
        return timestamp(t) if t is not None else None

    return {
        "state": m.state.value,
        "message": m.message[:2048],
        "via": via,
        "scrapedTime": when(m.scraped_at),
        "nodesSampled": m.sampled,
        "nodesMeasured": m.measured,
        "idleIpsPerNode": m.idle_ips_per_node,
        "estimatedIdleIpsPerNode": m.estimated_idle_ips_per_node,
        "noIpErrors": m.no_ip_errors,
        "noIpErrorsWindow": f"{ERRORS_WINDOW:g}s",
        "byInstanceType": [
            _without_none(
                {
                    "instanceType": t.instance_type,
                    "nodes": t.nodes,
                    "nodesSampled": t.sampled,
                    "nodesMeasured": t.measured,
                    "idleIpsPerNode": t.idle_ips_per_node,
                    "estimatedIdleIpsPerNode": t.estimated_idle_ips_per_node,
                    "assignedIpsPerNode": t.assigned_ips_per_node,
                    "totalIpsPerNode": t.total_ips_per_node,
                    "enisPerNode": t.enis_per_node,
                    "noIpErrors": t.no_ip_errors,
                    "noIpErrorsSinceStart": t.no_ip_errors_since_start,
                    "scrapedTime": when(t.scraped_at),
                }
            )
            for t in m.types
        ],
    }


def _without_none(item: dict[str, Any]) -> dict[str, Any]:
    """List items are replaced whole by a merge patch: an absent figure is left out, not written as null."""
    return {k: v for k, v in item.items() if v is not None}
