"""The ClickHouse projection store: the only code that writes to ClickHouse.

:class:`ClickHouseProjectionStore` implements :mod:`projections.ports` by table family, one
module each, all sharing one client per thread
(:class:`~projections.clickhouse.client.StoreClient`):

* :mod:`~projections.clickhouse.client`: URLs, connections per thread, error translation,
  migrations, the list of projection tables and their truncation (replays);
* :mod:`~projections.clickhouse.archive`: the raw heartbeat archive and its tombstones;
* :mod:`~projections.clickhouse.daily_stats`: the daily rows;
* :mod:`~projections.clickhouse.day_folds`: each day's live fold (what lets a new heartbeat be
  projected without reading the day again);
* :mod:`~projections.clickhouse.leaderboards`: weekly rows, members, the account-event archive;
* :mod:`~projections.clickhouse.export`: the streamed reads of an export;
* :mod:`~projections.clickhouse.erasure`: the erasure ledger and the removal of a user's rows;
* :mod:`~projections.clickhouse.ai`: AI coding activity (projects, sessions, messages and their
  search, file activities, tool calls).

Tables live in the store's own database (chdb's ``default`` is special), every statement is sent
on its own (the HTTP interface rejects several per request), times are ``DateTime64(3, 'UTC')``,
and every ``Replacing`` table is read with ``FINAL`` or through an aggregate that duplicates
cannot change. A new projection's table code goes in a module of its own here, as a
:class:`StoreClient` subclass mixed into :class:`ClickHouseProjectionStore`; what callers need
of it goes in :mod:`projections.ports` (see docs/architecture.md).
"""

from __future__ import annotations

from projections.clickhouse.ai import AiTables
from projections.clickhouse.archive import ArchiveTables
from projections.clickhouse.daily_stats import DIMENSION_COLUMNS, DailyTables
from projections.clickhouse.day_folds import DayFoldTables
from projections.clickhouse.erasure import ErasureTables
from projections.clickhouse.export import ExportReads
from projections.clickhouse.leaderboards import LeaderboardTables

__all__ = ["DIMENSION_COLUMNS", "ClickHouseProjectionStore"]


class ClickHouseProjectionStore(
    ArchiveTables,
    DailyTables,
    DayFoldTables,
    LeaderboardTables,
    ExportReads,
    ErasureTables,
    AiTables,
):
    """Raw heartbeat archive, daily and weekly stats, boards and the erasure ledger in
    ClickHouse (see the package docs and :mod:`projections.ports`).

    Construction does no I/O; the first call in each thread connects. Every method blocks,
    raises :class:`~projections.ports.ProjectionStoreUnavailable` when the engine cannot be
    reached (retry later) and :class:`~projections.ports.ProjectionStoreError` otherwise. Writes
    are idempotent: re-inserting heartbeats or re-upserting a day converges to the same table
    contents, which is what makes at-least-once delivery safe.
    """
