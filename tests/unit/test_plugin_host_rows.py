"""The rows plugin SQL sees of the host relations (``plugin_host.rows``): the caller's own account
rows, and of the store what everyone may see plus the caller's own."""

from __future__ import annotations

import itertools
import json

from accounts.state import AccountState
from plugin_host.rows import HOST_RELATIONS, host_rows, mentioned_relations
from schemas.events import (
    AccountCreated,
    ApiKeyCreated,
    PluginInstalled,
    PluginModerated,
    PluginPublished,
    PluginReviewed,
    PluginSettingsChanged,
    UserFollowed,
)

_ids = itertools.count()


def eid() -> str:
    return f"ev-{next(_ids)}"


def world() -> AccountState:
    state = AccountState()
    for user in ("ada", "bob", "eve"):
        state.apply(AccountCreated(event_id=eid(), user_id=user, occurred_at=1, username=user))
        state.apply(
            ApiKeyCreated(
                event_id=eid(),
                user_id=user,
                occurred_at=2,
                key_id=f"key-{user}",
                name="editor",
                key_hash=f"secret-hash-{user}",
                key_prefix="ct_x",
            )
        )
    state.apply(UserFollowed(event_id=eid(), user_id="bob", occurred_at=3, followed_user_id="ada"))
    state.apply(UserFollowed(event_id=eid(), user_id="bob", occurred_at=3, followed_user_id="eve"))
    for author, name in (("bob", "public-one"), ("eve", "banned-one"), ("ada", "mine")):
        state.apply(
            PluginPublished(
                event_id=eid(), user_id=author, occurred_at=4, name=name, display_name=name
            )
        )
    state.apply(
        PluginModerated(
            event_id=eid(), user_id="bob", occurred_at=5, name="banned-one", action="ban"
        )
    )
    for user in ("ada", "bob"):
        state.apply(PluginInstalled(event_id=eid(), user_id=user, occurred_at=6, name="public-one"))
        state.apply(
            PluginSettingsChanged(
                event_id=eid(),
                user_id=user,
                occurred_at=7,
                name="public-one",
                mode="insert",
                settings=json.dumps({"owner": user}),
            )
        )
        state.apply(
            PluginReviewed(event_id=eid(), user_id=user, occurred_at=8, name="public-one", rating=4)
        )
    state.apply(
        PluginReviewed(event_id=eid(), user_id="bob", occurred_at=8, name="banned-one", rating=1)
    )
    return state


def test_account_rows_are_the_callers_own_and_carry_no_secret() -> None:
    rows = host_rows(world(), "ada", HOST_RELATIONS)
    assert [row["id"] for row in rows["users"]] == ["ada"]
    assert [row["id"] for row in rows["api_keys"]] == ["key-ada"]
    assert "secret-hash-ada" not in json.dumps(rows, default=str)
    assert rows["user_follows"] == [{"follower_id": "bob", "following_id": "ada"}]


def test_store_rows_are_public_entries_plus_the_callers_own() -> None:
    state = world()
    ada = host_rows(state, "ada", HOST_RELATIONS)
    assert sorted(row["name"] for row in ada["plugin_store"]) == ["mine", "public-one"]
    public = next(row for row in ada["plugin_store"] if row["name"] == "public-one")
    assert (public["install_count"], public["rating"], public["review_count"]) == (2, 4.0, 2)
    assert [row["plugin"] for row in ada["installed_plugins"]] == ["public-one"]
    assert [json.loads(row["settings"]) for row in ada["plugin_settings"]] == [{"owner": "ada"}]
    # Reviews of visible plugins, anyone's; none of the banned plugin.
    assert sorted(row["user_id"] for row in ada["plugin_reviews"]) == ["ada", "bob"]
    # Its author still sees a banned plugin of theirs.
    eve = host_rows(state, "eve", ["plugin_store", "installed_plugins", "plugin_settings"])
    assert sorted(row["name"] for row in eve["plugin_store"]) == [
        "banned-one",
        "mine",
        "public-one",
    ]
    assert eve["installed_plugins"] == []
    assert eve["plugin_settings"] == []


def test_only_the_named_relations_are_built() -> None:
    sql = "SELECT s.settings FROM Plugin_Settings s JOIN installed_plugins i ON i.plugin = s.plugin"
    assert mentioned_relations(sql) == {"plugin_settings", "installed_plugins"}
    assert set(host_rows(world(), "ada", mentioned_relations(sql))) == {
        "plugin_settings",
        "installed_plugins",
    }
    assert mentioned_relations("SELECT count(*) FROM heartbeats") == set()
