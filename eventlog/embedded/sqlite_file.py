"""The embedded log's SQLite file: its schema, connections, permissions and writer lock, and
the partitioning of keys (see :mod:`eventlog.embedded` for the layout).

Blocking: everything here blocks on the file; call it from the writer thread or through
:class:`ReadConnection`, never on the event loop. Errors: :func:`unavailable` turns a
:class:`sqlite3.Error` into :class:`eventlog.port.LogUnavailable`.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import sqlite3
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, TypeVar

from eventlog.port import LogUnavailable

_T = TypeVar("_T")

_BUSY_TIMEOUT_MS = 5_000

SCHEMA = (
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


def connect(path: Path, *, read_only: bool) -> sqlite3.Connection:
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


def make_private(path: Path) -> None:
    """Create the log's directory (0700) and file (0600) for their owner alone, and tighten
    files an older version left readable by everyone. SQLite gives the ``-wal`` and ``-shm``
    files it creates the database file's mode, so they are 0600 too."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    for name in ("", "-wal", "-shm", ".lock"):
        with contextlib.suppress(FileNotFoundError):
            os.chmod(path.with_name(path.name + name), 0o600)


def lock_exclusively(path: Path) -> IO[bytes]:
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


def unavailable(exc: sqlite3.Error) -> LogUnavailable:
    return LogUnavailable(f"embedded event log: {type(exc).__name__}: {exc}")


class ReadConnection:
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
            raise unavailable(exc) from exc

    def _call(self, query: Callable[[sqlite3.Connection], _T]) -> _T:
        if self._conn is None:
            self._conn = connect(self._path, read_only=True)
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
