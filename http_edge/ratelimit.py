"""Rate limiting: the limit classes, the :class:`RateLimiter` port and its two adapters.

Classes (``docs/api.md`` has the numbers and the paths): ``general``, ``auth``, ``webhooks`` and
``badges`` are counted per client address; ``api_key`` is the hourly budget of one API key.
A class has one or more limits in the notation of the ``limits`` library (``"250/second;
12000/minute"``); a request must fit in every one. A class with no limits is not limited.

Both adapters are the ``limits`` library's sliding-window-counter strategy (O(1) per key: the
previous window's count weighted by how much of it still overlaps, plus the current one) over a
storage: :class:`InProcessRateLimiter` keeps counters in this process (``codetrackr serve``;
:mod:`http_edge.ratelimit_memory` says why not the library's memory storage);
:class:`RedisRateLimiter` keeps them in Redis (``CODETRACKR_REDIS_URL``) with the library's Redis
storage, so every process of a deployment shares them (per request, one to three round trips,
each covering all the limits of the class at once).
One contract suite passes for both (``tests/contract/test_ratelimit_contract.py``).

**An unavailable store fails open.** Rate limiting protects the service, it is not what the
service is for: when Redis cannot answer (refused, timed out, anything), the request is let
through uncounted (:attr:`Decision.enforced` False), a warning is logged once per outage, and for
a back-off (0.1 s doubling to 5 s) later requests skip Redis instead of each waiting for it. So a
Redis outage never takes ingest down or slows every request by a timeout; counting resumes by
itself (and logs so) on the first answer after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, TypeVar
from urllib.parse import urlsplit

from limits import RateLimitItem, parse_many
from limits.aio.storage import RedisStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.errors import StorageError
from limits.util import WindowStats
from redis.asyncio import BlockingConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.maint_notifications import MaintNotificationsConfig

from http_edge.ratelimit_memory import Clock, InProcessCounters

__all__ = [
    "Decision",
    "InProcessRateLimiter",
    "LimitClass",
    "RateLimiter",
    "RedisRateLimiter",
    "open_rate_limiter",
    "parse_limits",
]

_log = logging.getLogger(__name__)
T = TypeVar("T")
_STORE_ERRORS = (StorageError, RedisError, OSError, TimeoutError)
DEFAULT_REDIS_PREFIX = "codetrackr:ratelimit"


class LimitClass(StrEnum):
    GENERAL = "general"
    AUTH = "auth"
    ACCOUNT_CREATION = "account_creation"
    WEBHOOKS = "webhooks"
    BADGES = "badges"
    API_KEY = "api_key"


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer for one request in one class.

    ``limit``/``remaining``/``reset_at`` describe the limit closest to refusing (for a refusal:
    the one that frees up last). ``reset_at`` is epoch seconds when that limit has room for one
    more request; ``retry_after_s`` is 0 when allowed, else the whole seconds to wait (≥ 1).
    ``enforced`` is False when nothing was counted (no limit for the class, or the store was
    unavailable): then the other fields mean nothing and no rate-limit headers are sent.
    """

    allowed: bool
    limit: int = 0
    remaining: int = 0
    reset_at: float = 0.0
    retry_after_s: int = 0
    window: str = ""
    enforced: bool = True

    def headers(self, now: float | None = None) -> dict[str, str]:
        """``X-RateLimit-*`` (and ``Retry-After`` on a refusal); none when not enforced."""
        if not self.enforced:
            return {}
        now = time.time() if now is None else now
        reset_s = max(0, math.ceil(self.reset_at - now))
        if not self.allowed:
            # A refusal never announces a reset sooner than its Retry-After (the decision was
            # made a moment ago, on a clock that may be the store's).
            reset_s = max(reset_s, self.retry_after_s)
        found = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(reset_s),
        }
        if not self.allowed:
            found["Retry-After"] = str(self.retry_after_s)
        return found


NOT_COUNTED = Decision(allowed=True, enforced=False)


class RateLimiter(Protocol):
    """Counts requests per (class, key) and decides. Async, for the event loop's thread.

    Never raises for an unavailable store: it answers allowed and not enforced (fails open), and
    never waits long for the store (its own timeouts). Keys are opaque text: a client address
    bucket (:func:`http_edge.client_ip.rate_limit_key`) or an API key's id, never a secret.
    """

    async def hit(self, limit_class: LimitClass, key: str) -> Decision:
        """Count one request, unless some limit of the class is already full (then refuse)."""
        ...

    async def peek(self, limit_class: LimitClass, key: str) -> Decision:
        """Whether :meth:`hit` would allow a request now, counting nothing."""
        ...

    async def close(self) -> None: ...


