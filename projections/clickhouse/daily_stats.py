"""The daily rows (``daily_stats``): one row per user and local day, replaced whole on every
recompute (``ReplacingMergeTree(computed_at)``, read with ``FINAL``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from typing import Any

from projections.clickhouse.client import KEYS_PER_QUERY, StoreClient
from projections.daily import DailyRow
from projections.durations import DIMENSIONS
from projections.ports import UserTotals

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


class DailyTables(StoreClient):
    """Writes and reads of the daily rows, per user and across users (badges, weekly boards)."""

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

    def daily_rows_for_weeks(
        self, keys: Iterable[tuple[str, date]]
    ) -> dict[tuple[str, date], list[DailyRow]]:
        """The daily rows of each (user, Monday) week, in date order; every key is present."""
        wanted = sorted(set(keys))
        result: dict[tuple[str, date], list[DailyRow]] = {key: [] for key in wanted}
        for first in range(0, len(wanted), KEYS_PER_QUERY):
            chunk = wanted[first : first + KEYS_PER_QUERY]
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
