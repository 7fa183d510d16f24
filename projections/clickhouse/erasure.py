"""Erasure: the erasure ledger (``erasures``, m0006) and the removal of a user's rows.

The ledger is bookkeeping, not a projection: a replay keeps it and an account's erasure keeps
its row, so an erasure holds across restarts, rebalances and replays. Removals are synchronous
mutations (``mutations_sync = 2``): the rows are physically gone when a call returns.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from projections.clickhouse.client import (
    BOOKKEEPING_TABLES,
    ERASURES_TABLE,
    KEYS_PER_QUERY,
    StoreClient,
    now_ms,
)
from projections.erasures import ErasureRecord, LogPosition

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


class ErasureTables(StoreClient):
    """The ledger's writes and reads, and what an erasure removes from every projection."""

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
            now_ms(),
        )
        with self._edge("record an erasure"):
            self._insert(ERASURES_TABLE, _ERASURE_COLUMNS, [[value] for value in row])

    def erasures_of(self, user_ids: Iterable[str]) -> dict[str, list[ErasureRecord]]:
        """The ledger's erasures of these users (users without any are left out), oldest
        projected first."""
        wanted = sorted(set(user_ids))
        found: dict[str, list[ErasureRecord]] = {}
        for start in range(0, len(wanted), KEYS_PER_QUERY):
            with self._edge("read erasures"):
                rows = self._query(
                    "SELECT user_id, erasure_id, range_start, range_end, log_topic,"
                    " log_partition, log_offset, toUnixTimestamp64Milli(occurred_at)"
                    f" FROM {self._db}.{ERASURES_TABLE} FINAL"
                    " WHERE user_id IN {users:Array(String)} ORDER BY user_id, projected_at",
                    {"users": wanted[start : start + KEYS_PER_QUERY]},
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

    def _tables_with_user_id(self) -> list[str]:
        sql = (
            "SELECT DISTINCT table FROM system.columns WHERE database = {db:String}"
            " AND name = 'user_id' AND table NOT IN {kept:Array(String)} ORDER BY table"
        )
        with self._edge("list tables"):
            rows = self._query(sql, {"db": self._database, "kept": BOOKKEEPING_TABLES})
        return [str(row[0]) for row in rows]

    def _mutate_delete(self, table: str, condition: str, parameters: dict[str, Any]) -> None:
        # mutations_sync = 2: return once every replica rewrote its parts (on a single server,
        # once this one did), so the rows are gone from disk, not just masked.
        sql = (
            f"ALTER TABLE {self._db}.`{table}` DELETE WHERE {condition} SETTINGS mutations_sync = 2"
        )
        with self._edge(f"erase from {table}"):
            self._client().command(sql, parameters=parameters)
