"""The plugin store's fold (:mod:`accounts.plugins`), through the account state that feeds it."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from pydantic import ValidationError

from accounts.plugins import MAX_VERSION_SCRIPTS
from accounts.state import AccountState
from schemas.events import (
    AccountCreated,
    AccountDeleted,
    PluginInstalled,
    PluginModerated,
    PluginPublished,
    PluginReported,
    PluginReviewed,
    PluginSettingsChanged,
    PluginSuspended,
    PluginUninstalled,
)

_ids = itertools.count()


def eid() -> str:
    return f"ev-{next(_ids)}"


def state_with(*users: str) -> AccountState:
    state = AccountState()
    for user in users:
        assert state.apply(
            AccountCreated(event_id=eid(), user_id=user, occurred_at=1.0, username=user)
        )
    return state


def publish(user: str, name: str, at: float = 2.0, **fields: Any) -> PluginPublished:
    return PluginPublished(event_id=eid(), user_id=user, occurred_at=at, name=name, **fields)


def install(user: str, name: str, at: float = 3.0) -> PluginInstalled:
    return PluginInstalled(event_id=eid(), user_id=user, occurred_at=at, name=name)


def settings(user: str, name: str, mode: str, value: Any = None) -> PluginSettingsChanged:
    text = None if value is None else json.dumps(value)
    return PluginSettingsChanged(
        event_id=eid(), user_id=user, occurred_at=5.0, name=name, mode=mode, settings=text
    )


def moderate(admin: str, name: str, action: str) -> PluginModerated:
    return PluginModerated(
        event_id=eid(), user_id=admin, occurred_at=6.0, name=name, action=action, reason="spam"
    )


def test_first_publish_takes_the_seeds_defaults_and_later_ones_keep_what_they_omit() -> None:
    state = state_with("alice")
    assert state.apply(publish("alice", "streak-counter", display_name="Streak Counter"))
    plugin = state.plugins.plugin("streak-counter")
    assert plugin is not None
    assert (plugin.version, plugin.icon, plugin.description) == ("0.1.0", "\N{ELECTRIC PLUG}", "")
    assert state.apply(
        publish("alice", "streak-counter", at=9.0, plugin_version="1.1.0", script="x()")
    )
    plugin = state.plugins.plugin("streak-counter")
    assert plugin is not None
    assert (plugin.display_name, plugin.version, plugin.script) == (
        "Streak Counter",
        "1.1.0",
        "x()",
    )
    assert [v.version for v in plugin.versions] == ["0.1.0", "1.1.0"]
    assert (plugin.created_at, plugin.updated_at) == (2.0, 9.0)


def test_only_the_original_publisher_may_update_and_a_first_publish_needs_a_display_name() -> None:
    state = state_with("alice", "mallory")
    assert not state.apply(publish("alice", "nameless"))
    assert state.apply(publish("alice", "mine", display_name="Mine", script="good()"))
    takeover = publish("mallory", "mine", display_name="Mine!", script="evil()")
    assert not state.apply(takeover)
    assert takeover.event_id in state.rejected
    plugin = state.plugins.plugin("mine")
    assert plugin is not None
    assert plugin.script == "good()"


def test_names_are_kebab_case() -> None:
    for bad in ("Upper", "with space", "trailing-", "a:b", "../x", ""):
        with pytest.raises(ValidationError):
            publish("alice", bad, display_name="x")


def test_install_uninstall_and_install_counts() -> None:
    state = state_with("alice", "bob", "carol")
    state.apply(publish("alice", "p", display_name="P"))
    assert not state.apply(install("bob", "unknown"))
    first = install("bob", "p")
    assert state.apply(first)
    assert state.apply(install("carol", "p"))
    assert state.apply(install("bob", "p"))  # again: nothing changes, not a new install
    installed = state.plugins.install("bob", "p")
    assert installed is not None
    assert installed.install_id == first.event_id
    assert state.plugins.install_count("p") == 2
    assert state.apply(settings("bob", "p", "insert", {"a": 1}))
    assert state.apply(PluginUninstalled(event_id=eid(), user_id="bob", occurred_at=7, name="p"))
    assert state.plugins.install("bob", "p") is None
    assert state.plugins.settings_of("bob") == []
    assert state.plugins.install_count("p") == 1
    again = install("bob", "p", at=8.0)
    assert state.apply(again)
    installed = state.plugins.install("bob", "p")
    assert installed is not None
    assert installed.install_id == again.event_id


def test_a_ban_stops_a_plugin_for_everyone_and_an_unban_brings_it_back() -> None:
    state = state_with("alice", "bob", "admin")
    state.apply(publish("alice", "p", display_name="P"))
    state.apply(install("bob", "p"))
    assert state.plugins.runnable("bob", "p") is not None
    assert state.apply(moderate("admin", "p", "ban"))
    assert state.plugins.runnable("bob", "p") is None
    assert not state.apply(install("admin", "p"))
    assert not state.apply(publish("alice", "p", script="again()"))
    assert state.plugins.install("bob", "p") is not None  # kept, just not run
    assert state.apply(moderate("admin", "p", "unban"))
    assert state.plugins.runnable("bob", "p") is not None


def test_a_deletion_removes_everything_about_the_plugin_and_frees_its_name() -> None:
    state = state_with("alice", "bob", "admin", "mallory")
    state.apply(publish("alice", "p", display_name="P"))
    state.apply(install("bob", "p"))
    state.apply(settings("bob", "p", "insert", {"a": 1}))
    state.apply(PluginReviewed(event_id=eid(), user_id="bob", occurred_at=4, name="p", rating=5))
    state.apply(PluginReported(event_id=eid(), user_id="bob", occurred_at=4, name="p"))
    assert state.apply(moderate("admin", "p", "delete"))
    catalog = state.plugins
    assert (catalog.plugins, catalog.installs, catalog.installers) == ({}, {}, {})
    assert (catalog.reviews, catalog.reports, catalog.settings) == ({}, {}, {})
    assert state.apply(publish("mallory", "p", display_name="Mine now"))


def test_one_review_per_user_editable_and_the_average() -> None:
    state = state_with("alice", "bob", "carol")
    state.apply(publish("alice", "p", display_name="P"))

    def review(user: str, rating: int, at: float) -> PluginReviewed:
        return PluginReviewed(
            event_id=eid(), user_id=user, occurred_at=at, name="p", rating=rating, comment="c"
        )

    assert state.apply(review("bob", 2, 10))
    assert state.apply(review("bob", 4, 11))
    assert state.apply(review("carol", 5, 12))
    assert state.plugins.rating("p") == (4.5, 2)
    bob = state.plugins.reviews["p"]["bob"]
    assert (bob.rating, bob.created_at, bob.updated_at) == (4, 10, 11)
    with pytest.raises(ValidationError):
        review("bob", 6, 13)


@pytest.mark.parametrize(
    ("before", "mode", "value", "accepted", "after"),
    [
        (None, "insert", {"a": 1}, True, {"a": 1}),
        ({"a": 1}, "insert", {"a": 2}, False, {"a": 1}),
        (None, "insert_or_ignore", {"a": 2}, True, {"a": 2}),
        ({"a": 1}, "insert_or_ignore", {"a": 2}, True, {"a": 1}),
        ({"a": 1, "b": 1}, "upsert_replace", {"a": 2}, True, {"a": 2}),
        ({"a": 1, "b": 1}, "upsert_merge", {"a": 2}, True, {"a": 2, "b": 1}),
        (None, "update_merge", {"a": 2}, True, None),
        ({"a": 1, "b": 1}, "update_merge", {"b": 3}, True, {"a": 1, "b": 3}),
        ({"a": 1, "b": 1}, "update_replace", {"b": 3}, True, {"b": 3}),
        ({"a": 1}, "delete", None, True, None),
        (None, "delete", None, False, None),
    ],
)
def test_settings_modes(
    before: dict[str, int] | None,
    mode: str,
    value: dict[str, int] | None,
    accepted: bool,
    after: dict[str, int] | None,
) -> None:
    state = state_with("alice", "bob")
    state.apply(publish("alice", "p", display_name="P"))
    state.apply(install("bob", "p"))
    if before is not None:
        assert state.apply(settings("bob", "p", "insert", before))
    assert state.apply(settings("bob", "p", mode, value)) is accepted
    row = state.plugins.settings.get(("bob", "p"))
    assert (row.settings if row else None) == after


def test_settings_need_an_install_and_a_json_object() -> None:
    state = state_with("alice", "bob")
    state.apply(publish("alice", "p", display_name="P"))
    assert not state.apply(settings("bob", "p", "insert", {"a": 1}))
    state.apply(install("bob", "p"))
    assert not state.apply(settings("bob", "p", "insert", [1, 2]))
    assert not state.apply(
        PluginSettingsChanged(
            event_id=eid(), user_id="bob", occurred_at=5, name="p", mode="insert", settings="{"
        )
    )
    assert state.plugins.settings == {}


def test_suspension_stops_the_install_until_installed_again() -> None:
    state = state_with("alice", "bob")
    state.apply(publish("alice", "p", display_name="P"))
    first = install("bob", "p")
    state.apply(first)
    assert state.apply(
        PluginSuspended(event_id=eid(), user_id="bob", occurred_at=5, name="p", reason="timeouts")
    )
    suspended = state.plugins.install("bob", "p")
    assert suspended is not None
    assert suspended.suspended_reason == "timeouts"
    assert state.plugins.runnable("bob", "p") is None
    assert state.apply(install("bob", "p", at=6))
    resumed = state.plugins.install("bob", "p")
    assert resumed is not None
    assert not resumed.suspended
    assert resumed.install_id == first.event_id  # resumed, not a new install: no on_install


def test_store_events_of_unknown_users_are_rejected_and_a_deleted_publisher_takes_plugins() -> None:
    state = state_with("alice", "bob")
    assert not state.apply(publish("ghost", "p", display_name="P"))
    state.apply(publish("alice", "p", display_name="P"))
    state.apply(publish("bob", "q", display_name="Q"))
    state.apply(install("bob", "p"))
    state.apply(install("alice", "q"))
    state.apply(AccountDeleted(event_id=eid(), user_id="alice", occurred_at=9))
    assert set(state.plugins.plugins) == {"q"}
    assert state.plugins.installs == {}
    assert state.plugins.installers == {}


def test_only_the_newest_versions_keep_their_scripts_in_memory() -> None:
    state = state_with("alice")
    assert state.apply(publish("alice", "busy", display_name="Busy", script="v0()"))
    for n in range(1, MAX_VERSION_SCRIPTS + 5):
        assert state.apply(
            publish("alice", "busy", at=float(n + 2), plugin_version=f"1.{n}.0", script=f"v{n}()")
        )
    plugin = state.plugins.plugin("busy")
    assert plugin is not None
    assert len(plugin.versions) == MAX_VERSION_SCRIPTS + 5  # every version is listed
    kept = [v.script for v in plugin.versions if v.script is not None]
    assert kept == [f"v{n}()" for n in range(5, MAX_VERSION_SCRIPTS + 5)]
    assert all(v.server_script is None for v in plugin.versions[:5])
    assert plugin.script == f"v{MAX_VERSION_SCRIPTS + 4}()"
