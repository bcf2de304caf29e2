"""A small TTL cache that can still hand out expired entries, and the answer type built from it.

Time is injected (`now`), never read from a global clock, so tests move it by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

V = TypeVar("V")


class Answer(dict[str, V]):
    """EC2 answers by key, plus where they came from.

    A plain dict to callers that do not care; the sets say which keys are `stale` (served from cache after EC2
    failed), came from the embedded `fallback` table, or are `missing` (EC2 says they do not exist and nothing
    else knows them). `error` is the human cause when EC2 failed during this lookup.
    """

    __slots__ = ("error", "fallback", "missing", "stale")

    def __init__(
        self,
        values: Mapping[str, V] | None = None,
        *,
        stale: Iterable[str] = (),
        fallback: Iterable[str] = (),
        missing: Iterable[str] = (),
        error: str | None = None,
    ) -> None:
        super().__init__(values or {})
        self.stale = frozenset(stale)
        self.fallback = frozenset(fallback)
        self.missing = frozenset(missing)
        self.error = error

    @property
    def degraded(self) -> bool:
        """True when any part of the answer is not a fresh EC2 answer."""
        return bool(self.stale or self.fallback or self.error)


@dataclass(frozen=True, slots=True)
class Hit(Generic[V]):
    value: V | None  # None: EC2 answered that the key does not exist (negative caching)
    fresh: bool


class TtlCache(Generic[V]):
    """Entries are fresh for `ttl` seconds, then kept as stale fallbacks until `keep_for` seconds old."""

    def __init__(self, ttl: float, now: Callable[[], float], keep_for: float | None = None) -> None:
        self._ttl = ttl
        self._now = now
        self._keep_for = max(keep_for if keep_for is not None else 24 * 3600.0, ttl)
        self._entries: dict[str, tuple[float, V | None]] = {}

    def get(self, key: str) -> Hit[V] | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        at, value = entry
        return Hit(value, fresh=self._now() - at < self._ttl)

    def put(self, key: str, value: V | None) -> None:
        self._entries[key] = (self._now(), value)

    def prune(self) -> None:
        """Forget entries too old even to serve stale (terminated instances, deleted subnets)."""
        now = self._now()
        for key in [k for k, (at, _) in self._entries.items() if now - at >= self._keep_for]:
            del self._entries[key]

    def __len__(self) -> int:
        return len(self._entries)
