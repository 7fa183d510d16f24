"""The account fold's rules for identities, usernames, sessions, keys, follows and messages."""

from __future__ import annotations

import asyncio

from accounts.directory import _Coalesced
from accounts.state import (
    MAX_MESSAGES_PER_USER,
    MAX_SESSIONS_PER_USER,
    AccountState,
)
from schemas.events import (
    AccountCreated,
    ApiKeyCreated,
    ApiKeyRevoked,
    ApiKeyUsed,
    ContactMessageSent,
    ProfileUpdated,
    SessionRefreshed,
    SessionRevoked,
    SessionStarted,
    UserFollowed,
    UserUnfollowed,
    decode_event,
    encode_event,
)

_n = 0


def eid() -> str:
    global _n
    _n += 1
    return f"e{_n}"


def account(user: str, name: str, **identity: str) -> AccountCreated:
    secret = {} if identity else {"account_number_hash": f"h-{user}"}
    return AccountCreated(
        event_id=eid(), user_id=user, occurred_at=1.0, username=name, **secret, **identity
    )


def world(*names: str) -> AccountState:
    state = AccountState()
    for name in names:
        assert state.apply(account(f"u-{name}", name))
    return state


def started(user: str, sid: str, refresh: str, at: float = 10.0, **extra: str) -> SessionStarted:
    return SessionStarted(
        event_id=eid(),
        user_id=user,
        occurred_at=at,
        session_id=sid,
        refresh_hash=refresh,
        expires_at=at + 1000,
        method="anonymous",
        **extra,
    )


def refreshed(user: str, sid: str, old: str, new: str, at: float = 20.0) -> SessionRefreshed:
    return SessionRefreshed(
        event_id=eid(),
        user_id=user,
        occurred_at=at,
        session_id=sid,
        previous_hash=old,
        refresh_hash=new,
        expires_at=at + 1000,
    )


def test_identity_is_claimed_once_and_needs_no_account_number() -> None:
    state = AccountState()
    assert state.apply(account("u1", "octocat", identity_provider="github", identity_subject="7"))
    assert state.users["u1"].identity_provider == "github"
    assert not state.apply(account("u2", "other", identity_provider="github", identity_subject="7"))
    # The same subject at another provider is another identity.
    assert state.apply(account("u3", "octo-2", identity_provider="gitlab", identity_subject="7"))
    assert state.user_by_identity == {("github", "7"): "u1", ("gitlab", "7"): "u3"}
    assert "" not in state.user_by_account_hash


def test_archived_accounts_without_secret_still_fold() -> None:
    """The leaderboard processors fold archived events whose secret hash was blanked."""
    state = AccountState()
    created = account("u1", "alice").model_copy(update={"account_number_hash": ""})
    assert state.apply(created)
    assert state.users["u1"].username == "alice"


def test_rename_first_claim_wins_and_case_changes_are_allowed() -> None:
    state = world("alice", "bob")
    assert state.apply(
        ProfileUpdated(event_id=eid(), user_id="u-alice", occurred_at=2, username="neo")
    )
    taken = ProfileUpdated(
        event_id=eid(), user_id="u-bob", occurred_at=3, username="NEO", bio="hello"
    )
    assert not state.apply(taken)
    assert state.users["u-bob"].bio is None  # a refused event changes nothing at all
    assert state.apply(
        ProfileUpdated(event_id=eid(), user_id="u-alice", occurred_at=4, username="Neo")
    )
    assert state.users["u-alice"].username == "Neo"
    # The old name is free again.
    assert state.apply(
        ProfileUpdated(event_id=eid(), user_id="u-bob", occurred_at=5, username="alice")
    )
    assert state.user_by_username == {"neo": "u-alice", "alice": "u-bob"}


def test_text_fields_are_cleared_by_empty_strings() -> None:
    state = world("alice")
    state.apply(
        ProfileUpdated(
            event_id=eid(),
            user_id="u-alice",
            occurred_at=2,
            website="https://a.example",
            bio="hi",
            display_name="Alice",
        )
    )
    state.apply(ProfileUpdated(event_id=eid(), user_id="u-alice", occurred_at=3, website=""))
    user = state.users["u-alice"]
    assert (user.website, user.bio, user.display_name) == (None, "hi", "Alice")


def test_refresh_rotates_once_per_token() -> None:
    state = world("alice")
    assert state.apply(started("u-alice", "s1", "r0"))
    assert state.apply(refreshed("u-alice", "s1", "r0", "r1"))
    # A second use of r0 (a race, or a thief) is refused by the log's order.
    assert not state.apply(refreshed("u-alice", "s1", "r0", "r1b"))
    session = state.sessions["s1"]
    assert (session.refresh_hash, session.refreshed_at) == ("r1", 20.0)
    # The retired token still names its session, so its reuse can be recognised.
    assert state.session_by_refresh_hash["r0"] == "s1"
    assert "r1b" not in state.session_by_refresh_hash


def test_revoking_a_session_forgets_its_tokens_and_only_the_owner_may() -> None:
    state = world("alice", "bob")
    state.apply(started("u-alice", "s1", "r0"))
    state.apply(refreshed("u-alice", "s1", "r0", "r1"))
    assert not state.apply(
        SessionRevoked(
            event_id=eid(), user_id="u-bob", occurred_at=30, session_id="s1", reason="revoked"
        )
    )
    assert state.apply(
        SessionRevoked(
            event_id=eid(), user_id="u-alice", occurred_at=30, session_id="s1", reason="logout"
        )
    )
    assert "s1" not in state.sessions
    assert "s1" in state.ended_sessions
    assert not state.session_by_refresh_hash
    # An ended session cannot be refreshed or started again.
    assert not state.apply(refreshed("u-alice", "s1", "r1", "r2"))
    assert not state.apply(started("u-alice", "s1", "r9"))


