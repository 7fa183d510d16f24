"""Record values into the events the projector reads; an undecodable record is logged and
skipped (counted), never raised."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from pydantic import ValidationError

from eventlog.port import Delivered
from processors.projectors.members import PROJECTED_ACCOUNT_EVENTS
from projections.erasures import LogPosition
from schemas.events import (
    AccountEvent,
    HeartbeatEvent,
    decode_event,
    is_account_event,
    is_heartbeat_event,
)

_log = logging.getLogger(__name__)


def heartbeat_event(raw: bytes) -> HeartbeatEvent | None:
    """The heartbeats-topic event a record value holds; ``None`` for any other event.

    Raises ``pydantic.ValidationError`` when the value is not an event at all.
    """
    event = decode_event(raw)
    return event if is_heartbeat_event(event) else None


def decode_heartbeat_events(records: Sequence[Delivered]) -> tuple[list[HeartbeatEvent], int]:
    """Events of the batch and how many records were skipped as undecodable (logged)."""
    events, _, skipped = decode_positioned_events(records)
    return events, skipped


def decode_positioned_events(
    records: Sequence[Delivered],
) -> tuple[list[HeartbeatEvent], list[LogPosition | None], int]:
    """Events of the batch, the log position of each, and how many records were skipped."""
    events: list[HeartbeatEvent] = []
    positions: list[LogPosition | None] = []
    skipped = 0
    for record in records:
        try:
            event = heartbeat_event(record.value)
        except ValidationError:
            skipped += 1
            _log.error(
                "skipping undecodable record %s[%s]@%s",
                record.topic,
                record.partition,
                record.offset,
            )
            continue
        if event is not None:
            events.append(event)
            positions.append(LogPosition(record.topic, record.partition, record.offset))
    return events, positions, skipped


def decode_account_events(
    records: Sequence[Delivered],
) -> tuple[list[tuple[int, AccountEvent]], int]:
    """``(offset, event)`` of the account events the projector reads among ``records``
    (:data:`processors.projectors.members.PROJECTED_ACCOUNT_EVENTS`), and how many were
    skipped."""
    events: list[tuple[int, AccountEvent]] = []
    skipped = 0
    for record in records:
        try:
            event = decode_event(record.value)
        except ValidationError:
            skipped += 1
            _log.error("skipping undecodable account record at offset %s", record.offset)
            continue
        if is_account_event(event) and isinstance(event, PROJECTED_ACCOUNT_EVENTS):
            events.append((record.offset, event))
    return events, skipped
