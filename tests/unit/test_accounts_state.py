from __future__ import annotations

from accounts.state import MAX_KEYS_PER_USER, AccountState
from schemas.events import (
    AccountCreated,
    AccountDeleted,
    AccountSuspended,
    AccountUnsuspended,
    ApiKeyCreated,
    ApiKeyRevoked,
    ApiKeyUsed,
    ContactMessageSent,
    ProfileUpdated,
    SessionRefreshed,
    SessionRevoked,
    SessionStarted,
    UserFollowed,
)


def created(user: str, name: str, acct: str = "", eid: str = "") -> AccountCreated:
    return AccountCreated(
        event_id=eid or f"e-{user}",
        user_id=user,
        occurred_at=1.0,
        username=name,
        account_number_hash=acct or f"h-{user}",
    )


def key(user: str, kid: str, eid: str = "") -> ApiKeyCreated:
    return ApiKeyCreated(
        event_id=eid or f"k-{kid}",
        user_id=user,
        occurred_at=2.0,
        key_id=kid,
        name=kid,
        key_hash=f"hash-{kid}",
        key_prefix=kid[:4],
    )


def test_state_applies_each_event_once() -> None:
    state = AccountState()
    assert state.apply(created("u1", "alice"))
    assert not state.apply(created("u1", "alice"))
    assert state.apply(key("u1", "k1"))
    assert state.keys_by_hash["hash-k1"].user_id == "u1"


def test_state_first_username_or_account_number_wins() -> None:
    state = AccountState()
    assert state.apply(created("u1", "alice"))
    assert not state.apply(created("u2", "ALICE", eid="x"))
    assert not state.apply(created("u3", "bob", acct="h-u1", eid="y"))
    assert set(state.users) == {"u1"}
    assert "x" in state.rejected


def test_state_caps_keys_per_user() -> None:
    state = AccountState()
    state.apply(created("u1", "alice"))
    for i in range(MAX_KEYS_PER_USER):
        assert state.apply(key("u1", f"k{i}"))
    assert not state.apply(key("u1", "extra"))
    assert len(state.keys_of("u1")) == MAX_KEYS_PER_USER


def test_state_revoke_only_by_owner() -> None:
    state = AccountState()
    state.apply(created("u1", "alice"))
    state.apply(created("u2", "bob"))
    state.apply(key("u1", "k1"))
    assert not state.apply(ApiKeyRevoked(event_id="r1", user_id="u2", occurred_at=3, key_id="k1"))
    assert "hash-k1" in state.keys_by_hash
    assert state.apply(ApiKeyRevoked(event_id="r2", user_id="u1", occurred_at=3, key_id="k1"))
    assert "hash-k1" not in state.keys_by_hash


def test_state_profile_update_sets_timezone() -> None:
    state = AccountState()
    state.apply(created("u1", "alice"))
    assert state.apply(
        ProfileUpdated(event_id="p", user_id="u1", occurred_at=4, timezone="Asia/Tokyo")
    )
    assert state.users["u1"].timezone == "Asia/Tokyo"
    assert state.users["u1"].timezone_set


def deleted(user: str, eid: str = "") -> AccountDeleted:
    return AccountDeleted(event_id=eid or f"d-{user}", user_id=user, occurred_at=9.0)


def session(user: str, sid: str, refresh: str, oauth_state: str | None = None) -> SessionStarted:
    return SessionStarted(
        event_id=f"s-{sid}",
        user_id=user,
        occurred_at=3.0,
        session_id=sid,
        refresh_hash=refresh,
        expires_at=1000.0,
        method="anonymous",
        oauth_state=oauth_state,
    )


def follow(who: str, whom: str) -> UserFollowed:
    return UserFollowed(
        event_id=f"f-{who}-{whom}", user_id=who, occurred_at=4, followed_user_id=whom
    )


def hireable(user: str) -> ProfileUpdated:
    return ProfileUpdated(
        event_id=f"p-{user}", user_id=user, occurred_at=4, is_public=True, available_for_hire=True
    )


def inquiry(sender: str, recipient: str, mid: str) -> ContactMessageSent:
    return ContactMessageSent(
        event_id=f"m-{mid}",
        user_id=recipient,
        occurred_at=5,
        message_id=mid,
        sender_user_id=sender,
        sender_name=sender,
        sender_email=f"{sender}@example.com",
        message="hire?",
    )


def test_deletion_frees_username_account_number_and_identity() -> None:
    state = AccountState()
    state.apply(created("u1", "Alice"))
    github = {"identity_provider": "github", "identity_subject": "7"}
    assert state.apply(
        AccountCreated(event_id="e-u2", user_id="u2", occurred_at=1, username="octo", **github)
    )
    assert state.apply(deleted("u1"))
    assert state.apply(deleted("u2"))
    assert not state.users
    assert not state.user_by_username
    assert not state.user_by_account_hash
    assert not state.user_by_identity
    # Another account may now claim all of them.
    assert state.apply(created("u3", "alice", acct="h-u1"))
    assert state.apply(
        AccountCreated(event_id="e-u4", user_id="u4", occurred_at=10, username="octo", **github)
    )
    assert state.user_by_username == {"alice": "u3", "octo": "u4"}
    assert state.user_by_account_hash == {"h-u1": "u3"}
    assert state.user_by_identity == {("github", "7"): "u4"}