def parse_limits(spec: str) -> tuple[RateLimitItem, ...]:
    """``"250/second; 12000/minute"`` → limits; blank → none. Raises ValueError when invalid."""
    if not spec.strip():
        return ()
    try:
        return tuple(parse_many(spec))
    except ValueError:
        raise ValueError(
            f"rate limit {spec!r}: expected e.g. '250/second;12000/minute' or '1000 per hour'"
        ) from None


class _SlidingWindow(SlidingWindowCounterRateLimiter):
    """The library's sliding-window-counter strategy, with its reset times on ``clock``.

    The library stamps ``reset_time`` with ``time.time()``; with another clock (a test's) the
    stamp is moved onto that clock. The counting and the window arithmetic stay the library's.
    """

    def __init__(self, storage: Storage, clock: Clock) -> None:
        super().__init__(storage)
        self._clock = clock

    async def get_window_stats(self, item: RateLimitItem, *identifiers: str) -> WindowStats:
        stats = await super().get_window_stats(item, *identifiers)
        if self._clock is time.time:
            return stats
        return WindowStats(stats.reset_time - time.time() + self._clock(), stats.remaining)


class _LimitsRateLimiter:
    """:class:`RateLimiter` over a ``limits`` storage, failing open when it is unavailable.

    ``clock`` (epoch seconds) must be the one the storage counts with: the wall clock, except
    for in-process counters under test.
    """

    def __init__(
        self,
        storage: Storage,
        limits: Mapping[LimitClass, str | Sequence[RateLimitItem]],
        *,
        store_name: str,
        concurrent: bool = False,
        backoff_initial_s: float = 0.1,
        backoff_max_s: float = 5.0,
        clock: Clock = time.time,
    ) -> None:
        self._storage = storage
        self._clock = clock
        self._strategy = _SlidingWindow(storage, clock)
        self._limits = {
            cls: parse_limits(spec) if isinstance(spec, str) else tuple(spec)
            for cls, spec in limits.items()
        }
        self._store_name = store_name
        self._concurrent = concurrent
        self._backoff_bounds = (backoff_initial_s, backoff_max_s)
        self._backoff_s = backoff_initial_s
        self._paused_until = 0.0
        self._degraded = False
        self.store_failures = 0  # failed store calls, for tests and diagnostics

    @property
    def degraded(self) -> bool:
        """True from a store failure until the store answers again (requests are let through)."""
        return self._degraded

    def limits_of(self, limit_class: LimitClass) -> tuple[RateLimitItem, ...]:
        return self._limits.get(limit_class, ())

    async def hit(self, limit_class: LimitClass, key: str) -> Decision:
        items = self.limits_of(limit_class)
        if not items or time.monotonic() < self._paused_until:
            return NOT_COUNTED
        if len(items) > 1:
            # Each limit counts only if it has room, but one full limit must not let the others
            # count a refused request (a client hammering while refused would otherwise fill
            # the longer windows too): look before counting.
            looked = await self.peek(limit_class, key)
            if not looked.allowed or not looked.enforced:
                return looked
        ids = (limit_class.value, key)
        try:
            allowed = await self._each(self._strategy.hit(i, *ids) for i in items)
            stats = await self._each(self._strategy.get_window_stats(i, *ids) for i in items)
        except _STORE_ERRORS as exc:
            return self._failed(exc)
        self._answered()
        return _decide(items, allowed, [(s.remaining, s.reset_time) for s in stats], self._clock())

    async def peek(self, limit_class: LimitClass, key: str) -> Decision:
        items = self.limits_of(limit_class)
        if not items or time.monotonic() < self._paused_until:
            return NOT_COUNTED
        ids = (limit_class.value, key)
        try:
            stats = await self._each(self._strategy.get_window_stats(i, *ids) for i in items)
        except _STORE_ERRORS as exc:
            return self._failed(exc)
        self._answered()
        # The strategy's own test is "the weighted count leaves room for one", i.e. this.
        allowed = [s.remaining >= 1 for s in stats]
        return _decide(items, allowed, [(s.remaining, s.reset_time) for s in stats], self._clock())

    async def _each(self, calls: Iterable[Awaitable[T]]) -> list[T]:
        """The calls' results in order: concurrently for a remote store (one round trip for all
        the limits of a class), one after the other in process (no task per call)."""
        if self._concurrent:
            return list(await asyncio.gather(*calls))
        return [await call for call in calls]

    def _failed(self, exc: BaseException) -> Decision:
        self.store_failures += 1
        now = time.monotonic()
        if now < self._paused_until:
            return NOT_COUNTED  # a call that began before the pause: the outage is known
        if self._degraded:
            self._backoff_s = min(self._backoff_s * 2, self._backoff_bounds[1])
        else:
            self._degraded = True
            self._backoff_s = self._backoff_bounds[0]
            _log.warning(
                "rate limiting suspended: the %s store is unavailable (%s: %s); requests are let "
                "through uncounted until it answers again",
                self._store_name,
                type(exc).__name__,
                exc,
            )
        self._paused_until = now + self._backoff_s
        return NOT_COUNTED

    def _answered(self) -> None:
        if self._degraded:
            self._degraded = False
            self._backoff_s = self._backoff_bounds[0]
            _log.warning("rate limiting resumed: the %s store answers again", self._store_name)


