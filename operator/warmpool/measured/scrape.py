"""The I/O edge of measured pool state: reads ipamd's metrics from the aws-node pods of the sampled nodes, in
the background, at most once per interval, a bounded number at a time, each with a timeout. Planning never
waits for it: a policy pass says which nodes it wants (`want`) and reads whatever the last rounds brought
(`scrapes`); a failure is kept beside the node's last good sample, for status to report.

Two ways to the endpoint (`Settings.ipamd_metrics`):
- `proxy`: GET /api/v1/namespaces/NS/pods/POD:61678/proxy/metrics on the API server, with the operator's own
  credentials (RBAC: get pods/proxy in NS). The API server dials the pod's IP; aws-node is hostNetwork, so
  that is the node's IP, which the control plane reaches on EKS as it reaches the kubelet.
- `direct`: GET http://POD_IP:61678/metrics from the operator's pod (network policy / security groups must
  let it reach the nodes on that port).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from urllib.parse import quote

import aiohttp

from warmpool import metrics
from warmpool.measured.aggregate import NodeScrape
from warmpool.measured.exposition import NotIpamdMetrics, parse_ipamd_metrics
from warmpool.observe.listwatch import ApiError, ConfigLoader, KubeHttp
from warmpool.settings import Settings

log = logging.getLogger("warmpool.measured")

# Prometheus text format 0.0.4: what ipamd's promhttp handler serves when asked for nothing better.
ACCEPT_TEXT = "text/plain;version=0.0.4;q=1,*/*;q=0.1"
FORGET_AFTER_INTERVALS = 5  # a policy that stopped asking (deleted, selector changed) is dropped after this


@dataclass(frozen=True, slots=True)
class Target:
    """One node to scrape: its aws-node pod is found by the DaemonSet's pod selector in `namespace`."""

    node: str
    namespace: str
    selector: str  # label selector, e.g. "k8s-app=aws-node"


@dataclass(frozen=True, slots=True)
class PodRef:
    name: str
    ip: str


class ScrapeFailed(Exception):
    pass


@dataclass
class RoundStats:
    started: float
    seconds: float = 0.0
    nodes: int = 0
    failed: int = 0


def selector_of(match_labels: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(match_labels.items()))


