"""A lean list + watch of one cluster-scoped collection (pods, nodes), feeding a store.

Paginated list (`limit` + `continue`), then a watch from the list's resourceVersion with bookmarks, resumed from
the last resourceVersion seen when the connection ends; a 410 Gone (the version was compacted or the API
server's watch cache no longer has it) means relisting, which replaces the store's whole set; other errors back
off and resume. Bodies are handed to the store one at a time and dropped: no task, copy or diff per object.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
from kubernetes import client
from prometheus_client import Counter

log = logging.getLogger("warmpool.observe")

WATCH_EVENTS = Counter("warmpool_watch_events_total", "Watch events applied to the stores.", ["collection"])
LISTS = Counter("warmpool_lists_total", "Complete lists (the first one, then relists).", ["collection"])
RELISTS = Counter("warmpool_relists_total", "Relists forced by 410 Gone.", ["collection"])
WATCH_ERRORS = Counter(
    "warmpool_watch_errors_total", "Failed lists or watches, retried after a backoff.", ["collection"]
)


class Sink(Protocol):
    """What a watched collection feeds: one object at a time, bodies never kept."""

    def on_event(self, event: str, body: Mapping[str, Any], now: float) -> None: ...
    def begin_relist(self) -> None: ...
    def on_listed(self, body: Mapping[str, Any], now: float) -> None: ...
    def end_relist(self) -> None: ...
    def abort_relist(self) -> None: ...


class Gone(Exception):
    """HTTP 410: the resourceVersion or continue token is too old."""


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


ConfigLoader = Callable[[], Awaitable[client.Configuration]]


class KubeHttp:
    """aiohttp against the API server, with the credentials of a kubernetes client Configuration (the operator's
    kubeconfig or in-cluster ServiceAccount). The configuration is reloaded after errors, and credential
    headers are read per request so rotated tokens and exec plugins are honored."""

    def __init__(self, load: ConfigLoader, connections: int = 4) -> None:
        self._load = load
        self._connections = connections
        self._config: client.Configuration | None = None
        self._session: aiohttp.ClientSession | None = None

    async def _ensure(self) -> tuple[aiohttp.ClientSession, client.Configuration]:
        if self._session is None or self._config is None:
            config = await self._load()
            context: ssl.SSLContext | bool
            if config.verify_ssl:
                context = ssl.create_default_context(cafile=config.ssl_ca_cert)
                if config.cert_file:
                    context.load_cert_chain(config.cert_file, config.key_file)
            else:
                context = False
            self._config = config
            self._session = aiohttp.ClientSession(
                base_url=config.host.rstrip("/") + "/",
                connector=aiohttp.TCPConnector(ssl=context, limit=self._connections),
                auto_decompress=True,
            )
        return self._session, self._config

    async def _headers(self, config: client.Configuration, accept: str = "application/json") -> dict[str, str]:
        # auth_settings() may run a refresh hook (exec plugin, token file): keep it off the event loop.
        settings = await asyncio.to_thread(config.auth_settings)
        headers = {"Accept": accept}
        for setting in settings.values():
            if setting.get("in") == "header" and setting.get("value"):
                headers[str(setting["key"])] = str(setting["value"])
        return headers

    async def get(
        self, path: str, params: Mapping[str, str], read_timeout: float, accept: str = "application/json"
    ) -> aiohttp.ClientResponse:
        session, config = await self._ensure()
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=read_timeout)
        headers = await self._headers(config, accept)
        response = await session.get(
            path.lstrip("/"), params=params, headers=headers, timeout=timeout, proxy=config.proxy
        )
        if response.status != 200:
            text = (await response.read())[:500].decode(errors="replace")
            response.release()
            if response.status == 410:
                raise Gone(text)
            raise ApiError(response.status, text)
        return response

    async def reset(self) -> None:
        """Forget the session and configuration: the next request loads them afresh."""
        if self._session is not None:
            await self._session.close()
        self._session, self._config = None, None

    async def close(self) -> None:
        await self.reset()


async def lines(response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    """The newline-delimited events of a watch, however long a line is (aiohttp's readline caps them)."""
    pending = bytearray()
    async for chunk in response.content.iter_any():
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            if pending:
                pending += chunk[start:end]
                yield bytes(pending)
                pending.clear()
            else:
                yield chunk[start:end]
            start = end + 1
        pending += chunk[start:]
    if pending.strip():
        yield bytes(pending)


@dataclass
class WatchStats:
    lists: int = 0  # complete lists (the first one, then one per relist)
    pages: int = 0
    relists: int = 0  # lists forced by 410 Gone
    watches: int = 0  # watch connections opened
    events: int = 0  # ADDED / MODIFIED / DELETED applied
    bookmarks: int = 0
    errors: int = 0
    last_error: str = ""
    resource_version: str = ""
    synced_at: float | None = None  # when the first list completed


class ListWatch:
    def __init__(
        self,
        http: KubeHttp,
        path: str,
        sink: Sink,
        *,
        page_size: int = 500,
        watch_seconds: int = 300,
        max_backoff: float = 30.0,
    ) -> None:
        self.http = http
        self.path = path
        self.sink = sink
        self.page_size = page_size
        self.watch_seconds = watch_seconds
        self.max_backoff = max_backoff
        self.stats = WatchStats()
        self.synced = asyncio.Event()
        self._events_total = WATCH_EVENTS.labels(path)

    async def run(self) -> None:
        """Forever: list, watch, resume or relist. Cancel to stop."""
        rv: str | None = None
        backoff = 0.5
        while True:
            try:
                if rv is None:
                    rv = await self.list()
                opened, events = time.monotonic(), self.stats.events + self.stats.bookmarks
                rv = await self.watch(rv)
                if time.monotonic() - opened < 1.0 and events == self.stats.events + self.stats.bookmarks:
                    await asyncio.sleep(backoff)  # a server that ends watches at once must not make us spin
                    backoff = min(self.max_backoff, backoff * 2)
                else:
                    backoff = 0.5
            except Gone as error:
                log.info("%s: resourceVersion %s is gone (%s); relisting", self.path, rv, error)
                if rv is not None:
                    self.stats.relists += 1
                    RELISTS.labels(self.path).inc()
                rv = None
            except asyncio.CancelledError:
                raise
            except Exception as error:  # network, API server restart, bad gateway: back off and resume
                self.stats.errors += 1
                WATCH_ERRORS.labels(self.path).inc()
                self.stats.last_error = f"{type(error).__name__}: {error}"
                log.warning("%s: watch failed (%s); retrying in %.1fs", self.path, self.stats.last_error, backoff)
                await self.http.reset()
                await asyncio.sleep(backoff * random.uniform(0.8, 1.2))
                backoff = min(self.max_backoff, backoff * 2)

    async def list(self) -> str:
        """One consistent paginated list into a fresh set; returns its resourceVersion."""
        self.sink.begin_relist()
        try:
            token = ""
            while True:
                params = {"limit": str(self.page_size)}
                if token:
                    params["continue"] = token
                response = await self.http.get(self.path, params, read_timeout=120)
                try:
                    page = json.loads(await response.read())
                finally:
                    response.release()
                now = time.time()
                for item in page.get("items") or ():  # `items: null` in an empty list
                    self.sink.on_listed(item, now)
                page.pop("items", None)
                self.stats.pages += 1
                meta = page.get("metadata") or {}
                token = meta.get("continue") or ""
                if not token:
                    break
        except BaseException:
            self.sink.abort_relist()
            raise
        self.sink.end_relist()
        self.stats.lists += 1
        LISTS.labels(self.path).inc()
        rv = str(meta.get("resourceVersion") or "")
        self.stats.resource_version = rv
        if self.stats.synced_at is None:
            self.stats.synced_at = time.time()
            self.synced.set()
        log.info("%s: listed in %d pages at resourceVersion %s", self.path, self.stats.pages, rv)
        return rv

    async def watch(self, rv: str) -> str:
        """One watch connection from `rv`; returns the last resourceVersion seen when the server ends it."""
        params = {
            "watch": "1",
            "resourceVersion": rv,
            "allowWatchBookmarks": "true",
            # Spread reconnects of many operators/collections, as client-go does.
            "timeoutSeconds": str(int(self.watch_seconds * random.uniform(1.0, 1.2))),
        }
        response = await self.http.get(self.path, params, read_timeout=self.watch_seconds * 1.2 + 60)
        self.stats.watches += 1
        sink, stats, events_total = self.sink, self.stats, self._events_total
        try:
            async for line in lines(response):
                if not line.strip():
                    continue
                event = json.loads(line)
                kind = event.get("type")
                body = event.get("object") or {}
                if kind == "ERROR":
                    code = body.get("code")
                    if code == 410:
                        raise Gone(str(body.get("message", "")))
                    raise ApiError(int(code or 0), str(body.get("message", "")))
                new_rv = (body.get("metadata") or {}).get("resourceVersion")
                if kind == "BOOKMARK":
                    stats.bookmarks += 1
                else:
                    sink.on_event(str(kind), body, time.time())
                    stats.events += 1
                    events_total.inc()
                if new_rv:
                    rv = str(new_rv)
                    stats.resource_version = rv
        finally:
            response.release()
        return rv
