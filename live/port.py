"""The live channel port: fire-and-forget publish, bounded subscriptions, per-channel order.

Two adapters implement it and pass one contract suite (``tests/contract/test_live_contract.py``):
:class:`live.inprocess.InProcessLiveChannel` (one process) and
:class:`live.redis.RedisLiveChannel` (Redis pub/sub, every process of a deployment).

Channels: ``user:<user_id>`` (only that user's sockets subscribe) and ``public:leaderboard``.
Messages are JSON objects (:mod:`schemas.live` types them).

Semantics every adapter keeps:

* ``start`` binds the channel to the running event loop; every other method but
  :meth:`LiveChannel.publish_threadsafe` and :meth:`LiveChannel.listened` runs on that loop.
* ``publish`` never blocks on a subscriber and never raises because the transport failed: when
  Redis is down the message is logged, counted (``stats().publish_failures``) and dropped. It
  raises TypeError/ValueError only for a message that is not JSON (a caller's bug).
* ``publish_threadsafe`` is the same from any thread (processors project in worker threads); it
  returns at once and never raises.
* ``listened`` tells, from any thread, which of some channels have a subscriber anywhere (on any
  process of the deployment), so that a processor can skip preparing messages nobody would
  receive. It blocks for at most about a second and never raises for the transport: when it
  cannot tell (Redis down, the loop not running, too slow) it answers that every channel is
  listened, which only costs the work it was meant to save.
* A subscription receives every message published on its channel after ``subscribe`` returned
  (one published just before may or may not arrive: it can still be in flight), in publish order
  per publisher, unless it is slow: its queue is bounded, the oldest messages
  are dropped and a ``{"type": "dropped", "count": n}`` notice takes their place. Other
  subscribers are never held up. After a transport outage the notice has ``count`` None.
* Live push is best effort: nothing is persisted, nothing is replayed. Clients that see a
  ``dropped`` notice re-read the state from the HTTP API.
* ``close`` ends every subscription's iteration and releases the transport.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable, Collection, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from live.subscription import DEFAULT_QUEUE_SIZE, Subscription, dumps
from schemas.live import (
    AiActivity,
    GoalReached,
    HeartbeatAccepted,
    LeaderboardChanged,
    LeaderboardUpdated,
    PluginEvent,
    StatsChanged,
)

__all__ = [
    "DEFAULT_QUEUE_SIZE",
    "LISTENED_TIMEOUT_S",
    "PUBLIC_LEADERBOARD",
    "LiveChannel",
    "LivePublisher",
    "LiveStats",
    "Subscription",
    "UserMessage",
    "check_channel",
    "check_channels",
    "is_channel_name",
    "user_channel",
]

PUBLIC_LEADERBOARD = "public:leaderboard"
_USER_PREFIX = "user:"
# How long ``listened`` may keep a processor's batch waiting before it gives up (and fails open).
LISTENED_TIMEOUT_S = 1.0
_log = logging.getLogger(__name__)

UserMessage = (
    HeartbeatAccepted | StatsChanged | LeaderboardChanged | PluginEvent | GoalReached | AiActivity
)
"""What may be pushed to one user's sockets."""


def user_channel(user_id: str) -> str:
    """The channel of one user's sockets."""
    if not user_id:
        raise ValueError("user id must not be empty")
    return _USER_PREFIX + user_id


def is_channel_name(name: str) -> bool:
    return name == PUBLIC_LEADERBOARD or (name.startswith(_USER_PREFIX) and name != _USER_PREFIX)


def check_channel(name: str) -> str:
    """``name``, or ValueError if it is not a live channel name (shared by the adapters)."""
    if not is_channel_name(name):
        raise ValueError(f"not a live channel name: {name!r}")
    return name


def check_channels(names: Collection[str]) -> frozenset[str]:
    """``names`` as a set, or ValueError if one is not a live channel name (shared by adapters)."""
    return frozenset(check_channel(name) for name in names)


@dataclass(slots=True)
class LiveStats:
    """Counters since start (a snapshot; adapters keep their own).

    ``publish_failures``: messages lost because the transport failed or its outbox was full.
    ``dropped_slow``: messages dropped from slow subscribers' queues.
    ``reconnects``: times the subscriber side lost the transport.
    """

    published: int = 0
    publish_failures: int = 0
    delivered: int = 0
    dropped_slow: int = 0
    reconnects: int = 0
    subscribers: int = 0


