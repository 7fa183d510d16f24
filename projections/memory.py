"""The projection store in memory: the port's semantics without an engine, for tests.

:class:`InMemoryProjectionStore` keeps every table as a dictionary keyed by the ClickHouse table's
sorting key (user id first), which is what ClickHouse's ``Replacing`` tables converge to, so
it reads exactly what :class:`~projections.clickhouse.ClickHouseProjectionStore` reads; both pass
``tests/contract/test_projection_store_contract.py``. What it keeps of each write follows the
engine: times at millisecond precision, integer counters outside Int64 as ``None``, every
dimension present in a day row's breakdown, the newer version of a replaced row (``received_at``
for heartbeats, ``deleted_at`` for tombstones, ``version`` for members, the last write for the
rest).

It lives as long as the process and is never built from settings: ClickHouse is the only
production store. One lock serializes every call, so it is safe from any thread; calls never
block on I/O and never raise :class:`~projections.ports.ProjectionStoreUnavailable`.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Any, Self

from projections.ai import AI_EXPORT_COLUMNS
from projections.daily import DailyRow, local_date
from projections.dayfold import DayFold, decode_fold, encode_fold
from projections.durations import DIMENSIONS, Beat
from projections.erasures import ErasureRecord
from projections.leaderboard import WEEKLY_DIMENSIONS, Member, WeeklyRow
from projections.ports import (
    SEEN_COLUMNS,
    LeaderboardEntry,
    ProjectionStoreError,
    SeenColumn,
    SeenValue,
    UserTotals,
)
from schemas.ai import AiProject, AiRecord, AiSessionStart, project_id_of, project_name_of
from schemas.events import HeartbeatsDeleted
from schemas.heartbeat import (
    INT64_COUNTERS,
    Heartbeat,
    at_stored_precision,
    fits_int64,
    stored_millis,
)

__all__ = ["InMemoryProjectionStore"]

# The table each kind of AI record is kept in (named as ClickHouse's, m0009-m0011).
_AI_TABLE_OF = {
    "project": "ai_projects",
    "session_start": "ai_sessions",
    "session_end": "ai_sessions",
    "message": "ai_messages",
    "file_activity": "ai_activities",
    "tool_call": "ai_tool_calls",
    "usage": "ai_usage",
}

logger = logging.getLogger(__name__)

ArchiveKey = tuple[str, date, str]  # (user_id, local_date, event_id)
_BEAT_FIELDS = tuple(Beat.__dataclass_fields__)
_EXPORT_FIELDS = tuple(f for f in Heartbeat.model_fields if f not in ("schema_version", "user_id"))


class InMemoryProjectionStore:
    """Every projection table and the erasure ledger in dictionaries (see the module docs)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._closed = False
        self._heartbeats: dict[ArchiveKey, Heartbeat] = {}
        self._deletions: dict[ArchiveKey, float] = {}  # -> deleted_at
        self._daily: dict[tuple[str, date], DailyRow] = {}
        self._folds: dict[tuple[str, date], str] = {}  # -> the fold as text ("" forgotten)
        self._weekly: dict[tuple[str, date], WeeklyRow] = {}  # (user_id, week)
        self._members: dict[tuple[str], Member] = {}
        self._account_events: dict[tuple[str, int], str] = {}
        self._erasures: dict[tuple[str, str], tuple[int, ErasureRecord]] = {}  # -> (order, record)
        self._order = itertools.count()
        # AI tables: (user_id, record id) -> the record (a session start also names a project).
        self._ai: dict[str, dict[tuple[str, str], AiRecord]] = {
            table: {} for table in _AI_TABLE_OF.values()
        }

    # ---- lifecycle ------------------------------------------------------------------------------

    def migrate(self) -> list[str]:
        """Nothing to create: the tables exist from construction."""
        with self._open():
            return []

    def close(self) -> None:
        with self._lock:
            self._closed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def table_names(self) -> list[str]:
        with self._open():
            return sorted(self._projection_tables())

    def truncate_projections(self) -> None:
        """Empty every projection table; the erasure ledger stays (as on ClickHouse)."""
        with self._open():
            for table in self._projection_tables().values():
                table.clear()

    # ---- the archive --------------------------------------------------------------------------

    def insert_heartbeats(self, hbs: Sequence[Heartbeat]) -> None:
        with self._open():
            for hb in hbs:
                stored = _as_stored(hb)
                key = (stored.user_id, local_date(stored.time, stored.timezone), stored.event_id)
                kept = self._heartbeats.get(key)
                if kept is None or stored.received_at >= kept.received_at:
                    self._heartbeats[key] = stored

    def delete_heartbeats(self, deletions: Sequence[HeartbeatsDeleted]) -> None:
        with self._open():
            for event in deletions:
                deleted_at = at_stored_precision(event.occurred_at)
                for event_id in event.ids:
                    key = (event.user_id, event.date, event_id)
                    self._deletions[key] = max(deleted_at, self._deletions.get(key, deleted_at))

    def heartbeats_for_days(
        self, keys: Iterable[tuple[str, date]]
    ) -> dict[tuple[str, date], list[Heartbeat]]:
        with self._open():
            wanted = set(keys)
            found: dict[tuple[str, date], list[Heartbeat]] = {key: [] for key in sorted(wanted)}
            for (user_id, day, _), hb in self._live_heartbeats():
                if (user_id, day) in wanted:
                    found[(user_id, day)].append(hb)
            return found

    def beats_for_days(
        self, keys: Iterable[tuple[str, date]]
    ) -> dict[tuple[str, date], list[Beat]]:
        return {
            key: [_beat(hb) for hb in hbs] for key, hbs in self.heartbeats_for_days(keys).items()
        }

    def beats_between(self, user_id: str, start_epoch: float, end_epoch: float) -> list[Beat]:
        with self._open():
            return [_beat(hb) for hb in self._between(user_id, start_epoch, end_epoch)]

    def last_heartbeat_by_project(
        self, user_id: str, start_epoch: float, end_epoch: float
    ) -> dict[str, float]:
        with self._open():
            latest: dict[str, float] = {}
            for hb in self._between(user_id, start_epoch, end_epoch):
                name = hb.project or ""
                latest[name] = max(hb.time, latest.get(name, hb.time))
            return latest

    def seen_values(self, user_id: str, column: SeenColumn) -> list[SeenValue]:
        if column not in SEEN_COLUMNS:
            raise ProjectionStoreError(f"not a listable column: {column!r}")
        with self._open():
            groups: dict[str, list[Heartbeat]] = {}
            for (user, _, _), hb in self._live_heartbeats():
                value = getattr(hb, column)
                if user == user_id and value:
                    groups.setdefault(str(value), []).append(hb)
            seen = []
            for value, hbs in groups.items():
                latest = max(hbs, key=lambda hb: hb.time)
                seen.append(
                    SeenValue(
                        value=value,
                        first_time=min(hb.time for hb in hbs),
                        last_time=latest.time,
                        heartbeats=len({hb.event_id for hb in hbs}),
                        editor=latest.editor,
                        os=latest.os,
                    )
                )
            return sorted(seen, key=lambda s: (-s.last_time, s.value))

    # ---- daily rows ---------------------------------------------------------------------------

    def upsert_daily(self, rows: Sequence[DailyRow]) -> None:
        with self._open():
            for row in rows:
                self._daily[(row.user_id, row.date)] = _as_stored_day(row)

    def daily_rows(self, user_id: str, start: date, end: date) -> list[DailyRow]:
        with self._open():
            return [
                row
                for (user, day), row in sorted(self._daily.items())
                if user == user_id and start <= day <= end
            ]

    def active_dates(self, user_id: str) -> list[date]:
        with self._open():
            return [
                day
                for (user, day), row in sorted(self._daily.items())
                if user == user_id and row.total_seconds > 0
            ]

    def totals_by_user(self, start: date, end: date) -> list[UserTotals]:
        with self._open():
            totals: dict[str, tuple[float, int, dict[str, float]]] = {}
            for (user, day), row in sorted(self._daily.items()):
                if start <= day <= end and row.total_seconds > 0:
                    total, days, languages = totals.get(user, (0.0, 0, {}))
                    for name, seconds in row.breakdown["language"].items():
                        languages[name] = languages.get(name, 0.0) + seconds
                    totals[user] = (total + row.total_seconds, days + 1, languages)
            return [
                UserTotals(user, total, days, languages)
                for user, (total, days, languages) in totals.items()
            ]

    # ---- day folds ------------------------------------------------------------------------------

    def day_folds(self, keys: Iterable[tuple[str, date]]) -> dict[tuple[str, date], DayFold]:
        with self._open():
            return {
                (user_id, day): decode_fold(user_id, day, text)
                for user_id, day in sorted(set(keys))
                if (text := self._folds.get((user_id, day)))
            }

    def upsert_day_folds(self, folds: Sequence[DayFold]) -> None:
        with self._open():
            for fold in folds:
                self._folds[(fold.user_id, fold.date)] = encode_fold(fold)

    def forget_day_folds(self, keys: Iterable[tuple[str, date]]) -> None:
        with self._open():
            for key in keys:
                self._folds[key] = ""

    def drop_day_folds(self, user_id: str, first: date, last: date) -> None:
        with self._open():
            for key in [k for k in self._folds if k[0] == user_id and first <= k[1] <= last]:
                del self._folds[key]

    def deleted_ids(self, keys: Iterable[tuple[str, date, str]]) -> set[tuple[str, date, str]]:
        with self._open():
            return {key for key in keys if key in self._deletions}

    def daily_rows_for_weeks(
        self, keys: Iterable[tuple[str, date]]
    ) -> dict[tuple[str, date], list[DailyRow]]:
        with self._open():
            found: dict[tuple[str, date], list[DailyRow]] = {key: [] for key in sorted(set(keys))}
            for (user, day), row in sorted(self._daily.items()):
                monday = day - timedelta(days=day.weekday())
                if (user, monday) in found:
                    found[(user, monday)].append(row)
            return found

    # ---- weekly boards --------------------------------------------------------------------------

    def upsert_weekly(self, rows: Sequence[WeeklyRow]) -> None:
        with self._open():
            for row in rows:
                breakdown = {
                    dim: {str(k): float(v) for k, v in row.breakdown[dim].items()}
                    for dim in WEEKLY_DIMENSIONS
                }
                stored = WeeklyRow(row.user_id, row.week, float(row.total_seconds), breakdown)
                self._weekly[(row.user_id, row.week)] = stored

    def weekly_rows_of(self, user_id: str) -> list[WeeklyRow]:
        with self._open():
            return [row for (user, _), row in sorted(self._weekly.items()) if user == user_id]

    def insert_account_events(self, events: Sequence[tuple[str, int, str]]) -> None:
        with self._open():
            for user_id, offset, event in events:
                self._account_events[(user_id, offset)] = event

    def account_events_of(self, user_ids: Iterable[str]) -> dict[str, list[tuple[int, str]]]:
        with self._open():
            found: dict[str, list[tuple[int, str]]] = {user: [] for user in sorted(set(user_ids))}
            for (user, offset), event in sorted(self._account_events.items()):
                if user in found:
                    found[user].append((offset, event))
            return found

    def upsert_members(self, members: Sequence[Member]) -> None:
        with self._open():
            for member in members:
                kept = self._members.get((member.user_id,))
                if kept is None or member.version >= kept.version:
                    self._members[(member.user_id,)] = member

    def leaderboard_member(self, user_id: str) -> Member | None:
        with self._open():
            return self._members.get((user_id,))

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
        ranked = self._ranked(week, language, country, available_for_hire)
        return len(ranked), ranked[offset : offset + limit]

    def leaderboard_position(
        self,
        week: date,
        user_id: str,
        *,
        language: str | None = None,
        country: str | None = None,
        available_for_hire: bool | None = None,
    ) -> LeaderboardEntry | None:
        ranked = self._ranked(week, language, country, available_for_hire)
        return next((entry for entry in ranked if entry.user_id == user_id), None)

    def leaderboard_positions(
        self,
        week: date,
        user_ids: Iterable[str],
        *,
        language: str | None = None,
        country: str | None = None,
        available_for_hire: bool | None = None,
    ) -> dict[str, LeaderboardEntry]:
        wanted = set(user_ids)
        ranked = self._ranked(week, language, country, available_for_hire)
        return {entry.user_id: entry for entry in ranked if entry.user_id in wanted}

    def _ranked(
        self,
        week: date,
        language: str | None,
        country: str | None,
        available_for_hire: bool | None,
    ) -> list[LeaderboardEntry]:
        """The whole board, ranked: the rule of ``ClickHouseProjectionStore._ranked``."""
        with self._open():
            scored: list[tuple[float, Member, WeeklyRow]] = []
            for (user_id, row_week), row in self._weekly.items():
                member = self._members.get((user_id,))
                if row_week != week or member is None or not member.eligible:
                    continue
                if language is not None and not member.languages_public:
                    continue
                if country is not None and member.country != country:
                    continue
                if (
                    available_for_hire is not None
                    and member.available_for_hire != available_for_hire
                ):
                    continue
                seconds = row.total_seconds
                if language is not None:
                    # ClickHouse's lower() folds ASCII letters only, as bytes.lower() does.
                    wanted = language.encode().lower()
                    seconds = sum(
                        v
                        for k, v in row.breakdown["language"].items()
                        if k.encode().lower() == wanted
                    )
                if seconds > 0:
                    scored.append((seconds, member, row))
        scored.sort(key=lambda item: (-item[0], item[1].username, item[1].user_id))
        return [
            LeaderboardEntry(
                rank=rank,
                user_id=member.user_id,
                username=member.username,
                country=member.country or None,
                seconds=seconds,
                breakdown={dim: dict(row.breakdown[dim]) for dim in WEEKLY_DIMENSIONS},
                languages_public=member.languages_public,
            )
            for rank, (seconds, member, row) in enumerate(scored, start=1)
        ]

    # ---- exports --------------------------------------------------------------------------------

    def stream_heartbeats(
        self, user_id: str, *, block_rows: int = 2000, window_rows: int = 100_000
    ) -> Iterator[list[dict[str, Any]]]:
        """Like ClickHouse's: the records, blocks of at most ``block_rows``; nothing is read
        before the first block is asked for. ``window_rows`` is accepted and unused."""
        with self._open():
            rows = [(hb, day) for (user, day, _), hb in self._live_heartbeats() if user == user_id]
        rows.sort(key=lambda row: (row[0].time, row[0].event_id))
        records = [_export_record(hb, day) for hb, day in rows]
        for start in range(0, len(records), block_rows):
            yield records[start : start + block_rows]

    def stream_deletions(
        self, user_id: str, *, block_rows: int = 10_000
    ) -> Iterator[list[tuple[date, str, float]]]:
        with self._open():
            rows = [
                (day, event_id, deleted_at)
                for (user, day, event_id), deleted_at in sorted(self._deletions.items())
                if user == user_id
            ]
        for start in range(0, len(rows), block_rows):
            yield rows[start : start + block_rows]

    def stream_ai_rows(self, user_id: str, table: str) -> Iterator[list[dict[str, Any]]]:
        """Like ClickHouse's: the user's rows of one AI table, in time order, one block."""
        with self._open():
            records = sorted(
                (record for (user, _), record in self._ai[table].items() if user == user_id),
                key=lambda record: (record.time, record.id),
            )
        rows = [_ai_export_row(user_id, table, record) for record in records]
        if rows:
            yield rows

    # ---- AI coding activity ---------------------------------------------------------------------

    def insert_ai_records(self, user_id: str, records: Sequence[AiRecord]) -> None:
        with self._open():
            for record in records:
                self._ai[_AI_TABLE_OF[record.kind]][(user_id, record.id)] = record
                if isinstance(record, AiSessionStart):
                    self._ai["ai_projects"][(user_id, record.id)] = AiProject(
                        id=record.id,
                        time=record.time,
                        project_id=record.project_id,
                        path=record.project_path,
                    )

    def erase_ai(self, user_id: str, start_epoch: float | None, end_epoch: float | None) -> None:
        t0 = None if start_epoch is None else stored_millis(start_epoch)
        t1 = None if end_epoch is None else stored_millis(end_epoch)
        with self._open():
            for rows in self._ai.values():
                for key in [
                    key
                    for key, record in rows.items()
                    if key[0] == user_id
                    and (t0 is None or stored_millis(record.time) >= t0)
                    and (t1 is None or stored_millis(record.time) < t1)
                ]:
                    del rows[key]

    # ---- erasure ------------------------------------------------------------------------------

    def record_erasure(self, record: ErasureRecord) -> None:
        stored = dataclasses.replace(record, occurred_at=at_stored_precision(record.occurred_at))
        with self._open():
            self._erasures[(record.user_id, record.erasure_id)] = (next(self._order), stored)

    def erasures_of(self, user_ids: Iterable[str]) -> dict[str, list[ErasureRecord]]:
        wanted = set(user_ids)
        with self._open():
            found: dict[str, list[ErasureRecord]] = {}
            for _, record in sorted(self._erasures.values(), key=lambda item: item[0]):
                if record.user_id in wanted:
                    found.setdefault(record.user_id, []).append(record)
            return {user: found[user] for user in sorted(found)}

    def erase_user(self, user_id: str) -> None:
        with self._open():
            for table in self._projection_tables().values():
                for key in [key for key in table if key[0] == user_id]:
                    del table[key]

    def erase_heartbeats(
        self, user_id: str, start_epoch: float | None, end_epoch: float | None
    ) -> set[date]:
        t0 = None if start_epoch is None else stored_millis(start_epoch)
        t1 = None if end_epoch is None else stored_millis(end_epoch)
        with self._open():
            gone = [
                key
                for key, hb in self._heartbeats.items()
                if key[0] == user_id
                and (t0 is None or stored_millis(hb.time) >= t0)
                and (t1 is None or stored_millis(hb.time) < t1)
            ]
            for key in gone:
                del self._heartbeats[key]
            return {day for _, day, _ in gone}

    def days_with_rows(self, user_id: str, first: date, last: date) -> set[date]:
        with self._open():
            return {day for user, day in self._daily if user == user_id and first <= day <= last}

    def drop_days(self, user_id: str, dates: Iterable[date]) -> None:
        with self._open():
            for day in set(dates):
                self._daily.pop((user_id, day), None)

    def drop_weeks(self, user_id: str, mondays: Iterable[date]) -> None:
        with self._open():
            for monday in set(mondays):
                self._weekly.pop((user_id, monday), None)

    # ---- plumbing -------------------------------------------------------------------------------

    @contextmanager
    def _open(self) -> Iterator[None]:
        with self._lock:
            if self._closed:
                raise ProjectionStoreError("the projection store is closed")
            yield

    def _projection_tables(self) -> dict[str, dict[Any, Any]]:
        """The projection tables by their ClickHouse names (keys start with the user id); the
        erasure ledger is bookkeeping, not one of them."""
        return {
            "account_events": self._account_events,
            "daily_stats": self._daily,
            "day_folds": self._folds,
            "heartbeat_deletions": self._deletions,
            "heartbeats": self._heartbeats,
            "leaderboard_members": self._members,
            "weekly_stats": self._weekly,
            **self._ai,
        }

    def _live_heartbeats(self) -> list[tuple[ArchiveKey, Heartbeat]]:
        """The archive's rows no tombstone names, in ``(user, local date, time, event id)``
        order. Call with the lock held."""
        rows = [item for item in self._heartbeats.items() if item[0] not in self._deletions]
        return sorted(rows, key=lambda item: (item[0][0], item[0][1], item[1].time, item[0][2]))

    def _between(self, user_id: str, start_epoch: float, end_epoch: float) -> list[Heartbeat]:
        """The user's live heartbeats with ``start_epoch <= time < end_epoch`` in ``(time,
        event_id)`` order (compared in whole milliseconds, as stored). Call with the lock held."""
        t0, t1 = stored_millis(start_epoch), stored_millis(end_epoch)
        found = [
            hb
            for (user, _, _), hb in self._live_heartbeats()
            if user == user_id and t0 <= stored_millis(hb.time) < t1
        ]
        return sorted(found, key=lambda hb: (hb.time, hb.event_id))


