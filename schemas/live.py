"""Messages of live push: what a dashboard's WebSocket receives, one JSON object per text frame.

Every message has a ``type``. A user's socket (channel ``user:<user_id>``) receives
``subscribed`` once, then ``heartbeat.accepted``, ``stats.changed``, ``leaderboard.changed``,
``goal.reached`` / ``goal.exceeded``, ``plugin.event`` and ``ai.activity``; the public socket
(channel ``public:leaderboard``) receives ``subscribed`` and ``leaderboard.updated``. Either may
receive ``dropped``: messages were lost (a slow client, or the live transport reconnected), so
re-read the state from the HTTP API.

Messages are published after the projection they describe was written, so what a message says is
what the API answers from then on. Fields may be added; clients ignore what they do not know.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, TypeAdapter

__all__ = [
    "AiActivity",
    "DayTotals",
    "Dropped",
    "GoalReached",
    "HeartbeatAccepted",
    "LeaderboardChanged",
    "LeaderboardEntry",
    "LeaderboardUpdated",
    "LiveMessage",
    "PluginEvent",
    "StatsChanged",
    "Subscribed",
    "live_message",
]


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Subscribed(_Message):
    """First message on every socket: from now on nothing published on ``channel`` is missed.

    A dashboard reads its snapshot from the HTTP API after this message, then applies updates.
    """

    type: Literal["subscribed"] = "subscribed"
    channel: str


class HeartbeatAccepted(_Message):
    """Heartbeats of this user were projected (one message per user and processed batch)."""

    type: Literal["heartbeat.accepted"] = "heartbeat.accepted"
    count: int = Field(ge=0, description="distinct heartbeats of this user in the batch")
    last_heartbeat_at: float = Field(description="epoch seconds of the latest one")
    project: str | None = None
    language: str | None = None
    editor: str | None = None


class DayTotals(_Message):
    """The new totals of one of the user's local days (what the daily projection now holds)."""

    date: date
    timezone: str
    total_seconds: float = Field(ge=0)
    heartbeat_count: int = Field(ge=0)
    breakdown: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="dimension (project, language, ...) -> value -> seconds"
    )


class StatsChanged(_Message):
    """Every local day the batch recomputed, with its new totals."""

    type: Literal["stats.changed"] = "stats.changed"
    days: list[DayTotals]


class LeaderboardChanged(_Message):
    """This user's position on a leaderboard changed (``rank`` None: no longer ranked)."""

    type: Literal["leaderboard.changed"] = "leaderboard.changed"
    board: str = Field(description="which weekly board: its ISO week, e.g. '2026-W47'")
    rank: int | None = Field(ge=1)
    previous_rank: int | None = Field(default=None, ge=1)
    total_seconds: float = Field(ge=0)


class LeaderboardEntry(_Message):
    rank: int = Field(ge=1)
    username: str
    total_seconds: float = Field(ge=0)


class LeaderboardUpdated(_Message):
    """The public leaderboard's new top entries (public channel only)."""

    type: Literal["leaderboard.updated"] = "leaderboard.updated"
    board: str
    entries: list[LeaderboardEntry]


class PluginEvent(_Message):
    """A server-side plugin's hook returned a value for this user's dashboard: ``data`` is that
    value (any JSON but null), ``hook`` the lifecycle hook that returned it (``on_heartbeat``,
    ``on_tick`` ...)."""

    type: Literal["plugin.event"] = "plugin.event"
    plugin: str
    hook: str
    data: JsonValue


class GoalReached(_Message):
    """A heartbeat made one of the user's goals decided for its running period: an
    ``at_least`` goal reached its target (``goal.reached``), or an ``at_most`` goal went over
    its limit (``goal.exceeded``). Sent once per goal and period by a running server."""

    type: Literal["goal.reached", "goal.exceeded"] = "goal.reached"
    goal_id: str
    title: str = ""
    period: Literal["daily", "weekly"]
    kind: Literal["at_least", "at_most"]
    period_start: date
    period_end: date
    current_seconds: float = Field(ge=0)
    target_seconds: int = Field(ge=1)


class AiSessionItem(_Message):
    session_id: str
    at: float = Field(description="epoch seconds of its start or end")
    project_path: str | None = None
    assistant: str | None = None


class AiMessageItem(_Message):
    session_id: str
    role: Literal["user", "assistant"]
    at: float
    preview: str = Field(description="the message's first 200 characters")


class AiToolCallItem(_Message):
    session_id: str | None
    tool_name: str
    result_status: str
    at: float
    execution_time_ms: float | None = None


class AiActivity(_Message):
    """AI coding activity of this user was projected (one message per user and written pass):
    how many records of each kind, the sessions started and ended, and the latest messages and
    tool calls (at most 20 of each, newest last), and the tokens its model requests used."""

    type: Literal["ai.activity"] = "ai.activity"
    counts: dict[str, int] = Field(description="records per kind (`message`, `tool_call`...)")
    sessions_started: list[AiSessionItem] = Field(default_factory=list)
    sessions_ended: list[AiSessionItem] = Field(default_factory=list)
    messages: list[AiMessageItem] = Field(default_factory=list)
    tool_calls: list[AiToolCallItem] = Field(default_factory=list)
    tokens: dict[str, int] = Field(
        default_factory=dict, description="input, output, cache_creation, cache_read"
    )


class Dropped(_Message):
    """Messages before the next one were lost: ``count`` of them, or None when unknown."""

    type: Literal["dropped"] = "dropped"
    count: int | None = Field(ge=1)


LiveMessage = Annotated[
    Subscribed
    | HeartbeatAccepted
    | StatsChanged
    | LeaderboardChanged
    | LeaderboardUpdated
    | PluginEvent
    | GoalReached
    | AiActivity
    | Dropped,
    Field(discriminator="type"),
]

live_message: TypeAdapter[LiveMessage] = TypeAdapter(LiveMessage)
"""Validates a received message (``live_message.validate_python(obj)``), e.g. in tests."""
