"""In-process counters for the ``limits`` library's sliding-window-counter strategy.

Why not ``limits.aio.storage.MemoryStorage``: on every counted request it starts a task that
scans every key it holds for expiry, so each request costs O(keys): about 1 ms per request with
1,000 keys on a development machine, and a flood from many addresses would make the limiter the
bottleneck. This storage implements the same interface (the strategy and its window arithmetic
stay the library's) over one dict, and sweeps expired keys at most once per ``sweep_every_s``.

Everything runs on the event loop's thread with no ``await`` inside an update, so each call is
atomic; it is not safe to share across threads or event loops.

``clock`` (epoch seconds, ``time.time`` by default) is injectable so that tests move time
forward instead of sleeping through windows.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from math import floor

from limits.aio.storage import SlidingWindowCounterSupport, Storage
from limits.storage.base import TimestampedSlidingWindow

__all__ = ["Clock", "InProcessCounters"]

Clock = Callable[[], float]  # epoch seconds, like time.time


class InProcessCounters(Storage, SlidingWindowCounterSupport, TimestampedSlidingWindow):
    """Counters with an expiry time, in a dict (``limits`` async storage interface)."""

    def __init__(self, *, sweep_every_s: float = 1.0, clock: Clock = time.time) -> None:
        super().__init__()
        self._clock = clock
        self._counts: dict[str, tuple[int, float]] = {}  # key -> (count, expires at, epoch s)
        self._sweep_every_s = sweep_every_s
        self._next_sweep = 0.0

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return ValueError  # nothing here does I/O

    def __len__(self) -> int:
        return len(self._counts)

    def _sweep(self, now: float) -> None:
        if now >= self._next_sweep:
            self._counts = {k: v for k, v in self._counts.items() if v[1] > now}
            self._next_sweep = now + self._sweep_every_s

    def _count(self, key: str, now: float) -> int:
        found = self._counts.get(key)
        return found[0] if found is not None and found[1] > now else 0

    def _incr(self, key: str, expiry: float, amount: int, now: float) -> int:
        self._sweep(now)
        found = self._counts.get(key)
        if found is None or found[1] <= now:
            self._counts[key] = (amount, now + expiry)  # the expiry starts with the first hit
            return amount
        self._counts[key] = (found[0] + amount, found[1])
        return found[0] + amount

    def _window(self, key: str, expiry: int, now: float) -> tuple[int, float, int, float]:
        """(previous count, previous TTL, current count, current TTL), as ``limits`` defines
        them: windows are aligned to multiples of ``expiry`` since the epoch."""
        previous_key, current_key = self.sliding_window_keys(key, expiry, now)
        previous = self._count(previous_key, now)
        current = self._count(current_key, now)
        previous_ttl = 0.0 if previous == 0 else (1 - (((now - expiry) / expiry) % 1)) * expiry
        current_ttl = (1 - ((now / expiry) % 1)) * expiry + expiry
        return previous, previous_ttl, current, current_ttl

    async def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        return self._incr(key, expiry, amount, self._clock())

    async def get(self, key: str) -> int:
        return self._count(key, self._clock())

    async def get_expiry(self, key: str) -> float:
        now = self._clock()
        found = self._counts.get(key)
        return found[1] if found is not None and found[1] > now else now

    async def check(self) -> bool:
        return True

    async def reset(self) -> int | None:
        count = len(self._counts)
        self._counts.clear()
        return count

    async def clear(self, key: str) -> None:
        self._counts.pop(key, None)

    async def acquire_sliding_window_entry(
        self, key: str, limit: int, expiry: int, amount: int = 1
    ) -> bool:
        if amount > limit:
            return False
        now = self._clock()
        previous, previous_ttl, current, _ = self._window(key, expiry, now)
        if floor(previous * previous_ttl / expiry + current) + amount > limit:
            return False
        # The current window's counter lives two windows: in the next one it is the previous.
        self._incr(self.sliding_window_keys(key, expiry, now)[1], 2 * expiry, amount, now)
        return True

    async def get_sliding_window(self, key: str, expiry: int) -> tuple[int, float, int, float]:
        return self._window(key, expiry, self._clock())

    async def clear_sliding_window(self, key: str, expiry: int) -> None:
        for window_key in self.sliding_window_keys(key, expiry, self._clock()):
            self._counts.pop(window_key, None)
