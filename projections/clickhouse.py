"""The ClickHouse projection store: the only module that writes to ClickHouse.

One driver, chosen by URL, through clickhouse-connect:

* ``chdb:///abs/path``: the ClickHouse engine in-process (clickhouse-connect's chdb backend). One
  process per data directory, and one data directory per process.
* ``http(s)://user:password@host:port``: a ClickHouse server.

Threads. Every method is synchronous and blocking; async callers run them in a thread pool (the
GIL is released while the engine works). Each thread gets its OWN client, created on first use:
a client shared by two threads serializes on chdb and raises over HTTP (one session, one query at
a time). Several clients on the same chdb path in one process were measured to work: they share
the engine and its data, see each other's writes at once, and run queries concurrently, so no
store-wide lock is needed. Clients live until :meth:`ClickHouseProjectionStore.close`, so use a
bounded thread pool.

Tables live in the store's own database (chdb's ``default`` is special), every statement is sent
on its own (the HTTP interface rejects several per request), times are ``DateTime64(3, 'UTC')``
(millisecond precision, the precision of heartbeat event ids), and every ``Replacing`` table is
read with ``FINAL`` or through an aggregate that duplicates cannot change: merges only run while
some process holds the engine, so unmerged copies are the normal case.

Errors. Library errors are translated here: :class:`ProjectionStoreUnavailable` means "could not
reach or use the engine, retry later" (connection refused, timeouts, overload, a data directory
locked by another process); :class:`ProjectionStoreError` is everything a retry will not fix (bad
SQL, a closed store).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from operator import attrgetter
from typing import Any, Literal, TypeVar, get_args
from urllib.parse import urlsplit

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import (
    DatabaseError,
    Error,
    InterfaceError,
    OperationalError,
)

from projections.daily import DailyRow, local_date
from projections.durations import DIMENSIONS, Beat
from projections.erasures import ErasureRecord, LogPosition
from projections.leaderboard import WEEKLY_DIMENSIONS, Member, WeeklyRow
from projections.migrations import Migration, load_migrations
from schemas.events import HeartbeatsDeleted
from schemas.heartbeat import Heartbeat, stored_millis

__all__ = [
    "DIMENSION_COLUMNS",
    "ClickHouseProjectionStore",
    "LeaderboardEntry",
    "Migration",
    "ProjectionStoreError",
    "ProjectionStoreUnavailable",
    "SeenColumn",
    "SeenValue",
    "UserTotals",
    "load_migrations",
]

logger = logging.getLogger(__name__)


SeenColumn = Literal["project", "user_agent", "machine", "language", "editor"]
_SEEN_COLUMNS: frozenset[str] = frozenset(get_args(SeenColumn))


@dataclass(frozen=True, slots=True)
class SeenValue:
    """One distinct value of a heartbeat column and when the user's heartbeats carried it."""

    value: str
    first_time: float
    last_time: float
    heartbeats: int
    editor: str | None
    os: str | None


@dataclass(frozen=True, slots=True)
class LeaderboardEntry:
    """One ranked user of a weekly board."""

    rank: int
    user_id: str
    username: str
    country: str | None
    seconds: float
    breakdown: dict[str, dict[str, float]]  # language, editor, os -> {value: seconds}
    languages_public: bool = False  # the profile shows languages: the breakdown may name them


@dataclass(frozen=True, slots=True)
class UserTotals:
    """One user's time over a range of days (for leaderboards)."""

    user_id: str
    total_seconds: float
    active_days: int
    languages: dict[str, float]


class ProjectionStoreError(Exception):
    """The projection store failed in a way a retry will not fix (a bug or a closed store)."""


class ProjectionStoreUnavailable(ProjectionStoreError):
    """The engine could not be reached or used right now; pause and retry."""


# daily_stats has one Map(String, Float64) column per dimension.
DIMENSION_COLUMNS: dict[str, str] = {
    "project": "projects",
    "language": "languages",
    "editor": "editors",
    "os": "operating_systems",
    "machine": "machines",
    "branch": "branches",
    "category": "categories",
    "entity": "entities",
}
if tuple(DIMENSION_COLUMNS) != DIMENSIONS:  # a new dimension needs its own column and migration
    raise RuntimeError("DIMENSION_COLUMNS must list projections.durations.DIMENSIONS in order")

_HEARTBEAT_FIELDS: tuple[str, ...] = tuple(Heartbeat.model_fields)
_HEARTBEAT_COLUMNS: tuple[str, ...] = (*_HEARTBEAT_FIELDS, "local_date")
_HEARTBEAT_TIME_FIELDS = frozenset({"time", "received_at"})
_HEARTBEAT_INT_FIELDS = frozenset(
    name
    for name in (
        "project_root_count",
        "lines",
        "line_additions",
        "line_deletions",
        "lineno",
        "cursorpos",
        "ai_line_changes",
        "human_line_changes",
    )
    if name in Heartbeat.model_fields
)
_heartbeat_values = attrgetter(*_HEARTBEAT_FIELDS)
# Tombstones of deleted heartbeats (m0003): what identifies an archive row, and when.
_DELETION_COLUMNS: tuple[str, ...] = ("user_id", "local_date", "event_id", "deleted_at")
# Read times back as integer milliseconds: exact, and cheaper than datetime objects.


def _select(fields: Sequence[str]) -> str:
    return ", ".join(
        f"toUnixTimestamp64Milli({name}) AS {name}" if name in _HEARTBEAT_TIME_FIELDS else name
        for name in fields
    )


_HEARTBEAT_SELECT = _select(_HEARTBEAT_FIELDS)
# Beat's fields in declaration order (the dimensions last, as Beat declares them).
_BEAT_FIELDS: tuple[str, ...] = tuple(Beat.__dataclass_fields__)
_BEAT_SELECT = _select(_BEAT_FIELDS)
R = TypeVar("R")

_DAILY_COLUMNS: tuple[str, ...] = (
    "user_id",
    "date",
    "timezone",
    "total_seconds",
    "heartbeat_count",
    "first_time",
    "last_time",
    *DIMENSION_COLUMNS.values(),
    "computed_at",
)
_DAILY_SELECT = ", ".join(
    f"toUnixTimestamp64Milli({name}) AS {name}" if name in ("first_time", "last_time") else name
    for name in _DAILY_COLUMNS
    if name != "computed_at"
)

