"""Exports: everything stored about one user, streamed (docs/api.md, "Export").

Streams use a client of their own (see :meth:`ExportReads._stream_client`) and read the archive
in windows of whole UTC days, so an export of any size runs in constant memory.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

from clickhouse_connect.driver.client import Client

from projections.clickhouse.archive import (
    HEARTBEAT_FIELDS,
    TIME_RANGE_SCOPE,
    not_deleted,
    select_columns,
    time_range_parameters,
)
from projections.clickhouse.client import StoreClient

logger = logging.getLogger(__name__)


class ExportReads(StoreClient):
    """The streamed reads of an export (the other tables' reads live with their families)."""

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
        fields = [name for name in HEARTBEAT_FIELDS if name not in ("schema_version", "user_id")]
        names = (*fields, "local_date")
        per_day = (
            f"SELECT toDate(time) AS day, count() FROM {self._db}.heartbeats"
            " WHERE user_id = {user:String} GROUP BY day ORDER BY day"
        )
        # `time` there is the select list's alias (ms).
        scope = TIME_RANGE_SCOPE
        sql = (
            f"SELECT {select_columns(fields)}, local_date FROM {self._db}.heartbeats FINAL"
            f" WHERE {scope} AND {not_deleted(self._db, scope)}"
            " AND time >= {t0:Int64} AND time < {t1:Int64} ORDER BY time, event_id"
        )
        with self._stream_client() as client:
            with self._edge("count heartbeats per day"):
                days = client.query(per_day, parameters={"user": user_id}).result_rows
            for first, last in self._export_windows(days, window_rows):
                start, end = _utc_midnight(first), _utc_midnight(last + timedelta(days=1))
                parameters = time_range_parameters(user_id, start, end)
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
    def _export_record(names: Sequence[str], row: Sequence[Any]) -> dict[str, Any]:
        record = dict(zip(names, row, strict=True))
        record["time"] /= 1000
        record["received_at"] /= 1000
        record["is_write"] = bool(record["is_write"])
        record["dependencies"] = list(record["dependencies"])
        return record


def _utc_midnight(day: date) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
