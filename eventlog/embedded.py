"""The embedded event log: one SQLite file, durable across crashes, for a single process.

Layout of the file (WAL journal, ``synchronous=FULL``):

* ``topics(name, partitions)``: partition count of every topic, fixed when the topic is created.
* ``records(topic, partition, record_offset, key, value, timestamp_ms)``: the log itself, with
  the index ``records_by_key(topic, key)`` so one key's records are found without scanning the
  topic (for erasure; a file from before the index gets it, once, at ``start``).
* ``group_offsets(group_name, topic, partition, next_offset)``: committed consumer positions, in
  the same file so a commit is exactly as durable as the records it refers to.
* ``partition_ends(topic, partition, next_offset)``: written only when ``rewrite`` deletes
  records: the partition's next offset at that moment. The end of a partition is the larger of
  this and ``MAX(record_offset) + 1``, so deleting a partition's last record never lets its
  offset be handed out again nor its end offset move backwards.

Erasure: unlike Kafka, this log can change or delete records in place
(:meth:`SqliteEventLog.rewrite`, the :class:`eventlog.port.RewritableLog` capability), which is
how a user's data is erased for good. A deleted record leaves a gap in its partition's offsets;
readers skip it like any offset with no row, and a reader whose partition has nothing left but
erased records moves to the partition's end (as a Kafka consumer moves past compacted offsets),
so "read up to the end" still terminates. The writer runs with ``secure_delete=ON``, so the
erased bytes are zeroed in the database file, not left in free pages, and checkpoints the WAL
after every rewrite (``TRUNCATE``), so older page images there do not keep them either (best
effort: a checkpoint that a long read holds back completes with the next ones).

Partitioning: ``zlib.crc32(key) % partitions``. CRC-32 is stable across processes, Python versions
and platforms (unlike :func:`hash`), which is all the port asks for. It is not Kafka's murmur2, so
a key may land on a different partition number here than in :class:`eventlog.kafka.KafkaEventLog`;
nothing may depend on partition numbers across adapters.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import fcntl
import os
import queue
import sqlite3
import threading
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TypeVar

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

__all__ = ["SqliteEventLog", "partition_for"]

_T = TypeVar("_T")

# Bounds one group commit, so the first caller in a burst is not held behind an unbounded batch.
_MAX_RECORDS_PER_TRANSACTION = 20_000
# Appends wake blocked readers at once through _AppendSignal; this poll is only a safety net
# (e.g. a file changed behind our back), bounding how stale a blocked fetch can ever be.
_POLL_INTERVAL_S = 0.25
_BUSY_TIMEOUT_MS = 5_000

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS topics (
        name TEXT PRIMARY KEY,
        partitions INTEGER NOT NULL CHECK (partitions > 0)
    ) STRICT""",
    """CREATE TABLE IF NOT EXISTS records (
        topic TEXT NOT NULL,
        partition INTEGER NOT NULL,
        record_offset INTEGER NOT NULL,
        key BLOB NOT NULL,
        value BLOB NOT NULL,
        timestamp_ms INTEGER NOT NULL,
        PRIMARY KEY (topic, partition, record_offset)
    ) STRICT, WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS group_offsets (
        group_name TEXT NOT NULL,
        topic TEXT NOT NULL,
        partition INTEGER NOT NULL,
        next_offset INTEGER NOT NULL,
        PRIMARY KEY (group_name, topic, partition)
    ) STRICT, WITHOUT ROWID""",
    # The primary key columns ride along in the index (WITHOUT ROWID), so one key's records come
    # out of it already in (partition, offset) order.
    "CREATE INDEX IF NOT EXISTS records_by_key ON records (topic, key)",
    """CREATE TABLE IF NOT EXISTS partition_ends (
        topic TEXT NOT NULL,
        partition INTEGER NOT NULL,
        next_offset INTEGER NOT NULL,
        PRIMARY KEY (topic, partition)
    ) STRICT, WITHOUT ROWID""",
)


def partition_for(key: bytes, partitions: int) -> int:
    """The partition of ``key`` in a topic of ``partitions`` partitions (see the module docs)."""
    return zlib.crc32(key) % partitions


