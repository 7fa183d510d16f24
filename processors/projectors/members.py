"""The members family: account events folded into the leaderboards' member rows.

The profile events are archived (secret hashes left out), then every touched account is folded
again from all of its archived events, so redelivery, batching and replay give the same member
rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date

from accounts.state import AccountState
from processors.projectors.batches import NOTHING, BatchResult, Pass, ProjectedBatch
from processors.projectors.boards import BoardWatch
from projections.leaderboard import Member, week_of
from projections.ports import ProjectionWriter
from schemas.events import (
    AccountCreated,
    AccountDeleted,
    AccountEvent,
    ApiKeyCreated,
    ApiKeyRevoked,
    ProfileUpdated,
    decode_event,
    encode_event,
)

# The account events a member row is folded from (archived, in the account's log order).
MEMBER_EVENTS = (AccountCreated, ProfileUpdated)
# The account events the projector reads: the member events, the deletion (it erases the
# account), and the key events, whose authors are checked against the erasure ledger like any
# writer's. Sessions, follows, contact messages and key use change no projection.
PROJECTED_ACCOUNT_EVENTS = (*MEMBER_EVENTS, ApiKeyCreated, ApiKeyRevoked, AccountDeleted)


def member_of(user_id: str, events: Sequence[tuple[int, str]]) -> Member | None:
    """Pure: fold one account's archived ``(log_offset, event_json)`` into its member row."""
    state = AccountState()
    for _, raw in events:
        event = decode_event(raw.encode())
        if isinstance(event, MEMBER_EVENTS):
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


def _without_secrets(event: AccountEvent) -> AccountEvent:
    if isinstance(event, AccountCreated):
        return event.model_copy(update={"account_number_hash": ""})
    return event


class MembersProjection:
    """Archives a segment's profile events and rewrites the member rows they touch."""

    def __init__(
        self, store: ProjectionWriter, watch: BoardWatch, *, today: Callable[[], date]
    ) -> None:
        self._store = store
        self._watch = watch
        self._today = today  # which week's board a membership change moves (UTC, as the API)

    def fold(self, events: Sequence[tuple[int, AccountEvent]]) -> ProjectedBatch:
        """``(log_offset, event)`` pairs (no deletion among them) into member rows."""
        archived = [
            (event.user_id, offset, encode_event(_without_secrets(event)).decode())
            for offset, event in events
            if isinstance(event, MEMBER_EVENTS)
        ]
        if not archived:
            return NOTHING
        self._store.insert_account_events(archived)
        history = self._store.account_events_of({user_id for user_id, _, _ in archived})
        members = [member_of(user_id, past) for user_id, past in sorted(history.items())]
        written = [member for member in members if member is not None]
        # Joining or leaving the boards moves ranks on the current week's board (and a rename
        # changes a top).
        before, after = self._watch.around(
            [(m.user_id, week_of(self._today())) for m in written],
            lambda: self._store.upsert_members(written),
        )
        return ProjectedBatch(BatchResult(0, 0), len(written), (Pass(before=before, after=after),))
