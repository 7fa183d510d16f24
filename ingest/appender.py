"""Appending accepted heartbeats (and deletions) to the log: after it a client may get a 2xx."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from datetime import date

from accounts.state import User
from eventlog.port import EventLog, LogUnavailable, Record, RecordRefused
from http_edge.errors import ApiError
from ingest.rules import screen
from schemas.events import (
    ACCOUNTS_TOPIC,
    HEARTBEATS_TOPIC,
    HeartbeatsDeleted,
    HeartbeatsIgnored,
    HeartbeatsReceived,
    encode_event,
)
from schemas.heartbeat import Heartbeat

# One record per request (so a request is appended atomically) up to this many heartbeats; larger
# imports are split, and a retry after a failure part-way is safe because ids are deterministic.
MAX_HEARTBEATS_PER_RECORD = 500
# Ids of up to 64 characters: at most ~340 KB per record, under the Kafka adapter's 512 KiB batch.
MAX_DELETED_IDS_PER_RECORD = 5000


class HeartbeatAppender:
    """Appends one user's heartbeats as ``HeartbeatsReceived`` events keyed by the user id, and
    their deletions as ``HeartbeatsDeleted`` on the same topic and key (so a deletion follows the
    heartbeats it deletes on their partition).

    Both methods return only after the log acknowledged every record; when the log is unavailable
    they raise a 503 :class:`ApiError` and the client must retry.
    """

    def __init__(
        self,
        log: EventLog,
        *,
        chunk: int = MAX_HEARTBEATS_PER_RECORD,
        observe: Callable[[int, float], None] | None = None,
    ) -> None:
        self._log = log
        self._chunk = chunk
        # Told (heartbeats appended, seconds the log took) after each acknowledged append.
        self._observe = observe

    async def append(
        self, user_id: str, heartbeats: Sequence[Heartbeat], *, also: Sequence[Record] = ()
    ) -> None:
        if not heartbeats:
            return
        now = time.time()
        records = [
            Record(
                HEARTBEATS_TOPIC,
                user_id.encode(),
                encode_event(
                    HeartbeatsReceived(
                        event_id=uuid.uuid4().hex,
                        user_id=user_id,
                        occurred_at=now,
                        heartbeats=tuple(heartbeats[i : i + self._chunk]),
                    )
                ),
            )
            for i in range(0, len(heartbeats), self._chunk)
        ]
        started = time.perf_counter()
        await self._append([*records, *also])
        if self._observe is not None:
            self._observe(len(heartbeats), time.perf_counter() - started)

    async def append_for(self, user: User, heartbeats: Sequence[Heartbeat]) -> int:
        """Append ``heartbeats`` after the user's ingest rules (:mod:`ingest.rules`); returns
        how many the ignore patterns dropped. Their count goes on the account in the same
        append (one transaction on the embedded log)."""
        kept, ignored = screen(heartbeats, user.ignore_patterns, user.language_mappings)
        extra: list[Record] = []
        if ignored:
            event = HeartbeatsIgnored(
                event_id=uuid.uuid4().hex,
                user_id=user.user_id,
                occurred_at=time.time(),
                count=ignored,
            )
            extra.append(Record(ACCOUNTS_TOPIC, user.user_id.encode(), encode_event(event)))
        if kept:
            await self.append(user.user_id, kept, also=extra)
        elif extra:
            await self._append(extra)
        return ignored

    async def append_deletion(self, user_id: str, day: date, ids: Sequence[str]) -> None:
        """Record that ``user_id`` deleted the heartbeats ``ids`` of local ``day``.

        One record per :data:`MAX_DELETED_IDS_PER_RECORD` ids; a retry after a failure part-way
        is safe because applying a deletion twice changes nothing.
        """
        now = time.time()
        records = [
            Record(
                HEARTBEATS_TOPIC,
                user_id.encode(),
                encode_event(
                    HeartbeatsDeleted(
                        event_id=uuid.uuid4().hex,
                        user_id=user_id,
                        occurred_at=now,
                        date=day,
                        ids=tuple(ids[i : i + MAX_DELETED_IDS_PER_RECORD]),
                    )
                ),
            )
            for i in range(0, len(ids), MAX_DELETED_IDS_PER_RECORD)
        ]
        if records:
            await self._append(records)

    async def _append(self, records: list[Record]) -> None:
        try:
            await self._log.append(records)
        except RecordRefused:
            # The user was erased (account deleted) while this request was in flight.
            raise ApiError(401, "this account no longer exists") from None
        except LogUnavailable:
            raise ApiError(
                503,
                "the event log is unavailable; nothing was recorded, retry later",
                headers={"Retry-After": "5"},
            ) from None
