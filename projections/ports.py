"""The ports of the projection store: what the processors write through."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from typing import Protocol

from projections.clickhouse import LeaderboardEntry
from projections.daily import DailyRow
from projections.durations import Beat
from projections.erasures import ErasureRecord
from projections.leaderboard import Member, WeeklyRow
from schemas.events import HeartbeatsDeleted
from schemas.heartbeat import Heartbeat

DayKey = tuple[str, date]


class ProjectionWriter(Protocol):
    """The part of the projection store the handler writes through (blocking calls)."""

    def insert_heartbeats(self, hbs: Sequence[Heartbeat]) -> None: ...

    def delete_heartbeats(self, deletions: Sequence[HeartbeatsDeleted]) -> None: ...

    def beats_for_days(self, keys: Iterable[DayKey]) -> dict[DayKey, list[Beat]]: ...

    def upsert_daily(self, rows: Sequence[DailyRow]) -> None: ...

    def daily_rows_for_weeks(
        self, keys: Iterable[tuple[str, date]]
    ) -> dict[tuple[str, date], list[DailyRow]]: ...

    def upsert_weekly(self, rows: Sequence[WeeklyRow]) -> None: ...

    def insert_account_events(self, events: Sequence[tuple[str, int, str]]) -> None: ...

    def account_events_of(self, user_ids: Iterable[str]) -> dict[str, list[tuple[int, str]]]: ...

    def upsert_members(self, members: Sequence[Member]) -> None: ...

    def record_erasure(self, record: ErasureRecord) -> None: ...

    def erasures_of(self, user_ids: Iterable[str]) -> dict[str, list[ErasureRecord]]: ...

    def erase_user(self, user_id: str) -> None: ...

    def erase_heartbeats(
        self, user_id: str, start_epoch: float | None, end_epoch: float | None
    ) -> set[date]: ...

    def days_with_rows(self, user_id: str, first: date, last: date) -> set[date]: ...

    def drop_days(self, user_id: str, dates: Iterable[date]) -> None: ...

    def drop_weeks(self, user_id: str, mondays: Iterable[date]) -> None: ...

    def leaderboard(
        self, week: date, *, limit: int = 100, offset: int = 0
    ) -> tuple[int, list[LeaderboardEntry]]: ...

    def leaderboard_positions(
        self, week: date, user_ids: Iterable[str]
    ) -> dict[str, LeaderboardEntry]: ...