class LiveChannel(Protocol):
    """Publish/subscribe for live push. See the module docs for the contract."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def publish(self, channel: str, message: Mapping[str, Any]) -> None:
        """Publish ``message`` on ``channel``; returns without waiting for any subscriber."""
        ...

    def publish_threadsafe(self, channel: str, message: Mapping[str, Any]) -> None:
        """:meth:`publish` from any thread (or the loop's own); never blocks, never raises."""
        ...

    async def subscribe(
        self, channel: str, *, queue_size: int = DEFAULT_QUEUE_SIZE
    ) -> Subscription:
        """A new subscription; everything published on ``channel`` from now on reaches it."""
        ...

    def listened(self, channels: Collection[str]) -> set[str]:
        """Which of ``channels`` have at least one subscription, on any process; from any thread.

        Blocks for at most about :data:`LISTENED_TIMEOUT_S`. When the adapter cannot tell (its
        transport is down, its loop is not running, the answer is late; for an adapter that asks
        its transport, also a call on its own loop thread, where waiting would deadlock) every
        channel is reported listened: a wrong "listened" costs work, a wrong "not listened"
        would lose messages. A subscription that just closed may still count for a moment.
        Raises ValueError only for a name that is not a live channel (a caller's bug).
        """
        ...

    def stats(self) -> LiveStats: ...


def publish_from_any_thread(
    channel: str,
    message: Mapping[str, Any],
    *,
    stats: LiveStats,
    loop: asyncio.AbstractEventLoop | None,
    loop_thread: int | None,
    closed: bool,
    sink: Callable[[str, str], None],
) -> None:
    """The ``publish_threadsafe`` of every adapter: check and encode here, then hand the text to
    ``sink(channel, text)`` on the adapter's loop (directly when already on its thread, which
    keeps order with ``publish`` calls there). Never raises; failures are counted in ``stats``.
    """
    try:
        check_channel(channel)
        text = dumps(message)
    except (TypeError, ValueError):
        stats.publish_failures += 1
        _log.exception("live message on %r is not publishable; dropped", channel)
        return
    if threading.get_ident() == loop_thread:
        sink(channel, text)
        return
    if loop is None or closed:
        stats.publish_failures += 1
        return
    try:
        loop.call_soon_threadsafe(sink, channel, text)
    except RuntimeError:  # the loop is closed: the process is shutting down
        stats.publish_failures += 1


def listened_from_any_thread(
    channels: Collection[str],
    *,
    loop: asyncio.AbstractEventLoop | None,
    loop_thread: int | None,
    closed: bool,
    ask: Callable[[frozenset[str]], Coroutine[Any, Any, set[str]]],
    timeout_s: float = LISTENED_TIMEOUT_S,
) -> set[str]:
    """The ``listened`` of every adapter that must ask its transport on its own loop: check the
    names here, run ``ask(names)`` on the adapter's loop and wait at most ``timeout_s`` for it.

    Fails open: every name is reported listened when the loop is missing, closed, not running or
    is the calling thread (blocking it on itself would deadlock), when the answer is late (the
    call is then cancelled) or when ``ask`` failed. ``ask`` should fail open itself for the
    transport (it knows the outage); anything it raises is logged here. Raises ValueError only
    for a name that is not a live channel.
    """
    names = check_channels(channels)
    if not names:
        return set()
    if (
        loop is None
        or closed
        or threading.get_ident() == loop_thread
        or loop.is_closed()
        or not loop.is_running()
    ):
        return set(names)
    question = ask(names)
    try:
        future = asyncio.run_coroutine_threadsafe(question, loop)
    except RuntimeError:  # the loop closed meanwhile: the process is shutting down
        question.close()
        return set(names)
    try:
        answer = future.result(timeout_s)
    except (TimeoutError, concurrent.futures.CancelledError):
        future.cancel()
        return set(names)
    except Exception:
        _log.exception("live push: asking who listens failed; treating every channel as listened")
        return set(names)
    return answer & names


class LivePublisher:
    """What processors call once a projection is written: thread-safe, non-blocking, never raises.

    ``LivePublisher(None)`` publishes nothing (replays, tools). A failure is logged and counted in
    :attr:`failures`; it never reaches the caller's write path.
    """

    def __init__(self, channel: LiveChannel | None) -> None:
        self._channel = channel
        self.failures = 0

    @property
    def active(self) -> bool:
        """False for ``LivePublisher(None)``: callers may skip preparing messages."""
        return self._channel is not None

    def listening(self, channels: Collection[str]) -> set[str]:
        """Which of ``channels`` somebody listens to (:meth:`LiveChannel.listened`), so that a
        processor prepares only messages that would reach a socket. Empty when publishing
        nothing; every channel when the answer cannot be had (even a caller's bad name: the
        failure is logged and counted, never raised), as publishing to them is always harmless.
        """
        if self._channel is None:
            return set()
        try:
            return self._channel.listened(channels)
        except Exception:
            self.failures += 1
            _log.exception("live push: asking who listens failed; treating all as listened")
            return set(channels)

    def publish_user(self, user_id: str, message: UserMessage) -> None:
        self._publish(lambda: user_channel(user_id), message)

    def publish_public(self, message: LeaderboardUpdated) -> None:
        self._publish(lambda: PUBLIC_LEADERBOARD, message)

    def _publish(
        self, channel: Callable[[], str], message: UserMessage | LeaderboardUpdated
    ) -> None:
        # ``channel`` is a thunk so that a bad user id is caught like any other failure.
        if self._channel is None:
            return
        try:
            self._channel.publish_threadsafe(channel(), message.model_dump(mode="json"))
        except Exception:
            self.failures += 1
            _log.exception("live publish of %s failed; dropped", message.type)
