"""The weekly boards: ``weekly_stats`` (one row per user and ISO week), ``leaderboard_members``
(who may be ranked, folded from account events) and ``account_events`` (the archive those are
folded from). Ranking is one query: a week's eligible members with time, ordered by seconds,
then username, then user id (docs/leaderboards.md)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from projections.clickhouse.client import KEYS_PER_QUERY, StoreClient
from projections.leaderboard import WEEKLY_DIMENSIONS, Member, WeeklyRow
from projections.ports import LeaderboardEntry

_WEEKLY_COLUMNS: tuple[str, ...] = (
    "week",
    "user_id",
    "total_seconds",
    "languages",
    "editors",
    "operating_systems",
    "computed_at",
)
_MEMBER_COLUMNS: tuple[str, ...] = (
    "user_id",
    "username",
    "eligible",
    "country",
    "available_for_hire",
    "version",
    "languages_public",
)


class LeaderboardTables(StoreClient):
    """Writes and reads of the weekly rows, the members and the account-event archive."""

    def upsert_weekly(self, rows: Sequence[WeeklyRow]) -> None:
        """Replace each (week, user) row whole (the newest ``computed_at`` wins)."""
        if not rows:
            return
        computed_at = self._next_version_ms()
        columns: list[list[Any]] = [
            [row.week for row in rows],
            [row.user_id for row in rows],
            [float(row.total_seconds) for row in rows],
            *(
                [{str(k): float(v) for k, v in row.breakdown[dim].items()} for row in rows]
                for dim in WEEKLY_DIMENSIONS
            ),
            [computed_at] * len(rows),
        ]
        with self._edge("upsert weekly stats"):
            self._insert("weekly_stats", _WEEKLY_COLUMNS, columns)

    def weekly_rows_of(self, user_id: str) -> list[WeeklyRow]:
        """Every weekly stats row of the user, in week order."""
        sql = (
            "SELECT week, total_seconds, languages, editors, operating_systems"
            f" FROM {self._db}.weekly_stats FINAL WHERE user_id = {{user:String}} ORDER BY week"
        )
        with self._edge("read weekly stats"):
            rows = self._query(sql, {"user": user_id})
        return [
            WeeklyRow(
                user_id=user_id,
                week=week,
                total_seconds=float(total),
                breakdown={
                    dim: {str(k): float(v) for k, v in dict(values).items()}
                    for dim, values in zip(WEEKLY_DIMENSIONS, maps, strict=True)
                },
            )
            for week, total, *maps in rows
        ]

    def insert_account_events(self, events: Sequence[tuple[str, int, str]]) -> None:
        """Archive ``(user_id, log_offset, event_json)`` (idempotent by user and offset)."""
        if not events:
            return
        columns = [list(column) for column in zip(*events, strict=True)]
        with self._edge("archive account events"):
            self._insert("account_events", ("user_id", "log_offset", "event"), columns)

    def account_events_of(self, user_ids: Iterable[str]) -> dict[str, list[tuple[int, str]]]:
        """Each user's archived account events as ``(log_offset, event_json)`` in log order."""
        users = sorted(set(user_ids))
        result: dict[str, list[tuple[int, str]]] = {user: [] for user in users}
        for first in range(0, len(users), KEYS_PER_QUERY):
            sql = (
                f"SELECT user_id, log_offset, event FROM {self._db}.account_events FINAL"
                " WHERE user_id IN {users:Array(String)} ORDER BY user_id, log_offset"
            )
            with self._edge("read account events"):
                rows = self._query(sql, {"users": users[first : first + KEYS_PER_QUERY]})
            for user_id, offset, event in rows:
                result[user_id].append((int(offset), str(event)))
        return result

    def upsert_members(self, members: Sequence[Member]) -> None:
        if not members:
            return
        columns: list[list[Any]] = [
            [m.user_id for m in members],
            [m.username for m in members],
            [m.eligible for m in members],
            [m.country for m in members],
            [m.available_for_hire for m in members],
            [m.version for m in members],
            [m.languages_public for m in members],
        ]
        with self._edge("upsert leaderboard members"):
            self._insert("leaderboard_members", _MEMBER_COLUMNS, columns)

    def leaderboard_member(self, user_id: str) -> Member | None:
        """The user's row of ``leaderboard_members`` (None before their first account event is
        projected)."""
        sql = (
            f"SELECT {', '.join(_MEMBER_COLUMNS)} FROM {self._db}.leaderboard_members FINAL"
            " WHERE user_id = {user:String}"
        )
        with self._edge("read leaderboard member"):
            rows = self._query(sql, {"user": user_id})
        if not rows:
            return None
        member_id, username, eligible, country, hire, version, languages = rows[0]
        return Member(
            str(member_id),
            str(username),
            bool(eligible),
            str(country),
            bool(hire),
            int(version),
            bool(languages),
        )

    def leaderboard(
        self,
        week: date,
        *,
        language: str | None = None,
        country: str | None = None,
        available_for_hire: bool | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[int, list[LeaderboardEntry]]:
        """One page of a week's board and how many are ranked in all.

        Only eligible members (public profiles that opted in) with time are ranked: by their
        total, or by their time in ``language`` (case-insensitive; only members whose profile
        shows languages), then by username.
        """
        ranked, parameters = self._ranked(week, language, country, available_for_hire)
        parameters |= {"limit": limit, "offset": offset}
        with self._edge("read leaderboard"):
            total = int(self._query(f"SELECT count() FROM ({ranked})", parameters)[0][0])
            rows = self._query(
                f"{ranked} ORDER BY seconds DESC, username ASC, user_id ASC"
                " LIMIT {limit:UInt32} OFFSET {offset:UInt64}",
                parameters,
            )
        entries = [_entry(offset + index + 1, row) for index, row in enumerate(rows)]
        return total, entries

    def leaderboard_position(
        self,
        week: date,
        user_id: str,
        *,
        language: str | None = None,
        country: str | None = None,
        available_for_hire: bool | None = None,
    ) -> LeaderboardEntry | None:
        """Where ``user_id`` ranks on that board (None when not ranked)."""
        found = self.leaderboard_positions(
            week,
            [user_id],
            language=language,
            country=country,
            available_for_hire=available_for_hire,
        )
        return found.get(user_id)

    def leaderboard_positions(
        self,
        week: date,
        user_ids: Iterable[str],
        *,
        language: str | None = None,
        country: str | None = None,
        available_for_hire: bool | None = None,
    ) -> dict[str, LeaderboardEntry]:
        """Where each of ``user_ids`` ranks on that board (users not ranked are left out)."""
        users = sorted(set(user_ids))
        if not users:
            return {}
        ranked, parameters = self._ranked(week, language, country, available_for_hire)
        parameters["users"] = users
        sql = (
            "SELECT position, user_id, username, country, seconds, languages, editors,"
            " operating_systems, languages_public FROM (SELECT *, row_number() OVER"
            f" (ORDER BY seconds DESC, username ASC, user_id ASC) AS position FROM ({ranked}))"
            " WHERE user_id IN {users:Array(String)}"
        )
        with self._edge("read leaderboard positions"):
            rows = self._query(sql, parameters)
        return {str(row[1]): _entry(int(row[0]), row[1:]) for row in rows}

    def _ranked(
        self,
        week: date,
        language: str | None,
        country: str | None,
        available_for_hire: bool | None,
    ) -> tuple[str, dict[str, Any]]:
        """The query of a week's eligible members with time, and its parameters."""
        seconds = (
            "arraySum(mapValues(mapFilter((k, v) -> lower(k) = lower({language:String}),"
            " w.languages)))"
            if language is not None
            else "w.total_seconds"
        )
        conditions = ["m.eligible"]
        if language is not None:
            conditions.append("m.languages_public")  # hidden languages rank on no language board
        if country is not None:
            conditions.append("m.country = {country:String}")
        if available_for_hire is not None:
            conditions.append("m.available_for_hire = {hire:Bool}")
        ranked = (
            f"SELECT w.user_id AS user_id, m.username AS username, m.country AS country,"
            f" {seconds} AS seconds, w.languages AS languages, w.editors AS editors,"
            " w.operating_systems AS operating_systems, m.languages_public AS languages_public"
            f" FROM (SELECT * FROM {self._db}.weekly_stats FINAL WHERE week = {{week:Date}}) AS w"
            # Only the week's users' member rows: user_id is the sorting key, so filtering on
            # it before FINAL keeps or drops every version of a member together.
            f" INNER JOIN (SELECT * FROM {self._db}.leaderboard_members FINAL"
            f" WHERE user_id IN (SELECT user_id FROM {self._db}.weekly_stats"
            " WHERE week = {week:Date})) AS m"
            " ON w.user_id = m.user_id"
            f" WHERE {' AND '.join(conditions)} AND seconds > 0"
        )
        parameters: dict[str, Any] = {
            "week": week,
            "language": language or "",
            "country": country or "",
            "hire": bool(available_for_hire),
        }
        return ranked, parameters


def _entry(rank: int, row: Sequence[Any]) -> LeaderboardEntry:
    user_id, username, country, seconds, languages, editors, systems, languages_public = row
    return LeaderboardEntry(
        rank=rank,
        user_id=str(user_id),
        username=str(username),
        country=str(country) or None,
        seconds=float(seconds),
        breakdown={
            "language": {str(k): float(v) for k, v in dict(languages).items()},
            "editor": {str(k): float(v) for k, v in dict(editors).items()},
            "os": {str(k): float(v) for k, v in dict(systems).items()},
        },
        languages_public=bool(languages_public),
    )
