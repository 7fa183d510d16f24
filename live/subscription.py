"""One subscriber's bounded queue, shared by every live channel adapter.

A publisher never waits for a subscriber: offering a message to a full queue drops the OLDEST
queued message (for a dashboard the newest state matters most) and counts it. The next read then
yields a ``{"type": "dropped", "count": n}`` notice before the messages that were kept, so the
notice sits exactly where the gap is. A transport reconnect marks a gap of unknown size
(``count`` None). Messages are held as JSON text: serialized once by the publisher, forwarded as
is by a WebSocket, parsed only by consumers that want objects.

Not thread-safe: every method runs on the event loop that owns the channel (adapters marshal
publishes from other threads onto it).
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import Any

__all__ = ["DEFAULT_QUEUE_SIZE", "Subscription", "dumps"]

DEFAULT_QUEUE_SIZE = 256


def dumps(message: Any) -> str:
    """Compact JSON text of ``message``; raises TypeError/ValueError if it is not JSON."""
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


class Subscription:
    """Messages published on ``channel`` since :meth:`LiveChannel.subscribe` returned.

    ``async for message in subscription`` yields dicts; :meth:`next_json` yields the JSON text.
    Iteration ends after :meth:`close` or when the channel closes (queued messages are discarded).
    One consumer at a time.
    """

    def __init__(
        self, channel: str, maxsize: int, on_close: Callable[[Subscription], None]
    ) -> None:
        if maxsize < 1:
            raise ValueError("queue size must be at least 1")
        self.channel = channel
        self._maxsize = maxsize
        self._queue: deque[str] = deque()
        self._on_close = on_close
        self._dropped = 0  # since the last notice
        self._gap = False  # a loss of unknown size since the last notice
        self._closed = False
        self._waiter: asyncio.Future[None] | None = None
        self.dropped_total = 0

    # ---- producer side (the adapter) --------------------------------------------------------

    def offer(self, text: str) -> None:
        if self._closed:
            return
        if len(self._queue) >= self._maxsize:
            self._queue.popleft()
            self._dropped += 1
            self.dropped_total += 1
        self._queue.append(text)
        self._wake()

    def mark_gap(self) -> None:
        """Messages may have been lost upstream (the transport reconnected)."""
        if not self._closed:
            self._gap = True
            self._wake()

    def end(self) -> None:
        """The channel is closing: end iteration without deregistering."""
        self._closed = True
        self._queue.clear()
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    # ---- consumer side ----------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    def pending(self) -> int:
        """Messages queued now (not counting a pending drop notice)."""
        return len(self._queue)

    async def next_json(self) -> str:
        """The next message as JSON text; raises StopAsyncIteration once closed."""
        while True:
            if self._closed:
                raise StopAsyncIteration
            if self._dropped or self._gap:
                notice = {"type": "dropped", "count": None if self._gap else self._dropped}
                self._dropped, self._gap = 0, False
                return dumps(notice)
            if self._queue:
                return self._queue.popleft()
            if self._waiter is not None:
                raise RuntimeError("a subscription has one consumer at a time")
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> dict[str, Any]:
        message: dict[str, Any] = json.loads(await self.next_json())
        return message

    def close(self) -> None:
        """Stop receiving (idempotent); a consumer blocked in a read gets StopAsyncIteration."""
        on_close, self._on_close = self._on_close, _closed_already
        self.end()
        on_close(self)

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _closed_already(_: Subscription) -> None:
    return None
