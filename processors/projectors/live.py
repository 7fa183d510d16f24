"""Live push, the first after-batch subscriber: what a written batch tells the dashboards.

For each pass of the batch, in order: a ``heartbeat.accepted`` per user with their latest
heartbeat, a ``stats.changed`` per user with every day recomputed, an ``ai.activity`` per user
whose AI records the pass wrote, a ``leaderboard.changed`` per
listened user whose rank moved and a ``leaderboard.updated`` per listened week whose public top
changed (the boards around the pass were read by :class:`processors.projectors.boards.BoardWatch`
while it wrote). Publishing never raises (:class:`live.port.LivePublisher`).
"""

from __future__ import annotations

from collections.abc import Sequence

from live.port import LivePublisher
from processors.projectors.batches import Pass, ProjectedBatch
from processors.projectors.boards import Boards, Positions
from projections.daily import DailyRow
from projections.leaderboard import iso_week_id
from projections.ports import LeaderboardEntry
from schemas.ai import (
    AiMessage,
    AiRecord,
    AiSessionEnd,
    AiSessionStart,
    AiToolCall,
    AiUsage,
)
from schemas.events import AiActivityReceived
from schemas.heartbeat import Heartbeat
from schemas.live import (
    AiActivity,
    AiMessageItem,
    AiSessionItem,
    AiToolCallItem,
    DayTotals,
    HeartbeatAccepted,
    LeaderboardChanged,
    LeaderboardUpdated,
    StatsChanged,
)
from schemas.live import LeaderboardEntry as PublicEntry


class LivePush:
    """A :class:`processors.projectors.batches.BatchSubscriber` publishing through ``publisher``."""

    def __init__(self, publisher: LivePublisher) -> None:
        self._publisher = publisher

    def after_batch(self, batch: ProjectedBatch) -> None:
        for step in batch.passes:
            self._publish(step)

    def _publish(self, step: Pass) -> None:
        """Tell each user's dashboards what the pass changed, and the public boards' new tops."""
        for user_id, message in heartbeat_messages(step.heartbeats):
            self._publisher.publish_user(user_id, message)
        for user_id, stats in stats_messages(step.rows):
            self._publisher.publish_user(user_id, stats)
        for user_id, activity in ai_messages(step.ai):
            self._publisher.publish_user(user_id, activity)
        self._publish_boards(step.before, step.after)

    def _publish_boards(self, before: Boards, after: Boards) -> None:
        """Each listened user's rank where it moved, each listened top where it changed."""
        for monday in sorted(after.positions.keys() | after.tops.keys()):
            board = iso_week_id(monday)
            old, new = before.positions.get(monday, {}), after.positions.get(monday, {})
            for user_id, change in rank_changes(board, old, new):
                self._publisher.publish_user(user_id, change)
            if monday in after.tops:
                update = top_update(board, before.tops.get(monday, []), after.tops[monday])
                if update is not None:
                    self._publisher.publish_public(update)


def public_entries(top: Sequence[LeaderboardEntry]) -> list[PublicEntry]:
    """Pure: a top as the public channel shows it (no user ids, no breakdowns)."""
    return [PublicEntry(rank=e.rank, username=e.username, total_seconds=e.seconds) for e in top]


def top_update(
    board: str, before: Sequence[LeaderboardEntry], after: Sequence[LeaderboardEntry]
) -> LeaderboardUpdated | None:
    """Pure: the ``leaderboard.updated`` for ``board`` when what the public sees of its top
    changed (who, in which order, with how much time), else None."""
    entries = public_entries(after)
    if entries == public_entries(before):
        return None
    return LeaderboardUpdated(board=board, entries=entries)


def heartbeat_messages(heartbeats: Sequence[Heartbeat]) -> list[tuple[str, HeartbeatAccepted]]:
    """Pure: one ``heartbeat.accepted`` per user of the batch, describing their latest one."""
    by_user: dict[str, list[Heartbeat]] = {}
    for hb in heartbeats:
        by_user.setdefault(hb.user_id, []).append(hb)
    messages = []
    for user_id, beats in sorted(by_user.items()):
        latest = max(beats, key=lambda hb: (hb.time, hb.event_id))
        messages.append(
            (
                user_id,
                HeartbeatAccepted(
                    count=len({hb.event_id for hb in beats}),
                    last_heartbeat_at=latest.time,
                    project=latest.project,
                    language=latest.language,
                    editor=latest.editor,
                ),
            )
        )
    return messages


