"""The projection store port: what processors write and the API reads, whatever holds the tables.

Two adapters implement it and pass one contract suite
(``tests/contract/test_projection_store_contract.py``):
:class:`projections.clickhouse.ClickHouseProjectionStore` (the production store: chdb in-process
or a ClickHouse server) and :class:`projections.memory.InMemoryProjectionStore` (dictionaries in
one process, for tests of projector logic without an engine; never selectable in production).

Semantics every adapter keeps:

* **Blocking.** Every method is synchronous and may block on I/O; async callers run it in a thread
  pool (``api.store_calls.blocking``, the runners' executors). Adapters are safe to call from
  several threads at once.
* **Errors.** :class:`ProjectionStoreUnavailable` means "the store could not be reached or used
  now; retry later" (runners keep the batch and retry, routes answer 503). A write that raised
  may or may not have landed, which is harmless: writes are idempotent.
  :class:`ProjectionStoreError` is everything a retry will not fix (bad input, a closed store).
  Library errors never leave an adapter untranslated.
* **Idempotent writes.** Re-inserting heartbeats, re-recording tombstones or erasures, re-upserting
  a day, a week or a member converges to the same reads, so at-least-once delivery is safe: the
  runner writes, then commits the log position.
* **Reads see writes.** A read issued after a write returned sees it, from any thread.
* **Shutdown.** ``close`` releases every connection; any later call raises
  :class:`ProjectionStoreError`. ``close`` is idempotent.

The protocols below are the slices each caller depends on: :class:`ProjectionWriter` for the
projector, one read protocol per API router, :class:`ProjectionStore` for the whole port.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal, Protocol, get_args

from projections.ai import ALL_TIME, SearchQuery, SessionOrigin, TimeWindow, ToolStats
from projections.ai_usage import UsageEntry, UsageSums
from projections.daily import DailyRow
from projections.dayfold import DayFold
from projections.durations import Beat
from projections.erasures import ErasureRecord
from projections.leaderboard import Member, WeeklyRow
from schemas.ai import AiRecord
from schemas.events import HeartbeatsDeleted
from schemas.heartbeat import Heartbeat

__all__ = [
    "SEEN_COLUMNS",
    "ActivityStore",
    "AiStore",
    "BadgeStore",
    "DayKey",
    "ExportStore",
    "LeaderboardEntry",
    "LeaderboardStore",
    "ProfileStore",
    "ProjectionStore",
    "ProjectionStoreError",
    "ProjectionStoreUnavailable",
    "ProjectionWriter",
    "SeenColumn",
    "SeenValue",
    "StatsStore",
    "UserTotals",
    "WakaTimeStore",
]

DayKey = tuple[str, date]

SeenColumn = Literal["project", "user_agent", "machine", "language", "editor"]
SEEN_COLUMNS: frozenset[str] = frozenset(get_args(SeenColumn))


class ProjectionStoreError(Exception):
    """The projection store failed in a way a retry will not fix (a bug or a closed store)."""


class ProjectionStoreUnavailable(ProjectionStoreError):
    """The engine could not be reached or used right now; pause and retry."""


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


class ProjectionWriter(Protocol):
    """The part of the projection store the handler writes through (blocking calls)."""

    def insert_heartbeats(self, hbs: Sequence[Heartbeat]) -> None: ...

    def delete_heartbeats(self, deletions: Sequence[HeartbeatsDeleted]) -> None: ...

    def beats_for_days(self, keys: Iterable[DayKey]) -> dict[DayKey, list[Beat]]: ...

    def upsert_daily(self, rows: Sequence[DailyRow]) -> None: ...

    def day_folds(self, keys: Iterable[DayKey]) -> dict[DayKey, DayFold]: ...

    def upsert_day_folds(self, folds: Sequence[DayFold]) -> None: ...

    def forget_day_folds(self, keys: Iterable[DayKey]) -> None: ...

    def drop_day_folds(self, user_id: str, first: date, last: date) -> None: ...

    def deleted_ids(self, keys: Iterable[tuple[str, date, str]]) -> set[tuple[str, date, str]]: ...

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

    def insert_ai_records(self, user_id: str, records: Sequence[AiRecord]) -> None: ...

    def erase_ai(
        self, user_id: str, start_epoch: float | None, end_epoch: float | None
    ) -> None: ...

    def leaderboard_positions(
        self, week: date, user_ids: Iterable[str]
    ) -> dict[str, LeaderboardEntry]: ...


class ActivityStore(Protocol):
    """The projection store's reads used here (blocking)."""

    def daily_rows(self, user_id: str, start: date, end: date) -> list[DailyRow]: ...

    def beats_for_days(
        self, keys: Iterable[tuple[str, date]]
    ) -> dict[tuple[str, date], list[Beat]]: ...

    def beats_between(self, user_id: str, start_epoch: float, end_epoch: float) -> list[Beat]: ...


