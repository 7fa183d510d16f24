"""The batch handler shared by every runner: events in, ClickHouse projections out.

One pass per batch: append the heartbeats to the deduplicated raw archive and the deletions to
its tombstones, then recompute every (user, local day) the batch touched from the archive minus
the tombstones (so late, duplicate and out-of-order heartbeats are folded exactly as if they had
arrived in order) and replace those day rows. Writing is idempotent: handling the same batch again
produces the same rows. The runner commits the log position only after ``handle`` returned.

Deletions commute with everything: a tombstone hides its heartbeat whenever the heartbeat is
inserted, before or after it (a redelivered or re-sent heartbeat stays deleted), so the tables
do not depend on how the log is cut into batches, which is what lets a replay equal the live run.

Erasures (:class:`UserDataErased`) do not commute: they remove what came before them in the log
and leave what comes after. So a batch is projected in segments cut at each erasure, each
segment before the erasure that follows it, exactly as if the erasure had its own batch; a
redelivered suffix of the log is projected again in the same order, so it ends the same. After a
full erasure (the account was deleted) the projector drops whatever else of the user it reads,
and it archives nothing more of the account.

Erasures are durable: each one is recorded in the projections' erasure ledger (with its log
position) before its rows are removed, and every pass reads the ledger of its users before it
writes, so the rules of :mod:`projections.erasures` hold for a new projector too (a restarted or
rebalanced worker, a replay): a deleted account's records are dropped wherever they are in the
log, a range's heartbeats from records before the erasure stay erased. A pass that wrote a user's
rows then reads the ledger again: a deletion another worker recorded meanwhile (its accounts
partition, or this partition's previous owner) is applied once more, over this pass's writes.

Live push (when a publisher is given) follows the writes. Ranks are what it costs: where a user
stands on a weekly board is a window over the whole board, and the public top 10 a sort of it.
So each pass asks the live channel once who listens, and reads the boards before and after its
writes only for that: the positions of the batch's users whose channel has a socket, and the
top of each touched week while the public channel has one. Nobody listening, no board query.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import TypeAlias

from pydantic import ValidationError

from accounts.state import AccountState
from eventlog.port import Delivered
from live.port import PUBLIC_LEADERBOARD, LivePublisher, user_channel
from projections.daily import DEFAULT_TIMEOUT_S, DailyRow, compute_day, local_date
from projections.durations import FoldInput
from projections.erasures import (
    ErasureRecord,
    LogPosition,
    erasure_record,
    fully_erased,
    unerased,
)
from projections.leaderboard import Member, iso_week_id, week_of, weekly_row
from projections.ports import LeaderboardEntry, ProjectionWriter
from schemas.events import (
    ACCOUNTS_TOPIC,
    AccountCreated,
    AccountDeleted,
    AccountEvent,
    ApiKeyCreated,
    ApiKeyRevoked,
    HeartbeatsDeleted,
    HeartbeatsReceived,
    ProfileUpdated,
    UserDataErased,
    decode_event,
    encode_event,
)
from schemas.heartbeat import Heartbeat
from schemas.languages import with_canonical_language
from schemas.live import (
    DayTotals,
    HeartbeatAccepted,
    LeaderboardChanged,
    LeaderboardUpdated,
    StatsChanged,
)
from schemas.live import LeaderboardEntry as PublicEntry

_log = logging.getLogger(__name__)

DayKey = tuple[str, date]
# Per user, the erasures recorded so far (the ledger's rows of a batch's users).
Ledger: TypeAlias = dict[str, list[ErasureRecord]]
# The events of the heartbeats topic.
HeartbeatEvent: TypeAlias = HeartbeatsReceived | HeartbeatsDeleted | UserDataErased


@dataclass(frozen=True, slots=True)
class BatchResult:
    heartbeats: int
    days: int
    skipped_records: int = 0
    deleted_ids: int = 0
    # Erasures projected: on the embedded log, the runner then erases the records themselves.
    erasures: tuple[UserDataErased, ...] = ()

    def __add__(self, other: BatchResult) -> BatchResult:
        return BatchResult(
            self.heartbeats + other.heartbeats,
            self.days + other.days,
            self.skipped_records + other.skipped_records,
            self.deleted_ids + other.deleted_ids,
            self.erasures + other.erasures,
        )


def heartbeat_event(raw: bytes) -> HeartbeatEvent | None:
    """The heartbeats-topic event a record value holds; ``None`` for any other event.

    Raises ``pydantic.ValidationError`` when the value is not an event at all.
    """
    event = decode_event(raw)
    return (
        event
        if isinstance(event, HeartbeatsReceived | HeartbeatsDeleted | UserDataErased)
        else None
    )


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


def touched_days(heartbeats: Iterable[Heartbeat]) -> set[DayKey]:
    """The (user, local date) of each heartbeat: the date of its time as the archive stores it
    (``Heartbeat`` holds it to the millisecond), in the zone stamped on it."""
    return {(hb.user_id, local_date(hb.time, hb.timezone)) for hb in heartbeats}


def deleted_days(deletions: Iterable[HeartbeatsDeleted]) -> set[DayKey]:
    return {(event.user_id, event.date) for event in deletions}


def day_rows(
    days: Mapping[DayKey, Sequence[FoldInput]], *, timeout_s: float = DEFAULT_TIMEOUT_S
) -> list[DailyRow]:
    """Pure: one daily row per (user, day) from that day's archived heartbeats.

    Each heartbeat counts up to the end of the day in its own zone (``projections.daily``), so a
    row depends only on the day's heartbeats, never on which of them arrived last.

    A day without heartbeats gets a row of zeros: it replaces what the day held before its
    heartbeats were deleted. It is written whenever such a day is touched, whether a row existed
    or not, so the result never depends on earlier batches.
    """
    return [
        compute_day(user_id, day, beats, timeout_s=timeout_s)
        for (user_id, day), beats in sorted(days.items())
    ]


class HeartbeatProjector:
    """Blocking handler (call it from a worker thread; one thread per instance, chdb-friendly)."""

    def __init__(
        self,
        store: ProjectionWriter,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        publisher: LivePublisher | None = None,
        today: Callable[[], date] = lambda: datetime.now(UTC).date(),
    ) -> None:
        self._store = store
        self._timeout_s = timeout_s
        self._today = today  # which week's board a membership change moves (UTC, as the API)
        # Live push after the writes (None: replays and tools publish nothing).
        self._publisher = publisher if publisher is not None and publisher.active else None

    def handle(
        self,
        events: Sequence[HeartbeatEvent],
        positions: Sequence[LogPosition | None] | None = None,
    ) -> BatchResult:
        """Project events of the heartbeats topic, in segments cut at each erasure.

        ``positions`` (one per event, in the same order) are where the events were read in the
        log; without them a recorded range erasure cannot tell an event came before it, and
        keeps it (:mod:`projections.erasures`). A deleted account's events are dropped anyway.
        """
        placed = positions if positions is not None else [None] * len(events)
        ledger = self._ledger({event.user_id for event in events})
        known = _fully_erased_users(ledger)
        result = BatchResult(0, 0)
        segment: list[HeartbeatsReceived | HeartbeatsDeleted] = []
        for event, position in zip(events, placed, strict=True):
            if isinstance(event, UserDataErased):
                result += self._project(segment) + self._erase(event, position, ledger)
                segment = []
                continue
            kept = unerased(event, position, ledger)
            if kept is not None:
                segment.append(kept)
        result += self._project(segment)
        self._erase_again(_written_users(events, ledger), known)
        return result

    def _project(self, events: Sequence[HeartbeatsReceived | HeartbeatsDeleted]) -> BatchResult:
        # Canonical languages here too, so records appended before the rule are merged on replay.
        heartbeats = [
            with_canonical_language(hb)
            for event in events
            if isinstance(event, HeartbeatsReceived)
            for hb in event.heartbeats
        ]
        deletions = [event for event in events if isinstance(event, HeartbeatsDeleted)]
        if not heartbeats and not deletions:
            return BatchResult(0, 0)
        self._store.insert_heartbeats(heartbeats)
        self._store.delete_heartbeats(deletions)
        rows = self._recompute(touched_days(heartbeats) | deleted_days(deletions), heartbeats)
        deleted_ids = sum(len(event.ids) for event in deletions)
        return BatchResult(len(heartbeats), len(rows), deleted_ids=deleted_ids)

    def _ledger(self, user_ids: set[str]) -> Ledger:
        return self._store.erasures_of(user_ids) if user_ids else {}

    def _record(self, record: ErasureRecord, ledger: Ledger) -> None:
        """Add ``record`` to the ledger (the store's unless already there, and the batch's).

        Recorded before the rows are removed: a worker whose writes land after the removal
        then finds the record when it reads the ledger again (:meth:`_erase_again`).
        """
        recorded = ledger.setdefault(record.user_id, [])
        if all(known.erasure_id != record.erasure_id for known in recorded):
            self._store.record_erasure(record)
            recorded.append(record)

    def _erase_again(self, user_ids: set[str], known: set[str]) -> None:
        """Erase again the users this pass wrote whose account deletion was recorded since the
        pass read the ledger (by another worker, concurrently): every write of this pass came
        before this read, so this removal comes after all of them."""
        if not user_ids:
            return
        for user_id in sorted(_fully_erased_users(self._ledger(user_ids)) - known):
            _log.info("erasing again writes that raced the deletion of %s", user_id)
            self._leave_boards(user_id, partial(self._store.erase_user, user_id))

    def _erase(
        self, erasure: UserDataErased, position: LogPosition | None, ledger: Ledger
    ) -> BatchResult:
        """Record the erasure, remove the erased rows from every projection and recompute what
        they were part of."""
        user_id = erasure.user_id
        self._record(erasure_record(erasure, position), ledger)
        if erasure.everything:
            self._leave_boards(user_id, partial(self._store.erase_user, user_id))
            return BatchResult(0, 0, erasures=(erasure,))
        # Every day the range may touch is recomputed, whether or not rows were found in it:
        # a replay of the rewritten embedded log finds no heartbeats there, yet must end equal.
        first, last = erasure_window(erasure)
        days = self._store.erase_heartbeats(user_id, erasure.start, erasure.end)
        days |= self._store.days_with_rows(user_id, first, last)
        rows = self._recompute({(user_id, day) for day in days}, (), drop_empty=True)
        return BatchResult(0, len(rows), erasures=(erasure,))

    def _leave_boards(self, user_id: str, erase: Callable[[], None]) -> None:
        """Run ``erase`` (which takes the user off the boards) and publish the ranks it moved."""
        audience = self._audience([(user_id, week_of(self._today()))])
        before = self._boards(audience)
        erase()
        if self._publisher is not None:
            self._publish_boards(self._publisher, before, self._boards(audience))

    def _recompute(
        self, days: set[DayKey], heartbeats: Sequence[Heartbeat], *, drop_empty: bool = False
    ) -> list[DailyRow]:
        """Replace the rows of ``days`` and of their weeks from the archive; publish the change.

        With ``drop_empty`` (erasures) a day left without heartbeats loses its row instead of
        getting a row of zeros, and so does a week left without days.
        """
        if not days:
            return []
        fetched = self._store.beats_for_days(days)
        rows = day_rows(fetched, timeout_s=self._timeout_s)
        empty = {key for key, beats in fetched.items() if drop_empty and not beats}
        for user_id, dates in _by_user(empty).items():
            self._store.drop_days(user_id, dates)
        self._store.upsert_daily([r for r in rows if (r.user_id, r.date) not in empty])
        # Weeks after days: a week is the sum of its (just written) daily rows.
        weeks = self._store.daily_rows_for_weeks({(r.user_id, week_of(r.date)) for r in rows})
        audience = self._audience(weeks)
        before = self._boards(audience)
        gone = [key for key, days_of_week in weeks.items() if drop_empty and not days_of_week]
        for user_id, mondays in _by_user(gone).items():
            self._store.drop_weeks(user_id, mondays)
        self._store.upsert_weekly(
            [
                weekly_row(user_id, monday, days_of_week)
                for (user_id, monday), days_of_week in weeks.items()
                if (user_id, monday) not in gone
            ]
        )
        if self._publisher is not None:
            self._publish(self._publisher, heartbeats, rows, before, self._boards(audience))
        return rows

    def _audience(self, weeks: Iterable[tuple[str, date]]) -> Audience:
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

    def _boards(self, audience: Audience) -> Boards:
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

    def _publish(
        self,
        publisher: LivePublisher,
        heartbeats: Sequence[Heartbeat],
        rows: Sequence[DailyRow],
        before: Boards,
        after: Boards,
    ) -> None:
        """Tell each user's dashboards what the batch changed, and the public boards' new tops."""
        for user_id, message in heartbeat_messages(heartbeats):
            publisher.publish_user(user_id, message)
        for user_id, stats in stats_messages(rows):
            publisher.publish_user(user_id, stats)
        self._publish_boards(publisher, before, after)

    def _publish_boards(self, publisher: LivePublisher, before: Boards, after: Boards) -> None:
        """Each listened user's rank where it moved, each listened top where it changed."""
        for monday in sorted(after.positions.keys() | after.tops.keys()):
            board = iso_week_id(monday)
            old, new = before.positions.get(monday, {}), after.positions.get(monday, {})
            for user_id, change in rank_changes(board, old, new):
                publisher.publish_user(user_id, change)
            if monday in after.tops:
                update = top_update(board, before.tops.get(monday, []), after.tops[monday])
                if update is not None:
                    publisher.publish_public(update)

    def handle_accounts(self, events: Sequence[tuple[int, AccountEvent]]) -> int:
        """Fold ``(log_offset, event)`` pairs of the accounts topic into leaderboard members.

        The profile events are archived (secret hashes left out), then every touched account is
        folded again from all of its archived events, so redelivery, batching and replay give the
        same member rows. An ``AccountDeleted`` erases the account from every projection (its
        heartbeats too: the ``UserDataErased`` behind them may be read later, or not at all when
        appending it failed). Returns how many members were written.
        """
        return self._accounts(events)[0]

    def _accounts(
        self, events: Sequence[tuple[int, AccountEvent]]
    ) -> tuple[int, tuple[UserDataErased, ...]]:
        ledger = self._ledger({event.user_id for _, event in events})
        known = _fully_erased_users(ledger)
        written = 0
        erasures: list[UserDataErased] = []
        segment: list[tuple[int, AccountEvent]] = []
        kept: set[str] = set()  # the users whose member rows this pass may write
        for offset, event in events:
            # A deletion is carried out again (idempotent) when delivered again: its record may
            # have been written by a worker that stopped before removing any row.
            if fully_erased(event.user_id, ledger) and not isinstance(event, AccountDeleted):
                continue
            if isinstance(event, AccountDeleted):
                written += self._members(segment)
                segment = []
                erasure = UserDataErased(
                    event_id=event.event_id, user_id=event.user_id, occurred_at=event.occurred_at
                )
                at = LogPosition(ACCOUNTS_TOPIC, 0, offset)  # the accounts topic's one partition
                self._record(erasure_record(erasure, at), ledger)
                self._leave_boards(event.user_id, partial(self._store.erase_user, event.user_id))
                erasures.append(erasure)
            else:
                segment.append((offset, event))
                kept.add(event.user_id)
        written += self._members(segment)
        self._erase_again(kept - _fully_erased_users(ledger), known)
        return written, tuple(erasures)

    def _members(self, events: Sequence[tuple[int, AccountEvent]]) -> int:
        archived = [
            (event.user_id, offset, encode_event(_without_secrets(event)).decode())
            for offset, event in events
            if isinstance(event, AccountCreated | ProfileUpdated)
        ]
        if not archived:
            return 0
        self._store.insert_account_events(archived)
        history = self._store.account_events_of({user_id for user_id, _, _ in archived})
        members = [member_of(user_id, past) for user_id, past in sorted(history.items())]
        written = [member for member in members if member is not None]
        # Joining or leaving the boards moves ranks on the current week's board (and a rename
        # changes a top).
        audience = self._audience([(m.user_id, week_of(self._today())) for m in written])
        before = self._boards(audience)
        self._store.upsert_members(written)
        if self._publisher is not None:
            self._publish_boards(self._publisher, before, self._boards(audience))
        return len(written)

    def handle_records(self, records: Sequence[Delivered]) -> BatchResult:
        """Project a batch of records from either topic (what the in-process runner reads)."""
        heartbeat_records = [r for r in records if r.topic != ACCOUNTS_TOPIC]
        events, positions, skipped = decode_positioned_events(heartbeat_records)
        accounts, skipped_accounts = decode_account_events(
            [r for r in records if r.topic == ACCOUNTS_TOPIC]
        )
        result = self.handle(events, positions)
        _, erasures = self._accounts(accounts)
        return dataclasses.replace(
            result,
            skipped_records=skipped + skipped_accounts,
            erasures=result.erasures + erasures,
        )


