"""What the projector publishes, and what it reads to know it, against chdb: the board queries
behind rank and top-10 messages run only for what somebody listens to (slow path 8).

The live channel is a fake that records what is published and answers ``listened`` from a set the
test chooses; the store counts its ``leaderboard`` and ``leaderboard_positions`` calls. The
projector's tables must not depend on who listens.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Iterator, Mapping
from datetime import date
from typing import Any

import pytest

from live.port import PUBLIC_LEADERBOARD, LivePublisher, LiveStats, Subscription, user_channel
from processors.handlers import HeartbeatProjector
from projections.clickhouse import ClickHouseProjectionStore
from projections.leaderboard import iso_week_id, week_of
from projections.ports import LeaderboardEntry
from schemas.events import AccountDeleted, ProfileUpdated
from schemas.heartbeat import Heartbeat
from tests.integration import test_clickhouse_store as store_tests
from tests.integration.test_erasure_projection import account
from tests.integration.test_heartbeat_deletions import tables
from tests.support.store_rows import DAY, epoch, erased, make_heartbeat, received

pytestmark = pytest.mark.clickhouse

chdb_url = store_tests.chdb_url

WEEK = week_of(DAY)
BOARD = iso_week_id(WEEK)
EVERYBODY = None  # FakeChannel(EVERYBODY): every channel listened (what an adapter fails open to)


class CountingStore(ClickHouseProjectionStore):
    """The real store, counting the board queries the projector makes for live push."""

    def __init__(self, url: str) -> None:
        super().__init__(url, database=f"t_{uuid.uuid4().hex[:12]}")
        self.positions_asked: list[tuple[date, frozenset[str]]] = []
        self.tops_read: list[date] = []

    @property
    def board_queries(self) -> int:
        return len(self.positions_asked) + len(self.tops_read)

    def leaderboard(self, week: date, **options: Any) -> tuple[int, list[LeaderboardEntry]]:
        self.tops_read.append(week)
        return super().leaderboard(week, **options)

    def leaderboard_positions(
        self, week: date, user_ids: Iterable[str], **options: Any
    ) -> dict[str, LeaderboardEntry]:
        users = frozenset(user_ids)
        self.positions_asked.append((week, users))
        return super().leaderboard_positions(week, users, **options)


class FakeChannel:
    """A :class:`live.port.LiveChannel` for a projector in the test's thread: publishing
    records, ``listened`` answers from ``listening`` (None: everything) and records the
    question, or raises when ``broken``."""

    def __init__(self, listening: set[str] | None, *, broken: bool = False) -> None:
        self.listening = listening
        self.broken = broken
        self.questions: list[frozenset[str]] = []
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
        self.questions.append(frozenset(channels))
        if self.broken:
            raise ConnectionError("the transport is gone")
        return {c for c in channels if self.listening is None or c in self.listening}

    def stats(self) -> LiveStats:
        return LiveStats()

    def of_type(self, kind: str, channel: str | None = None) -> list[dict[str, Any]]:
        return [
            message
            for name, message in self.published
            if message["type"] == kind and (channel is None or name == channel)
        ]

    def clear(self) -> None:
        self.questions.clear()
        self.published.clear()


@pytest.fixture
def store(chdb_url: str) -> Iterator[CountingStore]:
    created = CountingStore(chdb_url)
    created.migrate()
    yield created
    created.close()


def projector_for(store: ClickHouseProjectionStore, channel: FakeChannel) -> HeartbeatProjector:
    return HeartbeatProjector(store, publisher=LivePublisher(channel), today=lambda: DAY)


def user(i: int) -> str:
    return f"r{i:02d}"


def minutes(who: str, prefix: str, hour: int, count: int) -> list[Heartbeat]:
    """``count`` heartbeats two minutes apart from ``hour``: ``2 * (count - 1)`` minutes."""
    return [
        make_heartbeat(f"{prefix}{i}", epoch(hour) + 120 * i, user_id=who) for i in range(count)
    ]


def ranked_board(projector: HeartbeatProjector, users: int = 12) -> None:
    """Users r01..r<users> on the boards, r01 with the least time (4 min), each next 2 more."""
    projector.handle_accounts([e for i in range(1, users + 1) for e in account(user(i), 10 * i)])
    projector.handle(
        [
            received(user(i), minutes(user(i), "base", 9, i + 2), f"base-{i}")
            for i in range(1, users + 1)
        ]
    )


def top10(store: ClickHouseProjectionStore) -> list[dict[str, Any]]:
    """The board's top 10 as the public channel shows it (read without counting)."""
    _, top = ClickHouseProjectionStore.leaderboard(store, WEEK, limit=10)
    return [{"rank": e.rank, "username": e.username, "total_seconds": e.seconds} for e in top]