class LeaderboardStore(Protocol):
    def leaderboard(
        self,
        week: date,
        *,
        language: str | None = None,
        country: str | None = None,
        available_for_hire: bool | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[int, list[LeaderboardEntry]]: ...

    def leaderboard_position(
        self,
        week: date,
        user_id: str,
        *,
        language: str | None = None,
        country: str | None = None,
        available_for_hire: bool | None = None,
    ) -> LeaderboardEntry | None: ...


class StatsStore(Protocol):
    """What the read API needs from the projection store (blocking calls; run in threads)."""

    def daily_rows(self, user_id: str, start: date, end: date) -> list[DailyRow]: ...

    def last_heartbeat_by_project(
        self, user_id: str, start_epoch: float, end_epoch: float
    ) -> dict[str, float]: ...

    def active_dates(self, user_id: str) -> list[date]: ...


class ProfileStore(Protocol):
    """The projection store's reads behind public profiles (blocking; run in threads)."""

    def daily_rows(self, user_id: str, start: date, end: date) -> list[DailyRow]: ...

    def active_dates(self, user_id: str) -> list[date]: ...


class BadgeStore(Protocol):
    """The projection store's reads behind these routes (blocking calls; run in threads)."""

    def daily_rows(self, user_id: str, start: date, end: date) -> list[DailyRow]: ...

    def active_dates(self, user_id: str) -> list[date]: ...

    def totals_by_user(self, start: date, end: date) -> list[UserTotals]: ...


class WakaTimeStore(ActivityStore, LeaderboardStore, Protocol):
    """The projection store's reads behind this API (blocking calls; run in threads)."""

    def active_dates(self, user_id: str) -> list[date]: ...

    def heartbeats_for_days(
        self, keys: Iterable[tuple[str, date]]
    ) -> dict[tuple[str, date], list[Heartbeat]]: ...

    def seen_values(self, user_id: str, column: SeenColumn) -> list[SeenValue]: ...


class AiStore(Protocol):
    """The AI API's reads (blocking calls; run in threads; see docs/ai.md). Rows are dicts of
    plain values, times as epoch milliseconds."""

    def ai_projects(self, user_id: str, project_id: int | None = None) -> list[dict[str, Any]]: ...

    def ai_project_series(
        self, user_id: str, project_id: int, timezone: str
    ) -> dict[str, list[tuple[Any, ...]]]: ...

    def ai_sessions(
        self,
        user_id: str,
        *,
        project_id: int | None = None,
        window: TimeWindow = ALL_TIME,
        session_id: str | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]: ...

    def ai_messages(
        self,
        user_id: str,
        *,
        session_id: str | None = None,
        project_id: int | None = None,
        role: str | None = None,
        window: TimeWindow = ALL_TIME,
        search: SearchQuery | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[int, list[dict[str, Any]]]: ...

    def ai_activities(
        self,
        user_id: str,
        *,
        session_id: str | None = None,
        project_id: int | None = None,
        file_path: str | None = None,
        action: str | None = None,
        window: TimeWindow = ALL_TIME,
        limit: int = 100,
        offset: int = 0,
    ) -> list[dict[str, Any]]: ...

    def ai_tool_calls(
        self, user_id: str, *, session_id: str, limit: int = 1000
    ) -> list[dict[str, Any]]: ...

    def ai_tool_stats(
        self, user_id: str, *, project_id: int | None = None, window: TimeWindow = ALL_TIME
    ) -> list[ToolStats]: ...

    def ai_known_ids(self, user_id: str, ids: Iterable[str]) -> set[str]: ...

    def ai_session_origins(
        self, user_id: str, session_ids: Iterable[str]
    ) -> dict[str, SessionOrigin]: ...

    def ai_usage_sums(
        self,
        user_id: str,
        group: str,
        *,
        timezone: str = "UTC",
        window: TimeWindow = ALL_TIME,
        project_id: int | None = None,
    ) -> list[tuple[str, str, UsageSums, int, int]]: ...

    def ai_usage_entries(
        self, user_id: str, *, window: TimeWindow = ALL_TIME, project_id: int | None = None
    ) -> list[UsageEntry]: ...

    def ai_line_changes(
        self, user_id: str, first: date | None = None, last: date | None = None
    ) -> list[tuple[date, str, int, int]]: ...


class ExportStore(Protocol):
    """What exports read from the projection store (blocking calls; run in threads)."""

    def stream_heartbeats(self, user_id: str) -> Iterator[list[dict[str, Any]]]: ...

    def stream_deletions(self, user_id: str) -> Iterator[list[tuple[date, str, float]]]: ...

    def daily_rows(self, user_id: str, start: date, end: date) -> list[DailyRow]: ...

    def weekly_rows_of(self, user_id: str) -> list[WeeklyRow]: ...

    def leaderboard_member(self, user_id: str) -> Member | None: ...

    def account_events_of(self, user_ids: Iterable[str]) -> dict[str, list[tuple[int, str]]]: ...

    def stream_ai_rows(self, user_id: str, table: str) -> Iterator[list[dict[str, Any]]]: ...


class ProjectionStore(
    WakaTimeStore, ProjectionWriter, StatsStore, BadgeStore, ExportStore, Protocol
):
    """The whole port: every caller's slice plus the operations of the composition root.

    ``migrate`` creates or upgrades the tables (idempotent) and returns the migrations it applied;
    ``table_names`` lists the projection tables (the bookkeeping that a replay keeps is left out)
    and doubles as the readiness probe; ``truncate_projections`` empties them for a replay.
    """

    def migrate(self) -> list[str]: ...

    def table_names(self) -> list[str]: ...

    def truncate_projections(self) -> None: ...

    def close(self) -> None: ...