def erasure_window(erasure: UserDataErased) -> tuple[date, date]:
    """Pure: the local dates a heartbeat in the erased range can be on, in any timezone (UTC
    offsets span -12 to +14 hours), within what a ClickHouse ``Date`` holds."""
    first, last = date(1970, 1, 1), date(2149, 6, 1)

    def utc_date(epoch: float) -> date:  # clamped first: any float must give a date
        bounded = min(max(epoch, 0.0), _EPOCH_2149)
        return datetime.fromtimestamp(bounded, UTC).date()

    if erasure.start is not None:
        first = max(first, utc_date(erasure.start) - timedelta(days=1))
    if erasure.end is not None:
        last = min(last, utc_date(erasure.end) + timedelta(days=1))
    return first, min(max(first, last), date(2149, 6, 1))


_EPOCH_2149 = datetime(2149, 6, 1, tzinfo=UTC).timestamp()


def _fully_erased_users(ledger: Ledger) -> set[str]:
    return {user_id for user_id in ledger if fully_erased(user_id, ledger)}


def _written_users(events: Iterable[HeartbeatEvent], ledger: Ledger) -> set[str]:
    """The users a pass over ``events`` may have written rows of (not those erased whole)."""
    return {
        event.user_id
        for event in events
        if not isinstance(event, UserDataErased) and not fully_erased(event.user_id, ledger)
    }