def test_nobody_listening_means_no_board_query_at_all(store: CountingStore) -> None:
    channel = FakeChannel(set())
    projector = projector_for(store, channel)

    ranked_board(projector)
    projector.handle([received("r01", minutes("r01", "more", 14, 40), "more")])
    projector.handle_accounts(
        [(500, ProfileUpdated(event_id="p", user_id="r12", occurred_at=epoch(3), is_public=False))]
    )
    projector.handle([erased("r02", None, None, "x")])
    projector.handle_accounts([(501, AccountDeleted(event_id="d", user_id="r03", occurred_at=1))])

    assert store.board_queries == 0
    assert channel.of_type("leaderboard.changed") == []
    assert channel.of_type("leaderboard.updated") == []
    # What costs no query is published as before, listened or not.
    assert len(channel.of_type("heartbeat.accepted", user_channel("r01"))) == 2
    assert len(channel.of_type("stats.changed", user_channel("r01"))) == 2
    # One question per pass, naming every user of the pass and the public channel.
    assert channel.questions[-3:] == [
        frozenset({user_channel("r12"), PUBLIC_LEADERBOARD}),
        frozenset({user_channel("r02"), PUBLIC_LEADERBOARD}),
        frozenset({user_channel("r03"), PUBLIC_LEADERBOARD}),
    ]
    assert len(channel.questions) == 6  # accounts, base, more, profile, erasure, deletion


def test_only_listened_users_are_ranked_and_told(store: CountingStore) -> None:
    channel = FakeChannel({user_channel("r05")})
    projector = projector_for(store, channel)
    ranked_board(projector)
    assert channel.of_type("leaderboard.changed", user_channel("r05")) == [
        {
            "type": "leaderboard.changed",
            "board": BOARD,
            "rank": 8,
            "previous_rank": None,
            "total_seconds": 720.0,
        }
    ]
    channel.clear()
    store.positions_asked.clear()

    # Both climb to the top; only r05 listens.
    projector.handle(
        [
            received("r05", minutes("r05", "up", 14, 40), "up-5"),
            received("r06", minutes("r06", "up", 15, 45), "up-6"),
        ]
    )

    assert channel.questions == [
        frozenset({user_channel("r05"), user_channel("r06"), PUBLIC_LEADERBOARD})
    ]
    assert store.positions_asked == [(WEEK, frozenset({"r05"}))] * 2  # before and after
    assert store.tops_read == []  # nobody listens to the public board
    changed = channel.of_type("leaderboard.changed")
    assert [m["rank"] for m in changed] == [2]
    assert changed[0]["previous_rank"] == 8
    assert channel.of_type("leaderboard.changed", user_channel("r05")) == changed
    assert channel.of_type("heartbeat.accepted", user_channel("r06"))  # still pushed