_WEEKLY_COLUMNS: tuple[str, ...] = (
    "week",
    "user_id",
    "total_seconds",
    "languages",
    "editors",
    "operating_systems",
    "computed_at",
)
_MEMBER_COLUMNS: tuple[str, ...] = (
    "user_id",
    "username",
    "eligible",
    "country",
    "available_for_hire",
    "version",
    "languages_public",
)

_MIGRATIONS_TABLE = "schema_migrations"
# The erasure ledger (m0006) is no projection: it records what the log may no longer bring back,
# so a replay keeps it, an account's erasure keeps its row, and it is not compared in snapshots.
_ERASURES_TABLE = "erasures"
_BOOKKEEPING_TABLES = [_MIGRATIONS_TABLE, _ERASURES_TABLE]
_ERASURE_COLUMNS: tuple[str, ...] = (
    "user_id",
    "erasure_id",
    "range_start",
    "range_end",
    "log_topic",
    "log_partition",
    "log_offset",
    "occurred_at",
    "projected_at",
)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

# Server error codes that mean "busy or unreachable", not "wrong": worth a retry.
# (user, day) keys per read: well under the server's 128 KiB cap on one parameter.
_KEYS_PER_QUERY = 1000

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


class ClickHouseProjectionStore:
    """Raw heartbeat archive and daily stats in ClickHouse (see the module docs).

    Construction does no I/O; the first call in each thread connects. Every method blocks,
    raises :class:`ProjectionStoreUnavailable` when the engine cannot be reached (retry later)
    and :class:`ProjectionStoreError` otherwise. Writes are idempotent: re-inserting heartbeats or
    re-upserting a day converges to the same table contents, which is what makes at-least-once
    delivery safe.
    """

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

    # ---- lifecycle --------------------------------------------------------------------------

    def migrate(self) -> list[str]:
        """Create the database and apply pending migrations in order; returns those applied now.

        Idempotent: every statement is ``IF NOT EXISTS``, so a crash between a migration and its
        record (or two processes migrating at once) only repeats harmless work.
        """
        with self._edge("migrate"):
            self._command(f"CREATE DATABASE IF NOT EXISTS {self._db}")
            self._command(
                f"CREATE TABLE IF NOT EXISTS {self._db}.{_MIGRATIONS_TABLE} ("
                " version UInt32, name String, description String,"
                " applied_at DateTime64(3, 'UTC'))"
                " ENGINE = ReplacingMergeTree(applied_at) ORDER BY version"
            )
            rows = self._query(f"SELECT version FROM {self._db}.{_MIGRATIONS_TABLE} FINAL")
            applied = {int(row[0]) for row in rows}
            done: list[str] = []
            for migration in load_migrations():
                if migration.version in applied:
                    continue
                for statement in migration.statements:
                    self._command(statement.replace("{db}", self._db))
                self._client().insert(
                    _MIGRATIONS_TABLE,
                    [[migration.version, migration.name, migration.description, _now_ms()]],
                    column_names=["version", "name", "description", "applied_at"],
                    database=self._database,
                    column_type_names=["UInt32", "String", "String", "DateTime64(3, 'UTC')"],
                )
                done.append(migration.name)
                logger.info("applied ClickHouse migration %s", migration.name)
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

    def __enter__(self) -> ClickHouseProjectionStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # ---- writes -------------------------------------------------------------------------------

    def insert_heartbeats(self, hbs: Sequence[Heartbeat]) -> None:
        """Append heartbeats to the raw archive (duplicates collapse by ``(user_id, event_id)``).

        The hot path: one columnar Native insert, no per-insert schema lookup. Integer counters
        outside Int64 are stored as NULL rather than failing the whole batch forever.
        """
        if not hbs:
            return
        columns: list[list[Any]] = [
            list(col) for col in zip(*map(_heartbeat_values, hbs), strict=True)
        ]
        for index, name in enumerate(_HEARTBEAT_FIELDS):
            if name in _HEARTBEAT_TIME_FIELDS:
                columns[index] = [stored_millis(value) for value in columns[index]]
            elif name in _HEARTBEAT_INT_FIELDS:
                columns[index] = _int64_or_null(columns[index], name)
        # Dated from the stored milliseconds, so the row's date is the one its time reads back as.
        stored_times = columns[_HEARTBEAT_FIELDS.index("time")]
        columns.append(
            [local_date(ms / 1000, hb.timezone) for ms, hb in zip(stored_times, hbs, strict=True)]
        )
        with self._edge("insert heartbeats"):
            self._insert("heartbeats", _HEARTBEAT_COLUMNS, columns)

    def delete_heartbeats(self, deletions: Sequence[HeartbeatsDeleted]) -> None:
        """Record tombstones: each event's user no longer has those heartbeats on its local date.

        The archive keeps its rows; every reader of it leaves out the rows a tombstone names
        (:meth:`_not_deleted`), whether the heartbeat was inserted before the tombstone or after
        (a redelivery, a client re-sending it). A tombstone is keyed by the deleting user, so no
        id can reach another user's heartbeat. Idempotent (``ReplacingMergeTree``; the latest
        ``deleted_at`` stays, whatever the order of arrival).
        """
        rows = [
            (event.user_id, event.date, event_id, round(event.occurred_at * 1000))
            for event in deletions
            for event_id in event.ids
        ]
        if not rows:
            return
        columns = [list(column) for column in zip(*rows, strict=True)]
        with self._edge("record heartbeat deletions"):
            self._insert("heartbeat_deletions", _DELETION_COLUMNS, columns)

    def _not_deleted(self, scope: str) -> str:
        """A condition for any query over ``heartbeats``: the row was not deleted.

        ``scope`` is a condition on ``user_id`` (and ``local_date``), normally the one the query
        filters the archive by; it is applied to the tombstones too, so only those that can match
        are read. It only names sorting-key columns, so it holds with or without ``FINAL``::

            scope = "user_id = {user:String}"
            sql = f"... FROM {db}.heartbeats FINAL WHERE {scope} AND {self._not_deleted(scope)}"
        """
        return (
            "(user_id, local_date, event_id) NOT IN (SELECT user_id, local_date, event_id"
            f" FROM {self._db}.heartbeat_deletions WHERE {scope})"
        )

    def upsert_daily(self, rows: Sequence[DailyRow]) -> None:
        """Replace the whole stats row of each (user, day); the last row given for a day wins.

        Every call gets a fresh ``computed_at`` (the Replacing version), strictly increasing
        within this store instance, so a recompute supersedes what it replaces even within one
        millisecond. Across processes the wall clock orders recomputes: keep one writer per
        user (the projector's partitioning does) and clocks synchronized.
        """
        latest = {(row.user_id, row.date): row for row in rows}
        if not latest:
            return
        computed_at = self._next_version_ms()
        table = list(latest.values())
        columns: list[list[Any]] = [
            [row.user_id for row in table],
            [row.date for row in table],
            [row.timezone for row in table],
            [float(row.total_seconds) for row in table],
            [row.heartbeat_count for row in table],
            [round(row.first_time * 1000) for row in table],
            [round(row.last_time * 1000) for row in table],
            *(
                [{str(k): float(v) for k, v in row.breakdown.get(dim, {}).items()} for row in table]
                for dim in DIMENSION_COLUMNS
            ),
            [computed_at] * len(table),
        ]
        with self._edge("upsert daily stats"):
            self._insert("daily_stats", _DAILY_COLUMNS, columns)

    # ---- reads ----------------------------------------------------------------------------------

    def heartbeats_for_days(
        self, keys: Iterable[tuple[str, date]]
    ) -> dict[tuple[str, date], list[Heartbeat]]:
        """Deduplicated heartbeats of each (user, local day), whole, one query per chunk of keys.

        Every requested key is in the result (an empty list when nothing matched); each list is
        ordered by ``(time, event_id)``. Times come back at millisecond precision. The keys travel
        as query parameters, and a ClickHouse server caps any one parameter at
        ``http_max_field_value_size`` (128 KiB by default, a server-side profile setting), so
        keys go in chunks of :data:`_KEYS_PER_QUERY` (about 70 bytes each when formatted).
        """
        return self._read_days(keys, _HEARTBEAT_SELECT, _heartbeat_from_row)

    def beats_for_days(
        self, keys: Iterable[tuple[str, date]]
    ) -> dict[tuple[str, date], list[Beat]]:
        """Like :meth:`heartbeats_for_days`, with only the fields the duration rule reads.

        This is what a day recompute reads on every batch, so it decodes 14 columns into slotted
        records instead of whole validated heartbeats (several times cheaper per stored row).
        """
        return self._read_days(keys, _BEAT_SELECT, _beat_from_row)

    def _read_days(
        self,
        keys: Iterable[tuple[str, date]],
        select: str,
        convert: Callable[[Sequence[Any]], R],
    ) -> dict[tuple[str, date], list[R]]:
        wanted = sorted(set(keys))
        result: dict[tuple[str, date], list[R]] = {key: [] for key in wanted}
        for first in range(0, len(wanted), _KEYS_PER_QUERY):
            chunk = wanted[first : first + _KEYS_PER_QUERY]
            # The user and date lists let the primary key prune; the tuple list is exact.
            scope = "user_id IN {users:Array(String)} AND local_date IN {dates:Array(Date)}"
            sql = (
                f"SELECT {select}, user_id AS _user, local_date FROM {self._db}.heartbeats FINAL"
                f" WHERE {scope} AND (user_id, local_date) IN {{keys:Array(Tuple(String, Date))}}"
                f" AND {self._not_deleted(scope)}"
                " ORDER BY user_id, local_date, time, event_id"
            )
            parameters = {
                "users": sorted({user for user, _ in chunk}),
                "dates": sorted({day for _, day in chunk}),
                "keys": chunk,
            }
            with self._edge("read heartbeats"):
                rows = self._query(sql, parameters)
            for row in rows:
                result[(row[-2], row[-1])].append(convert(row))
        return result

    def daily_rows(self, user_id: str, start: date, end: date) -> list[DailyRow]:
        """The user's daily stats from ``start`` to ``end`` inclusive, in date order."""
        sql = (
            f"SELECT {_DAILY_SELECT} FROM {self._db}.daily_stats FINAL"
            " WHERE user_id = {user:String} AND date BETWEEN {start:Date} AND {end:Date}"
            " ORDER BY date"
        )
        with self._edge("read daily stats"):
            rows = self._query(sql, {"user": user_id, "start": start, "end": end})
        return [_daily_from_row(row) for row in rows]

    def last_heartbeat_by_project(
        self, user_id: str, start_epoch: float, end_epoch: float
    ) -> dict[str, float]:
        """Latest heartbeat time per project within ``[start_epoch, end_epoch)``.

        A heartbeat without a project is reported under ``""``. ``max`` ignores duplicates, so
        no ``FINAL`` is needed.
        """
        # Local dates are within a day of UTC dates, so this date range is a safe superset
        # that lets the primary key prune before the exact time filter.
        first_day = datetime.fromtimestamp(start_epoch, UTC).date() - timedelta(days=1)
        last_day = datetime.fromtimestamp(end_epoch, UTC).date() + timedelta(days=1)
        scope = "user_id = {user:String} AND local_date BETWEEN {d0:Date} AND {d1:Date}"
        sql = (
            "SELECT ifNull(project, '') AS name, toUnixTimestamp64Milli(max(time))"
            f" FROM {self._db}.heartbeats WHERE {scope} AND {self._not_deleted(scope)}"
            " AND time >= fromUnixTimestamp64Milli({t0:Int64}, 'UTC')"
            " AND time < fromUnixTimestamp64Milli({t1:Int64}, 'UTC')"
            " GROUP BY name"
        )
        parameters = {
            "user": user_id,
            "d0": first_day,
            "d1": last_day,
            "t0": round(start_epoch * 1000),
            "t1": round(end_epoch * 1000),
        }
        with self._edge("read last heartbeats"):
            rows = self._query(sql, parameters)
        return {str(name): int(ms) / 1000 for name, ms in rows}

    def active_dates(self, user_id: str) -> list[date]:
        """Days with recorded time (``total_seconds > 0``), ascending."""
        # WHERE on a non-key column runs after FINAL has picked each day's latest row, so a
        # day recomputed to zero is not reported from a stale copy.
        sql = (
            f"SELECT date FROM {self._db}.daily_stats FINAL"
            " WHERE user_id = {user:String} AND total_seconds > 0 ORDER BY date"
        )
        with self._edge("read active dates"):
            rows = self._query(sql, {"user": user_id})
        return [row[0] for row in rows]

    def beats_between(self, user_id: str, start_epoch: float, end_epoch: float) -> list[Beat]:
        """The user's deduplicated heartbeats with ``start_epoch <= time < end_epoch``, as the
        duration rule reads them, in ``(time, event_id)`` order (for reads in another timezone).
        """
        first_day = datetime.fromtimestamp(start_epoch, UTC).date() - timedelta(days=1)
        last_day = datetime.fromtimestamp(end_epoch, UTC).date() + timedelta(days=1)
        scope = "user_id = {user:String} AND local_date BETWEEN {d0:Date} AND {d1:Date}"
        sql = (
            f"SELECT {_BEAT_SELECT} FROM {self._db}.heartbeats FINAL"
            f" WHERE {scope} AND {self._not_deleted(scope)}"
            # `time` here is the select list's alias: integer milliseconds.
            " AND time >= {t0:Int64} AND time < {t1:Int64}"
            " ORDER BY time, event_id"
        )
        parameters = {
            "user": user_id,
            "d0": first_day,
            "d1": last_day,
            "t0": round(start_epoch * 1000),
            "t1": round(end_epoch * 1000),
        }
        with self._edge("read heartbeats"):
            rows = self._query(sql, parameters)
        return [_beat_from_row(row) for row in rows]

    def seen_values(self, user_id: str, column: SeenColumn) -> list[SeenValue]:
        """Every distinct non-empty value of ``column`` in the user's heartbeats, with when it was
        first and last seen and how many heartbeats carry it (most recent first).

        For ``user_agent`` the editor and OS parsed from the latest heartbeat come along.
        """
        if column not in _SEEN_COLUMNS:
            raise ProjectionStoreError(f"not a listable column: {column!r}")
        scope = "user_id = {user:String}"
        sql = (
            f"SELECT {column} AS value,"
            " toUnixTimestamp64Milli(min(time)), toUnixTimestamp64Milli(max(time)),"
            " uniqExact(event_id), argMax(editor, time), argMax(os, time)"
            f" FROM {self._db}.heartbeats WHERE {scope} AND {self._not_deleted(scope)}"
            f" AND {column} IS NOT NULL AND {column} != ''"
            " GROUP BY value ORDER BY max(time) DESC, value"
        )
        with self._edge(f"list {column} values"):
            rows = self._query(sql, {"user": user_id})
        return [
            SeenValue(
                value=str(value),
                first_time=int(first) / 1000,
                last_time=int(last) / 1000,
                heartbeats=int(count),
                editor=editor,
                os=os,
            )
            for value, first, last, count, editor, os in rows
        ]

    def totals_by_user(self, start: date, end: date) -> list[UserTotals]:
        """Every user's total and time per language from ``start`` to ``end`` (local days)."""
        sql = (
            "SELECT user_id, sum(total_seconds), count(), sumMap(languages)"
            f" FROM {self._db}.daily_stats FINAL"
            " WHERE date BETWEEN {start:Date} AND {end:Date} AND total_seconds > 0"
            " GROUP BY user_id"
        )
        with self._edge("read totals by user"):
            rows = self._query(sql, {"start": start, "end": end})
        return [
            UserTotals(
                user_id=str(user_id),
                total_seconds=float(total),
                active_days=int(days),
                languages={str(k): float(v) for k, v in dict(languages).items()},
            )
            for user_id, total, days, languages in rows
        ]

    # ---- leaderboards ---------------------------------------------------------------------------

    def daily_rows_for_weeks(
        self, keys: Iterable[tuple[str, date]]
    ) -> dict[tuple[str, date], list[DailyRow]]:
        """The daily rows of each (user, Monday) week, in date order; every key is present."""
        wanted = sorted(set(keys))
        result: dict[tuple[str, date], list[DailyRow]] = {key: [] for key in wanted}
        for first in range(0, len(wanted), _KEYS_PER_QUERY):
            chunk = wanted[first : first + _KEYS_PER_QUERY]
            sql = (
                f"SELECT {_DAILY_SELECT} FROM {self._db}.daily_stats FINAL"
                " WHERE user_id IN {users:Array(String)} AND date BETWEEN {d0:Date} AND {d1:Date}"
                " AND (user_id, toMonday(date)) IN {keys:Array(Tuple(String, Date))}"
                " ORDER BY user_id, date"
            )
            parameters = {
                "users": sorted({user for user, _ in chunk}),
                "d0": min(week for _, week in chunk),
                "d1": max(week for _, week in chunk) + timedelta(days=6),
                "keys": chunk,
            }
            with self._edge("read daily stats of weeks"):
                rows = self._query(sql, parameters)
            for row in rows:
                daily = _daily_from_row(row)
                monday = daily.date - timedelta(days=daily.date.weekday())
                result[(daily.user_id, monday)].append(daily)
        return result

    def upsert_weekly(self, rows: Sequence[WeeklyRow]) -> None:
        """Replace each (week, user) row whole (the newest ``computed_at`` wins)."""
        if not rows:
            return
        computed_at = self._next_version_ms()
        columns: list[list[Any]] = [
            [row.week for row in rows],
            [row.user_id for row in rows],
            [float(row.total_seconds) for row in rows],
            *(
                [{str(k): float(v) for k, v in row.breakdown[dim].items()} for row in rows]
                for dim in WEEKLY_DIMENSIONS
            ),
            [computed_at] * len(rows),
        ]
        with self._edge("upsert weekly stats"):
            self._insert("weekly_stats", _WEEKLY_COLUMNS, columns)

    def insert_account_events(self, events: Sequence[tuple[str, int, str]]) -> None:
        """Archive ``(user_id, log_offset, event_json)`` (idempotent by user and offset)."""
        if not events:
            return
        columns = [list(column) for column in zip(*events, strict=True)]
        with self._edge("archive account events"):
            self._insert("account_events", ("user_id", "log_offset", "event"), columns)

    def account_events_of(self, user_ids: Iterable[str]) -> dict[str, list[tuple[int, str]]]:
        """Each user's archived account events as ``(log_offset, event_json)`` in log order."""
        users = sorted(set(user_ids))
        result: dict[str, list[tuple[int, str]]] = {user: [] for user in users}
        for first in range(0, len(users), _KEYS_PER_QUERY):
            sql = (
                f"SELECT user_id, log_offset, event FROM {self._db}.account_events FINAL"
                " WHERE user_id IN {users:Array(String)} ORDER BY user_id, log_offset"
            )
            with self._edge("read account events"):
                rows = self._query(sql, {"users": users[first : first + _KEYS_PER_QUERY]})
            for user_id, offset, event in rows:
                result[user_id].append((int(offset), str(event)))
        return result

    def upsert_members(self, members: Sequence[Member]) -> None:
        if not members:
            return
        columns: list[list[Any]] = [
            [m.user_id for m in members],
            [m.username for m in members],
            [m.eligible for m in members],
            [m.country for m in members],
            [m.available_for_hire for m in members],
            [m.version for m in members],
            [m.languages_public for m in members],
        ]
        with self._edge("upsert leaderboard members"):
            self._insert("leaderboard_members", _MEMBER_COLUMNS, columns)

    def leaderboard(
        self,
        week: date,
        *,
        language: str | None = None,
        country: str | None = None,
        available_for_hire: bool | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[int, list[LeaderboardEntry]]:
        """One page of a week's board and how many are ranked in all.

        Only eligible members (public profiles that opted in) with time are ranked: by their
        total, or by their time in ``language`` (case-insensitive; only members whose profile
        shows languages), then by username.
        """
        ranked, parameters = self._ranked(week, language, country, available_for_hire)
        parameters |= {"limit": limit, "offset": offset}
        with self._edge("read leaderboard"):
            total = int(self._query(f"SELECT count() FROM ({ranked})", parameters)[0][0])
            rows = self._query(
                f"{ranked} ORDER BY seconds DESC, username ASC, user_id ASC"
                " LIMIT {limit:UInt32} OFFSET {offset:UInt64}",
                parameters,
            )
        entries = [_entry(offset + index + 1, row) for index, row in enumerate(rows)]
        return total, entries

    def leaderboard_position(
        self,
        week: date,
        user_id: str,
        *,
        language: str | None = None,
        country: str | None = None,
        available_for_hire: bool | None = None,
    ) -> LeaderboardEntry | None:
        """Where ``user_id`` ranks on that board (None when not ranked)."""
        found = self.leaderboard_positions(
            week,
            [user_id],
            language=language,
            country=country,
            available_for_hire=available_for_hire,
        )
        return found.get(user_id)

    def leaderboard_positions(
        self,
        week: date,
        user_ids: Iterable[str],
        *,
        language: str | None = None,
        country: str | None = None,
        available_for_hire: bool | None = None,
    ) -> dict[str, LeaderboardEntry]:
        """Where each of ``user_ids`` ranks on that board (users not ranked are left out)."""
        users = sorted(set(user_ids))
        if not users:
            return {}
        ranked, parameters = self._ranked(week, language, country, available_for_hire)
        parameters["users"] = users
        sql = (
            "SELECT position, user_id, username, country, seconds, languages, editors,"
            " operating_systems, languages_public FROM (SELECT *, row_number() OVER"
            f" (ORDER BY seconds DESC, username ASC, user_id ASC) AS position FROM ({ranked}))"
            " WHERE user_id IN {users:Array(String)}"
        )
        with self._edge("read leaderboard positions"):
            rows = self._query(sql, parameters)
        return {str(row[1]): _entry(int(row[0]), row[1:]) for row in rows}

    def _ranked(
        self,
        week: date,
        language: str | None,
        country: str | None,
        available_for_hire: bool | None,
    ) -> tuple[str, dict[str, Any]]:
        """The query of a week's eligible members with time, and its parameters."""
        seconds = (
            "arraySum(mapValues(mapFilter((k, v) -> lower(k) = lower({language:String}),"
            " w.languages)))"
            if language is not None
            else "w.total_seconds"
        )
        conditions = ["m.eligible"]
        if language is not None:
            conditions.append("m.languages_public")  # hidden languages rank on no language board
        if country is not None:
            conditions.append("m.country = {country:String}")
        if available_for_hire is not None:
            conditions.append("m.available_for_hire = {hire:Bool}")
        ranked = (
            f"SELECT w.user_id AS user_id, m.username AS username, m.country AS country,"
            f" {seconds} AS seconds, w.languages AS languages, w.editors AS editors,"
            " w.operating_systems AS operating_systems, m.languages_public AS languages_public"
            f" FROM (SELECT * FROM {self._db}.weekly_stats FINAL WHERE week = {{week:Date}}) AS w"
            # Only the week's users' member rows: user_id is the sorting key, so filtering on
            # it before FINAL keeps or drops every version of a member together.
            f" INNER JOIN (SELECT * FROM {self._db}.leaderboard_members FINAL"
            f" WHERE user_id IN (SELECT user_id FROM {self._db}.weekly_stats"
            " WHERE week = {week:Date})) AS m"
            " ON w.user_id = m.user_id"
            f" WHERE {' AND '.join(conditions)} AND seconds > 0"
        )
        parameters: dict[str, Any] = {
            "week": week,
            "language": language or "",
            "country": country or "",
            "hire": bool(available_for_hire),
        }
        return ranked, parameters

    # ---- exports: everything stored about one user (docs/api.md, "Export") -------------------

    def stream_heartbeats(
        self, user_id: str, *, block_rows: int = 2000, window_rows: int = 100_000
    ) -> Iterator[list[dict[str, Any]]]:
        """Every heartbeat of the user but the deleted ones, in ``(time, event_id)`` order, as
        blocks of at most ``block_rows`` records: an export of any size in constant memory.

        A record holds the :class:`Heartbeat` fields but ``schema_version`` and ``user_id``,
        plus ``local_date`` (a :class:`date`); ``time`` and ``received_at`` are epoch seconds
        (millisecond precision). Nothing is read before the first block is asked for, so an
        unreachable engine surfaces there. Close the generator if you stop early.

        Memory: the engine sends a result in blocks of ``block_rows`` rows and one block is held
        here at a time. Sorting needs every row it sorts, so the archive is read in windows of
        whole UTC days holding about ``window_rows`` stored rows each (sized by a count per day,
        read first): the engine sorts one window at a time, never the whole history. A day with
        more rows than that is a window of its own. Threads: see :meth:`_stream_client`.
        """
        fields = [name for name in _HEARTBEAT_FIELDS if name not in ("schema_version", "user_id")]
        names = (*fields, "local_date")
        per_day = (
            f"SELECT toDate(time) AS day, count() FROM {self._db}.heartbeats"
            " WHERE user_id = {user:String} GROUP BY day ORDER BY day"
        )
        # The local date is within a day of the UTC date: the wider date range lets the primary
        # key prune, the time range is exact. `time` there is the select list's alias (ms).
        scope = "user_id = {user:String} AND local_date BETWEEN {d0:Date} AND {d1:Date}"
        sql = (
            f"SELECT {_select(fields)}, local_date FROM {self._db}.heartbeats FINAL"
            f" WHERE {scope} AND {self._not_deleted(scope)}"
            " AND time >= {t0:Int64} AND time < {t1:Int64} ORDER BY time, event_id"
        )
        with self._stream_client() as client:
            with self._edge("count heartbeats per day"):
                days = client.query(per_day, parameters={"user": user_id}).result_rows
            for first, last in self._export_windows(days, window_rows):
                after = last + timedelta(days=1)
                parameters = {
                    "user": user_id,
                    "d0": first - timedelta(days=1),
                    "d1": after,
                    "t0": self._utc_midnight_ms(first),
                    "t1": self._utc_midnight_ms(after),
                }
                for block in self._blocks(client, sql, parameters, block_rows):
                    yield [self._export_record(names, row) for row in block]

    def stream_deletions(
        self, user_id: str, *, block_rows: int = 10_000
    ) -> Iterator[list[tuple[date, str, float]]]:
        """The user's tombstones as ``(local_date, heartbeat id, deleted_at epoch seconds)``, in
        that order, streamed like :meth:`stream_heartbeats` (a deletion can name 10,000 ids)."""
        sql = (
            "SELECT local_date, event_id, toUnixTimestamp64Milli(deleted_at)"
            f" FROM {self._db}.heartbeat_deletions FINAL WHERE user_id = {{user:String}}"
            " ORDER BY local_date, event_id"
        )
        with self._stream_client() as client:
            for block in self._blocks(client, sql, {"user": user_id}, block_rows):
                yield [(day, str(event_id), int(ms) / 1000) for day, event_id, ms in block]

    def weekly_rows_of(self, user_id: str) -> list[WeeklyRow]:
        """Every weekly stats row of the user, in week order."""
        sql = (
            "SELECT week, total_seconds, languages, editors, operating_systems"
            f" FROM {self._db}.weekly_stats FINAL WHERE user_id = {{user:String}} ORDER BY week"
        )
        with self._edge("read weekly stats"):
            rows = self._query(sql, {"user": user_id})
        return [
            WeeklyRow(
                user_id=user_id,
                week=week,
                total_seconds=float(total),
                breakdown={
                    dim: {str(k): float(v) for k, v in dict(values).items()}
                    for dim, values in zip(WEEKLY_DIMENSIONS, maps, strict=True)
                },
            )
            for week, total, *maps in rows
        ]

    def leaderboard_member(self, user_id: str) -> Member | None:
        """The user's row of ``leaderboard_members`` (None before their first account event is
        projected)."""
        sql = (
            f"SELECT {', '.join(_MEMBER_COLUMNS)} FROM {self._db}.leaderboard_members FINAL"
            " WHERE user_id = {user:String}"
        )
        with self._edge("read leaderboard member"):
            rows = self._query(sql, {"user": user_id})
        if not rows:
            return None
        member_id, username, eligible, country, hire, version, languages = rows[0]
        return Member(
            str(member_id),
            str(username),
            bool(eligible),
            str(country),
            bool(hire),
            int(version),
            bool(languages),
        )

    @contextmanager
    def _stream_client(self) -> Iterator[Client]:
        """A client of one streamed read's own, closed when the read ends.

        A stream's consumer may advance it from any thread, one at a time (a thread pool feeding
        an HTTP response does), so it cannot use the per-thread clients: a chdb stream holds its
        client until it closes, and clickhouse-connect refuses any other query of the thread
        that opened it on that client meanwhile. A client only this stream uses has no such
        conflict, whichever thread advances it.
        """
        client = self._connect()
        try:
            yield client
        finally:
            try:
                client.close()
            except Exception:  # best effort, as in close()
                logger.debug("error closing a ClickHouse stream client", exc_info=True)

    def _blocks(
        self, client: Client, sql: str, parameters: dict[str, Any], block_rows: int
    ) -> Iterator[Sequence[Sequence[Any]]]:
        """The result of ``sql`` in blocks of at most ``block_rows`` rows.

        ``max_block_size`` keeps the engine's blocks about that size (a target, which FINAL may
        exceed a little); longer ones are cut here, so callers can rely on the bound.
        """
        with self._edge("stream a read"):
            stream = client.query_row_block_stream(
                sql, parameters=parameters, settings={"max_block_size": block_rows}
            )
            with stream:
                for block in stream:
                    for start in range(0, len(block), block_rows):
                        yield block[start : start + block_rows]

    @staticmethod
    def _export_windows(days: Sequence[Sequence[Any]], window_rows: int) -> list[tuple[date, date]]:
        """Runs of consecutive ``(day, rows)`` holding at most ``window_rows`` rows (or one day)."""
        windows: list[tuple[date, date]] = []
        first: date | None = None
        last = first
        size = 0
        for day, count in days:
            if first is not None and size + int(count) > window_rows:
                assert last is not None
                windows.append((first, last))
                first = None
            if first is None:
                first, size = day, 0
            last = day
            size += int(count)
        if first is not None and last is not None:
            windows.append((first, last))
        return windows

    @staticmethod
    def _utc_midnight_ms(day: date) -> int:
        return round(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)

    @staticmethod
    def _export_record(names: Sequence[str], row: Sequence[Any]) -> dict[str, Any]:
        record = dict(zip(names, row, strict=True))
        record["time"] /= 1000
        record["received_at"] /= 1000
        record["is_write"] = bool(record["is_write"])
        record["dependencies"] = list(record["dependencies"])
        return record

    def count_heartbeats(self, user_id: str) -> int:
        """How many distinct heartbeats (not deleted) the archive holds for the user."""
        scope = "user_id = {user:String}"
        sql = (
            f"SELECT count() FROM {self._db}.heartbeats FINAL"
            f" WHERE {scope} AND {self._not_deleted(scope)}"
        )
        with self._edge("count heartbeats"):
            rows = self._query(sql, {"user": user_id})
        return int(rows[0][0])

    # ---- erasure ------------------------------------------------------------------------------

    def record_erasure(self, record: ErasureRecord) -> None:
        """Add an erasure to the ledger (``erasures``, see m0006). Idempotent: a record already
        there is replaced by an equal one, only ``projected_at`` may move."""
        position = record.position or LogPosition("", -1, -1)
        row = (
            record.user_id,
            record.erasure_id,
            record.start,
            record.end,
            position.topic,
            position.partition,
            position.offset,
            round(record.occurred_at * 1000),
            _now_ms(),
        )
        with self._edge("record an erasure"):
            self._insert(_ERASURES_TABLE, _ERASURE_COLUMNS, [[value] for value in row])

    def erasures_of(self, user_ids: Iterable[str]) -> dict[str, list[ErasureRecord]]:
        """The ledger's erasures of these users (users without any are left out), oldest
        projected first."""
        wanted = sorted(set(user_ids))
        found: dict[str, list[ErasureRecord]] = {}
        for start in range(0, len(wanted), _KEYS_PER_QUERY):
            with self._edge("read erasures"):
                rows = self._query(
                    "SELECT user_id, erasure_id, range_start, range_end, log_topic,"
                    " log_partition, log_offset, toUnixTimestamp64Milli(occurred_at)"
                    f" FROM {self._db}.{_ERASURES_TABLE} FINAL"
                    " WHERE user_id IN {users:Array(String)} ORDER BY user_id, projected_at",
                    {"users": wanted[start : start + _KEYS_PER_QUERY]},
                )
            for user_id, erasure_id, t0, t1, topic, partition, offset, occurred_ms in rows:
                found.setdefault(str(user_id), []).append(
                    ErasureRecord(
                        user_id=str(user_id),
                        erasure_id=str(erasure_id),
                        start=None if t0 is None else float(t0),
                        end=None if t1 is None else float(t1),
                        position=(
                            LogPosition(str(topic), int(partition), int(offset)) if topic else None
                        ),
                        occurred_at=int(occurred_ms) / 1000,
                    )
                )
        return found

    def erase_user(self, user_id: str) -> None:
        """Remove every row of the user from every projection table (the account was deleted).

        Every table with a ``user_id`` column is covered, including tables added later, but the
        erasure ledger, whose row is what keeps the account erased. The rows are rewritten away
        (a synchronous mutation), not only hidden, so the data is physically gone when this
        returns. Idempotent; costly on big tables, so only for rare erasures.
        """
        for table in self._tables_with_user_id():
            self._mutate_delete(table, "user_id = {user:String}", {"user": user_id})

    def erase_heartbeats(
        self, user_id: str, start_epoch: float | None, end_epoch: float | None
    ) -> set[date]:
        """Remove the user's archived heartbeats with ``start_epoch <= time < end_epoch``
        (``None``: no bound on that side).

        Returns the local dates the removed rows were on: the caller recomputes those days (and
        their weeks). Tombstones stay (they hold ids only). Idempotent.
        """
        condition = "user_id = {user:String}"
        parameters: dict[str, Any] = {"user": user_id}
        if start_epoch is not None:
            condition += " AND time >= fromUnixTimestamp64Milli({t0:Int64}, 'UTC')"
            parameters["t0"] = round(start_epoch * 1000)
        if end_epoch is not None:
            condition += " AND time < fromUnixTimestamp64Milli({t1:Int64}, 'UTC')"
            parameters["t1"] = round(end_epoch * 1000)
        with self._edge("find erased days"):
            rows = self._query(
                f"SELECT DISTINCT local_date FROM {self._db}.heartbeats WHERE {condition}",
                parameters,
            )
        self._mutate_delete("heartbeats", condition, parameters)
        return {row[0] for row in rows}

    def days_with_rows(self, user_id: str, first: date, last: date) -> set[date]:
        """The dates between ``first`` and ``last`` (inclusive) the user has a daily row on."""
        with self._edge("read daily dates"):
            rows = self._query(
                f"SELECT DISTINCT date FROM {self._db}.daily_stats"
                " WHERE user_id = {user:String} AND date BETWEEN {d0:Date} AND {d1:Date}",
                {"user": user_id, "d0": first, "d1": last},
            )
        return {row[0] for row in rows}

    def drop_days(self, user_id: str, dates: Iterable[date]) -> None:
        """Remove the user's daily rows of ``dates``, every version (an erasure left them empty:
        a row of zeros would be a trace the log no longer explains)."""
        wanted = sorted(set(dates))
        if wanted:
            self._mutate_delete(
                "daily_stats",
                "user_id = {user:String} AND date IN {dates:Array(Date)}",
                {"user": user_id, "dates": wanted},
            )

    def drop_weeks(self, user_id: str, mondays: Iterable[date]) -> None:
        """Remove the user's weekly rows of the weeks starting on ``mondays``, every version."""
        wanted = sorted(set(mondays))
        if wanted:
            self._mutate_delete(
                "weekly_stats",
                "user_id = {user:String} AND week IN {weeks:Array(Date)}",
                {"user": user_id, "weeks": wanted},
            )

    def rows_of_user(self, user_id: str) -> dict[str, int]:
        """How many stored rows (unmerged copies included) each table holds for the user."""
        counts = {}
        for table in self._tables_with_user_id():
            with self._edge(f"count {table}"):
                rows = self._query(
                    f"SELECT count() FROM {self._db}.`{table}` WHERE user_id = {{user:String}}",
                    {"user": user_id},
                )
            counts[table] = int(rows[0][0])
        return counts

    def _tables_with_user_id(self) -> list[str]:
        sql = (
            "SELECT DISTINCT table FROM system.columns WHERE database = {db:String}"
            " AND name = 'user_id' AND table NOT IN {kept:Array(String)} ORDER BY table"
        )
        with self._edge("list tables"):
            rows = self._query(sql, {"db": self._database, "kept": _BOOKKEEPING_TABLES})
        return [str(row[0]) for row in rows]

    def _mutate_delete(self, table: str, condition: str, parameters: dict[str, Any]) -> None:
        # mutations_sync = 2: return once every replica rewrote its parts (on a single server,
        # once this one did), so the rows are gone from disk, not just masked.
        sql = (
            f"ALTER TABLE {self._db}.`{table}` DELETE WHERE {condition} SETTINGS mutations_sync = 2"
        )
        with self._edge(f"erase from {table}"):
            self._client().command(sql, parameters=parameters)

    # ---- operations -------------------------------------------------------------------------

    def table_names(self) -> list[str]:
        """The projection tables: every table of the database but ``schema_migrations`` and the
        erasure ledger (``erasures``), which are bookkeeping a replay keeps."""
        sql = (
            "SELECT name FROM system.tables WHERE database = {db:String}"
            " AND name NOT IN {kept:Array(String)} ORDER BY name"
        )
        with self._edge("list tables"):
            rows = self._query(sql, {"db": self._database, "kept": _BOOKKEEPING_TABLES})
        return [str(row[0]) for row in rows]

    def truncate_projections(self) -> None:
        """Empty every projection table (for a replay); the schema, its migrations and the
        erasure ledger stay (a replay obeys the erasures recorded, even those whose events a
        log's retention has since deleted)."""
        for table in self.table_names():
            with self._edge(f"truncate {table}"):
                self._command(f"TRUNCATE TABLE IF EXISTS {self._db}.`{table}`")

    def snapshot(self, table: str) -> list[tuple[Any, ...]]:
        """Every row of a projection table, deduplicated, in sorting-key order, without
        ``computed_at``: equal snapshots prove a replay rebuilt exactly the live table.
        """
        if table not in self.table_names():
            raise ProjectionStoreError(f"unknown projection table {table!r}")
        with self._edge(f"snapshot {table}"):
            names = [
                str(row[0])
                for row in self._query(
                    "SELECT name FROM system.columns WHERE database = {db:String}"
                    " AND table = {table:String} AND name != 'computed_at' ORDER BY position",
                    {"db": self._database, "table": table},
                )
            ]
            engine, sorting_key = self._query(
                "SELECT engine, sorting_key FROM system.tables"
                " WHERE database = {db:String} AND name = {table:String}",
                {"db": self._database, "table": table},
            )[0]
            # FINAL makes the sorting key unique on Replacing tables, so the order is total.
            final = " FINAL" if engine != "MergeTree" and str(engine).endswith("MergeTree") else ""
            order = f" ORDER BY {sorting_key}" if sorting_key else ""
            columns = ", ".join(f"`{name}`" for name in names)
            rows = self._query(f"SELECT {columns} FROM {self._db}.`{table}`{final}{order}")
        return [tuple(row) for row in rows]

    # ---- plumbing -----------------------------------------------------------------------------

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
            self._last_version_ms = max(_now_ms(), self._last_version_ms + 1)
            return self._last_version_ms


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _int64_or_null(values: list[Any], name: str) -> list[Any]:
    if all(v is None or _INT64_MIN <= v <= _INT64_MAX for v in values):
        return values
    logger.warning("heartbeat %s outside Int64 stored as NULL", name)
    return [v if v is None or _INT64_MIN <= v <= _INT64_MAX else None for v in values]


def _beat_from_row(row: Sequence[Any]) -> Beat:
    (event_id, user_id, time_ms, duration, received_ms, timezone, is_write, *dims) = row[
        : len(_BEAT_FIELDS)
    ]
    return Beat(
        event_id,
        user_id,
        time_ms / 1000,
        duration,
        received_ms / 1000,
        timezone,
        bool(is_write),
        *dims,
    )


def _heartbeat_from_row(row: Sequence[Any]) -> Heartbeat:
    values = dict(zip(_HEARTBEAT_FIELDS, row, strict=False))
    values["time"] = values["time"] / 1000
    values["received_at"] = values["received_at"] / 1000
    values["dependencies"] = tuple(values["dependencies"])
    values["is_write"] = bool(values["is_write"])
    # Rows were validated Heartbeats when written; re-validating every field on every read
    # would triple the cost of a replay. The round-trip test guards the type mapping.
    return Heartbeat.model_validate(values)


def _entry(rank: int, row: Sequence[Any]) -> LeaderboardEntry:
    user_id, username, country, seconds, languages, editors, systems, languages_public = row
    return LeaderboardEntry(
        rank=rank,
        user_id=str(user_id),
        username=str(username),
        country=str(country) or None,
        seconds=float(seconds),
        breakdown={
            "language": {str(k): float(v) for k, v in dict(languages).items()},
            "editor": {str(k): float(v) for k, v in dict(editors).items()},
            "os": {str(k): float(v) for k, v in dict(systems).items()},
        },
        languages_public=bool(languages_public),
    )


def _daily_from_row(row: Sequence[Any]) -> DailyRow:
    user_id, day, timezone, total, count, first_ms, last_ms, *maps = row
    return DailyRow(
        user_id=user_id,
        date=day,
        timezone=timezone,
        total_seconds=float(total),
        heartbeat_count=int(count),
        first_time=int(first_ms) / 1000,
        last_time=int(last_ms) / 1000,
        breakdown={
            dim: {str(k): float(v) for k, v in values.items()}
            for dim, values in zip(DIMENSION_COLUMNS, maps, strict=True)
        },
    )
