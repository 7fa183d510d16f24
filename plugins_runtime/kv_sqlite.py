"""The embedded plugin key-value store: one SQLite file (the single-process deployment).

One table ``plugin_kv (plugin, user_id, key, value)`` with ``(plugin, user_id, key)`` as its
primary key, plus ``host_markers``. The file is in WAL mode with ``synchronous=FULL``: a call
answers after its transaction is on disk, so an answered ``set`` survives ``kill -9`` and power
loss. ``secure_delete`` zeroes what a deletion frees, so erased user data is not left in the file.
The file (and its ``-wal``/``-shm``) is created 0600, its directory 0700.

All I/O runs on one dedicated thread holding the one connection (sqlite3 objects belong to their
thread): calls are serialized and never block the event loop. ``incr`` reads and writes inside one
``BEGIN IMMEDIATE`` transaction, so it is atomic even against another process on the same file.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from plugins_runtime.kv import (
    KeyValueUnavailable,
    check_key,
    check_marker,
    check_plugin_name,
    check_user_id,
    check_value,
    incremented,
)

__all__ = ["SqlitePluginKeyValue"]

_T = TypeVar("_T")
_BUSY_TIMEOUT_S = 5.0

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS plugin_kv (
        plugin TEXT NOT NULL,
        user_id TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (plugin, user_id, key)
    ) STRICT, WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS plugin_kv_by_user ON plugin_kv (user_id)",
    "CREATE TABLE IF NOT EXISTS host_markers (marker TEXT PRIMARY KEY) STRICT, WITHOUT ROWID",
)


def _make_private(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.chmod(path.with_name(path.name + suffix), 0o600)


def _connect(path: Path) -> sqlite3.Connection:
    _make_private(path)
    # isolation_level=None: autocommit, with explicit BEGIN IMMEDIATE where a call reads first.
    conn = sqlite3.connect(path, isolation_level=None, timeout=_BUSY_TIMEOUT_S)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA secure_delete=ON")
        for statement in _SCHEMA:
            conn.execute(statement)
    except BaseException:
        conn.close()
        raise
    return conn


class SqlitePluginKeyValue:
    """:class:`plugins_runtime.kv.PluginKeyValue` in the SQLite file at ``path``."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    @property
    def path(self) -> Path:
        return self._path

    async def start(self) -> None:
        if self._executor is not None:
            return
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="plugin-kv-sqlite")
        try:
            conn = await asyncio.get_running_loop().run_in_executor(executor, _connect, self._path)
        except (sqlite3.Error, OSError) as exc:
            executor.shutdown(wait=False)
            raise KeyValueUnavailable(
                f"plugin key-value file {self._path}: {type(exc).__name__}: {exc}"
            ) from exc
        self._conn, self._executor = conn, executor

    async def close(self) -> None:
        executor, conn = self._executor, self._conn
        self._executor = self._conn = None
        if executor is None or conn is None:
            return
        # Queued behind any call still running on the thread; the connection closes on it.
        await asyncio.get_running_loop().run_in_executor(executor, conn.close)
        executor.shutdown(wait=True)

    async def _run(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        executor, conn = self._executor, self._conn
        if executor is None or conn is None:
            raise KeyValueUnavailable("plugin key-value store is not open")
        try:
            return await asyncio.get_running_loop().run_in_executor(executor, work, conn)
        except RuntimeError as exc:  # the executor was shut down by a concurrent close
            raise KeyValueUnavailable("plugin key-value store is closed") from exc
        except sqlite3.Error as exc:
            raise KeyValueUnavailable(
                f"plugin key-value file {self._path}: {type(exc).__name__}: {exc}"
            ) from exc

    async def get(self, plugin: str, user_id: str, key: str) -> str | None:
        ids = (check_plugin_name(plugin), check_user_id(user_id), check_key(key))

        def work(conn: sqlite3.Connection) -> str | None:
            row = conn.execute(
                "SELECT value FROM plugin_kv WHERE plugin = ? AND user_id = ? AND key = ?", ids
            ).fetchone()
            return None if row is None else str(row[0])

        return await self._run(work)

    async def set(self, plugin: str, user_id: str, key: str, value: str) -> None:
        row = (check_plugin_name(plugin), check_user_id(user_id), check_key(key))
        checked = check_value(value)

        def work(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO plugin_kv (plugin, user_id, key, value) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (plugin, user_id, key) DO UPDATE SET value = excluded.value",
                (*row, checked),
            )

        await self._run(work)

    async def delete(self, plugin: str, user_id: str, key: str) -> None:
        ids = (check_plugin_name(plugin), check_user_id(user_id), check_key(key))

        def work(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM plugin_kv WHERE plugin = ? AND user_id = ? AND key = ?", ids)

        await self._run(work)

    async def incr(self, plugin: str, user_id: str, key: str) -> int:
        ids = (check_plugin_name(plugin), check_user_id(user_id), check_key(key))

        def work(conn: sqlite3.Connection) -> int:
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute(
                    "SELECT value FROM plugin_kv WHERE plugin = ? AND user_id = ? AND key = ?",
                    ids,
                ).fetchone()
                value = incremented(key, None if row is None else str(row[0]))
                conn.execute(
                    "INSERT INTO plugin_kv (plugin, user_id, key, value) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (plugin, user_id, key) DO UPDATE SET value = excluded.value",
                    (*ids, str(value)),
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return value

        return await self._run(work)

    async def dump_user(self, user_id: str) -> dict[str, dict[str, str]]:
        uid = check_user_id(user_id)

        def work(conn: sqlite3.Connection) -> dict[str, dict[str, str]]:
            dump: dict[str, dict[str, str]] = {}
            rows = conn.execute(
                "SELECT plugin, key, value FROM plugin_kv WHERE user_id = ? ORDER BY plugin, key",
                (uid,),
            )
            for plugin, key, value in rows:
                dump.setdefault(str(plugin), {})[str(key)] = str(value)
            return dump

        return await self._run(work)

    async def delete_user(self, user_id: str) -> int:
        uid = check_user_id(user_id)

        def work(conn: sqlite3.Connection) -> int:
            return conn.execute("DELETE FROM plugin_kv WHERE user_id = ?", (uid,)).rowcount

        return await self._run(work)

    async def delete_plugin_user(self, plugin: str, user_id: str) -> int:
        ids = (check_plugin_name(plugin), check_user_id(user_id))

        def work(conn: sqlite3.Connection) -> int:
            return conn.execute(
                "DELETE FROM plugin_kv WHERE plugin = ? AND user_id = ?", ids
            ).rowcount

        return await self._run(work)

    async def mark_once(self, marker: str) -> bool:
        checked = check_marker(marker)

        def work(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                "INSERT INTO host_markers (marker) VALUES (?) ON CONFLICT DO NOTHING", (checked,)
            )
            return cursor.rowcount == 1

        return await self._run(work)

    async def unmark(self, marker: str) -> None:
        checked = check_marker(marker)

        def work(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM host_markers WHERE marker = ?", (checked,))

        await self._run(work)
