"""The weekly boards around a write, read only for whoever listens to them.

Ranks are what live push costs: where a user stands on a weekly board is a window over the whole
board, and the public top 10 a sort of it. So each pass asks the live channel once who listens,
and reads the boards before and after its writes only for that: the positions of the pass's users
whose channel has a socket, and the top of each touched week while the public channel has one.
Nobody listening, no board query. This is the one part of live push inside the write path (the
"before" side cannot be read later); what the boards moved is told after the batch
(:mod:`processors.projectors.live`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import TypeAlias

from live.port import PUBLIC_LEADERBOARD, LivePublisher, user_channel
from projections.ports import LeaderboardEntry, ProjectionWriter

Positions: TypeAlias = dict[str, LeaderboardEntry]
PUBLIC_TOP = 10  # entries of a board the public channel receives on each change


@dataclass(frozen=True, slots=True)
class Audience:
    """Who listens to a pass over the boards (see :meth:`BoardWatch.audience`).

    ``users``: per touched week (ascending), the batch's users whose channel has a subscriber;
    weeks without one are left out. ``tops``: every touched week when the public channel has a
    subscriber, else none.
    """

    users: dict[date, frozenset[str]]
    tops: tuple[date, ...]


NOBODY = Audience(users={}, tops=())


@dataclass(frozen=True, slots=True)
class Boards:
    """What an audience can be told about its boards at one moment: ``positions[week]`` of its
    users (the ranked ones), ``tops[week]`` (the first :data:`PUBLIC_TOP` entries)."""

    positions: dict[date, Positions] = field(default_factory=dict)
    tops: dict[date, list[LeaderboardEntry]] = field(default_factory=dict)


NO_BOARDS = Boards()


def board_channels(keys: Iterable[tuple[str, date]]) -> list[str]:
    """Pure: the channels a pass over these (user, week) boards could have news for: each
    user's, and the public one."""
    users = sorted({user_id for user_id, _ in keys if user_id})
    return [*(user_channel(user_id) for user_id in users), PUBLIC_LEADERBOARD]


def audience_of(keys: Iterable[tuple[str, date]], listened: Collection[str]) -> Audience:
    """Pure: the :class:`Audience` of these (user, week) boards, given the listened channels."""
    users: dict[date, set[str]] = {}
    weeks: set[date] = set()
    for user_id, monday in keys:
        weeks.add(monday)
        if user_id and user_channel(user_id) in listened:
            users.setdefault(monday, set()).add(user_id)
    return Audience(
        users={monday: frozenset(users[monday]) for monday in sorted(users)},
        tops=tuple(sorted(weeks)) if PUBLIC_LEADERBOARD in listened else (),
    )


class BoardWatch:
    """Reads the boards a pass moves, before and after its writes, for their audience.

    Without a publisher (replays, tools) nobody listens and it reads nothing.
    """

    def __init__(self, store: ProjectionWriter, publisher: LivePublisher | None) -> None:
        self._store = store
        self._publisher = publisher

    def around(
        self, weeks: Iterable[tuple[str, date]], write: Callable[[], None]
    ) -> tuple[Boards, Boards]:
        """Run ``write`` (which moves these (user, week) boards); the boards before and after."""
        audience = self.audience(weeks)
        before = self.boards(audience)
        write()
        return before, self.boards(audience)

    def audience(self, weeks: Iterable[tuple[str, date]]) -> Audience:
        """Who listens to what a pass over these (user, week) boards could change.

        One question to the live channel per pass, asked before the writes and kept for the
        reads after them, so both sides of a comparison cover the same users and weeks. A
        socket that subscribes while the pass writes is not covered by it (its snapshot may
        predate the writes); the next pass that moves its rank tells it. Nobody when not
        publishing; everybody when the channel cannot tell (its fail-open answer).
        """
        keys = list(weeks)
        if self._publisher is None or not keys:
            return NOBODY
        return audience_of(keys, self._publisher.listening(board_channels(keys)))

    def boards(self, audience: Audience) -> Boards:
        """The boards as the audience sees them now; no query for what nobody listens to."""
        return Boards(
            positions={
                monday: self._store.leaderboard_positions(monday, users)
                for monday, users in audience.users.items()
            },
            tops={
                monday: self._store.leaderboard(monday, limit=PUBLIC_TOP)[1]
                for monday in audience.tops
            },
        )