AI_ITEMS = 20  # of each list an ``ai.activity`` names (a large import sends its counts)
PREVIEW = 200


def ai_messages(events: Sequence[AiActivityReceived]) -> list[tuple[str, AiActivity]]:
    """Pure: one ``ai.activity`` per user of ``events``: the counts of their records per kind,
    the sessions started and ended, the latest messages and tool calls, the tokens used."""
    by_user: dict[str, dict[str, AiRecord]] = {}
    for event in events:
        mine = by_user.setdefault(event.user_id, {})
        for record in event.records:
            mine[record.id] = record  # an import may hold a record twice
    out = []
    for user_id, unique in sorted(by_user.items()):
        records = sorted(unique.values(), key=lambda r: (r.time, r.id))
        counts: dict[str, int] = {}
        tokens = {"input": 0, "output": 0, "cache_creation": 0, "cache_read": 0}
        started, ended, said, called = [], [], [], []
        for r in records:
            counts[r.kind] = counts.get(r.kind, 0) + 1
            if isinstance(r, AiSessionStart):
                started.append(
                    AiSessionItem(
                        session_id=r.session_id,
                        at=r.time,
                        project_path=r.project_path,
                        assistant=r.assistant,
                    )
                )
            elif isinstance(r, AiSessionEnd):
                ended.append(AiSessionItem(session_id=r.session_id, at=r.time))
            elif isinstance(r, AiMessage):
                said.append(
                    AiMessageItem(
                        session_id=r.session_id, role=r.role, at=r.time, preview=r.content[:PREVIEW]
                    )
                )
            elif isinstance(r, AiToolCall):
                called.append(
                    AiToolCallItem(
                        session_id=r.session_id,
                        tool_name=r.tool_name,
                        result_status=r.result_status,
                        at=r.time,
                        execution_time_ms=r.execution_time_ms,
                    )
                )
            elif isinstance(r, AiUsage):
                tokens["input"] += r.input_tokens
                tokens["output"] += r.output_tokens
                tokens["cache_creation"] += r.cache_creation_tokens
                tokens["cache_read"] += r.cache_read_tokens
        out.append(
            (
                user_id,
                AiActivity(
                    counts=counts,
                    sessions_started=started[-AI_ITEMS:],
                    sessions_ended=ended[-AI_ITEMS:],
                    messages=said[-AI_ITEMS:],
                    tool_calls=called[-AI_ITEMS:],
                    tokens=tokens if counts.get("usage") else {},
                ),
            )
        )
    return out


def stats_messages(rows: Sequence[DailyRow]) -> list[tuple[str, StatsChanged]]:
    """Pure: one ``stats.changed`` per user with every day of theirs the batch recomputed."""
    by_user: dict[str, list[DayTotals]] = {}
    for row in sorted(rows, key=lambda r: (r.user_id, r.date)):
        by_user.setdefault(row.user_id, []).append(
            DayTotals(
                date=row.date,
                timezone=row.timezone,
                total_seconds=row.total_seconds,
                heartbeat_count=row.heartbeat_count,
                breakdown=row.breakdown,
            )
        )
    return [(user_id, StatsChanged(days=days)) for user_id, days in by_user.items()]


def rank_changes(
    board: str, before: Positions, after: Positions
) -> list[tuple[str, LeaderboardChanged]]:
    """Pure: a ``leaderboard.changed`` for each user whose rank on ``board`` moved."""
    changes = []
    for user_id in sorted(set(before) | set(after)):
        old, new = before.get(user_id), after.get(user_id)
        old_rank = old.rank if old else None
        new_rank = new.rank if new else None
        if old_rank != new_rank:
            changes.append(
                (
                    user_id,
                    LeaderboardChanged(
                        board=board,
                        rank=new_rank,
                        previous_rank=old_rank,
                        total_seconds=new.seconds if new else 0.0,
                    ),
                )
            )
    return changes
