"""The raw heartbeat archive (``heartbeats``) and its tombstones (``heartbeat_deletions``).

Every ``Replacing`` table is read with ``FINAL`` or through an aggregate that duplicates cannot
change: merges only run while some process holds the engine, so unmerged copies are the normal
case. Times are ``DateTime64(3, 'UTC')`` (millisecond precision, the precision of heartbeat event
ids) and are read back as integer milliseconds: exact, and cheaper than datetime objects.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from operator import attrgetter
from typing import Any, TypeVar

from projections.clickhouse.client import KEYS_PER_QUERY, StoreClient
from projections.daily import local_date
from projections.durations import Beat
from projections.ports import SEEN_COLUMNS, ProjectionStoreError, SeenColumn, SeenValue
from schemas.events import HeartbeatsDeleted
from schemas.heartbeat import INT64_COUNTERS, Heartbeat, fits_int64, stored_millis

logger = logging.getLogger(__name__)

HEARTBEAT_FIELDS: tuple[str, ...] = tuple(Heartbeat.model_fields)
_HEARTBEAT_COLUMNS: tuple[str, ...] = (*HEARTBEAT_FIELDS, "local_date")
_HEARTBEAT_TIME_FIELDS = frozenset({"time", "received_at"})
_HEARTBEAT_INT_FIELDS = frozenset(INT64_COUNTERS)
_heartbeat_values = attrgetter(*HEARTBEAT_FIELDS)
# Tombstones of deleted heartbeats (m0003): what identifies an archive row, and when.
_DELETION_COLUMNS: tuple[str, ...] = ("user_id", "local_date", "event_id", "deleted_at")


def select_columns(fields: Sequence[str]) -> str:
    """A select list of archive columns, times as integer milliseconds."""
    return ", ".join(
        f"toUnixTimestamp64Milli({name}) AS {name}" if name in _HEARTBEAT_TIME_FIELDS else name
        for name in fields
    )


_HEARTBEAT_SELECT = select_columns(HEARTBEAT_FIELDS)
# Beat's fields in declaration order (the dimensions last, as Beat declares them).
_BEAT_FIELDS: tuple[str, ...] = tuple(Beat.__dataclass_fields__)
_BEAT_SELECT = select_columns(_BEAT_FIELDS)
R = TypeVar("R")

# A user's archive rows in a time range. The sorting key starts (user_id, local_date), and a
# heartbeat's local date is within a day of its UTC date, so the range's UTC dates widened by a
# day each side hold every local date it can be filed under: the primary key prunes by them,
# and the query adds the exact time condition (see :func:`time_range_parameters`).
TIME_RANGE_SCOPE = "user_id = {user:String} AND local_date BETWEEN {d0:Date} AND {d1:Date}"


def time_range_parameters(user_id: str, start_epoch: float, end_epoch: float) -> dict[str, Any]:
    """The parameters of :data:`TIME_RANGE_SCOPE` for ``start_epoch <= time < end_epoch``, and
    the exact bounds as integer milliseconds (``t0``, ``t1``)."""
    return {
        "user": user_id,
        "d0": datetime.fromtimestamp(start_epoch, UTC).date() - timedelta(days=1),
        "d1": datetime.fromtimestamp(end_epoch, UTC).date() + timedelta(days=1),
        "t0": round(start_epoch * 1000),
        "t1": round(end_epoch * 1000),
    }


def not_deleted(db: str, scope: str) -> str:
    """A condition for any query over ``heartbeats``: the row was not deleted.

    ``scope`` is a condition on ``user_id`` (and ``local_date``), normally the one the query
    filters the archive by; it is applied to the tombstones too, so only those that can match
    are read. It only names sorting-key columns, so it holds with or without ``FINAL``::

        scope = "user_id = {user:String}"
        sql = f"... FROM {db}.heartbeats FINAL WHERE {scope} AND {not_deleted(db, scope)}"
    """
    return (
        "(user_id, local_date, event_id) NOT IN (SELECT user_id, local_date, event_id"
        f" FROM {db}.heartbeat_deletions WHERE {scope})"
    )


class ArchiveTables(StoreClient):
    """Writes and reads of the archive. Every reader leaves out the rows a tombstone names."""

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
        for index, name in enumerate(HEARTBEAT_FIELDS):
            if name in _HEARTBEAT_TIME_FIELDS:
                columns[index] = [stored_millis(value) for value in columns[index]]
            elif name in _HEARTBEAT_INT_FIELDS:
                columns[index] = _int64_or_null(columns[index], name)
        # Dated from the stored milliseconds, so the row's date is the one its time reads back as.
        stored_times = columns[HEARTBEAT_FIELDS.index("time")]
        columns.append(
            [local_date(ms / 1000, hb.timezone) for ms, hb in zip(stored_times, hbs, strict=True)]
        )
        with self._edge("insert heartbeats"):
            self._insert("heartbeats", _HEARTBEAT_COLUMNS, columns)

    def delete_heartbeats(self, deletions: Sequence[HeartbeatsDeleted]) -> None:
        """Record tombstones: each event's user no longer has those heartbeats on its local date.

        The archive keeps its rows; every reader of it leaves out the rows a tombstone names
        (:func:`not_deleted`), whether the heartbeat was inserted before the tombstone or after
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

    def deleted_ids(self, keys: Iterable[tuple[str, date, str]]) -> set[tuple[str, date, str]]:
        """Which of these (user, local date, heartbeat id) a tombstone names."""
        wanted = sorted(set(keys))
        found: set[tuple[str, date, str]] = set()
        for first in range(0, len(wanted), KEYS_PER_QUERY):
            chunk = wanted[first : first + KEYS_PER_QUERY]
            sql = (
                f"SELECT DISTINCT user_id, local_date, event_id FROM {self._db}.heartbeat_deletions"
                " WHERE user_id IN {users:Array(String)} AND local_date IN {dates:Array(Date)}"
                " AND (user_id, local_date, event_id) IN {keys:Array(Tuple(String, Date, String))}"
            )
            parameters = {
                "users": sorted({user for user, _, _ in chunk}),
                "dates": sorted({day for _, day, _ in chunk}),
                "keys": chunk,
            }
            with self._edge("read tombstones"):
                rows = self._query(sql, parameters)
            found.update((str(user), day, str(event_id)) for user, day, event_id in rows)
        return found

    def heartbeats_for_days(
        self, keys: Iterable[tuple[str, date]]
    ) -> dict[tuple[str, date], list[Heartbeat]]:
        """Deduplicated heartbeats of each (user, local day), whole, one query per chunk of keys.

        Every requested key is in the result (an empty list when nothing matched); each list is
        ordered by ``(time, event_id)``. Times come back at millisecond precision. The keys travel
        as query parameters, and a ClickHouse server caps any one parameter at
        ``http_max_field_value_size`` (128 KiB by default, a server-side profile setting), so
        keys go in chunks of :data:`KEYS_PER_QUERY` (about 70 bytes each when formatted).
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
        for first in range(0, len(wanted), KEYS_PER_QUERY):
            chunk = wanted[first : first + KEYS_PER_QUERY]
            # The user and date lists let the primary key prune; the tuple list is exact.
            scope = "user_id IN {users:Array(String)} AND local_date IN {dates:Array(Date)}"
            sql = (
                f"SELECT {select}, user_id AS _user, local_date FROM {self._db}.heartbeats FINAL"
                f" WHERE {scope} AND (user_id, local_date) IN {{keys:Array(Tuple(String, Date))}}"
                f" AND {not_deleted(self._db, scope)}"
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

    def last_heartbeat_by_project(
        self, user_id: str, start_epoch: float, end_epoch: float
    ) -> dict[str, float]:
        """Latest heartbeat time per project within ``[start_epoch, end_epoch)``.

        A heartbeat without a project is reported under ``""``. ``max`` ignores duplicates, so
        no ``FINAL`` is needed.
        """
        scope = TIME_RANGE_SCOPE
        sql = (
            "SELECT ifNull(project, '') AS name, toUnixTimestamp64Milli(max(time))"
            f" FROM {self._db}.heartbeats WHERE {scope} AND {not_deleted(self._db, scope)}"
            " AND time >= fromUnixTimestamp64Milli({t0:Int64}, 'UTC')"
            " AND time < fromUnixTimestamp64Milli({t1:Int64}, 'UTC')"
            " GROUP BY name"
        )
        parameters = time_range_parameters(user_id, start_epoch, end_epoch)
        with self._edge("read last heartbeats"):
            rows = self._query(sql, parameters)
        return {str(name): int(ms) / 1000 for name, ms in rows}

    def beats_between(self, user_id: str, start_epoch: float, end_epoch: float) -> list[Beat]:
        """The user's deduplicated heartbeats with ``start_epoch <= time < end_epoch``, as the
        duration rule reads them, in ``(time, event_id)`` order (for reads in another timezone).
        """
        scope = TIME_RANGE_SCOPE
        sql = (
            f"SELECT {_BEAT_SELECT} FROM {self._db}.heartbeats FINAL"
            f" WHERE {scope} AND {not_deleted(self._db, scope)}"
            # `time` here is the select list's alias: integer milliseconds.
            " AND time >= {t0:Int64} AND time < {t1:Int64}"
            " ORDER BY time, event_id"
        )
        parameters = time_range_parameters(user_id, start_epoch, end_epoch)
        with self._edge("read heartbeats"):
            rows = self._query(sql, parameters)
        return [_beat_from_row(row) for row in rows]

    def seen_values(self, user_id: str, column: SeenColumn) -> list[SeenValue]:
        """Every distinct non-empty value of ``column`` in the user's heartbeats, with when it was
        first and last seen and how many heartbeats carry it (most recent first).

        For ``user_agent`` the editor and OS parsed from the latest heartbeat come along.
        """
        if column not in SEEN_COLUMNS:
            raise ProjectionStoreError(f"not a listable column: {column!r}")
        scope = "user_id = {user:String}"
        sql = (
            f"SELECT {column} AS value,"
            " toUnixTimestamp64Milli(min(time)), toUnixTimestamp64Milli(max(time)),"
            " uniqExact(event_id), argMax(editor, time), argMax(os, time)"
            f" FROM {self._db}.heartbeats WHERE {scope} AND {not_deleted(self._db, scope)}"
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


def _int64_or_null(values: list[Any], name: str) -> list[Any]:
    if all(map(fits_int64, values)):
        return values
    logger.warning("heartbeat %s outside Int64 stored as NULL", name)
    return [v if fits_int64(v) else None for v in values]


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
    values = dict(zip(HEARTBEAT_FIELDS, row, strict=False))
    values["time"] = values["time"] / 1000
    values["received_at"] = values["received_at"] / 1000
    values["dependencies"] = tuple(values["dependencies"])
    values["is_write"] = bool(values["is_write"])
    # Rows were validated Heartbeats when written; re-validating every field on every read
    # would triple the cost of a replay. The round-trip test guards the type mapping.
    return Heartbeat.model_validate(values)
