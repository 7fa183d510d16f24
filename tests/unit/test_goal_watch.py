"""Live goals (``processors.projectors.goals``) behind the projector over the in-memory store:
``goal.reached`` once per goal and period when a batch decides it, weekly goals read back from
the week's other days, ``goal.exceeded`` for at-most goals, nothing for past periods, for
users without goals or for users nobody listens to."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from live.port import LivePublisher, LiveStats, Subscription, user_channel
from processors.handlers import HeartbeatProjector
from processors.projectors.goals import GoalOwner, GoalWatch, decided_messages
from projections.memory import InMemoryProjectionStore
from tests.support.store_rows import DAY, beats, received

NOW = datetime(DAY.year, DAY.month, DAY.day, 18, tzinfo=UTC)  # Saturday 2024-03-30, 18:00 UTC


@dataclass(frozen=True)
class WG:
    goal_id: str
    period: Literal["daily", "weekly"] = "daily"
    kind: Literal["at_least", "at_most"] = "at_least"
    target_seconds: int = 300
    scope: Literal["language", "project", "editor", "category"] | None = None
    scope_value: str | None = None
    title: str = ""


class Recorder:
    """A live channel recording what is published; ``deaf`` users listen to nothing."""

    def __init__(self, deaf: frozenset[str] = frozenset()) -> None:
        self.deaf = deaf
        self.published: list[tuple[str, dict[str, Any]]] = []

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def publish(self, channel: str, message: Mapping[str, Any]) -> None:
        self.publish_threadsafe(channel, message)

    def publish_threadsafe(self, channel: str, message: Mapping[str, Any]) -> None:
        self.published.append((channel, dict(message)))

    async def subscribe(self, channel: str, *, queue_size: int = 256) -> Subscription:
        raise NotImplementedError

    def listened(self, channels: Collection[str]) -> set[str]:
        return {c for c in channels if c not in {user_channel(u) for u in self.deaf}}

    def stats(self) -> LiveStats:
        return LiveStats()

    def goals(self) -> list[tuple[str, str, str]]:
        return [
            (channel, m["type"], m["goal_id"])
            for channel, m in self.published
            if m["type"].startswith("goal.")
        ]


class World:
    def __init__(self, goals: dict[str, list[WG]], deaf: frozenset[str] = frozenset()) -> None:
        self.store = InMemoryProjectionStore()
        self.channel = Recorder(deaf)
        self.goals = goals

        def source(user_id: str) -> GoalOwner | None:
            return GoalOwner("UTC", goals[user_id]) if user_id in goals else None

        self.watch = GoalWatch(
            LivePublisher(self.channel), source, self.store.daily_rows, now=lambda: NOW
        )
        self.projector = HeartbeatProjector(self.store, today=lambda: DAY, subscribers=[self.watch])

    def send(self, user: str, prefix: str, hour: int, count: int, day: date = DAY) -> None:
        """``count`` heartbeats two minutes apart: ``(count - 1) * 120`` seconds."""
        self.projector.handle([received(user, beats(user, prefix, hour, count, day=day), prefix)])
        self.watch.check_pending()


def test_reached_once_per_goal_and_period() -> None:
    world = World({"u1": [WG("g1", title="warm up")]})
    world.send("u1", "a", 10, 3)  # 240 s
    assert world.channel.goals() == []
    world.send("u1", "b", 11, 3)  # 480 s
    assert world.channel.goals() == [("user:u1", "goal.reached", "g1")]
    message = next(m for _, m in world.channel.published if m["type"] == "goal.reached")
    assert message["title"] == "warm up"
    assert (message["period_start"], message["period_end"]) == (DAY.isoformat(), DAY.isoformat())
    assert message["current_seconds"] == 480
    world.send("u1", "c", 12, 3)  # more of the same day: nothing new
    world.send("u1", "b", 11, 3)  # a redelivered batch: nothing new either
    assert len(world.channel.goals()) == 1


def test_weekly_goal_counts_the_weeks_other_days() -> None:
    world = World({"u1": [WG("w1", period="weekly", target_seconds=600)]})
    world.send("u1", "f", 10, 5, day=DAY - timedelta(days=1))  # Friday: 480 s
    assert world.channel.goals() == []
    world.send("u1", "s", 10, 2)  # Saturday: 120 s more, 600 in the week
    assert world.channel.goals() == [("user:u1", "goal.reached", "w1")]


def test_at_most_goal_is_told_when_exceeded() -> None:
    limit = WG("m1", kind="at_most", target_seconds=200, scope="project", scope_value="codetrackr")
    other = WG("m2", kind="at_most", target_seconds=200, scope="project", scope_value="elsewhere")
    world = World({"u1": [limit, other]})
    world.send("u1", "a", 10, 2)  # 120 s: within
    assert world.channel.goals() == []
    world.send("u1", "c", 13, 3)  # 240 s more: 360 s
    assert world.channel.goals() == [("user:u1", "goal.exceeded", "m1")]


def test_past_periods_users_without_goals_and_deaf_users_hear_nothing() -> None:
    world = World(
        {"u1": [WG("g1", target_seconds=60)], "u3": [WG("g3", target_seconds=60)]},
        deaf=frozenset({"u3"}),
    )
    world.send("u1", "old", 10, 5, day=DAY - timedelta(days=20))  # late data, long ago
    world.send("u1", "y", 10, 5, day=DAY - timedelta(days=1))  # yesterday: a past period
    world.send("u2", "x", 10, 5)  # no goals
    world.send("u3", "z", 10, 5)  # nobody listening
    assert world.channel.goals() == []


def test_decided_messages_is_pure_over_rows() -> None:
    announced: set[tuple[str, date]] = set()
    assert decided_messages([WG("g")], [], DAY, announced) == []
    assert announced == set()
