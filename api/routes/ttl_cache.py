"""A value kept for a short time, for reads that many anonymous callers repeat.

``GET /api/v1/stats/public`` sums every user's days twice; a landing page polled by every
visitor must not turn each visit into two scans of the projection. :class:`TtlCache` keeps the
last answer per key for ``ttl_s`` seconds of an injected monotonic clock (tests advance it
instead of sleeping), and callers that arrive while it is being computed wait for that one
computation instead of starting their own. A computation that raises caches nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["TtlCache"]

T = TypeVar("T")


class TtlCache(Generic[T]):
    """One value per key, recomputed when older than ``ttl_s``; only the newest key is kept."""

    def __init__(self, ttl_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl_s = ttl_s
        self._clock = clock
        self._key: Hashable | None = None
        self._value: T | None = None
        self._expires = float("-inf")
        self._lock = asyncio.Lock()

    async def get(self, key: Hashable, compute: Callable[[], Awaitable[T]]) -> T:
        cached = self._fresh(key)
        if cached is not None:
            return cached
        async with self._lock:
            cached = self._fresh(key)  # computed by the caller we waited for
            if cached is not None:
                return cached
            value = await compute()
            self._key, self._value = key, value
            self._expires = self._clock() + self._ttl_s
            return value

    def _fresh(self, key: Hashable) -> T | None:
        if self._key == key and self._value is not None and self._clock() < self._expires:
            return self._value
        return None