def _by_user(keys: Iterable[tuple[str, date]]) -> dict[str, list[date]]:
    grouped: dict[str, list[date]] = {}
    for user_id, day in keys:
        grouped.setdefault(user_id, []).append(day)
    return grouped


Positions: TypeAlias = dict[str, LeaderboardEntry]
PUBLIC_TOP = 10  # entries of a board the public channel receives on each change


@dataclass(frozen=True, slots=True)
class Audience:
    """Who listens to a pass over the boards (see :meth:`HeartbeatProjector._audience`).

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

    positions: dict[date, Positions]
    tops: dict[date, list[LeaderboardEntry]]


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


def _without_secrets(event: AccountEvent) -> AccountEvent:
    if isinstance(event, AccountCreated):
        return event.model_copy(update={"account_number_hash": ""})
    return event


def member_of(user_id: str, events: Sequence[tuple[int, str]]) -> Member | None:
    """Pure: fold one account's archived ``(log_offset, event_json)`` into its member row."""
    state = AccountState()
    for _, raw in events:
        event = decode_event(raw.encode())
        if isinstance(event, AccountCreated | ProfileUpdated):
            state.apply(event)
    user = state.users.get(user_id)
    if user is None:
        return None
    return Member(
        user_id=user.user_id,
        username=user.username,
        eligible=user.is_public and user.show_in_leaderboard,
        country=user.country or "",
        available_for_hire=user.available_for_hire,
        version=max(offset for offset, _ in events),
        languages_public=user.profile_show_languages,
    )


def decode_account_events(
    records: Sequence[Delivered],
) -> tuple[list[tuple[int, AccountEvent]], int]:
    """``(offset, event)`` of the account events among ``records``, and how many were skipped."""
    events: list[tuple[int, AccountEvent]] = []
    skipped = 0
    for record in records:
        try:
            event = decode_event(record.value)
        except ValidationError:
            skipped += 1
            _log.error("skipping undecodable account record at offset %s", record.offset)
            continue
        if isinstance(
            event, AccountCreated | ApiKeyCreated | ApiKeyRevoked | ProfileUpdated | AccountDeleted
        ):
            events.append((record.offset, event))
    return events, skipped