class IpamdScraper:
    def __init__(self, settings: Settings, load_config: ConfigLoader, clock: Callable[[], float] = time.time) -> None:
        self.via = settings.ipamd_metrics
        self.port = settings.ipamd_metrics_port
        self.interval = settings.ipamd_scrape_interval_seconds
        self.timeout = settings.ipamd_scrape_timeout_seconds
        self.per_type = settings.ipamd_scrape_nodes_per_type
        self.concurrency = settings.ipamd_scrape_concurrency
        self._limit = asyncio.Semaphore(self.concurrency)
        self._clock = clock
        self.http = KubeHttp(load_config, connections=settings.ipamd_scrape_concurrency)
        self._direct: aiohttp.ClientSession | None = None
        self.scrapes: dict[str, NodeScrape] = {}
        self._pods: dict[tuple[str, str], PodRef] = {}  # (namespace, node) -> its aws-node pod
        self._wanted: dict[str, tuple[float, frozenset[Target]]] = {}
        self._asked = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.last_round: RoundStats | None = None

    @property
    def stale_after(self) -> float:
        """A sample older than this is stale: two intervals plus the time a round may take."""
        return 2 * self.interval + self.timeout * 2

    # ----- what a policy pass calls -----

    def want(self, key: str, targets: Iterable[Target]) -> None:
        """The nodes `key` (a policy) wants read from now on; wakes the loop when one was never scraped."""
        found = frozenset(targets)
        self._wanted[key] = (self._clock(), found)
        if any(t.node not in self.scrapes for t in found):
            self._asked.set()

    # ----- the background loop -----

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="warmpool-ipamd-scraper")

    async def run(self) -> None:
        while True:
            await self._asked.wait()
            self._asked.clear()
            started = self._clock()
            try:
                await self.scrape_round()
            except Exception:  # never let the loop die: the next round tries again
                log.exception("ipamd scrape round failed")
            # At most one round per interval, however often policies ask.
            await asyncio.sleep(max(0.0, started + self.interval - self._clock()))
            if self._targets():
                self._asked.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.http.close()
        if self._direct is not None:
            await self._direct.close()
            self._direct = None

    def _targets(self) -> list[Target]:
        now = self._clock()
        for key, (asked, _) in list(self._wanted.items()):
            if now - asked > FORGET_AFTER_INTERVALS * self.interval:
                del self._wanted[key]
        union = {t for _, targets in self._wanted.values() for t in targets}
        return sorted(union, key=lambda t: (t.namespace, t.node))

    async def scrape_round(self) -> RoundStats:
        """Scrape every wanted node once; returns what the round cost."""
        targets = self._targets()
        stats = RoundStats(started=self._clock(), nodes=len(targets))
        clock = time.perf_counter()
        results = await asyncio.gather(*(self._scrape(t) for t in targets))
        stats.failed = sum(1 for ok in results if not ok)
        stats.seconds = time.perf_counter() - clock
        live = {t.node for t in targets}
        for node in [n for n in self.scrapes if n not in live]:
            del self.scrapes[node]  # a node no policy samples any more (removed, or out of the sample)
        self.last_round = stats
        metrics.IPAMD_SCRAPE_ROUND_SECONDS.observe(stats.seconds)
        if stats.failed:
            log.info("ipamd scrape round: %d of %d nodes failed", stats.failed, stats.nodes)
        return stats

    async def _scrape(self, target: Target) -> bool:
        async with self._limit:
            began = time.perf_counter()
            try:
                async with asyncio.timeout(self.timeout):
                    text = await self._fetch(target)
                sample = parse_ipamd_metrics(text)
            except (ScrapeFailed, NotIpamdMetrics) as error:
                self._failed(target, str(error))
                return False
            except TimeoutError:
                self._failed(target, f"no answer from ipamd in {self.timeout:g}s ({self.via})")
                return False
            except (aiohttp.ClientError, OSError) as error:
                self._failed(target, f"{type(error).__name__}: {error}")
                return False
            finally:
                metrics.IPAMD_SCRAPE_SECONDS.labels(self.via).observe(time.perf_counter() - began)
        old = self.scrapes.get(target.node) or NodeScrape(node=target.node)
        self.scrapes[target.node] = old.with_sample(sample, self._clock())
        metrics.IPAMD_SCRAPES.labels(self.via, "ok").inc()
        return True

    def _failed(self, target: Target, message: str) -> None:
        self._pods.pop((target.namespace, target.node), None)  # the pod may have been replaced: look it up again
        old = self.scrapes.get(target.node) or NodeScrape(node=target.node)
        self.scrapes[target.node] = replace(old, error=message[:300], error_at=self._clock())
        metrics.IPAMD_SCRAPES.labels(self.via, "error").inc()

    async def _fetch(self, target: Target) -> str:
        pod = await self._pod(target)
        if self.via == "direct":
            return await self._fetch_direct(pod)
        path = f"/api/v1/namespaces/{target.namespace}/pods/{quote(pod.name)}:{self.port}/proxy/metrics"
        try:
            response = await self.http.get(path, {}, self.timeout, accept=ACCEPT_TEXT)
        except ApiError as error:
            raise ScrapeFailed(_proxy_problem(error, target.namespace, pod.name, self.port)) from error
        async with response:
            return await response.text()

    async def _fetch_direct(self, pod: PodRef) -> str:
        if self._direct is None:
            self._direct = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=self.concurrency))
        host = f"[{pod.ip}]" if ":" in pod.ip else pod.ip
        async with self._direct.get(f"http://{host}:{self.port}/metrics", headers={"Accept": ACCEPT_TEXT}) as response:
            if response.status != 200:
                raise ScrapeFailed(f"HTTP {response.status} from {pod.ip}:{self.port}")
            return await response.text()

    async def _pod(self, target: Target) -> PodRef:
        """The node's running aws-node pod, looked up by node name (a field the API server indexes), cached."""
        key = (target.namespace, target.node)
        if key in self._pods:
            return self._pods[key]
        params = {"labelSelector": target.selector, "fieldSelector": f"spec.nodeName={target.node}"}
        try:
            response = await self.http.get(f"/api/v1/namespaces/{target.namespace}/pods", params, self.timeout)
        except ApiError as error:
            raise ScrapeFailed(f"listing aws-node pods in {target.namespace}: {error}") from error
        async with response:
            body = await response.json()
        for item in body.get("items") or ():
            status, meta = item.get("status") or {}, item.get("metadata") or {}
            if status.get("phase") == "Running" and status.get("podIP") and not meta.get("deletionTimestamp"):
                self._pods[key] = PodRef(str(meta.get("name", "")), str(status["podIP"]))
                return self._pods[key]
        raise ScrapeFailed(f"no running pod matching {target.selector} in {target.namespace} on this node")


def _proxy_problem(error: ApiError, namespace: str, pod: str, port: int) -> str:
    if error.status == 403:
        return (
            f"the operator may not get pods/proxy in {namespace}: grant it (deploy/'s ipamd-metrics Role) or set "
            "WARMPOOL_IPAMD_METRICS=direct or off"
        )
    if error.status in (502, 503):
        return f"the API server could not reach {pod}:{port} ({error})"
    return f"pod proxy to {pod}: {error}"
