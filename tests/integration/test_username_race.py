"""A rename that loses its race is a 409, and the leaderboard processors still see the real name.

The processors fold one account's archived profile events at a time (``member_of``), so they
cannot tell that a claimed name went to someone else first; the refused claim is followed on the
log by a rename back to the name the account really has.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from accounts.credentials import hash_secret
from accounts.directory import AccountDirectory, new_event_id
from accounts.state import User
from api.routes.account_forms import AccountWrites
from eventlog.embedded import SqliteEventLog
from http_edge.errors import ApiError
from processors.projectors.members import member_of
from schemas.events import (
    ACCOUNTS_TOPIC,
    AccountCreated,
    ProfileUpdated,
    decode_event,
    encode_event,
)


async def _account(directory: AccountDirectory, name: str) -> str:
    event = AccountCreated(
        event_id=new_event_id(),
        user_id=new_event_id(),
        occurred_at=time.time(),
        username=name,
        account_number_hash=hash_secret(new_event_id()),
    )
    assert await directory.record(event)
    return event.user_id


async def test_a_lost_rename_is_refused_and_undone_for_the_processors(tmp_path: Path) -> None:
    log = SqliteEventLog(tmp_path / "log.sqlite")
    await log.start()
    directory = AccountDirectory(log)
    await directory.start()
    try:
        alice = await _account(directory, "alice")
        bob = await _account(directory, "bob")
        assert await directory.record(
            ProfileUpdated(
                event_id=new_event_id(), user_id=bob, occurred_at=time.time(), username="neo"
            )
        )
        writes = AccountWrites(directory)

        async def stale_lookup(username: str, *, fresh: bool = True) -> User | None:
            return None  # as if bob's claim had not been read yet when alice asked

        directory.user_by_username = stale_lookup  # type: ignore[method-assign]
        with pytest.raises(ApiError) as lost:
            await writes.update_profile(directory.state.users[alice], {"username": "neo"})
        assert lost.value.status == 409
        assert directory.state.users[alice].username == "alice"
        assert directory.state.users[bob].username == "neo"
        # What the leaderboard processors archive of alice, folded their way.
        reader = log.reader([ACCOUNTS_TOPIC], group="check")
        await reader.start()
        archived = []
        for record in await reader.fetch(max_records=100, timeout_s=1.0):
            event = decode_event(record.value)
            if event.user_id == alice and isinstance(event, AccountCreated | ProfileUpdated):
                archived.append((record.offset, encode_event(event).decode()))
        await reader.close()
        claims = [raw for _, raw in archived if '"username":"neo"' in raw]
        assert claims, "the refused claim is on the log"
        member = member_of(alice, archived)
        assert member is not None
        assert member.username == "alice"
    finally:
        await directory.close()
        await log.close()
