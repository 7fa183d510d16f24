"""The AI family: AI coding activity into its tables, and into heartbeats.

A segment's :class:`AiActivityReceived` events are written to the AI tables (projects,
sessions, messages, file activities, tool calls; :mod:`projections.clickhouse.ai`), then turned
into the heartbeats they stand for (:func:`projections.ai.ai_heartbeats`), which the dispatcher
hands to the heartbeats family with the segment's own heartbeats: AI time is then archived,
dated and counted by the one durations rule, with hand-written time, never twice.

A record names its session; the heartbeat needs the session's project and assistant. They come
from the session's start: one in this segment, else one already projected (a user's records are
on one partition, in log order, so a start appended earlier was projected earlier, in a replay
as in the live run). A record of a session whose start is unknown gets no project (its own
``project_path`` if it has one). Writing is idempotent: every row and heartbeat has a
deterministic id.
"""

from __future__ import annotations

from collections.abc import Sequence

from projections.ai import SessionOrigin, ai_heartbeats, session_origins_in
from projections.ports import ProjectionWriter
from schemas.ai import AiProject
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
            origins = self._origins(user_id, own)
            for event in own:
                beats = ai_heartbeats(
                    user_id,
                    event.records,
                    origins,
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

    def _origins(
        self, user_id: str, events: Sequence[AiActivityReceived]
    ) -> dict[str, SessionOrigin]:
        records = [record for event in events for record in event.records]
        sessions = {r.session_id for r in records if not isinstance(r, AiProject) and r.session_id}
        # The store's earliest start first; one in this segment only where none was projected
        # before (the rows just written are in the store too, so they agree).
        known = self._store.ai_session_origins(user_id, sessions) if sessions else {}
        return {**session_origins_in(records), **known}
