"""Appending accepted heartbeats to the log: the point after which a client may get a 2xx."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence

from eventlog.port import EventLog, LogUnavailable, Record
from http_edge.errors import ApiError
from schemas.events import HEARTBEATS_TOPIC, HeartbeatsReceived, encode_event
from schemas.heartbeat import Heartbeat

# One record per request (so a request is appended atomically) up to this many heartbeats; larger
# imports are split, and a retry after a failure part-way is safe because ids are deterministic.
MAX_HEARTBEATS_PER_RECORD = 500


class HeartbeatAppender:
    """Appends one user's heartbeats as ``HeartbeatsReceived`` events keyed by the user id.

    ``append`` returns only after the log acknowledged every record; when the log is unavailable it
    raises a 503 :class:`ApiError` and the client must retry.
    """

    def __init__(self, log: EventLog, *, chunk: int = MAX_HEARTBEATS_PER_RECORD) -> None:
        self._log = log
        self._chunk = chunk

    async def append(self, user_id: str, heartbeats: Sequence[Heartbeat]) -> None:
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
        try:
            await self._log.append(records)
        except LogUnavailable:
            raise ApiError(
                503,
                "the event log is unavailable; nothing was recorded, retry later",
                headers={"Retry-After": "5"},
            ) from None
