"""The embedded log as a second process on the same machine sees it: reads from the file, writes
through the process that owns it.

The embedded log has one writer (:class:`~eventlog.embedded.log.SqliteEventLog` holds the
file's lock and hands out offsets from memory), so another process (the hook process of
``codetrackr serve``) may not write the file itself. :class:`SqliteLogFollower` reads the file
directly: readers and ``end_offsets`` open their own read connections, which SQLite's WAL mode
makes safe beside the owner's writer in another process (a read transaction sees a consistent
snapshot; it never blocks the writer nor is blocked by it). Appends and a group's commits go to
``writes``, which hands them to the owner (:mod:`codetrackr.hook_channel`): they are durable
once ``writes`` returns, exactly as in the owner.

The owner's appends wake its own readers through a signal in its memory; a follower's readers
are woken by :meth:`SqliteLogFollower.appended` (the owner tells the follower, over the channel it
has with it), and otherwise poll the file, at most every 0.25 s, or when their timeout ends.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from eventlog.embedded.log import SqliteEventLog
from eventlog.embedded.sqlite_file import ReadConnection
from eventlog.port import Delivered, LogUnavailable, Record, Rewrite, TopicPartition

__all__ = ["LogWrites", "SqliteLogFollower"]


class LogWrites(Protocol):
    """The owner's side of a follower's writes; raises :class:`LogUnavailable` when it cannot
    take them (nothing stored)."""

    async def append(self, records: Sequence[Record]) -> None: ...

    async def commit(self, group: str, offsets: Mapping[TopicPartition, int]) -> None: ...


class SqliteLogFollower(SqliteEventLog):
    """:class:`eventlog.port.EventLog` on an embedded log file another process owns.

    Topics must exist already (the owner creates them before it starts a follower):
    ``ensure_topics`` creates nothing. ``rewrite`` (erasure) is the owner's alone.
    """

    def __init__(self, path: Path, writes: LogWrites) -> None:
        super().__init__(path)
        self._writes = writes

    async def start(self) -> None:
        if self._queries is not None:
            raise RuntimeError("SqliteLogFollower already started")
        if not self.path.exists():
            raise LogUnavailable(f"embedded event log {self.path} does not exist")
        self._queries = ReadConnection(self.path)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._queries is not None:
            await self._queries.close()

    async def ensure_topics(self, topics: Mapping[str, int]) -> None:
        return None

    def appended(self) -> None:
        """The owner stored records: wake the readers waiting in ``fetch`` (thread-safe)."""
        self._signal.notify()

    async def append(self, records: Sequence[Record]) -> None:
        if records:
            await self._writes.append(records)

    async def rewrite(
        self,
        topic: str,
        plan: Callable[[Sequence[Delivered]], Rewrite],
        *,
        key: bytes | None = None,
        refuse: bytes | None = None,
    ) -> int:
        raise LogUnavailable("only the process that owns the embedded log rewrites it")

    async def _commit_offsets(self, group: str, offsets: Mapping[TopicPartition, int]) -> None:
        await self._writes.commit(group, offsets)
