"""The account directory: account state rebuilt from the log, kept current, shared by requests.

Every process that authenticates (ingest, api, serve) holds one. It reads the whole accounts topic
at start-up, then tails it: one background task is the only reader and folds every record into
:class:`accounts.state.AccountState`.

:meth:`AccountDirectory.sync` is a read barrier: it returns once the state holds every event any
process appended before the call (it asks the log for its end, then waits for the tail to pass
it). Writes go to the log first and are answered once the tail has folded them back, so the
answer is the log's order (a lost race is refused). When a credential is unknown the directory
syncs before it answers "unknown", so a key created through one process works on the very next
request to any other. With ``shared_log`` (a log other processes write to, i.e. Kafka)
authentication syncs on every request, so a revoked key, a logout or a revoked session is refused
on the very next request in every process; concurrent requests share one end-offsets lookup
(:class:`_Coalesced`), so the cost is one round trip to the log per request, not a queue of them.
When the log cannot be reached, such a request is answered 503 after ``sync_timeout_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from pydantic import ValidationError

from accounts.plugins import PluginCatalog
from accounts.state import AccountState, ApiKey, ContactMessage, Session, User
from accounts.themes import ThemeCatalog
from eventlog.port import EventLog, LogError, LogReader, LogUnavailable, Record, TopicPartition
from schemas.events import (
    ACCOUNTS_TOPIC,
    AccountEvent,
    ApiKeyUsed,
    decode_event,
    encode_event,
    is_account_event,
)

_log = logging.getLogger(__name__)
T = TypeVar("T")

# How often "last used" of an API key is written to the log, per key and process.
KEY_USE_INTERVAL_S = 3600.0


class _Coalesced(Generic[T]):
    """Runs ``fn`` for concurrent callers so that each gets the result of a run that *started
    after* it called: callers arriving while a run is in flight share the next run."""

    def __init__(self, fn: Callable[[], Awaitable[T]]) -> None:
        self._fn = fn
        self._running: asyncio.Future[T] | None = None
        self._queued: asyncio.Future[T] | None = None

    async def __call__(self) -> T:
        if self._running is None:
            return await asyncio.shield(self._launch(None))
        if self._queued is None:
            self._queued = asyncio.get_running_loop().create_future()
        return await asyncio.shield(self._queued)

    def _launch(self, waiters: asyncio.Future[T] | None) -> asyncio.Future[T]:
        task = asyncio.ensure_future(self._fn())
        self._running = task

        def done(finished: asyncio.Future[T]) -> None:
            self._running = None
            error = None if finished.cancelled() else finished.exception()
            if waiters is not None and not waiters.done():
                if finished.cancelled():
                    waiters.cancel()
                elif error is not None:
                    waiters.set_exception(error)
                else:
                    waiters.set_result(finished.result())
            if self._queued is not None:
                queued, self._queued = self._queued, None
                self._launch(queued)

        task.add_done_callback(done)
        return task


class AccountDirectory:
    """Account state for one process.

    ``start`` blocks until the state has caught up with the log; ``close`` stops tailing.
    ``record`` appends an event (raises :class:`eventlog.port.LogUnavailable` when the log cannot
    take it, leaving the state unchanged) and answers once the log's order has decided it.
    Queries that may trigger a sync raise :class:`eventlog.port.LogError` when the log cannot
    be read. ``sync_timeout_s`` bounds a barrier (:meth:`sync`), ``record_timeout_s`` how long
    ``record`` waits for the tail to read its event back.
    """

    def __init__(
        self,
        log: EventLog,
        *,
        shared_log: bool = False,
        tail_interval_s: float = 0.1,
        sync_timeout_s: float = 3.0,
        record_timeout_s: float = 10.0,
    ) -> None:
        self._log = log
        self._state = AccountState()
        self._reader: LogReader | None = None
        self._tail_task: asyncio.Task[None] | None = None
        self._tail_interval_s = tail_interval_s
        self._sync_timeout_s = sync_timeout_s
        self._record_timeout_s = record_timeout_s
        self._positions: dict[TopicPartition, int] = {}
        self._progress = asyncio.Condition()
        self._ends = _Coalesced(lambda: self._log.end_offsets(ACCOUNTS_TOPIC))
        self._key_use_noted: dict[str, float] = {}
        self._background: set[asyncio.Task[None]] = set()
        self.shared_log = shared_log

    @property
    def state(self) -> AccountState:
        return self._state

    @property
    def plugins(self) -> PluginCatalog:
        """The plugin store as far as this process has read the log (no sync)."""
        return self._state.plugins

    @property
    def themes(self) -> ThemeCatalog:
        """The theme store and everyone's theme preferences as far as this process has read the
        log (no sync)."""
        return self._state.themes

    async def start(self) -> None:
        # A group of our own that never commits: every start reads the topic from the beginning.
        self._reader = self._log.reader([ACCOUNTS_TOPIC], group=f"accounts-{uuid.uuid4().hex}")
        await self._reader.start()
        self._positions = await self._reader.positions()
        self._tail_task = asyncio.create_task(self._tail(), name="accounts-tail")
        await self.sync()

    async def close(self) -> None:
        tasks = [t for t in (self._tail_task, *self._background) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._reader is not None:
            await self._reader.close()

    async def record(self, event: AccountEvent, *, also: Sequence[Record] = ()) -> bool:
        """Append ``event``; True when the log's order accepted it (False: e.g. a lost race).

        Answers once the tail has read the event back and folded it, after every event any
        process appended before it: the decision is the log's order, the same in every process.
        ``also`` are records of other topics appended in the same call (one transaction on the
        embedded log), whatever the fold decides.
        """
        await self._log.append(
            [Record(ACCOUNTS_TOPIC, event.user_id.encode(), encode_event(event)), *also]
        )
        try:
            async with asyncio.timeout(self._record_timeout_s), self._progress:
                await self._progress.wait_for(lambda: event.event_id in self._state.seen)
        except TimeoutError:
            raise LogUnavailable("the account log did not deliver the event back") from None
        return event.event_id not in self._state.rejected

    async def _append(self, event: AccountEvent) -> None:
        await self._log.append(
            [Record(ACCOUNTS_TOPIC, event.user_id.encode(), encode_event(event))]
        )

    async def sync(self) -> None:
        """Return once the state includes every event appended (anywhere) before this call.

        When nothing is new this costs one end-offsets lookup, shared by concurrent callers.
        Raises :class:`LogError` when the log cannot be read or the lookup and the tail do not
        get there within ``sync_timeout_s`` (short: a request waits at most that long before it
        is answered 503 during an outage of the log).
        """
        assert self._reader is not None, "start() first"
        try:
            async with asyncio.timeout(self._sync_timeout_s):
                ends = await self._ends()
                async with self._progress:
                    await self._progress.wait_for(lambda: self._reached(ends))
        except TimeoutError:
            raise LogUnavailable("the account log could not be read up to its end") from None

    def _reached(self, ends: dict[TopicPartition, int]) -> bool:
        return all(self._positions.get(tp, 0) >= end for tp, end in ends.items())

    async def _tail(self) -> None:
        assert self._reader is not None
        while True:
            try:
                await self._read_some(self._reader)
            except asyncio.CancelledError:
                raise
            except LogError as exc:
                _log.warning("accounts tail paused: %s", exc)
                await asyncio.sleep(1.0)
            await asyncio.sleep(0)

    async def _read_some(self, reader: LogReader) -> None:
        for delivered in await reader.fetch(max_records=1000, timeout_s=self._tail_interval_s):
            try:
                event = decode_event(delivered.value)
            except ValidationError:
                _log.error("skipping undecodable account record at offset %s", delivered.offset)
                continue
            if not is_account_event(event):
                continue
            self._state.apply(event)
        positions = await reader.positions()
        async with self._progress:
            self._positions = positions
            self._progress.notify_all()

    async def _fresh(self, lookup: Callable[[], T | None]) -> T | None:
        found = lookup()
        if found is None:
            await self.sync()
            found = lookup()
        return found

    # -- queries --------------------------------------------------------------------------------

    async def key(self, key_hash: str) -> ApiKey | None:
        return await self._fresh(lambda: self._state.keys_by_hash.get(key_hash))

    async def user(self, user_id: str) -> User | None:
        return await self._fresh(lambda: self._state.users.get(user_id))

    async def session(self, session_id: str) -> Session | None:
        """The live session, or None (ended sessions are answered without a sync)."""
        if session_id in self._state.ended_sessions:
            return None
        return await self._fresh(lambda: self._state.sessions.get(session_id))

    def holds(self, user_id: str, session_id: str | None, key_id: str | None) -> bool:
        """Whether the account still exists and, if named, the session is alive and the key
        not deleted, as far as this process has read the log (no sync: it is polled by long-
        lived connections, which learn of a revocation within the tail's interval)."""
        if user_id not in self._state.users:
            return False
        if session_id is not None:
            session = self._state.sessions.get(session_id)
            return session is not None and session.user_id == user_id
        if key_id is not None:
            key = self._state.keys_by_id.get(key_id)
            return key is not None and key.user_id == user_id
        return True

    async def session_by_refresh_hash(self, refresh_hash: str) -> Session | None:
        def lookup() -> Session | None:
            session_id = self._state.session_by_refresh_hash.get(refresh_hash)
            return self._state.sessions.get(session_id) if session_id else None

        return await self._fresh(lookup)

    async def user_by_account_hash(self, account_hash: str) -> User | None:
        def lookup() -> User | None:
            user_id = self._state.user_by_account_hash.get(account_hash)
            return self._state.users.get(user_id) if user_id else None

        return await self._fresh(lookup)

    async def user_by_identity(self, provider: str, subject: str) -> User | None:
        def lookup() -> User | None:
            user_id = self._state.user_by_identity.get((provider, subject))
            return self._state.users.get(user_id) if user_id else None

        return await self._fresh(lookup)

    async def user_by_username(self, username: str, *, fresh: bool = True) -> User | None:
        """The account with this username (case-insensitive), or None.

        ``fresh=False`` answers from what the tail has read (at most a moment behind) without a
        sync: anonymous lookups use it, so an unknown name costs no more than a private one
        and timing does not tell them apart.
        """

        def lookup() -> User | None:
            user_id = self._state.user_by_username.get(username.lower())
            return self._state.users.get(user_id) if user_id else None

        return await self._fresh(lookup) if fresh else lookup()

    def users(self) -> list[User]:
        """Every account as this process knows it now (no sync)."""
        return list(self._state.users.values())

    def keys_of(self, user_id: str) -> list[ApiKey]:
        return self._state.keys_of(user_id)

    def key_last_used(self, key_id: str) -> float | None:
        return self._state.key_last_used.get(key_id)

    def sessions_of(self, user_id: str) -> list[Session]:
        return self._state.sessions_of(user_id)

    def messages_of(self, user_id: str) -> list[ContactMessage]:
        return self._state.messages_of(user_id)

    def following_of(self, user_id: str) -> set[str]:
        return set(self._state.following.get(user_id, ()))

    def followers_of(self, user_id: str) -> set[str]:
        return set(self._state.followers.get(user_id, ()))

    def oauth_state_used(self, state_hash: str) -> bool:
        return state_hash in self._state.used_oauth_states

    # -- last use of API keys -------------------------------------------------------------------

    def note_key_used(self, key: ApiKey, now: float | None = None) -> None:
        """Remember that ``key`` authenticated a request, without delaying it.

        An :class:`ApiKeyUsed` event is appended in the background when the key's last recorded
        use is older than :data:`KEY_USE_INTERVAL_S` (at most one in flight per key and process),
        so "last used" costs a log write per key and hour, not per request. A failed append is
        logged and retried on a later use.
        """
        at = time.time() if now is None else now
        last = max(
            self._state.key_last_used.get(key.key_id, float("-inf")),
            self._key_use_noted.get(key.key_id, float("-inf")),
        )
        if at - last < KEY_USE_INTERVAL_S:
            return
        self._key_use_noted[key.key_id] = at
        event = ApiKeyUsed(
            event_id=new_event_id(), user_id=key.user_id, occurred_at=at, key_id=key.key_id
        )
        task = asyncio.create_task(self._append_quietly(event), name="accounts-key-used")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _append_quietly(self, event: ApiKeyUsed) -> None:
        try:
            await self._append(event)
        except LogError as exc:
            _log.warning("could not record the use of API key %s: %s", event.key_id, exc)
            self._key_use_noted.pop(event.key_id, None)


def new_event_id() -> str:
    return uuid.uuid4().hex
