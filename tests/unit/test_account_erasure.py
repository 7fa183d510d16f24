"""Erasing a deleted account from the accounts topic: what remains refolds to the live state."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from pydantic import ValidationError

from accounts.erasure import account_erasure
from accounts.state import MAX_MESSAGES_PER_USER, AccountState
from eventlog.port import Delivered
from schemas.events import (
    ACCOUNTS_TOPIC,
    AccountCreated,
    AccountDeleted,
    AccountEvent,
    ApiKeyCreated,
    ApiKeyUsed,
    ContactMessageSent,
    Event,
    HeartbeatsDeleted,
    HeartbeatsReceived,
    PluginInstalled,
    PluginPublished,
    PluginReported,
    PluginReviewed,
    PluginSettingsChanged,
    ProfileUpdated,
    SessionRefreshed,
    SessionStarted,
    ThemeApplied,
    ThemeInstalled,
    ThemePublished,
    ThemeUninstalled,
    UserDataErased,
    UserFollowed,
    UserUnfollowed,
    decode_event,
    encode_event,
)

# Distinctive ids, so a raw-bytes search for A finds nothing by accident.
A, B, C = "user-aaaa-7f3e", "user-bbbb-1c9d", "user-cccc-5e2a"

_n = 0


def eid() -> str:
    global _n
    _n += 1
    return f"ev-{_n}"


def created(user: str, name: str, at: float, **extra: Any) -> AccountCreated:
    secret = (
        {} if "identity_provider" in extra else {"account_number_hash": f"number-{user[5:9]}-{at}"}
    )
    return AccountCreated(
        event_id=eid(), user_id=user, occurred_at=at, username=name, **secret, **extra
    )


def api_key(user: str, kid: str, at: float) -> ApiKeyCreated:
    return ApiKeyCreated(
        event_id=eid(),
        user_id=user,
        occurred_at=at,
        key_id=kid,
        name="editor",
        key_hash=f"digest-{kid}",
        key_prefix=kid[:4],
    )


def used(user: str, kid: str, at: float) -> ApiKeyUsed:
    return ApiKeyUsed(event_id=eid(), user_id=user, occurred_at=at, key_id=kid)


def login(user: str, sid: str, token: str, at: float, **extra: Any) -> SessionStarted:
    return SessionStarted(
        event_id=eid(),
        user_id=user,
        occurred_at=at,
        session_id=sid,
        refresh_hash=token,
        expires_at=at + 10_000,
        method="anonymous",
        **extra,
    )


def refresh(user: str, sid: str, old: str, new: str, at: float) -> SessionRefreshed:
    return SessionRefreshed(
        event_id=eid(),
        user_id=user,
        occurred_at=at,
        session_id=sid,
        previous_hash=old,
        refresh_hash=new,
        expires_at=at + 10_000,
    )


def follow(who: str, whom: str, at: float, undo: bool = False) -> UserFollowed | UserUnfollowed:
    kind = UserUnfollowed if undo else UserFollowed
    return kind(event_id=eid(), user_id=who, occurred_at=at, followed_user_id=whom)


def profile(user: str, at: float, **changes: Any) -> ProfileUpdated:
    return ProfileUpdated(event_id=eid(), user_id=user, occurred_at=at, **changes)


def inquiry(
    sender: str, recipient: str, at: float, text: str = "are you for hire?"
) -> ContactMessageSent:
    return ContactMessageSent(
        event_id=eid(),
        user_id=recipient,
        occurred_at=at,
        message_id=eid(),
        sender_user_id=sender,
        sender_name=f"name of {sender[5:9]}",
        sender_email=f"{sender[5:9]}@example.com",
        message=text,
    )


def deleted(user: str, at: float) -> AccountDeleted:
    return AccountDeleted(event_id=eid(), user_id=user, occurred_at=at)


def on_log(events: Sequence[Event | bytes]) -> list[Delivered]:
    """The events as the records of a single-partition accounts topic (raw bytes kept as is)."""
    records = []
    for offset, event in enumerate(events):
        value = event if isinstance(event, bytes) else encode_event(event)
        key = b"?" if isinstance(event, bytes) else event.user_id.encode()
        records.append(Delivered(ACCOUNTS_TOPIC, 0, offset, key, value, 1_000 * offset))
    return records


def account_events(records: Sequence[Delivered]) -> list[tuple[Delivered, AccountEvent]]:
    """The records the account fold reads, decoded (as the directory's tail does)."""
    found = []
    for record in records:
        try:
            event = decode_event(record.value)
        except ValidationError:
            continue
        if not isinstance(event, HeartbeatsReceived | HeartbeatsDeleted | UserDataErased):
            found.append((record, event))
    return found


def fold(records: Sequence[Delivered]) -> AccountState:
    state = AccountState()
    for _, event in account_events(records):
        state.apply(event)
    return state


def observable(state: AccountState) -> dict[str, object]:
    """Everything the application reads from the state (not the fold's own bookkeeping:
    ``seen``, ``rejected``, ended sessions, revoked keys, used OAuth states). Empty follow sets
    and inboxes read the same as missing ones."""
    return {
        "users": state.users,
        "user_by_username": state.user_by_username,
        "user_by_account_hash": state.user_by_account_hash,
        "user_by_identity": state.user_by_identity,
        "keys_by_hash": state.keys_by_hash,
        "keys_by_id": state.keys_by_id,
        "keys_by_user": {u: keys for u, keys in state.keys_by_user.items() if keys},
        "key_last_used": state.key_last_used,
        "sessions": state.sessions,
        "sessions_by_user": {u: found for u, found in state.sessions_by_user.items() if found},
        "session_by_refresh_hash": state.session_by_refresh_hash,
        "retired_refresh": {s: list(hashes) for s, hashes in state.retired_refresh.items()},
        "following": {u: found for u, found in state.following.items() if found},
        "followers": {u: found for u, found in state.followers.items() if found},
        "messages": {u: list(inbox) for u, inbox in state.messages.items() if inbox},
        "plugins": state.plugins.plugins,
        "installs": {u: found for u, found in state.plugins.installs.items() if found},
        "installers": {n: found for n, found in state.plugins.installers.items() if found},
        "reviews": {n: found for n, found in state.plugins.reviews.items() if found},
        "reports": {n: found for n, found in state.plugins.reports.items() if found},
        "settings": state.plugins.settings,
        "themes": state.themes.themes,
        "theme_names": state.themes.by_name,
        "theme_installs": {u: found for u, found in state.themes.installs.items() if found},
        "theme_installers": {t: found for t, found in state.themes.installers.items() if found},
        "theme_prefs": state.themes.prefs,
    }


def kept(
    records: Sequence[Delivered], plan: dict[tuple[int, int], bytes | None]
) -> list[Delivered]:
    """The records as the log holds them after the plan: deleted ones gone, rewritten ones
    with their new value."""
    remaining = []
    for r in records:
        position = (r.partition, r.offset)
        if position not in plan:
            remaining.append(r)
        elif (value := plan[position]) is not None:
            remaining.append(replace(r, value=value))
    return remaining


def history() -> list[Event | bytes]:
    """Three users' lives on the accounts topic, A deleting their account part way."""
    return [
        created(A, "alice", 1),
        # B first tries to sign up as "Alice": refused while A holds the name.
        created(B, "Alice", 2),
        created(B, "bob", 3),
        created(C, "carol", 4, identity_provider="github", identity_subject="42"),
        api_key(A, "key-a1", 5),
        api_key(B, "key-b1", 6),
        api_key(C, "key-c1", 7),
        used(A, "key-a1", 8),
        used(B, "key-b1", 9),
        used(B, "key-b1", 8.5),  # a stale use: ignored, not tracked as rejected
        used(C, "key-c1", 10),
        login(A, "sess-a", "tok-a0", 11, oauth_state="nonce-a"),
        refresh(A, "sess-a", "tok-a0", "tok-a1", 12),
        login(B, "sess-b", "tok-b0", 13),
        refresh(B, "sess-b", "tok-b0", "tok-b1", 14),
        login(C, "sess-c", "tok-c0", 15),
        follow(A, B, 16),
        follow(B, A, 17),
        follow(C, A, 18),
        follow(C, B, 19),
        follow(B, C, 20),
        follow(C, B, 21, undo=True),
        profile(A, 22, is_public=True, available_for_hire=True, bio="hire me"),
        profile(B, 23, is_public=True, available_for_hire=True),
        profile(C, 24, is_public=True, available_for_hire=True, display_name="Carol"),
        inquiry(B, A, 25),
        inquiry(A, B, 26),
        inquiry(C, A, 27),
        inquiry(A, C, 28),
        inquiry(C, B, 29),
        # B tries to rename to A's name, and C to B's: both refused (all or nothing).
        profile(B, 30, username="alice", bio="the real alice"),
        profile(C, 31, username="BOB"),
        # A non-account event and a record nobody can read, on the topic by mistake.
        HeartbeatsDeleted(
            event_id=eid(), user_id=B, occurred_at=32, date=dt.date(2024, 1, 1), ids=("hb",)
        ),
        b"{not an event",
        # The store: A publishes a plugin others install and review; B publishes one A uses.
        PluginPublished(
            event_id=eid(), user_id=A, occurred_at=33, name="a-widget", display_name="A"
        ),
        PluginPublished(
            event_id=eid(), user_id=B, occurred_at=33, name="b-widget", display_name="B"
        ),
        PluginInstalled(event_id=eid(), user_id=B, occurred_at=34, name="a-widget"),
        PluginInstalled(event_id=eid(), user_id=A, occurred_at=34, name="b-widget"),
        PluginInstalled(event_id=eid(), user_id=C, occurred_at=34, name="b-widget"),
        PluginReviewed(event_id=eid(), user_id=C, occurred_at=35, name="a-widget", rating=4),
        PluginReviewed(event_id=eid(), user_id=A, occurred_at=35, name="b-widget", rating=2),
        PluginReported(event_id=eid(), user_id=C, occurred_at=35, name="a-widget"),
        PluginSettingsChanged(
            event_id=eid(),
            user_id=B,
            occurred_at=36,
            name="a-widget",
            mode="insert",
            settings='{"x": 1}',
        ),
        PluginSettingsChanged(
            event_id=eid(),
            user_id=C,
            occurred_at=36,
            name="b-widget",
            mode="insert",
            settings='{"y": 2}',
        ),
        deleted(A, 40),
        # A's plugin went with A: its name is free, and B publishes a new one under it.
        PluginPublished(
            event_id=eid(), user_id=B, occurred_at=44, name="a-widget", display_name="B's A"
        ),
        PluginInstalled(event_id=eid(), user_id=C, occurred_at=45, name="a-widget"),
        # Late events of A (a request authenticated just before the deletion): refused.
        used(A, "key-a1", 41),
        profile(A, 42, bio="still here?"),
        inquiry(B, A, 43),
        # A's name, number and identity are free again.
        profile(B, 50, username="alice"),
        created("user-dddd-0b1f", "bob", 51),
        refresh(B, "sess-b", "tok-b1", "tok-b2", 52),
        inquiry(C, B, 53),
    ]


def test_what_remains_refolds_to_the_live_state() -> None:
    records = on_log(history())
    live = fold(records)
    plan = account_erasure(records, A)
    refold = fold(kept(records, plan))
    assert observable(refold) == observable(live)
    assert live.users[B].username == "alice"
    assert live.users["user-dddd-0b1f"].username == "bob"
    assert A not in refold.users
    assert list(plan) == sorted(plan)  # in offset order
    # The store: A's plugin went with everything about it; B's stays without A's install and
    # review; the name A used is B's now.
    assert live.plugins.plugins["a-widget"].author_id == B
    assert live.plugins.installers == {"b-widget": {C}, "a-widget": {C}}
    assert set(live.plugins.reviews["b-widget"]) == set()
    assert set(live.plugins.settings) == {(C, "b-widget")}


def test_nothing_of_the_user_remains_and_everyone_elses_accepted_events_stay() -> None:
    records = on_log(history())
    plan = account_erasure(records, A)
    remaining = kept(records, plan)
    needle = A.encode()
    assert not [r.offset for r in remaining if needle in r.key or needle in r.value]
    # Every accepted event of the others that does not name A stays, except those about the
    # plugin A published (they go with it); after A's deletion its name is someone else's.
    state = AccountState()
    accepted, about_a_plugin = [], []
    for record, event in account_events(records):
        if state.apply(event) and A not in encode_event(event).decode():
            accepted.append(record.offset)
            if getattr(event, "name", None) == "a-widget" and A in state.users:
                about_a_plugin.append(record.offset)
    assert {B, C} <= {decode_event(records[o].value).user_id for o in accepted}
    assert about_a_plugin
    assert all((0, o) in plan for o in about_a_plugin)
    assert not [o for o in accepted if (0, o) in plan and o not in about_a_plugin]
    # The unreadable record and the non-account event stay; the refused events go.
    assert b"{not an event" in [r.value for r in remaining]
    assert any(b"HeartbeatsDeleted" in r.value for r in remaining)
    assert not [r for r in remaining if b"the real alice" in r.value or b"BOB" in r.value]
    assert not [r for r in remaining if b'"username":"Alice"' in r.value]
    # The stale key use of B stays: harmless, the refold ignores it just the same.
    assert sum(b'"key_id":"key-b1"' in r.value and b"ApiKeyUsed" in r.value for r in remaining) == 2


def test_erasing_again_removes_nothing_more() -> None:
    records = on_log(history())
    remaining = kept(records, account_erasure(records, A))
    assert account_erasure(remaining, A) == {}
    # B deletes their account later: the second erasure keeps the first one's promise.
    end = records[-1].offset + 1
    b_gone = Delivered(ACCOUNTS_TOPIC, 0, end, B.encode(), encode_event(deleted(B, 99)), 99_000)
    live = fold([*records, b_gone])
    after_a = [*remaining, b_gone]
    after_b = kept(after_a, account_erasure(after_a, B))
    assert set(live.users) == {C, "user-dddd-0b1f"}
    assert observable(fold(after_b)) == observable(live)


def test_without_removing_refused_events_the_refold_would_change_history() -> None:
    """The hazard the rule prevents: refused only because A held a name, they are accepted
    once A's records are gone, and everything after them is decided differently."""
    records = on_log(history())
    live = fold(records)
    naming_a = [r for r, event in account_events(records) if A in encode_event(event).decode()]
    refold = fold([r for r in records if r not in naming_a])
    assert observable(refold) != observable(live)
    # B's refused sign-up as "Alice" now wins, so B's real sign-up as "bob" is refused: B's
    # account dates from the wrong event, and C's refused rename to "BOB" takes the free name.
    assert refold.users[B].created_at == 2
    assert live.users[B].created_at == 3
    assert refold.users[C].username == "BOB"
    assert live.users[C].username == "carol"
    # ...so the later sign-up as "bob", accepted live, would be refused.
    assert "user-dddd-0b1f" in live.users
    assert "user-dddd-0b1f" not in refold.users


def test_inquiries_pushed_out_of_an_inbox_go_too() -> None:
    """A's inquiries to B pushed C's older one out of B's inbox; once A's are gone a refold
    would bring C's back, so it goes as well."""
    early = inquiry(C, B, 10, text="an old inquiry")
    events: list[Event | bytes] = [
        created(A, "alice", 1),
        created(B, "bob", 2),
        created(C, "carol", 3),
        profile(B, 4, is_public=True, available_for_hire=True),
        early,
        *(inquiry(A, B, 11 + i) for i in range(MAX_MESSAGES_PER_USER)),
        inquiry(C, B, 500, text="a new inquiry"),
        deleted(A, 600),
    ]
    records = on_log(events)
    live = fold(records)
    assert [m.message for m in live.messages_of(B)] == ["a new inquiry"]
    plan = account_erasure(records, A)
    assert (0, 4) in plan  # C's pushed-out inquiry
    assert observable(fold(kept(records, plan))) == observable(live)


def test_a_deleted_publishers_themes_go_and_the_others_keep_their_overrides() -> None:
    """A publishes a theme; B installs it, applies it with overrides, C installs it too. A's
    deletion takes the theme and everyone's installs; B is back on the default theme with their
    overrides. The plan deletes the installs and rewrites B's apply to name the default theme,
    and what remains refolds to the live state."""
    a_theme, b_theme = (
        "6f1c0a52-0000-4000-8000-00000000000a",
        "6f1c0a52-0000-4000-8000-00000000000b",
    )
    events: list[Event | bytes] = [
        created(A, "alice", 1),
        created(B, "bob", 2),
        created(C, "carol", 3),
        ThemePublished(
            event_id=eid(),
            user_id=A,
            occurred_at=4,
            name="a-dark",
            theme_id=a_theme,
            display_name="A dark",
            variables={"--bg": "#000000"},
        ),
        ThemePublished(
            event_id=eid(),
            user_id=B,
            occurred_at=5,
            name="b-light",
            theme_id=b_theme,
            display_name="B light",
            variables={"--bg": "#ffffff"},
        ),
        # refused: the name is A's
        ThemePublished(
            event_id=eid(),
            user_id=C,
            occurred_at=6,
            name="a-dark",
            theme_id=str(uuid.uuid4()),
            display_name="Stolen",
            variables={},
        ),
        ThemeInstalled(event_id=eid(), user_id=B, occurred_at=7, theme_id=a_theme),
        ThemeInstalled(event_id=eid(), user_id=B, occurred_at=8, theme_id=b_theme),
        ThemeInstalled(event_id=eid(), user_id=C, occurred_at=9, theme_id=a_theme),
        ThemeApplied(
            event_id=eid(),
            user_id=B,
            occurred_at=10,
            theme_id=a_theme,
            custom_vars={"--accent": "#ff00ff"},
        ),
        ThemeApplied(event_id=eid(), user_id=C, occurred_at=11, theme_id=a_theme),
        ThemeUninstalled(event_id=eid(), user_id=C, occurred_at=12, theme_id=a_theme),
        ThemeInstalled(event_id=eid(), user_id=A, occurred_at=13, theme_id=b_theme),
        deleted(A, 20),
        # refused: the theme is gone
        ThemeInstalled(event_id=eid(), user_id=C, occurred_at=21, theme_id=a_theme),
        # the name is free again
        ThemePublished(
            event_id=eid(),
            user_id=C,
            occurred_at=22,
            name="a-dark",
            theme_id=str(uuid.uuid4()),
            display_name="C dark",
            variables={"--bg": "#111111"},
        ),
    ]
    records = on_log(events)
    live = fold(records)
    assert live.themes.prefs[B].active_theme_id is None
    assert live.themes.prefs[B].custom_vars == {"--accent": "#ff00ff"}
    assert live.themes.named("a-dark") is not None
    assert live.themes.named("a-dark").author_id == C  # type: ignore[union-attr]
    assert live.themes.installers == {b_theme: {B}}
    plan = account_erasure(records, A)
    rewritten = {at: value for at, value in plan.items() if value is not None}
    # B's and C's applies of A's theme now name the default theme (C's prefs exist live too).
    assert list(rewritten) == [(0, 9), (0, 10)]
    rewritten_apply = decode_event(rewritten[(0, 9)])
    assert isinstance(rewritten_apply, ThemeApplied)
    assert rewritten_apply.theme_id is None
    assert rewritten_apply.custom_vars == {"--accent": "#ff00ff"}
    # A's records, the installs and uninstalls of A's theme, the refused publish and the
    # refused late install go.
    assert {at for at, value in plan.items() if value is None} >= {
        (0, 0),
        (0, 3),
        (0, 5),
        (0, 6),
        (0, 8),
        (0, 11),
        (0, 12),
        (0, 13),
        (0, 14),
    }
    remaining = kept(records, plan)
    assert not [r for r in remaining if a_theme.encode() in r.value or A.encode() in r.value]
    assert observable(fold(remaining)) == observable(live)
