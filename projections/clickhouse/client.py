"""The client side of the store: connections per thread, error translation, migrations.

One driver, chosen by URL, through clickhouse-connect:

* ``chdb:///abs/path``: the ClickHouse engine in-process (clickhouse-connect's chdb backend). One
  process per data directory, and one data directory per process.
* ``http(s)://user:password@host:port``: a ClickHouse server.

Threads. Every method is synchronous and blocking; async callers run them in a thread pool (the
GIL is released while the engine works). Each thread gets its OWN client, created on first use:
a client shared by two threads serializes on chdb and raises over HTTP (one session, one query at
a time). Several clients on the same chdb path in one process were measured to work: they share
the engine and its data, see each other's writes at once, and run queries concurrently, so no
store-wide lock is needed. Clients live until :meth:`StoreClient.close`, so use a bounded thread
pool.

Errors. Library errors are translated here (:meth:`StoreClient._edge`):
:class:`~projections.ports.ProjectionStoreUnavailable` means "could not reach or use the engine,
retry later" (connection refused, timeouts, overload, a data directory locked by another
process); :class:`~projections.ports.ProjectionStoreError` is everything a retry will not fix
(bad SQL, a closed store).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Self
from urllib.parse import urlsplit

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import (
    DatabaseError,
    Error,
    InterfaceError,
    OperationalError,
)

from projections.clickhouse.analytics import view_statements
from projections.migrations import load_migrations
from projections.ports import ProjectionStoreError, ProjectionStoreUnavailable

logger = logging.getLogger(__name__)

MIGRATIONS_TABLE = "schema_migrations"
# The erasure ledger (m0006) is no projection: it records what the log may no longer bring back,
# so a replay keeps it, an account's erasure keeps its row, and it is not compared in snapshots.
ERASURES_TABLE = "erasures"
BOOKKEEPING_TABLES = [MIGRATIONS_TABLE, ERASURES_TABLE]
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# (user, day) keys per read: well under the server's 128 KiB cap on one parameter.
KEYS_PER_QUERY = 1000

# Server error codes that mean "busy or unreachable", not "wrong": worth a retry.
_TRANSIENT_CODES = frozenset(
    {
        159,  # TIMEOUT_EXCEEDED
        202,  # TOO_MANY_SIMULTANEOUS_QUERIES
        203,  # NO_FREE_CONNECTION
        209,  # SOCKET_TIMEOUT
        210,  # NETWORK_ERROR
        236,  # ABORTED
        241,  # MEMORY_LIMIT_EXCEEDED
        242,  # TABLE_IS_READ_ONLY
        252,  # TOO_MANY_PARTS
        279,  # ALL_CONNECTION_TRIES_FAILED
        319,  # UNKNOWN_STATUS_OF_INSERT
        425,  # SYSTEM_ERROR
        999,  # KEEPER_EXCEPTION
    }
)


class _ThreadClient(threading.local):
    client: Client | None = None


class StoreClient:
    """What every table family of the store shares: the URL, one client per thread, the lock,
    the column-type cache and the version clock. Construction does no I/O."""

    def __init__(
        self,
        url: str,
        database: str = "codetrackr",
        *,
        connect_timeout_s: float = 5.0,
        query_timeout_s: float = 60.0,
    ) -> None:
        scheme = urlsplit(url).scheme
        if scheme not in ("chdb", "http", "https"):
            raise ValueError(
                f"unsupported ClickHouse URL scheme {scheme!r}: use chdb, http or https"
            )
        if not _IDENTIFIER.fullmatch(database):
            raise ValueError(f"database name must be an identifier, got {database!r}")
        self._url = url
        self._scheme = scheme
        self._database = database
        self._db = f"`{database}`"
        self._local = _ThreadClient()
        self._clients: list[Client] = []
        self._lock = threading.Lock()
        self._closed = False
        self._column_types: dict[str, list[str]] = {}
        self._last_version_ms = 0
        # clickhouse-connect waits 300 s for an answer by default: a hung server would stall
        # reads and processors for minutes before they could report it and retry.
        self._connect_timeout_s = connect_timeout_s
        self._query_timeout_s = query_timeout_s

    def migrate(self) -> list[str]:
        """Create the database, apply pending migrations in order and re-create the analytics
        views (:mod:`projections.clickhouse.analytics`); returns the migrations applied now.

        Idempotent: every statement is ``IF NOT EXISTS``, so a crash between a migration and its
        record (or two processes migrating at once) only repeats harmless work.
        """
        with self._edge("migrate"):
            self._command(f"CREATE DATABASE IF NOT EXISTS {self._db}")
            self._command(
                f"CREATE TABLE IF NOT EXISTS {self._db}.{MIGRATIONS_TABLE} ("
                " version UInt32, name String, description String,"
                " applied_at DateTime64(3, 'UTC'))"
                " ENGINE = ReplacingMergeTree(applied_at) ORDER BY version"
            )
            rows = self._query(f"SELECT version FROM {self._db}.{MIGRATIONS_TABLE} FINAL")
            applied = {int(row[0]) for row in rows}
            done: list[str] = []
            for migration in load_migrations():
                if migration.version in applied:
                    continue
                for statement in migration.statements:
                    self._command(statement.replace("{db}", self._db))
                self._client().insert(
                    MIGRATIONS_TABLE,
                    [[migration.version, migration.name, migration.description, now_ms()]],
                    column_names=["version", "name", "description", "applied_at"],
                    database=self._database,
                    column_type_names=["UInt32", "String", "String", "DateTime64(3, 'UTC')"],
                )
                done.append(migration.name)
                logger.info("applied ClickHouse migration %s", migration.name)
            # After every migration: the analysts' views follow the tables (or fail here).
            for statement in view_statements(self._database):
                self._command(statement)
            with self._lock:
                self._column_types.clear()
            return done

    def close(self) -> None:
        """Close every thread's client. The store cannot be used afterwards."""
        with self._lock:
            self._closed = True
            clients, self._clients = self._clients, []
        for client in clients:
            try:
                client.close()
            except Exception:  # closing is best effort; the engine handle is freed regardless
                logger.debug("error closing a ClickHouse client", exc_info=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def table_names(self) -> list[str]:
        """The projection tables: every table of the database but ``schema_migrations`` and the
        erasure ledger (``erasures``), which are bookkeeping a replay keeps."""
        sql = (
            "SELECT name FROM system.tables WHERE database = {db:String}"
            " AND name NOT IN {kept:Array(String)} ORDER BY name"
        )
        with self._edge("list tables"):
            rows = self._query(sql, {"db": self._database, "kept": BOOKKEEPING_TABLES})
        return [str(row[0]) for row in rows]

    def truncate_projections(self) -> None:
        """Empty every projection table (for a replay); the schema, its migrations and the
        erasure ledger stay (a replay obeys the erasures recorded, even those whose events a
        log's retention has since deleted)."""
        for table in self.table_names():
            with self._edge(f"truncate {table}"):
                self._command(f"TRUNCATE TABLE IF EXISTS {self._db}.`{table}`")

    def _client(self) -> Client:
        if self._closed:
            raise ProjectionStoreError("the projection store is closed")
        client = self._local.client
        if client is not None:
            return client
        client = self._connect()
        with self._lock:
            if self._closed:
                client.close()
                raise ProjectionStoreError("the projection store is closed")
            self._clients.append(client)
        self._local.client = client
        return client

    def _connect(self) -> Client:
        """A new client, owned by the caller."""
        if self._closed:
            raise ProjectionStoreError("the projection store is closed")
        try:
            if self._scheme == "chdb":
                client = clickhouse_connect.get_client(dsn=self._url)
            else:
                # No HTTP session: sessions allow one query at a time and buy us nothing.
                client = clickhouse_connect.get_client(
                    dsn=self._url,
                    autogenerate_session_id=False,
                    connect_timeout=self._connect_timeout_s,
                    send_receive_timeout=self._query_timeout_s,
                )
        except (Error, OSError, RuntimeError) as exc:
            # On chdb this is also how "another process holds this data directory" surfaces.
            raise ProjectionStoreUnavailable(f"cannot connect to ClickHouse: {exc}") from exc
        return client

    @contextmanager
    def _edge(self, action: str) -> Iterator[None]:
        """Translate library exceptions into this module's two exception types."""
        try:
            yield
        except ProjectionStoreError:
            raise
        except (OperationalError, InterfaceError, OSError) as exc:
            raise ProjectionStoreUnavailable(f"{action}: {exc}") from exc
        except DatabaseError as exc:
            if exc.code in _TRANSIENT_CODES:
                raise ProjectionStoreUnavailable(f"{action}: {exc}") from exc
            raise ProjectionStoreError(f"{action}: {exc}") from exc
        except Error as exc:
            raise ProjectionStoreError(f"{action}: {exc}") from exc

    def _command(self, sql: str) -> None:
        self._client().command(sql)

    def _query(self, sql: str, parameters: dict[str, Any] | None = None) -> list[Sequence[Any]]:
        rows: Sequence[Sequence[Any]] = self._client().query(sql, parameters=parameters).result_rows
        return list(rows)

    def _insert(self, table: str, names: Sequence[str], columns: list[list[Any]]) -> None:
        self._client().insert(
            table,
            columns,
            column_names=list(names),
            database=self._database,
            column_type_names=self._types_of(table, names),
            column_oriented=True,
        )

    def _types_of(self, table: str, names: Sequence[str]) -> list[str]:
        """Column types from the live table, looked up once: giving clickhouse-connect the types
        spares it a DESCRIBE round trip on every insert."""
        with self._lock:
            cached = self._column_types.get(table)
        if cached is not None:
            return cached
        rows = self._query(
            "SELECT name, type FROM system.columns WHERE database = {db:String}"
            " AND table = {table:String}",
            {"db": self._database, "table": table},
        )
        by_name = {str(name): str(type_name) for name, type_name in rows}
        missing = [name for name in names if name not in by_name]
        if missing:
            raise ProjectionStoreError(f"{table} lacks columns {missing}: run migrate() first")
        types = [by_name[name] for name in names]
        with self._lock:
            self._column_types[table] = types
        return types

    def _next_version_ms(self) -> int:
        with self._lock:
            self._last_version_ms = max(now_ms(), self._last_version_ms + 1)
            return self._last_version_ms


def now_ms() -> int:
    return time.time_ns() // 1_000_000