def test_deletion_drops_keys_and_sessions() -> None:
    state = AccountState()
    state.apply(created("u1", "alice"))
    state.apply(created("u2", "bob"))
    state.apply(key("u1", "k1"))
    state.apply(key("u2", "k2"))
    state.apply(ApiKeyUsed(event_id="x", user_id="u1", occurred_at=3, key_id="k1"))
    state.apply(session("u1", "s1", "r1", oauth_state="n1"))
    state.apply(
        SessionRefreshed(
            event_id="rf",
            user_id="u1",
            occurred_at=4,
            session_id="s1",
            previous_hash="r1",
            refresh_hash="r2",
            expires_at=2000,
        )
    )
    state.apply(session("u2", "s2", "r9"))
    assert state.apply(deleted("u1"))
    assert set(state.keys_by_hash) == {"hash-k2"}
    assert set(state.keys_by_id) == {"k2"}
    assert set(state.keys_by_user) == {"u2"}
    assert "k1" not in state.key_last_used
    assert "k1" in state.revoked_keys
    assert set(state.sessions) == {"s2"}
    assert set(state.sessions_by_user) == {"u2"}
    assert state.session_by_refresh_hash == {"r9": "s2"}  # current and retired tokens forgotten
    assert not state.retired_refresh
    # The key and session ids stay used, and the OAuth state consumed.
    assert not state.apply(key("u2", "k1", eid="k-again"))
    assert not state.apply(session("u2", "s1", "r5"))
    assert not state.apply(session("u2", "s3", "r6", oauth_state="n1"))


def test_deletion_drops_follows_both_ways() -> None:
    state = AccountState()
    for user in ("u1", "u2", "u3"):
        state.apply(created(user, user))
    state.apply(follow("u1", "u2"))
    state.apply(follow("u2", "u1"))
    state.apply(follow("u3", "u1"))
    state.apply(follow("u3", "u2"))
    assert state.apply(deleted("u1"))
    assert state.following == {"u3": {"u2"}}
    assert state.followers == {"u2": {"u3"}}


def test_deletion_drops_inquiries_received_and_sent() -> None:
    state = AccountState()
    for user in ("u1", "u2", "u3"):
        state.apply(created(user, user))
        state.apply(hireable(user))
    state.apply(inquiry("u2", "u1", "to-1"))
    state.apply(inquiry("u1", "u2", "from-1-to-2"))
    state.apply(inquiry("u3", "u2", "from-3-to-2"))
    state.apply(inquiry("u1", "u3", "from-1-to-3"))
    assert state.apply(deleted("u1"))
    assert [m.message_id for m in state.messages_of("u2")] == ["from-3-to-2"]
    assert set(state.messages) == {"u2"}  # u1's inbox and u3's emptied one are gone


def test_deleting_an_unknown_or_deleted_user_is_rejected() -> None:
    state = AccountState()
    assert not state.apply(deleted("ghost"))
    state.apply(created("u1", "alice"))
    assert state.apply(deleted("u1"))
    assert not state.apply(deleted("u1"))  # a redelivery
    assert not state.apply(deleted("u1", eid="d-again"))
    assert {"d-ghost", "d-again"} <= state.rejected


def test_events_of_a_deleted_user_are_rejected() -> None:
    state = AccountState()
    for user in ("u1", "u2"):
        state.apply(created(user, user))
        state.apply(hireable(user))
    state.apply(key("u1", "k1"))
    state.apply(session("u1", "s1", "r1"))
    state.apply(deleted("u1"))
    assert not state.apply(ApiKeyUsed(event_id="x", user_id="u1", occurred_at=20, key_id="k1"))
    assert not state.apply(ApiKeyRevoked(event_id="r", user_id="u1", occurred_at=20, key_id="k1"))
    assert not state.apply(key("u1", "k2"))
    assert not state.apply(session("u1", "s2", "r2"))
    assert not state.apply(
        SessionRevoked(event_id="sr", user_id="u1", occurred_at=20, session_id="s1", reason="x")
    )
    assert not state.apply(
        ProfileUpdated(event_id="p", user_id="u1", occurred_at=20, username="back")
    )
    assert not state.apply(follow("u1", "u2"))
    assert not state.apply(follow("u2", "u1"))
    assert not state.apply(inquiry("u1", "u2", "late-1"))
    assert not state.apply(inquiry("u2", "u1", "late-2"))
    assert set(state.users) == {"u2"}
    assert not state.keys_by_id
    assert not state.sessions
    assert not state.messages
    assert {k: v for k, v in state.following.items() if v} == {}


def test_suspension_is_folded_lifted_and_forgotten_with_the_account() -> None:
    state = AccountState()
    assert state.apply(created("u1", "alice"))
    suspend = AccountSuspended(
        event_id="s1", user_id="u1", occurred_at=3.0, by="admin", reason="spam"
    )
    assert state.apply(suspend)
    assert state.suspended == {"u1": "spam"}
    assert not state.apply(suspend)  # redelivered: no change
    lift = AccountUnsuspended(event_id="s2", user_id="u1", occurred_at=4.0, by="admin")
    assert state.apply(lift)
    assert state.suspended == {}
    assert not state.apply(AccountUnsuspended(event_id="s3", user_id="u1", occurred_at=5.0, by="a"))
    assert state.apply(AccountSuspended(event_id="s4", user_id="u1", occurred_at=6.0, by="a"))
    assert state.apply(AccountDeleted(event_id="d1", user_id="u1", occurred_at=7.0))
    assert state.suspended == {}
    # Nobody to suspend: refused.
    assert not state.apply(
        AccountSuspended(event_id="s5", user_id="ghost", occurred_at=8.0, by="a")
    )