def _decide(
    items: Sequence[RateLimitItem],
    allowed: Sequence[bool],
    stats: Sequence[tuple[int, float]],
    now: float,
) -> Decision:
    refused = [i for i, ok in enumerate(allowed) if not ok]
    if refused:
        # The request passes only when every full limit has room again: wait for the last one.
        index = max(refused, key=lambda i: stats[i][1])
        reset_at = max(stats[index][1], now)
        return Decision(
            allowed=False,
            limit=items[index].amount,
            remaining=0,
            reset_at=reset_at,
            retry_after_s=max(1, math.ceil(reset_at - now)),
            window=str(items[index]),
        )
    index = min(range(len(items)), key=lambda i: (stats[i][0], -stats[i][1]))
    return Decision(
        allowed=True,
        limit=items[index].amount,
        remaining=max(0, stats[index][0]),
        reset_at=max(stats[index][1], now),
        window=str(items[index]),
    )


class InProcessRateLimiter(_LimitsRateLimiter):
    """Counters in this process: for one process (``codetrackr serve``), no Redis.

    ``clock`` (epoch seconds, the wall clock by default) lets tests move time forward instead
    of sleeping through windows.
    """

    def __init__(
        self,
        limits: Mapping[LimitClass, str | Sequence[RateLimitItem]],
        *,
        clock: Clock = time.time,
    ) -> None:
        self._counters = InProcessCounters(clock=clock)
        super().__init__(self._counters, limits, store_name="in-process", clock=clock)

    async def close(self) -> None:
        await self._counters.reset()


class RedisRateLimiter(_LimitsRateLimiter):
    """Counters in Redis (``limits``' Redis storage on redis-py), shared by every process.

    The client fails fast: ``op_timeout_s`` bounds connecting, each command and the wait for a
    pooled connection, and nothing is retried (the back-off above is the retry policy).
    """

    def __init__(
        self,
        url: str,
        limits: Mapping[LimitClass, str | Sequence[RateLimitItem]],
        *,
        prefix: str = DEFAULT_REDIS_PREFIX,
        op_timeout_s: float = 1.0,
        max_connections: int = 32,
        backoff_initial_s: float = 0.1,
        backoff_max_s: float = 5.0,
    ) -> None:
        scheme = urlsplit(url).scheme
        if scheme not in ("redis", "rediss", "unix"):
            raise ValueError(f"Redis URL {url!r}: expected redis://, rediss:// or unix://")
        self._pool = BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=op_timeout_s,
            socket_connect_timeout=op_timeout_s,
            socket_timeout=op_timeout_s,
            socket_keepalive=True,
            retry=Retry(NoBackoff(), 0),
            # As in live.redis: redis-py 8's maintenance notifications (a Redis Enterprise
            # feature) make the pool skip its liveness check, so after a Redis restart every
            # pooled connection would fail once more and suspend limiting again.
            maint_notifications_config=MaintNotificationsConfig(enabled=False),
        )
        # limits names its schemes async+redis://, async+rediss://, async+redis+unix://; the
        # pool above is what connects, the URI only picks the implementation.
        storage = RedisStorage(
            f"async+{'redis+' if scheme == 'unix' else ''}{url}",
            wrap_exceptions=True,
            implementation="redispy",
            key_prefix=prefix,
            connection_pool=self._pool,  # type: ignore[arg-type]
        )
        super().__init__(
            storage,
            limits,
            store_name="Redis",
            concurrent=True,
            backoff_initial_s=backoff_initial_s,
            backoff_max_s=backoff_max_s,
        )

    async def close(self) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self._pool.disconnect()


def open_rate_limiter(
    redis_url: str | None, limits: Mapping[LimitClass, str | Sequence[RateLimitItem]]
) -> RateLimiter:
    """Redis when a URL is configured, else in process. Does no I/O; the caller closes it."""
    if redis_url:
        return RedisRateLimiter(redis_url, limits)
    return InProcessRateLimiter(limits)
