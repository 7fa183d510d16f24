"""The embedded log itself: :class:`SqliteEventLog`, its writer thread and group commit (the
file's layout, erasure and partitioning are described in :mod:`eventlog.embedded`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, TypeVar

from eventlog.embedded.erasure import apply_rewrite
from eventlog.embedded.reader import SqliteLogReader, read_end_offsets
from eventlog.embedded.sqlite_file import (
    SCHEMA,
    ReadConnection,
    connect,
    lock_exclusively,
    make_private,
    partition_for,
    unavailable,
)
from eventlog.embedded.writer import (
    MAX_RECORDS_PER_TRANSACTION,
    STOP,
    AppendSignal,
    Op,
    Rejected,
    WriterState,
)
from eventlog.port import (
    Delivered,
    LogReader,
    LogUnavailable,
    Record,
    RecordRefused,
    Rewrite,
    TopicPartition,
    check_records,
)

__all__ = ["SqliteEventLog"]

_T = TypeVar("_T")


class SqliteEventLog:
    """:class:`eventlog.port.EventLog` on a local SQLite file; single process.

    Concurrency: every write (``append``, reader ``commit``, ``ensure_topics``) goes to one
    dedicated writer thread through a queue. The writer takes everything queued, writes it in ONE
    transaction (one fsync) and then settles all the callers' futures: group commit, so many
    concurrent small appends cost about as much as one. Readers and ``end_offsets`` use their own
    connections on their own threads. No method runs SQLite on the event loop.

    Blocking: coroutines only wait, never block the loop. ``append`` returns after the fsync'd
    commit that holds its records; a caller cancelled before the writer took its work has nothing
    stored, one cancelled later may have it stored (as the port allows).

    Errors: any :class:`sqlite3.Error` becomes :class:`eventlog.port.LogUnavailable`. A failed
    transaction fails every call in that group; the writer reloads its counters from the file and
    keeps serving. ``append`` raises :class:`TypeError` for a key or value that is not ``bytes``
    (before queueing, so a bad record cannot fail other callers' group).

    Backpressure: the queue is unbounded, but each caller waits for its own commit, so the queue
    holds at most what the callers have in flight (e.g. the HTTP server's concurrency). A group
    holds at most ~20k records; the rest wait for the next one.

    Shutdown: ``close`` lets the writer finish everything queued before it, then stops it; later
    writes raise ``LogUnavailable``. Close readers first (they hold their own connections).

    Erasure: ``rewrite`` (:class:`eventlog.port.RewritableLog`) is one more writer op, so it runs
    in a group's transaction between appends, never interleaved with one. An op that refuses its
    work before changing anything (a ``plan`` that raises, an append of a refused key) fails
    alone; the rest of its group commits.

    One writer per file: ``start`` takes an exclusive lock on ``<file>.lock`` and raises
    ``LogUnavailable`` if another instance (in any process) holds it.
    """

    def __init__(self, path: Path, default_partitions: int = 1) -> None:
        if default_partitions < 1:
            raise ValueError("default_partitions must be at least 1")
        self._path = Path(path)
        self._default_partitions = default_partitions
        self._queue: queue.SimpleQueue[Op | object] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._closed = False
        self._signal = AppendSignal()
        self._queries: ReadConnection | None = None
        self._lock_file: IO[bytes] | None = None

    @property
    def path(self) -> Path:
        return self._path

    @property
    def appends(self) -> AppendSignal:
        """Notified after each commit that stored records (thread-safe): what wakes this log's
        readers, and what a process reading the file beside it may be told about."""
        return self._signal

    async def start(self) -> None:
        """Open (or create) the file and start the writer thread; raises ``LogUnavailable``."""
        if self._writer is not None:
            raise RuntimeError("SqliteEventLog already started")
        make_private(self._path)
        self._lock_file = lock_exclusively(self._path.with_name(self._path.name + ".lock"))
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._writer = threading.Thread(
            target=self._run_writer, args=(ready,), name="eventlog-sqlite-writer", daemon=True
        )
        self._writer.start()
        try:
            await asyncio.wrap_future(ready)
        except BaseException:
            self._release_lock()
            raise
        self._queries = ReadConnection(self._path)

    async def close(self) -> None:
        """Finish queued writes, stop the writer and close connections. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._writer is not None:
            self._queue.put(STOP)
            await asyncio.to_thread(self._writer.join)
        if self._queries is not None:
            await self._queries.close()
        self._release_lock()

    def _release_lock(self) -> None:
        lock_file, self._lock_file = self._lock_file, None
        if lock_file is not None:
            lock_file.close()  # closing the descriptor drops the flock

    async def ensure_topics(self, topics: Mapping[str, int]) -> None:
        for topic, partitions in topics.items():
            if partitions < 1:
                raise ValueError(f"topic {topic!r}: partitions must be at least 1")
        wanted = dict(topics)

        def create(conn: sqlite3.Connection, state: WriterState) -> None:
            for topic, partitions in wanted.items():
                state.create_topic(conn, topic, partitions)

        await self._submit(Op(create))

    async def append(self, records: Sequence[Record]) -> None:
        if not records:
            return
        check_records(records)
        batch = list(records)
        default = self._default_partitions

        def insert(conn: sqlite3.Connection, state: WriterState) -> None:
            # Checked here, in the writer, so it is ordered with rewrites: an append queued after
            # a refusing rewrite is refused, one queued before it is handed to its plan.
            if state.refused or state.refusing:
                for record in batch:
                    if state.is_refused(record.topic, record.key):
                        raise Rejected(
                            RecordRefused(
                                f"key {record.key!r} of topic {record.topic!r} was erased;"
                                " the log refuses its records"
                            )
                        )
            now_ms = time.time_ns() // 1_000_000
            rows = []
            for record in batch:
                count = state.create_topic(conn, record.topic, default)
                tp = (record.topic, partition_for(record.key, count))
                offset = state.next_offsets.get(tp, 0)
                state.next_offsets[tp] = offset + 1
                rows.append((*tp, offset, record.key, record.value, now_ms))
            conn.executemany(
                "INSERT INTO records (topic, partition, record_offset, key, value, timestamp_ms)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )

        await self._submit(Op(insert, records=len(batch)))

    async def end_offsets(self, topic: str) -> dict[TopicPartition, int]:
        # A topic is auto-created on first use, as by append, so the answer has every partition.
        await self.ensure_topics({topic: self._default_partitions})
        return await self._read(lambda conn: read_end_offsets(conn, topic))

    def reader(self, topics: Sequence[str], group: str) -> LogReader:
        return SqliteLogReader(self, list(topics), group)

    async def rewrite(
        self,
        topic: str,
        plan: Callable[[Sequence[Delivered]], Rewrite],
        *,
        key: bytes | None = None,
        refuse: bytes | None = None,
    ) -> int:
        """See :meth:`eventlog.port.RewritableLog.rewrite`.

        ``plan`` runs on the writer thread inside the transaction, so every append waits while it
        runs. With ``key`` the records come from the ``records_by_key`` index, not a scan of the
        topic. Unknown (partition, offset) pairs in the answer raise :class:`ValueError`.
        """
        if any(k is not None and not isinstance(k, bytes) for k in (key, refuse)):
            raise TypeError("key and refuse must be bytes")
        changed = 0

        def apply(conn: sqlite3.Connection, state: WriterState) -> None:
            nonlocal changed
            changed = apply_rewrite(conn, state, topic, plan, key=key, refuse=refuse)

        await self._submit(Op(apply, checkpoint=True))
        if changed:
            # Only a reader still before a changed record can see it, but let it see it now.
            self._signal.notify()
        return changed

    # -- internals used by readers ------------------------------------------------------------

    async def _commit_offsets(self, group: str, offsets: Mapping[TopicPartition, int]) -> None:
        rows = [(group, tp.topic, tp.partition, offset) for tp, offset in offsets.items()]

        def upsert(conn: sqlite3.Connection, state: WriterState) -> None:
            conn.executemany(
                "INSERT INTO group_offsets (group_name, topic, partition, next_offset)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (group_name, topic, partition)"
                " DO UPDATE SET next_offset = excluded.next_offset",
                rows,
            )

        await self._submit(Op(upsert))

    async def _read(self, query: Callable[[sqlite3.Connection], _T]) -> _T:
        if self._queries is None or self._closed:
            raise LogUnavailable("embedded event log is not started or already closed")
        return await self._queries.run(query)

    async def _submit(self, op: Op) -> None:
        writer = self._writer
        if self._closed or writer is None or not writer.is_alive():
            raise LogUnavailable("embedded event log is not started or already closed")
        self._queue.put(op)
        await asyncio.wrap_future(op.done)

    # -- the writer thread ----------------------------------------------------------------------

    def _run_writer(self, ready: concurrent.futures.Future[None]) -> None:
        state = WriterState()
        try:
            conn = connect(self._path, read_only=False)
        except sqlite3.Error as exc:
            ready.set_exception(unavailable(exc))
            return
        try:
            for statement in SCHEMA:
                conn.execute(statement)
            state.load(conn)
        except sqlite3.Error as exc:
            conn.close()
            ready.set_exception(unavailable(exc))
            return
        ready.set_result(None)
        try:
            stopping = False
            while not stopping:
                group, stopping = self._take_group()
                if group:
                    self._commit_group(conn, state, group)
        finally:
            conn.close()
            # Anything queued after STOP raced close(); fail it rather than leave it hanging.
            self._fail_leftovers()

    def _take_group(self) -> tuple[list[Op], bool]:
        item = self._queue.get()
        group: list[Op] = []
        records = 0
        while True:
            if item is STOP:
                return group, True
            assert isinstance(item, Op)
            # False means the caller was cancelled before we got here: nothing to do for it.
            if item.done.set_running_or_notify_cancel():
                group.append(item)
                records += item.records
            if records >= MAX_RECORDS_PER_TRANSACTION:
                return group, False
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return group, False

    def _commit_group(self, conn: sqlite3.Connection, state: WriterState, group: list[Op]) -> None:
        # An op rejecting its work changed nothing, so it fails alone; but only once the group
        # committed: an append refused because of a rewrite in a group that then rolls back was
        # not really refused, and fails (retryably) with the group instead.
        rejected: dict[Op, Exception] = {}
        try:
            conn.execute("BEGIN IMMEDIATE")
            for op in group:
                try:
                    op.apply(conn, state)
                except Rejected as rejection:
                    rejected[op] = rejection.error
            conn.execute("COMMIT")
        except Exception as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            # The in-memory counters may include the rolled-back rows; the file is the truth.
            with contextlib.suppress(sqlite3.Error):
                state.load(conn)
            state.refusing.clear()
            error = unavailable(exc) if isinstance(exc, sqlite3.Error) else exc
            for op in group:
                op.done.set_exception(error)
            return
        state.refused |= state.refusing
        state.refusing.clear()
        if any(op.checkpoint for op in group if op not in rejected):
            # Best effort: a reader in the middle of a read transaction makes it partial, and the
            # WAL is overwritten from its start by the next writes anyway.
            with contextlib.suppress(sqlite3.Error):
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        for op in group:
            if op in rejected:
                op.done.set_exception(rejected[op])
            else:
                op.done.set_result(None)
        if any(op.records for op in group if op not in rejected):
            self._signal.notify()

    def _fail_leftovers(self) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, Op) and item.done.set_running_or_notify_cancel():
                item.done.set_exception(LogUnavailable("embedded event log closed"))
