"""The live channel over Redis pub/sub, so every api process sees what any processor publishes.

Per process: one publishing task that sends queued messages in pipelines (order kept), and one
pub/sub connection that SUBSCRIBEs to the union of the local subscriptions' channels and fans each
message out to them. Channels are prefixed in Redis (``codetrackr:live:`` by default).

Redis going away never reaches a caller:

* ``publish`` only appends to a bounded outbox and returns. When a send fails the batch is
  dropped, logged once per outage and counted (``stats().publish_failures``); for a back-off
  period (0.1 s doubling to 5 s) later messages are dropped without trying, so an outage costs
  the write path nothing. Messages are never replayed: live data that is late is stale.
* The subscriber side reconnects with jittered back-off and SUBSCRIBEs again to every channel it
  needs; once Redis confirms a channel, its local subscribers receive a ``dropped`` notice with
  ``count`` None (messages published meanwhile are lost).
* ``listened`` asks ``PUBSUB NUMSUB``, which counts the pub/sub connections of every process (each
  subscribes per channel, once for all its sockets). When Redis does not answer in time it reports
  every channel listened (the processors then do the work as if somebody were), logged once per
  outage; for a back-off period (as for publishing) it does not ask again.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import threading
from collections import deque
from collections.abc import Collection, Coroutine, Mapping
from typing import Any
from urllib.parse import urlsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.maint_notifications import MaintNotificationsConfig

from live.port import (
    LISTENED_TIMEOUT_S,
    LiveStats,
    check_channel,
    listened_from_any_thread,
    publish_from_any_thread,
)
from live.subscription import DEFAULT_QUEUE_SIZE, Subscription, dumps

__all__ = ["DEFAULT_PREFIX", "RedisLiveChannel", "redis_client"]

DEFAULT_PREFIX = "codetrackr:live:"
_PIPELINE_BATCH = 256
_READ_POLL_S = 1.0
_PING_EVERY_S = 5.0
_SILENCE_LIMIT_S = 15.0
_TRANSPORT_ERRORS = (RedisError, OSError, TimeoutError)
_log = logging.getLogger(__name__)


def redis_client(
    url: str, *, connect_timeout_s: float = 2.0, op_timeout_s: float = 5.0, max_connections: int = 8
) -> Redis:
    """A client that fails fast instead of retrying (the callers here have their own policy).

    A ``BlockingConnectionPool``: under a burst, callers wait for a free connection instead of
    failing with ``MaxConnectionsError``.
    """
    if urlsplit(url).scheme not in ("redis", "rediss", "unix"):
        raise ValueError(f"Redis URL {url!r}: expected redis://, rediss:// or unix://")
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=op_timeout_s,
        socket_connect_timeout=connect_timeout_s,
        socket_timeout=op_timeout_s,
        socket_keepalive=True,
        # No client-side health checks: they PING *and read the reply* inside a send, which would
        # race the pub/sub reader. The subscriber task pings from the reader instead.
        health_check_interval=0,
        retry=Retry(NoBackoff(), 0),
        # redis-py 8 enables maintenance notifications by default ("auto", RESP3), and with them
        # the pool skips its check that a pooled connection is still alive: after a Redis
        # restart, every connection pooled before it failed one more send ("Connection closed
        # by server"), each costing live push another back-off. They are for Redis Enterprise.
        maint_notifications_config=MaintNotificationsConfig(enabled=False),
    )
    return Redis.from_pool(pool)


class RedisLiveChannel:
    """:class:`live.port.LiveChannel` over Redis pub/sub (``redis.asyncio``)."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        outbox_size: int = 10_000,
        connect_timeout_s: float = 2.0,
        op_timeout_s: float = 5.0,
        backoff_initial_s: float = 0.1,
        backoff_max_s: float = 5.0,
        confirm_timeout_s: float = 2.0,
        listened_timeout_s: float = LISTENED_TIMEOUT_S,
    ) -> None:
        if urlsplit(url).scheme not in ("redis", "rediss", "unix"):
            raise ValueError(f"Redis URL {url!r}: expected redis://, rediss:// or unix://")
        self._url = url
        self._prefix = prefix
        self._outbox_size = outbox_size
        self._connect_timeout_s = connect_timeout_s
        self._op_timeout_s = op_timeout_s
        self._backoff = (backoff_initial_s, backoff_max_s)
        self._confirm_timeout_s = confirm_timeout_s
        self._listened_timeout_s = listened_timeout_s

        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._client: Redis | None = None
        self._closed = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._stats = LiveStats()
        # publishing
        self._outbox: deque[tuple[str, str]] = deque()
        self._outbox_ready = asyncio.Event()
        self._outbox_idle = asyncio.Event()  # nothing queued or being sent
        self._outbox_idle.set()
        self._publish_paused_until = 0.0
        self._publish_degraded = False
        # subscribing: channel names below are unprefixed
        self._local: dict[str, set[Subscription]] = {}
        self._pubsub: PubSub | None = None
        self._at_redis: set[str] = set()  # SUBSCRIBEd on the current pub/sub connection
        self._confirmations: dict[str, asyncio.Future[None]] = {}
        self._gap_pending: set[str] = set()  # resubscribed after an outage, not yet confirmed
        self._pubsub_lock = asyncio.Lock()
        self._settled = asyncio.Event()  # the first connection attempt succeeded or failed
        # asking who listens (loop time; the back-off mirrors publishing's)
        self._numsub_paused_until = 0.0
        self._numsub_backoff = backoff_initial_s
        self._numsub_degraded = False

    # ---- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind to the running loop and start the background tasks; needs no reachable Redis."""
        if self._client is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._client = redis_client(
            self._url, connect_timeout_s=self._connect_timeout_s, op_timeout_s=self._op_timeout_s
        )
        self._spawn(self._drain(), "live-redis-publisher")
        self._spawn(self._listen(), "live-redis-subscriber")

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(TimeoutError):  # let queued messages go out, briefly
            async with asyncio.timeout(1.0):
                await self._outbox_idle.wait()
        await _cancel_all(self._tasks)
        for subscriptions in self._local.values():
            for subscription in subscriptions:
                subscription.end()
        self._local.clear()
        if self._pubsub is not None:
            await _close_quietly(self._pubsub)
            self._pubsub = None
        if self._client is not None:
            with contextlib.suppress(*_TRANSPORT_ERRORS):
                await self._client.aclose()

    def stats(self) -> LiveStats:
        subscribers = sum(len(s) for s in self._local.values())
        return dataclasses.replace(self._stats, subscribers=subscribers)

    def _spawn(self, coroutine: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coroutine, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---- publishing ---------------------------------------------------------------------------

    async def publish(self, channel: str, message: Mapping[str, Any]) -> None:
        check_channel(channel)
        self._enqueue(channel, dumps(message))

    def publish_threadsafe(self, channel: str, message: Mapping[str, Any]) -> None:
        publish_from_any_thread(
            channel,
            message,
            stats=self._stats,
            loop=self._loop,
            loop_thread=self._loop_thread,
            closed=self._closed,
            sink=self._enqueue,
        )

    def _enqueue(self, channel: str, text: str) -> None:
        if self._closed or self._client is None:
            self._stats.publish_failures += 1
            return
        if len(self._outbox) >= self._outbox_size:
            self._outbox.popleft()
            self._stats.publish_failures += 1
        self._outbox.append((channel, text))
        self._outbox_idle.clear()
        self._outbox_ready.set()

    async def _drain(self) -> None:
        assert self._client is not None
        loop = asyncio.get_running_loop()
        backoff = self._backoff[0]
        lost = 0
        while not self._closed:
            await self._outbox_ready.wait()
            self._outbox_ready.clear()
            while self._outbox:
                count = min(len(self._outbox), _PIPELINE_BATCH)
                batch = [self._outbox.popleft() for _ in range(count)]
                if loop.time() < self._publish_paused_until:
                    self._stats.publish_failures += count
                    lost += count
                    continue
                try:
                    async with asyncio.timeout(self._op_timeout_s):
                        async with self._client.pipeline(transaction=False) as pipe:
                            for channel, text in batch:
                                pipe.publish(self._prefix + channel, text)
                            await pipe.execute()
                except _TRANSPORT_ERRORS as exc:
                    self._stats.publish_failures += count
                    lost += count
                    if not self._publish_degraded:
                        _log.warning(
                            "live push: cannot publish to Redis (%s); dropping live messages"
                            " until it is back (ingest and reads are unaffected)",
                            _describe(exc),
                        )
                        self._publish_degraded = True
                    self._publish_paused_until = loop.time() + backoff
                    backoff = min(backoff * 2, self._backoff[1])
                else:
                    self._stats.published += count
                    if self._publish_degraded:
                        _log.warning("live push: publishing to Redis again (%d dropped)", lost)
                        self._publish_degraded = False
                    backoff, lost = self._backoff[0], 0
            self._outbox_idle.set()

    # ---- subscribing --------------------------------------------------------------------------

    async def subscribe(
        self, channel: str, *, queue_size: int = DEFAULT_QUEUE_SIZE
    ) -> Subscription:
        check_channel(channel)
        if self._closed or self._client is None:
            raise RuntimeError("the live channel is not running")
        subscription = Subscription(channel, queue_size, self._forget)
        self._local.setdefault(channel, set()).add(subscription)
        try:
            await self._sync_channel(channel)
        except BaseException:
            subscription.close()
            raise
        return subscription

    def _forget(self, subscription: Subscription) -> None:
        subscriptions = self._local.get(subscription.channel)
        if subscriptions is None or subscription not in subscriptions:
            return
        subscriptions.discard(subscription)
        if not subscriptions:
            del self._local[subscription.channel]
            if not self._closed:
                self._spawn(self._sync_channel(subscription.channel), "live-redis-unsubscribe")

    # ---- who listens --------------------------------------------------------------------------

    def listened(self, channels: Collection[str]) -> set[str]:
        return listened_from_any_thread(
            channels,
            loop=self._loop,
            loop_thread=self._loop_thread,
            closed=self._closed,
            ask=self._numsub,
            timeout_s=self._listened_timeout_s,
        )

    async def _numsub(self, names: frozenset[str]) -> set[str]:
        """On the loop: which of ``names`` have a subscriber on any process; all when unsure.

        A channel with a local subscription is listened whatever Redis says (it may not have
        confirmed it yet). For the others, ``PUBSUB NUMSUB`` counts every process's pub/sub
        connection subscribed to them; one that just unsubscribed may still count for a moment.
        """
        local = {name for name in names if name in self._local}
        remote = sorted(names - local)
        if not remote:
            return local
        loop = asyncio.get_running_loop()
        if self._client is None or loop.time() < self._numsub_paused_until:
            return set(names)
        try:
            async with asyncio.timeout(self._listened_timeout_s):
                counts = await self._client.pubsub_numsub(*(self._prefix + n for n in remote))
        except _TRANSPORT_ERRORS as exc:
            if not self._numsub_degraded:
                _log.warning(
                    "live push: cannot ask Redis who listens (%s); preparing every live update"
                    " as if somebody did until it answers",
                    _describe(exc),
                )
                self._numsub_degraded = True
            self._numsub_paused_until = loop.time() + self._numsub_backoff
            self._numsub_backoff = min(self._numsub_backoff * 2, self._backoff[1])
            return set(names)
        if self._numsub_degraded:
            _log.warning("live push: Redis answers who listens again")
            self._numsub_degraded = False
        self._numsub_backoff = self._backoff[0]
        heard = set(local)
        for raw, count in counts:
            name = _text(raw)
            if count and name is not None and name.startswith(self._prefix):
                heard.add(name[len(self._prefix) :])
        return heard & names

    async def _sync_channel(self, channel: str) -> None:
        """Make Redis's subscription to ``channel`` match the local need; never raises for I/O.

        When subscribing, waits (bounded) until Redis confirmed, so a message published after
        ``subscribe`` returned is not missed.
        """
        confirmation: asyncio.Future[None] | None = None
        if not self._settled.is_set():  # the first connection attempt is under way: wait for it
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._confirm_timeout_s):
                    await self._settled.wait()
        async with self._pubsub_lock:
            pubsub = self._pubsub
            if pubsub is None:
                return  # the subscriber task subscribes to every needed channel on reconnect
            want, have = channel in self._local, channel in self._at_redis
            try:
                async with asyncio.timeout(self._op_timeout_s):
                    if want and not have:
                        confirmation = self._confirmation(channel)
                        await pubsub.subscribe(self._prefix + channel)
                        self._at_redis.add(channel)
                    elif have and not want:
                        await pubsub.unsubscribe(self._prefix + channel)
                        self._at_redis.discard(channel)
                    elif want:
                        confirmation = self._confirmations.get(channel)
            except _TRANSPORT_ERRORS:
                return  # the subscriber task sees the broken connection and resubscribes
        if confirmation is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._confirm_timeout_s):
                    # Shielded: one waiter giving up must not cancel the others' future.
                    await asyncio.shield(confirmation)

    def _confirmation(self, channel: str) -> asyncio.Future[None]:
        future = self._confirmations.get(channel)
        if future is None or future.done():
            future = asyncio.get_running_loop().create_future()
            self._confirmations[channel] = future
        return future

    async def _listen(self) -> None:
        backoff = self._backoff[0]
        lost = False
        while not self._closed:
            try:
                pubsub = await self._open_pubsub(after_outage=lost)
            except _TRANSPORT_ERRORS as exc:
                self._settled.set()
                if not lost:
                    _log.warning("live push: Redis unreachable (%s); retrying", _describe(exc))
                    lost = True
                    self._stats.reconnects += 1
                await asyncio.sleep(backoff * random.uniform(0.5, 1.0))
                backoff = min(backoff * 2, self._backoff[1])
                continue
            self._settled.set()
            if lost:
                _log.warning("live push: subscribed to Redis again")
            lost, backoff = False, self._backoff[0]
            try:
                await self._read(pubsub)
            except _TRANSPORT_ERRORS as exc:
                _log.warning("live push: lost the Redis connection (%s); reconnecting", exc)
                lost = True
                self._stats.reconnects += 1
            finally:
                async with self._pubsub_lock:
                    self._pubsub = None
                    self._at_redis.clear()
                await _close_quietly(pubsub)

    async def _open_pubsub(self, *, after_outage: bool) -> PubSub:
        assert self._client is not None
        async with self._pubsub_lock:
            pubsub = self._client.pubsub()
            channels = list(self._local)
            try:
                async with asyncio.timeout(self._op_timeout_s):
                    await pubsub.connect()  # type: ignore[no-untyped-call]
                    for channel in channels:
                        self._confirmation(channel)
                    if channels:
                        await pubsub.subscribe(*(self._prefix + c for c in channels))
            except BaseException:
                await _close_quietly(pubsub)
                raise
            self._pubsub = pubsub
            self._at_redis = set(channels)
            self._gap_pending = set(channels) if after_outage else set()
            return pubsub

    async def _read(self, pubsub: PubSub) -> None:
        # A connection that went silent (e.g. a peer gone without a FIN) is noticed by pinging
        # after a quiet second and giving up when nothing at all came back for a while.
        loop = asyncio.get_running_loop()
        last_seen = last_ping = loop.time()
        while not self._closed:
            message = await pubsub.get_message(timeout=_READ_POLL_S)
            now = loop.time()
            if message is None:
                if now - last_seen > _SILENCE_LIMIT_S:
                    raise ConnectionError(f"no answer from Redis for {_SILENCE_LIMIT_S:.0f} s")
                if now - last_ping > _PING_EVERY_S:
                    await pubsub.ping()
                    last_ping = now
                continue
            last_seen = now
            kind = message["type"]
            name = _text(message["channel"])
            if name is None or not name.startswith(self._prefix):
                continue
            channel = name[len(self._prefix) :]
            if kind == "message":
                data = _text(message["data"])
                if data is not None:
                    self._fan_out(channel, data)
            elif kind == "subscribe":
                confirmation = self._confirmations.pop(channel, None)
                if confirmation is not None and not confirmation.done():
                    confirmation.set_result(None)
                if channel in self._gap_pending:
                    self._gap_pending.discard(channel)
                    for subscription in tuple(self._local.get(channel, ())):
                        subscription.mark_gap()

    def _fan_out(self, channel: str, text: str) -> None:
        for subscription in tuple(self._local.get(channel, ())):
            before = subscription.dropped_total
            subscription.offer(text)
            self._stats.delivered += 1
            self._stats.dropped_slow += subscription.dropped_total - before


async def _cancel_all(tasks: set[asyncio.Task[None]], timeout_s: float = 5.0) -> None:
    """Cancel ``tasks`` and wait (bounded) until they are done.

    Cancelling again until they are: on Python 3.11 ``asyncio.wait_for`` (which redis-py uses
    while connecting) swallows a cancellation that arrives as the awaited call completes.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    pending = set(tasks)
    while pending and loop.time() < deadline:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.1)
    if pending:
        _log.warning("live push: %d background tasks did not stop", len(pending))


def _text(value: object) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value if isinstance(value, str) else None


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


async def _close_quietly(pubsub: PubSub) -> None:
    with contextlib.suppress(*_TRANSPORT_ERRORS):
        await pubsub.aclose()  # type: ignore[no-untyped-call]