def test_an_oauth_state_starts_one_session() -> None:
    state = world("alice")
    assert state.apply(started("u-alice", "s1", "r1", oauth_state="n1"))
    assert not state.apply(started("u-alice", "s2", "r2", oauth_state="n1"))
    assert state.apply(started("u-alice", "s3", "r3", oauth_state="n2"))


def test_lapsed_sessions_end_and_live_ones_are_capped() -> None:
    state = world("alice")
    state.apply(started("u-alice", "old", "r-old", at=0.0))  # expires at 1000
    for i in range(MAX_SESSIONS_PER_USER):
        assert state.apply(started("u-alice", f"s{i}", f"r{i}", at=2000.0 + i))
    assert "old" not in state.sessions  # lapsed before the later logins
    assert len(state.sessions_of("u-alice")) == MAX_SESSIONS_PER_USER
    state.apply(started("u-alice", "newest", "r-new", at=2500.0))
    assert "s0" not in state.sessions  # the stalest live one made room
    assert len(state.sessions_of("u-alice")) == MAX_SESSIONS_PER_USER


def test_key_use_is_a_maximum_and_read_only_is_kept() -> None:
    state = world("alice", "bob")
    key = ApiKeyCreated(
        event_id=eid(),
        user_id="u-alice",
        occurred_at=2,
        key_id="k1",
        name="ci",
        key_hash="h1",
        key_prefix="abc",
        read_only=True,
    )
    assert state.apply(key)
    assert state.keys_by_hash["h1"].read_only
    used = ApiKeyUsed(event_id=eid(), user_id="u-alice", occurred_at=100, key_id="k1")
    assert state.apply(used)
    assert not state.apply(used)  # a redelivery changes nothing
    assert not state.apply(
        ApiKeyUsed(event_id=eid(), user_id="u-alice", occurred_at=50, key_id="k1")
    )
    assert not state.apply(
        ApiKeyUsed(event_id=eid(), user_id="u-bob", occurred_at=500, key_id="k1")
    )
    assert state.key_last_used["k1"] == 100
    assert "k1" not in state.revoked_keys
    state.apply(ApiKeyRevoked(event_id=eid(), user_id="u-alice", occurred_at=3, key_id="k1"))
    assert "k1" not in state.key_last_used


def test_follows_are_sets_and_never_of_yourself() -> None:
    state = world("alice", "bob")

    def follow(who: str, whom: str, undo: bool = False) -> bool:
        kind = UserUnfollowed if undo else UserFollowed
        return state.apply(kind(event_id=eid(), user_id=who, occurred_at=2, followed_user_id=whom))

    assert not follow("u-alice", "u-alice")
    assert not follow("u-alice", "u-nobody")
    assert follow("u-alice", "u-bob")
    assert not follow("u-alice", "u-bob")
    assert state.followers["u-bob"] == {"u-alice"}
    assert follow("u-alice", "u-bob", undo=True)
    assert not follow("u-alice", "u-bob", undo=True)
    assert state.followers["u-bob"] == set() == state.following["u-alice"]


def test_messages_need_a_public_hireable_recipient_and_are_bounded() -> None:
    state = world("alice", "bob")

    def message(at: float, sender: str = "u-bob") -> bool:
        return state.apply(
            ContactMessageSent(
                event_id=eid(),
                user_id="u-alice",
                occurred_at=at,
                message_id=f"m{at}",
                sender_user_id=sender,
                sender_name="Bob",
                sender_email="bob@example.com",
                message="hire?",
            )
        )

    assert not message(1)
    state.apply(
        ProfileUpdated(
            event_id=eid(),
            user_id="u-alice",
            occurred_at=2,
            is_public=True,
            available_for_hire=True,
        )
    )
    assert not message(3, sender="u-alice")
    for i in range(MAX_MESSAGES_PER_USER + 5):
        assert message(10 + i)
    inbox = state.messages_of("u-alice")
    assert len(inbox) == MAX_MESSAGES_PER_USER
    assert inbox[0].sent_at == 10 + MAX_MESSAGES_PER_USER + 4  # newest first


def test_every_account_event_round_trips_through_the_log_encoding() -> None:
    events = [
        account("u1", "octocat", identity_provider="github", identity_subject="1"),
        started("u1", "s1", "r1", oauth_state="n"),
        refreshed("u1", "s1", "r1", "r2"),
        ApiKeyUsed(event_id="x", user_id="u1", occurred_at=1, key_id="k"),
        UserFollowed(event_id="y", user_id="u1", occurred_at=1, followed_user_id="u2"),
    ]
    for event in events:
        assert decode_event(encode_event(event)) == event


async def test_coalesced_calls_share_a_run_that_started_after_them() -> None:
    runs = 0
    gate = asyncio.Event()

    async def lookup() -> int:
        nonlocal runs
        runs += 1
        mine = runs
        await gate.wait()
        return mine

    shared = _Coalesced(lookup)
    first = asyncio.create_task(shared())
    await asyncio.sleep(0)
    # These arrive while run 1 is in flight: they must not get its (older) answer.
    later = [asyncio.create_task(shared()) for _ in range(5)]
    await asyncio.sleep(0)
    gate.set()
    assert await first == 1
    assert {await task for task in later} == {2}
    assert runs == 2
