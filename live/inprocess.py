"""The live channel inside one process (``codetrackr serve`` without Redis).

Publishing hands the message's JSON text to every local subscription of the channel right away;
only the subscriptions' own bounded queues hold messages. It has no transport to lose, so it never
drops for an outage, only for slow subscribers, and :meth:`InProcessLiveChannel.listened` always
knows the answer: it reads the subscriber registry itself, from any thread, without the loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
from collections.abc import Collection, Mapping
from typing import Any

from live.port import LiveStats, check_channel, check_channels, publish_from_any_thread
from live.subscription import DEFAULT_QUEUE_SIZE, Subscription, dumps

__all__ = ["InProcessLiveChannel"]

_log = logging.getLogger(__name__)


class InProcessLiveChannel:
    """In-process :class:`live.port.LiveChannel` (asyncio; one event loop)."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._subscriptions: dict[str, set[Subscription]] = {}
        # Held while the registry's keys change (on the loop) and while ``listened`` reads them
        # (in a processor's thread): a dict must not be read while another thread resizes it.
        self._registry_lock = threading.Lock()
        self._stats = LiveStats()
        self._closed = False

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()

    async def close(self) -> None:
        self._closed = True
        with self._registry_lock:
            ended = list(self._subscriptions.values())
            self._subscriptions.clear()
        for subscriptions in ended:
            for subscription in subscriptions:
                subscription.end()

    async def publish(self, channel: str, message: Mapping[str, Any]) -> None:
        check_channel(channel)
        self._deliver(channel, dumps(message))

    def publish_threadsafe(self, channel: str, message: Mapping[str, Any]) -> None:
        publish_from_any_thread(
            channel,
            message,
            stats=self._stats,
            loop=self._loop,
            loop_thread=self._loop_thread,
            closed=self._closed,
            sink=self._deliver,
        )

    def _deliver(self, channel: str, text: str) -> None:
        if self._closed:
            self._stats.publish_failures += 1
            return
        self._stats.published += 1
        for subscription in tuple(self._subscriptions.get(channel, ())):
            before = subscription.dropped_total
            subscription.offer(text)
            self._stats.delivered += 1
            self._stats.dropped_slow += subscription.dropped_total - before

    async def subscribe(
        self, channel: str, *, queue_size: int = DEFAULT_QUEUE_SIZE
    ) -> Subscription:
        check_channel(channel)
        if self._closed:
            raise RuntimeError("the live channel is closed")
        subscription = Subscription(channel, queue_size, self._forget)
        with self._registry_lock:
            self._subscriptions.setdefault(channel, set()).add(subscription)
        return subscription

    def _forget(self, subscription: Subscription) -> None:
        with self._registry_lock:
            subscriptions = self._subscriptions.get(subscription.channel)
            if subscriptions is not None:
                subscriptions.discard(subscription)
                if not subscriptions:
                    del self._subscriptions[subscription.channel]

    def listened(self, channels: Collection[str]) -> set[str]:
        """The channels of ``channels`` with a local subscription: the whole answer, as nothing
        outside this process can subscribe. Never blocks on the loop; only a channel's last
        subscription leaving removes it (an empty set of subscriptions is never kept)."""
        names = check_channels(channels)
        with self._registry_lock:
            return {name for name in names if name in self._subscriptions}

    def stats(self) -> LiveStats:
        subscribers = sum(len(s) for s in self._subscriptions.values())
        return dataclasses.replace(self._stats, subscribers=subscribers)