def _connect(path: Path, *, read_only: bool) -> sqlite3.Connection:
    # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a group commit is one transaction.
    conn = sqlite3.connect(path, isolation_level=None, timeout=_BUSY_TIMEOUT_MS / 1000)
    conn.execute("PRAGMA journal_mode=WAL")
    # FULL fsyncs the WAL on every commit: an acknowledged append survives power loss, not only
    # a killed process (NORMAL in WAL mode may lose the last commits on power loss).
    conn.execute("PRAGMA synchronous=FULL")
    if read_only:
        conn.execute("PRAGMA query_only=ON")
    else:
        # Erasure must not leave the erased bytes in free space of the file: zero what a rewrite
        # deletes or replaces (many builds default to this, not all). Appends never free space.
        conn.execute("PRAGMA secure_delete=ON")
    return conn


def _make_private(path: Path) -> None:
    """Create the log's directory (0700) and file (0600) for their owner alone, and tighten
    files an older version left readable by everyone. SQLite gives the ``-wal`` and ``-shm``
    files it creates the database file's mode, so they are 0600 too."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    for name in ("", "-wal", "-shm", ".lock"):
        with contextlib.suppress(FileNotFoundError):
            os.chmod(path.with_name(path.name + name), 0o600)


def _lock_exclusively(path: Path) -> IO[bytes]:
    """Hold an exclusive flock on ``path`` for as long as the returned file is open.

    The writer keeps the next offsets in memory, so two writers on one file would hand out the
    same offsets; the lock makes a second writer fail at ``start`` instead. The kernel drops it
    when the process dies, even by ``kill -9``.
    """
    lock_file = os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab")
    try:
        fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        lock_file.close()
        raise LogUnavailable(f"embedded event log {path} is open in another writer") from exc
    return lock_file


def _unavailable(exc: sqlite3.Error) -> LogUnavailable:
    return LogUnavailable(f"embedded event log: {type(exc).__name__}: {exc}")


class _AppendSignal:
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


class _Rejected(Exception):
    """Raised by an op's ``apply`` before it changed anything (file or writer state): that op
    alone fails with ``error``; the rest of its group commits as usual."""

    def __init__(self, error: Exception) -> None:
        super().__init__(error)
        self.error = error


@dataclass(eq=False)
class _Op:
    """One unit of work for the writer thread; ``done`` is settled after the group commits."""

    apply: Callable[[sqlite3.Connection, _WriterState], None]
    records: int = 0
    done: concurrent.futures.Future[None] = field(default_factory=concurrent.futures.Future)
    # Checkpoint the WAL into the file after the commit (erasures: the old page images in the
    # WAL would otherwise keep erased bytes on disk until the log is closed).
    checkpoint: bool = False


_STOP = object()


@dataclass
class _WriterState:
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
        self._queue: queue.SimpleQueue[_Op | object] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._closed = False
        self._signal = _AppendSignal()
        self._queries: _ReadConnection | None = None
        self._lock_file: IO[bytes] | None = None

    @property
    def path(self) -> Path:
        return self._path

    async def start(self) -> None:
        """Open (or create) the file and start the writer thread; raises ``LogUnavailable``."""
        if self._writer is not None:
            raise RuntimeError("SqliteEventLog already started")
        _make_private(self._path)
        self._lock_file = _lock_exclusively(self._path.with_name(self._path.name + ".lock"))
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
        self._queries = _ReadConnection(self._path)

    async def close(self) -> None:
        """Finish queued writes, stop the writer and close connections. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._writer is not None:
            self._queue.put(_STOP)
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

        def create(conn: sqlite3.Connection, state: _WriterState) -> None:
            for topic, partitions in wanted.items():
                state.create_topic(conn, topic, partitions)

        await self._submit(_Op(create))

    async def append(self, records: Sequence[Record]) -> None:
        if not records:
            return
        check_records(records)
        batch = list(records)
        default = self._default_partitions

        def insert(conn: sqlite3.Connection, state: _WriterState) -> None:
            # Checked here, in the writer, so it is ordered with rewrites: an append queued after
            # a refusing rewrite is refused, one queued before it is handed to its plan.
            if state.refused or state.refusing:
                for record in batch:
                    if state.is_refused(record.topic, record.key):
                        raise _Rejected(
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

        await self._submit(_Op(insert, records=len(batch)))

    async def end_offsets(self, topic: str) -> dict[TopicPartition, int]:
        # A topic is auto-created on first use, as by append, so the answer has every partition.
        await self.ensure_topics({topic: self._default_partitions})
        return await self._read(lambda conn: _end_offsets(conn, topic))

    def reader(self, topics: Sequence[str], group: str) -> LogReader:
        return _SqliteLogReader(self, list(topics), group)

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

        def apply(conn: sqlite3.Connection, state: _WriterState) -> None:
            nonlocal changed
            records = _records_of(conn, topic, key)
            try:
                edits = _checked_plan(plan(records), records)
            except Exception as exc:
                # Nothing is written yet: fail this rewrite only, not the appends it shares with.
                raise _Rejected(exc) from exc
            updates = [
                (value, topic, partition, offset)
                for (partition, offset), value in edits.items()
                if value is not None
            ]
            deletes = [
                (topic, partition, offset)
                for (partition, offset), value in edits.items()
                if value is None
            ]
            conn.executemany(
                "UPDATE records SET value = ?"
                " WHERE topic = ? AND partition = ? AND record_offset = ?",
                updates,
            )
            conn.executemany(
                "DELETE FROM records WHERE topic = ? AND partition = ? AND record_offset = ?",
                deletes,
            )
            # Remember where every partition we deleted from ends, in case that was its tail.
            ends = sorted({(topic, partition) for _, partition, _ in deletes})
            conn.executemany(
                "INSERT INTO partition_ends (topic, partition, next_offset) VALUES (?, ?, ?)"
                " ON CONFLICT (topic, partition)"
                " DO UPDATE SET next_offset = MAX(next_offset, excluded.next_offset)",
                [(*tp, state.next_offsets[tp]) for tp in ends],
            )
            if refuse is not None:
                state.refusing.add((topic, refuse))
            changed = len(updates) + len(deletes)

        await self._submit(_Op(apply, checkpoint=True))
        if changed:
            # Only a reader still before a changed record can see it, but let it see it now.
            self._signal.notify()
        return changed

    # -- internals used by readers ------------------------------------------------------------

    async def _commit_offsets(self, group: str, offsets: Mapping[TopicPartition, int]) -> None:
        rows = [(group, tp.topic, tp.partition, offset) for tp, offset in offsets.items()]

        def upsert(conn: sqlite3.Connection, state: _WriterState) -> None:
            conn.executemany(
                "INSERT INTO group_offsets (group_name, topic, partition, next_offset)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (group_name, topic, partition)"
                " DO UPDATE SET next_offset = excluded.next_offset",
                rows,
            )

        await self._submit(_Op(upsert))

    async def _read(self, query: Callable[[sqlite3.Connection], _T]) -> _T:
        if self._queries is None or self._closed:
            raise LogUnavailable("embedded event log is not started or already closed")
        return await self._queries.run(query)

    async def _submit(self, op: _Op) -> None:
        writer = self._writer
        if self._closed or writer is None or not writer.is_alive():
            raise LogUnavailable("embedded event log is not started or already closed")
        self._queue.put(op)
        await asyncio.wrap_future(op.done)

    # -- the writer thread ----------------------------------------------------------------------

    def _run_writer(self, ready: concurrent.futures.Future[None]) -> None:
        state = _WriterState()
        try:
            conn = _connect(self._path, read_only=False)
        except sqlite3.Error as exc:
            ready.set_exception(_unavailable(exc))
            return
        try:
            for statement in _SCHEMA:
                conn.execute(statement)
            state.load(conn)
        except sqlite3.Error as exc:
            conn.close()
            ready.set_exception(_unavailable(exc))
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
            # Anything queued after _STOP raced close(); fail it rather than leave it hanging.
            self._fail_leftovers()

    def _take_group(self) -> tuple[list[_Op], bool]:
        item = self._queue.get()
        group: list[_Op] = []
        records = 0
        while True:
            if item is _STOP:
                return group, True
            assert isinstance(item, _Op)
            # False means the caller was cancelled before we got here: nothing to do for it.
            if item.done.set_running_or_notify_cancel():
                group.append(item)
                records += item.records
            if records >= _MAX_RECORDS_PER_TRANSACTION:
                return group, False
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return group, False

    def _commit_group(
        self, conn: sqlite3.Connection, state: _WriterState, group: list[_Op]
    ) -> None:
        # An op rejecting its work changed nothing, so it fails alone; but only once the group
        # committed: an append refused because of a rewrite in a group that then rolls back was
        # not really refused, and fails (retryably) with the group instead.
        rejected: dict[_Op, Exception] = {}
        try:
            conn.execute("BEGIN IMMEDIATE")
            for op in group:
                try:
                    op.apply(conn, state)
                except _Rejected as rejection:
                    rejected[op] = rejection.error
            conn.execute("COMMIT")
        except Exception as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            # The in-memory counters may include the rolled-back rows; the file is the truth.
            with contextlib.suppress(sqlite3.Error):
                state.load(conn)
            state.refusing.clear()
            error = _unavailable(exc) if isinstance(exc, sqlite3.Error) else exc
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
            if isinstance(item, _Op) and item.done.set_running_or_notify_cancel():
                item.done.set_exception(LogUnavailable("embedded event log closed"))


def _end_offsets(conn: sqlite3.Connection, topic: str) -> dict[TopicPartition, int]:
    row = conn.execute("SELECT partitions FROM topics WHERE name = ?", (topic,)).fetchone()
    count = 0 if row is None else int(row[0])
    ends = {}
    for partition in range(count):
        # One MAX per partition is a single seek down the primary key; a GROUP BY over the topic
        # read every record (O(records) per lookup, and every account write makes one). The
        # stored end counts too: the partition's last records may have been deleted.
        after_last, stored = conn.execute(
            "SELECT (SELECT MAX(record_offset) + 1 FROM records"
            "        WHERE topic = ?1 AND partition = ?2),"
            " (SELECT next_offset FROM partition_ends WHERE topic = ?1 AND partition = ?2)",
            (topic, partition),
        ).fetchone()
        ends[TopicPartition(topic, partition)] = max(int(after_last or 0), int(stored or 0))
    return ends


def _records_of(conn: sqlite3.Connection, topic: str, key: bytes | None) -> list[Delivered]:
    """The records of ``topic`` (of ``key`` only, when given) in (partition, offset) order."""
    if key is None:
        rows = conn.execute(
            "SELECT partition, record_offset, key, value, timestamp_ms FROM records"
            " WHERE topic = ? ORDER BY partition, record_offset",
            (topic,),
        )
    else:
        rows = conn.execute(
            "SELECT partition, record_offset, key, value, timestamp_ms FROM records"
            " INDEXED BY records_by_key WHERE topic = ? AND key = ?"
            " ORDER BY partition, record_offset",
            (topic, key),
        )
    return [
        Delivered(topic, partition, offset, record_key, value, timestamp_ms)
        for partition, offset, record_key, value, timestamp_ms in rows
    ]


def _checked_plan(
    answer: Rewrite, records: Sequence[Delivered]
) -> dict[tuple[int, int], bytes | None]:
    """The real changes in ``plan``'s answer: raises unless it only names records handed to it.

    A new value equal to the current one is dropped (it is no change and is not counted).
    """
    current = {(record.partition, record.offset): record.value for record in records}
    edits: dict[tuple[int, int], bytes | None] = {}
    for position, value in answer.items():
        if position not in current:
            raise ValueError(f"plan names {position}, which is not a record handed to it")
        if value is not None and not isinstance(value, bytes):
            raise TypeError(f"plan's new value for {position} is not bytes or None")
        if value != current[position]:
            edits[position] = value
    return edits


class _ReadConnection:
    """A read-only connection confined to its own thread (sqlite3 objects are thread-bound)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="eventlog-sqlite-read"
        )
        self._conn: sqlite3.Connection | None = None
        self._closed = False

    async def run(self, query: Callable[[sqlite3.Connection], _T]) -> _T:
        if self._closed:
            raise LogUnavailable("embedded event log connection is closed")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, self._call, query)
        except sqlite3.Error as exc:
            raise _unavailable(exc) from exc

    def _call(self, query: Callable[[sqlite3.Connection], _T]) -> _T:
        if self._conn is None:
            self._conn = _connect(self._path, read_only=True)
        return query(self._conn)

    def _close_conn(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        with contextlib.suppress(sqlite3.Error):
            await loop.run_in_executor(self._executor, self._close_conn)
        self._executor.shutdown(wait=False)


class _SqliteLogReader:
    """A reader of the embedded log. Every reader is the only member of its group: it reads all
    partitions of its topics (this log has one process, so there is nothing to balance).

    ``fetch`` waits on an in-process notification, so it returns within milliseconds of a
    same-process append. Not safe for concurrent calls on one reader; use one reader per task.
    ``close`` drops uncommitted positions; a new reader of the group resumes at the last commit.
    """

    def __init__(self, log: SqliteEventLog, topics: list[str], group: str) -> None:
        self._log = log
        self._topics = topics
        self._group = group
        self._db = _ReadConnection(log.path)
        self._positions: dict[TopicPartition, int] = {}
        self._rotation = 0
        self._started = False

    async def start(self) -> None:
        await self._log.ensure_topics(
            {topic: self._log._default_partitions for topic in self._topics}
        )
        topics, group = self._topics, self._group

        def load(conn: sqlite3.Connection) -> dict[TopicPartition, int]:
            positions: dict[TopicPartition, int] = {}
            for topic in topics:
                row = conn.execute(
                    "SELECT partitions FROM topics WHERE name = ?", (topic,)
                ).fetchone()
                for partition in range(int(row[0])):
                    positions[TopicPartition(topic, partition)] = 0
                for partition, offset in conn.execute(
                    "SELECT partition, next_offset FROM group_offsets"
                    " WHERE group_name = ? AND topic = ?",
                    (group, topic),
                ):
                    positions[TopicPartition(topic, partition)] = offset
            return positions

        self._positions = await self._db.run(load)
        self._started = True

    async def fetch(self, max_records: int, timeout_s: float) -> list[Delivered]:
        self._require_started()
        deadline = time.monotonic() + max(timeout_s, 0.0)
        while True:
            seen = self._log._signal.generation
            delivered, skipped = await self._db.run(self._reader_query(max_records))
            # Past a partition's erased tail, as a Kafka consumer moves past compacted offsets.
            self._positions.update(skipped)
            remaining = deadline - time.monotonic()
            if delivered or remaining <= 0:
                for record in delivered:
                    self._positions[TopicPartition(record.topic, record.partition)] = (
                        record.offset + 1
                    )
                return delivered
            await self._log._signal.wait(seen, min(remaining, _POLL_INTERVAL_S))

    def _reader_query(
        self, max_records: int
    ) -> Callable[[sqlite3.Connection], tuple[list[Delivered], dict[TopicPartition, int]]]:
        """The query of one fetch: the records, and the new position of every partition whose
        records from the current position on were all erased (its end, otherwise never reached).
        One read transaction, so a record appended meanwhile is never skipped over."""
        # Start at a different partition each call so one busy partition cannot starve others.
        order = list(self._positions.items())
        if order:
            self._rotation = (self._rotation + 1) % len(order)
            order = order[self._rotation :] + order[: self._rotation]

        def query(conn: sqlite3.Connection) -> tuple[list[Delivered], dict[TopicPartition, int]]:
            out: list[Delivered] = []
            skipped: dict[TopicPartition, int] = {}
            conn.execute("BEGIN")
            try:
                for tp, position in order:
                    if len(out) >= max_records:
                        break
                    found = len(out)
                    for offset, key, value, timestamp_ms in conn.execute(
                        "SELECT record_offset, key, value, timestamp_ms FROM records"
                        " WHERE topic = ? AND partition = ? AND record_offset >= ?"
                        " ORDER BY record_offset LIMIT ?",
                        (tp.topic, tp.partition, position, max_records - len(out)),
                    ):
                        out.append(
                            Delivered(tp.topic, tp.partition, offset, key, value, timestamp_ms)
                        )
                    if len(out) == found:
                        (stored,) = conn.execute(
                            "SELECT next_offset FROM partition_ends"
                            " WHERE topic = ? AND partition = ?",
                            (tp.topic, tp.partition),
                        ).fetchone() or (0,)
                        if int(stored) > position:
                            skipped[tp] = int(stored)
            finally:
                conn.execute("COMMIT")
            return out, skipped

        return query

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        self._require_started()
        if offsets:
            await self._log._commit_offsets(self._group, offsets)

    async def seek_to_beginning(self) -> None:
        self._require_started()
        self._positions = dict.fromkeys(self._positions, 0)

    async def positions(self) -> dict[TopicPartition, int]:
        self._require_started()
        return dict(self._positions)

    async def close(self) -> None:
        self._started = False
        await self._db.close()

    def _require_started(self) -> None:
        if not self._started:
            raise RuntimeError("reader not started (or already closed)")