def test_the_public_board_is_told_only_when_its_top_10_changes(store: CountingStore) -> None:
    channel = FakeChannel({PUBLIC_LEADERBOARD})
    projector = projector_for(store, channel)
    ranked_board(projector)
    channel.clear()
    store.tops_read.clear()

    # r01 moves from 12th to 11th: ranks moved, the top 10 did not.
    projector.handle([received("r01", minutes("r01", "a", 14, 2), "a")])
    assert store.positions_asked == []  # no user listens
    assert store.tops_read == [WEEK, WEEK]  # the top before and after
    assert channel.of_type("leaderboard.updated") == []

    # r01 jumps to the top: the top 10 changed.
    projector.handle([received("r01", minutes("r01", "b", 15, 40), "b")])
    updates = channel.of_type("leaderboard.updated", PUBLIC_LEADERBOARD)
    assert updates == [{"type": "leaderboard.updated", "board": BOARD, "entries": top10(store)}]
    assert updates[0]["entries"][0]["username"] == "r01"
    assert [e["username"] for e in updates[0]["entries"]][-1] == "r04"

    # The leader adds time and stays first: no rank moved, yet what the top shows changed.
    projector.handle([received("r01", minutes("r01", "c", 17, 3), "c")])
    assert len(channel.of_type("leaderboard.updated")) == 2
    assert channel.of_type("leaderboard.updated")[-1]["entries"] == top10(store)

    # A rename in the top shows too (a profile pass); leaving the boards from the top as well.
    projector.handle_accounts(
        [(900, ProfileUpdated(event_id="n", user_id="r12", occurred_at=epoch(3), username="zz"))]
    )
    assert "zz" in [e["username"] for e in channel.of_type("leaderboard.updated")[-1]["entries"]]
    projector.handle_accounts([(901, AccountDeleted(event_id="d", user_id="r01", occurred_at=1))])
    assert channel.of_type("leaderboard.updated")[-1]["entries"] == top10(store)
    assert "r01" not in [e["username"] for e in top10(store)]
    assert len(channel.of_type("leaderboard.updated")) == 4
    assert channel.of_type("leaderboard.changed") == []


@pytest.mark.parametrize("broken", [False, True], ids=["fails-open", "raises"])
def test_when_the_channel_cannot_tell_everything_is_prepared_as_before(
    store: CountingStore, broken: bool
) -> None:
    """The adapters answer "all listened" when they cannot tell; a channel that raises anyway
    is treated the same by the publisher. Then every moved rank and changed top is pushed."""
    channel = FakeChannel(EVERYBODY, broken=broken)
    projector = projector_for(store, channel)
    ranked_board(projector)
    channel.clear()

    projector.handle(
        [
            received("r01", minutes("r01", "a", 14, 5), "a"),  # 12th -> 9th
            received("r02", minutes("r02", "b", 15, 40), "b"),  # 11th -> 1st
        ]
    )

    ranks = {
        name: (m["previous_rank"], m["rank"])
        for name, m in channel.published
        if m["type"] == "leaderboard.changed"
    }
    assert ranks == {user_channel("r01"): (12, 9), user_channel("r02"): (11, 1)}
    assert channel.of_type("leaderboard.updated")[-1]["entries"] == top10(store)


def test_the_tables_do_not_depend_on_who_listens(chdb_url: str) -> None:
    stores = [CountingStore(chdb_url) for _ in range(3)]
    channels = [FakeChannel(set()), FakeChannel({user_channel("r03"), PUBLIC_LEADERBOARD})]
    try:
        for target, channel in zip(stores, [*channels, None], strict=True):
            target.migrate()
            projector = (
                projector_for(target, channel)
                if channel is not None
                else HeartbeatProjector(target, today=lambda: DAY)  # replay: no publisher
            )
            ranked_board(projector)
            result = projector.handle(
                [
                    received("r03", minutes("r03", "x", 14, 30), "x"),
                    erased("r04", None, None, "e"),
                    received("r05", minutes("r05", "y", 16, 5), "y"),
                ]
            )
            assert (result.heartbeats, result.days) == (35, 2)
        assert tables(stores[0]) == tables(stores[1]) == tables(stores[2])
    finally:
        for target in stores:
            target.close()