def _as_stored(hb: Heartbeat) -> Heartbeat:
    """The heartbeat as the archive gives it back: times to the millisecond, integer counters
    outside Int64 as ``None``."""
    update: dict[str, Any] = {
        "time": at_stored_precision(hb.time),
        "received_at": at_stored_precision(hb.received_at),
    }
    for name in INT64_COUNTERS:
        if not fits_int64(getattr(hb, name)):
            logger.warning("heartbeat %s outside Int64 stored as NULL", name)
            update[name] = None
    return hb.model_copy(update=update)


def _as_stored_day(row: DailyRow) -> DailyRow:
    """The day row as ``daily_stats`` gives it back: every dimension, times to the ms."""
    return dataclasses.replace(
        row,
        total_seconds=float(row.total_seconds),
        first_time=round(row.first_time * 1000) / 1000,
        last_time=round(row.last_time * 1000) / 1000,
        breakdown={
            dim: {str(k): float(v) for k, v in row.breakdown.get(dim, {}).items()}
            for dim in DIMENSIONS
        },
    )


def _beat(hb: Heartbeat) -> Beat:
    return Beat(*(getattr(hb, name) for name in _BEAT_FIELDS))


def _export_record(hb: Heartbeat, day: date) -> dict[str, Any]:
    record = {name: getattr(hb, name) for name in _EXPORT_FIELDS}
    record["dependencies"] = list(record["dependencies"])
    record["local_date"] = day
    return record


def _ai_export_row(user_id: str, table: str, record: AiRecord) -> dict[str, Any]:
    """One AI record as ClickHouse's export reads its row (``AI_EXPORT_COLUMNS``)."""
    values = record.model_dump()
    kind = values.pop("kind")
    path = values.get("project_path")
    derived = {
        "record_id": record.id,
        "message_id": record.id,
        "activity_id": record.id,
        "call_id": record.id,
        "usage_id": record.id,
        "kind": {"session_start": "start", "session_end": "end"}.get(kind, kind),
        "name": project_name_of(values.get("path") or ""),
        "project_id": values.get("project_id")
        if "project_id" in values
        else (project_id_of(user_id, path) if path else None),
        "session_id": values.get("session_id") or "",
    }
    if kind == "session_end":  # an end row names no project (its start does)
        derived.update(project_id=None, assistant="")
        values.update(project_path=None, client_user=None)
    return {name: derived.get(name, values.get(name)) for name in AI_EXPORT_COLUMNS[table]}
