"""The account directory: account state rebuilt from the log, kept current, shared by requests.

Every process that authenticates (ingest, api, serve) holds one. It reads the whole accounts topic
at start-up, then tails it. Writes go to the log first and are applied locally only once the log
has acknowledged them, so a process always sees its own writes; when a credential is unknown, the
directory catches up with the log's end before it answers "unknown", so a key created through one
process works on the very next request to any other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

from pydantic import ValidationError

from accounts.state import AccountState, ApiKey, User
from eventlog.port import EventLog, LogError, LogReader, Record
from schemas.events import (
    ACCOUNTS_TOPIC,
    AccountEvent,
    HeartbeatsDeleted,
    HeartbeatsReceived,
    decode_event,
    encode_event,
)

_log = logging.getLogger(__name__)


class AccountDirectory:
    """Account state for one process.

    ``start`` blocks until the state has caught up with the log; ``close`` stops tailing.
    ``record`` appends an event (raises :class:`eventlog.port.LogUnavailable` when the log cannot
    take it, leaving the state unchanged) and applies it once acknowledged.
    """

    def __init__(self, log: EventLog, *, tail_interval_s: float = 0.1) -> None:
        self._log = log
        self._state = AccountState()
        self._reader: LogReader | None = None
        self._read_lock = asyncio.Lock()
        self._tail_task: asyncio.Task[None] | None = None
        self._tail_interval_s = tail_interval_s

    @property
    def state(self) -> AccountState:
        return self._state

    async def start(self) -> None:
        # A group of our own that never commits: every start reads the topic from the beginning.
        self._reader = self._log.reader([ACCOUNTS_TOPIC], group=f"accounts-{uuid.uuid4().hex}")
        await self._reader.start()
        await self.catch_up()
        self._tail_task = asyncio.create_task(self._tail(), name="accounts-tail")

    async def close(self) -> None:
        if self._tail_task is not None:
            self._tail_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._tail_task
        if self._reader is not None:
            await self._reader.close()

    async def record(self, event: AccountEvent) -> bool:
        """Append ``event``; True when the log's order accepted it (False: e.g. a lost race).

        After the append the directory reads up to the log's end, so the answer reflects every
        event any process appended before this one, not just this process's view.
        """
        await self._log.append(
            [Record(ACCOUNTS_TOPIC, event.user_id.encode(), encode_event(event))]
        )
        await self.catch_up()
        self._state.apply(event)  # no-op when the catch-up already read it back
        return event.event_id not in self._state.rejected

    async def catch_up(self) -> None:
        """Read until the end of the accounts topic as it was when called.

        Never skipped: a credential created a moment ago through another process must be found.
        When nothing is new it costs one end-offsets lookup.
        """
        assert self._reader is not None, "start() first"
        async with self._read_lock:
            ends = await self._log.end_offsets(ACCOUNTS_TOPIC)
            while True:
                positions = await self._reader.positions()
                if all(positions.get(tp, 0) >= end for tp, end in ends.items()):
                    return
                await self._read_some(timeout_s=0.2)

    async def _tail(self) -> None:
        # Short fetches: a catch-up (an unknown credential) waits for the lock at most this long.
        while True:
            try:
                async with self._read_lock:
                    await self._read_some(timeout_s=self._tail_interval_s)
            except asyncio.CancelledError:
                raise
            except LogError as exc:
                _log.warning("accounts tail paused: %s", exc)
                await asyncio.sleep(1.0)
            await asyncio.sleep(0)

    async def _read_some(self, timeout_s: float) -> None:
        assert self._reader is not None
        for delivered in await self._reader.fetch(max_records=1000, timeout_s=timeout_s):
            try:
                event = decode_event(delivered.value)
            except ValidationError:
                _log.error("skipping undecodable account record at offset %s", delivered.offset)
                continue
            if isinstance(event, HeartbeatsReceived | HeartbeatsDeleted):
                continue
            self._state.apply(event)

    # -- queries --------------------------------------------------------------------------------

    async def key(self, key_hash: str) -> ApiKey | None:
        found = self._state.keys_by_hash.get(key_hash)
        if found is None:
            await self.catch_up()
            found = self._state.keys_by_hash.get(key_hash)
        return found

    async def user(self, user_id: str) -> User | None:
        found = self._state.users.get(user_id)
        if found is None:
            await self.catch_up()
            found = self._state.users.get(user_id)
        return found

    async def user_by_account_hash(self, account_hash: str) -> User | None:
        user_id = self._state.user_by_account_hash.get(account_hash)
        if user_id is None:
            await self.catch_up()
            user_id = self._state.user_by_account_hash.get(account_hash)
        return self._state.users.get(user_id) if user_id else None

    async def user_by_username(self, username: str, *, fresh: bool = True) -> User | None:
        """The account with this username (case-insensitive), or None.

        ``fresh=False`` answers from what the tail has read (at most a moment behind) without a
        catch-up: anonymous lookups use it, so an unknown name costs no more than a private one
        and timing does not tell them apart.
        """
        user_id = self._state.user_by_username.get(username.lower())
        if user_id is None and fresh:
            await self.catch_up()
            user_id = self._state.user_by_username.get(username.lower())
        return self._state.users.get(user_id) if user_id else None

    def users(self) -> list[User]:
        """Every account as this process knows it now (no catch-up)."""
        return list(self._state.users.values())

    def keys_of(self, user_id: str) -> list[ApiKey]:
        return self._state.keys_of(user_id)


def new_event_id() -> str:
    return uuid.uuid4().hex
