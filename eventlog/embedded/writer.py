"""What the embedded log's writer thread works with: the ops callers queue for it, the state it
keeps in memory between groups, and the signal with which it wakes blocked readers.

The thread itself and its group commit are in :class:`eventlog.embedded.log.SqliteEventLog`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

# Bounds one group commit, so the first caller in a burst is not held behind an unbounded batch.
MAX_RECORDS_PER_TRANSACTION = 20_000


class AppendSignal:
    """Wakes readers blocked in ``fetch`` when the writer commits records (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._generation = 0
        self._waiters: list[concurrent.futures.Future[None]] = []

    @property
    def generation(self) -> int:
        with self._lock:
            return self._generation

    def notify(self) -> None:
        with self._lock:
            self._generation += 1
            waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            # The waiter may have timed out and been cancelled meanwhile.
            with contextlib.suppress(concurrent.futures.InvalidStateError):
                waiter.set_result(None)

    async def wait(self, seen: int, timeout_s: float) -> None:
        """Return when the generation moved past ``seen`` or after ``timeout_s``."""
        waiter: concurrent.futures.Future[None] = concurrent.futures.Future()
        with self._lock:
            # Checked under the lock: an append between the caller's read and now is not missed.
            if self._generation != seen:
                return
            self._waiters.append(waiter)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.wrap_future(waiter), timeout_s)
        with self._lock, contextlib.suppress(ValueError):
            self._waiters.remove(waiter)


class Rejected(Exception):
    """Raised by an op's ``apply`` before it changed anything (file or writer state): that op
    alone fails with ``error``; the rest of its group commits as usual."""

    def __init__(self, error: Exception) -> None:
        super().__init__(error)
        self.error = error


@dataclass(eq=False)
class Op:
    """One unit of work for the writer thread; ``done`` is settled after the group commits."""

    apply: Callable[[sqlite3.Connection, WriterState], None]
    records: int = 0
    done: concurrent.futures.Future[None] = field(default_factory=concurrent.futures.Future)
    # Checkpoint the WAL into the file after the commit (erasures: the old page images in the
    # WAL would otherwise keep erased bytes on disk until the log is closed).
    checkpoint: bool = False


STOP = object()


@dataclass
class WriterState:
    """What the writer keeps in memory so an append costs one INSERT per record.

    ``refused`` holds the (topic, key) pairs that erasing rewrites refused, in memory only (see
    :meth:`SqliteEventLog.rewrite`); ``refusing`` those of the group being written, which join
    ``refused`` when it commits and are dropped when it rolls back.
    """

    partitions: dict[str, int] = field(default_factory=dict)
    next_offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    refused: set[tuple[str, bytes]] = field(default_factory=set)
    refusing: set[tuple[str, bytes]] = field(default_factory=set)

    def load(self, conn: sqlite3.Connection) -> None:
        """Reload what the file holds (at start, and after a rolled-back group)."""
        self.partitions = dict(conn.execute("SELECT name, partitions FROM topics"))
        # partition_ends keeps the end of a partition whose last records were deleted.
        self.next_offsets = {
            (topic, partition): next_offset
            for topic, partition, next_offset in conn.execute(
                "SELECT topic, partition, MAX(next_offset) FROM ("
                " SELECT topic, partition, MAX(record_offset) + 1 AS next_offset FROM records"
                " GROUP BY topic, partition"
                " UNION ALL SELECT topic, partition, next_offset FROM partition_ends"
                ") GROUP BY topic, partition"
            )
        }

    def is_refused(self, topic: str, key: bytes) -> bool:
        return (topic, key) in self.refused or (topic, key) in self.refusing

    def create_topic(self, conn: sqlite3.Connection, topic: str, partitions: int) -> int:
        existing = self.partitions.get(topic)
        if existing is not None:
            return existing
        conn.execute("INSERT INTO topics (name, partitions) VALUES (?, ?)", (topic, partitions))
        self.partitions[topic] = partitions
        return partitions
