from __future__ import annotations

from accounts.state import MAX_KEYS_PER_USER, AccountState
from schemas.events import AccountCreated, ApiKeyCreated, ApiKeyRevoked, ProfileUpdated


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
