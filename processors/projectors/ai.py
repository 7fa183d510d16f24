"""The AI family: AI coding activity into its tables, and into heartbeats.

A segment's :class:`AiActivityReceived` events are written to the AI tables (projects,
sessions, messages, file activities, tool calls; :mod:`projections.clickhouse.ai`), then turned
into the heartbeats they stand for (:func:`projections.ai.ai_heartbeats`), which the dispatcher
hands to the heartbeats family with the segment's own heartbeats: AI time is then archived,
dated and counted by the one durations rule, with hand-written time, never twice.

A record's heartbeat needs its session's project and assistant: the API stamped them on the
record when it received it (:func:`projections.ai.stamped`), or the session's start is in the
same event. The heartbeats are thus derived from each event alone, never from what else was
projected: a replay derives exactly the live run's, even after an erasure removed a session's
start. Writing is idempotent: every row and heartbeat has a deterministic id.
"""

from __future__ import annotations

from collections.abc import Sequence

from projections.ai import ai_heartbeats
from projections.ports import ProjectionWriter
from schemas.events import AiActivityReceived, HeartbeatsReceived


class AiProjection:
    """Writes AI records and derives their heartbeats (blocking, on the projector's thread)."""

    def __init__(self, store: ProjectionWriter) -> None:
        self._store = store

    def project(self, events: Sequence[AiActivityReceived]) -> list[HeartbeatsReceived]:
        """Write ``events``' records to the AI tables; the heartbeats they stand for, one
        ``HeartbeatsReceived`` per event, for the heartbeats family to archive."""
        derived: list[HeartbeatsReceived] = []
        by_user: dict[str, list[AiActivityReceived]] = {}
        for event in events:
            by_user.setdefault(event.user_id, []).append(event)
        for user_id, own in by_user.items():
            records = [record for event in own for record in event.records]
            if not records:
                continue
            self._store.insert_ai_records(user_id, records)
            for event in own:
                beats = ai_heartbeats(
                    user_id,
                    event.records,
                    timezone=event.timezone,
                    received_at=event.occurred_at,
                )
                if beats:
                    derived.append(
                        HeartbeatsReceived(
                            event_id=event.event_id,
                            user_id=user_id,
                            occurred_at=event.occurred_at,
                            heartbeats=tuple(beats),
                        )
                    )
        return derived
