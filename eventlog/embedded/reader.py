"""Readers of the embedded log, and the end offsets of a topic.

Blocking: every query runs on the reader's own connection thread (:class:`ReadConnection`); the
coroutines only wait. Errors: :class:`sqlite3.Error` becomes :class:`eventlog.port.LogUnavailable`.
Shutdown: a reader's ``close`` closes its connection; close readers before their log.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from eventlog.embedded.sqlite_file import ReadConnection
from eventlog.port import Delivered, TopicPartition

if TYPE_CHECKING:
    from eventlog.embedded.log import SqliteEventLog

# Appends wake blocked readers at once through AppendSignal; this poll is only a safety net
# (e.g. a file changed behind our back), bounding how stale a blocked fetch can ever be.
_POLL_INTERVAL_S = 0.25


def read_end_offsets(conn: sqlite3.Connection, topic: str) -> dict[TopicPartition, int]:
    row = conn.execute("SELECT partitions FROM topics WHERE name = ?", (topic,)).fetchone()
    count = 0 if row is None else int(row[0])
    ends = {}
    for partition in range(count):
        # One MAX per partition is a single seek down the primary key; a GROUP BY over the topic
        # read every record (O(records) per lookup, and every account write makes one). The
        # stored end counts too: the partition's last records may have been deleted.
        after_last, stored = conn.execute(
            "SELECT (SELECT MAX(record_offset) + 1 FROM records"
            "        WHERE topic = ?1 AND partition = ?2),"
            " (SELECT next_offset FROM partition_ends WHERE topic = ?1 AND partition = ?2)",
            (topic, partition),
        ).fetchone()
        ends[TopicPartition(topic, partition)] = max(int(after_last or 0), int(stored or 0))
    return ends


class SqliteLogReader:
    """A reader of the embedded log. Every reader is the only member of its group: it reads all
    partitions of its topics (this log has one process, so there is nothing to balance).

    ``fetch`` waits on an in-process notification, so it returns within milliseconds of a
    same-process append. Not safe for concurrent calls on one reader; use one reader per task.
    ``close`` drops uncommitted positions; a new reader of the group resumes at the last commit.
    """

    def __init__(self, log: SqliteEventLog, topics: list[str], group: str) -> None:
        self._log = log
        self._topics = topics
        self._group = group
        self._db = ReadConnection(log.path)
        self._positions: dict[TopicPartition, int] = {}
        self._rotation = 0
        self._started = False

    async def start(self) -> None:
        await self._log.ensure_topics(
            {topic: self._log._default_partitions for topic in self._topics}
        )
        topics, group = self._topics, self._group

        def load(conn: sqlite3.Connection) -> dict[TopicPartition, int]:
            positions: dict[TopicPartition, int] = {}
            for topic in topics:
                row = conn.execute(
                    "SELECT partitions FROM topics WHERE name = ?", (topic,)
                ).fetchone()
                for partition in range(int(row[0])):
                    positions[TopicPartition(topic, partition)] = 0
                for partition, offset in conn.execute(
                    "SELECT partition, next_offset FROM group_offsets"
                    " WHERE group_name = ? AND topic = ?",
                    (group, topic),
                ):
                    positions[TopicPartition(topic, partition)] = offset
            return positions

        self._positions = await self._db.run(load)
        self._started = True

    async def fetch(self, max_records: int, timeout_s: float) -> list[Delivered]:
        self._require_started()
        deadline = time.monotonic() + max(timeout_s, 0.0)
        while True:
            seen = self._log._signal.generation
            delivered, skipped = await self._db.run(self._reader_query(max_records))
            # Past a partition's erased tail, as a Kafka consumer moves past compacted offsets.
            self._positions.update(skipped)
            remaining = deadline - time.monotonic()
            if delivered or remaining <= 0:
                for record in delivered:
                    self._positions[TopicPartition(record.topic, record.partition)] = (
                        record.offset + 1
                    )
                return delivered
            await self._log._signal.wait(seen, min(remaining, _POLL_INTERVAL_S))

    def _reader_query(
        self, max_records: int
    ) -> Callable[[sqlite3.Connection], tuple[list[Delivered], dict[TopicPartition, int]]]:
        """The query of one fetch: the records, and the new position of every partition whose
        records from the current position on were all erased (its end, otherwise never reached).
        One read transaction, so a record appended meanwhile is never skipped over."""
        # Start at a different partition each call so one busy partition cannot starve others.
        order = list(self._positions.items())
        if order:
            self._rotation = (self._rotation + 1) % len(order)
            order = order[self._rotation :] + order[: self._rotation]

        def query(conn: sqlite3.Connection) -> tuple[list[Delivered], dict[TopicPartition, int]]:
            out: list[Delivered] = []
            skipped: dict[TopicPartition, int] = {}
            conn.execute("BEGIN")
            try:
                for tp, position in order:
                    if len(out) >= max_records:
                        break
                    found = len(out)
                    for offset, key, value, timestamp_ms in conn.execute(
                        "SELECT record_offset, key, value, timestamp_ms FROM records"
                        " WHERE topic = ? AND partition = ? AND record_offset >= ?"
                        " ORDER BY record_offset LIMIT ?",
                        (tp.topic, tp.partition, position, max_records - len(out)),
                    ):
                        out.append(
                            Delivered(tp.topic, tp.partition, offset, key, value, timestamp_ms)
                        )
                    if len(out) == found:
                        (stored,) = conn.execute(
                            "SELECT next_offset FROM partition_ends"
                            " WHERE topic = ? AND partition = ?",
                            (tp.topic, tp.partition),
                        ).fetchone() or (0,)
                        if int(stored) > position:
                            skipped[tp] = int(stored)
            finally:
                conn.execute("COMMIT")
            return out, skipped

        return query

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        self._require_started()
        if offsets:
            await self._log._commit_offsets(self._group, offsets)

    async def seek_to_beginning(self) -> None:
        self._require_started()
        self._positions = dict.fromkeys(self._positions, 0)

    async def positions(self) -> dict[TopicPartition, int]:
        self._require_started()
        return dict(self._positions)

    async def close(self) -> None:
        self._started = False
        await self._db.close()

    def _require_started(self) -> None:
        if not self._started:
            raise RuntimeError("reader not started (or already closed)")
