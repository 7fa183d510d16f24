"""The batch handler shared by every runner: events in, ClickHouse projections out.

One pass per batch: append the heartbeats to the deduplicated raw archive, then recompute every
(user, local day) the batch touched from the archive (so late, duplicate and out-of-order
heartbeats are folded exactly as if they had arrived in order) and replace those day rows.
Writing is idempotent: handling the same batch again produces the same rows. The runner commits
the log position only after ``handle`` returned.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Protocol

from pydantic import ValidationError

from eventlog.port import Delivered
from projections.daily import DEFAULT_TIMEOUT_S, DailyRow, compute_day, local_date
from projections.durations import Beat, FoldInput
from schemas.events import HeartbeatsReceived, decode_event
from schemas.heartbeat import Heartbeat

_log = logging.getLogger(__name__)

DayKey = tuple[str, date]


class ProjectionWriter(Protocol):
    """The part of the projection store the handler writes through (blocking calls)."""

    def insert_heartbeats(self, hbs: Sequence[Heartbeat]) -> None: ...

    def beats_for_days(self, keys: Iterable[DayKey]) -> dict[DayKey, list[Beat]]: ...

    def upsert_daily(self, rows: Sequence[DailyRow]) -> None: ...


@dataclass(frozen=True, slots=True)
class BatchResult:
    heartbeats: int
    days: int
    skipped_records: int = 0


def decode_heartbeat_events(records: Sequence[Delivered]) -> tuple[list[HeartbeatsReceived], int]:
    """Events of the batch and how many records were skipped as undecodable (logged)."""
    events: list[HeartbeatsReceived] = []
    skipped = 0
    for record in records:
        try:
            event = decode_event(record.value)
        except ValidationError:
            skipped += 1
            _log.error(
                "skipping undecodable record %s[%s]@%s",
                record.topic,
                record.partition,
                record.offset,
            )
            continue
        if isinstance(event, HeartbeatsReceived):
            events.append(event)
    return events, skipped


def touched_days(heartbeats: Iterable[Heartbeat]) -> set[DayKey]:
    return {(hb.user_id, local_date(hb.time, hb.timezone)) for hb in heartbeats}


def day_rows(
    days: Mapping[DayKey, Sequence[FoldInput]], *, timeout_s: float = DEFAULT_TIMEOUT_S
) -> list[DailyRow]:
    """Pure: one daily row per (user, day) from that day's archived heartbeats."""
    rows: list[DailyRow] = []
    for (user_id, day), beats in sorted(days.items()):
        if not beats:
            continue
        # A day is folded in the timezone its newest heartbeat was recorded in.
        tz = max(beats, key=lambda hb: (hb.received_at, hb.time)).timezone
        rows.append(compute_day(user_id, day, beats, tz=tz, timeout_s=timeout_s))
    return rows


class HeartbeatProjector:
    """Blocking handler (call it from a worker thread; one thread per instance, chdb-friendly)."""

    def __init__(self, store: ProjectionWriter, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self._store = store
        self._timeout_s = timeout_s

    def handle(self, events: Sequence[HeartbeatsReceived]) -> BatchResult:
        heartbeats = [hb for event in events for hb in event.heartbeats]
        if not heartbeats:
            return BatchResult(0, 0)
        self._store.insert_heartbeats(heartbeats)
        fetched = self._store.beats_for_days(touched_days(heartbeats))
        rows = day_rows(fetched, timeout_s=self._timeout_s)
        self._store.upsert_daily(rows)
        return BatchResult(len(heartbeats), len(rows))
