"""The theme store's fold (:mod:`accounts.themes`), through the account state that feeds it, and
the read rules over it (:mod:`api.rules.themes`)."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

from accounts.state import AccountState
from api.rules.theme_css import DARK_DEFAULTS
from api.rules.themes import active_view, browse, merged_file, publish_refusal, theme_id_of
from schemas.events import (
    AccountCreated,
    AccountDeleted,
    ThemeApplied,
    ThemeInstalled,
    ThemePublished,
    ThemeUninstalled,
)

_ids = itertools.count()
DRACULA = {"--bg": "#282a36", "--accent": "#bd93f9", "--text-main": "#f8f8f2"}


def eid() -> str:
    return f"ev-{next(_ids)}"


def state_with(*users: str) -> AccountState:
    state = AccountState()
    for user in users:
        assert state.apply(
            AccountCreated(event_id=eid(), user_id=user, occurred_at=1.0, username=user)
        )
    return state


def publish(user: str, name: str, theme_id: str | None = None, at: float = 2.0, **fields: Any):
    fields.setdefault("display_name", name.title())
    fields.setdefault("variables", dict(DRACULA))
    return ThemePublished(
        event_id=eid(),
        user_id=user,
        occurred_at=at,
        name=name,
        theme_id=theme_id or str(uuid.uuid4()),
        **fields,
    )


def install(user: str, theme_id: str, at: float = 3.0) -> ThemeInstalled:
    return ThemeInstalled(event_id=eid(), user_id=user, occurred_at=at, theme_id=theme_id)


def uninstall(user: str, theme_id: str, at: float = 4.0) -> ThemeUninstalled:
    return ThemeUninstalled(event_id=eid(), user_id=user, occurred_at=at, theme_id=theme_id)


def apply(user: str, at: float = 5.0, **fields: Any) -> ThemeApplied:
    return ThemeApplied(event_id=eid(), user_id=user, occurred_at=at, **fields)


def test_theme_publish_then_update_keeps_its_id_and_omitted_fields() -> None:
    state = state_with("alice")
    first = publish("alice", "dracula-dark", description="Dracula", custom_css="a { color: red; }")
    assert state.apply(first)
    theme = state.themes.named("dracula-dark")
    assert theme is not None
    assert (theme.theme_id, theme.version, theme.icon) == (
        first.theme_id,
        "1.0.0",
        "\N{ARTIST PALETTE}",
    )
    assert theme.first_event_id == first.event_id
    # An update: another id in the event is ignored, omitted fields stay, variables replace.
    update = publish("alice", "dracula-dark", at=9.0, display_name=None, variables={"--bg": "#000"})
    assert state.apply(update)
    updated = state.themes.named("dracula-dark")
    assert updated is not None
    assert updated.theme_id == first.theme_id
    assert updated.first_event_id == first.event_id
    assert (updated.display_name, updated.description) == ("Dracula-Dark", "Dracula")
    assert updated.variables == {"--bg": "#000"}
    assert updated.custom_css == "a { color: red; }"
    assert (updated.created_at, updated.updated_at) == (2.0, 9.0)
    assert state.themes.theme(update.theme_id) is None


def test_theme_only_the_original_publisher_may_update_a_name() -> None:
    state = state_with("alice", "mallory")
    first = publish("alice", "mine", variables={"--bg": "#fff"})
    assert state.apply(first)
    stolen = publish("mallory", "mine", variables={"--bg": "#000"})
    assert not state.apply(stolen)
    assert stolen.event_id in state.rejected
    theme = state.themes.named("mine")
    assert theme is not None
    assert (theme.author_id, theme.variables) == ("alice", {"--bg": "#fff"})


def test_theme_first_publish_needs_a_display_name_variables_and_a_fresh_id() -> None:
    state = state_with("alice", "bob")
    assert not state.apply(publish("alice", "no-title", display_name=None))
    assert not state.apply(publish("alice", "no-vars", variables=None))
    taken = publish("alice", "one")
    assert state.apply(taken)
    assert not state.apply(publish("bob", "two", theme_id=taken.theme_id))
    assert set(state.themes.by_name) == {"one"}
    # Not a live account: rejected before the catalog sees it.
    assert not state.apply(publish("nobody", "ghost"))


def test_theme_apply_needs_an_install_and_uninstalling_the_active_theme_reverts() -> None:
    state = state_with("alice", "bob")
    theme = publish("alice", "dracula-dark")
    assert state.apply(theme)
    # Not installed: the whole apply is refused, the overrides too.
    refused = apply("bob", theme_id=theme.theme_id, custom_vars={"--accent": "#ff0000"})
    assert not state.apply(refused)
    assert state.themes.prefs_of("bob") is None
    assert not state.apply(install("bob", str(uuid.uuid4())))  # unknown theme
    assert state.apply(install("bob", theme.theme_id))
    assert state.apply(install("bob", theme.theme_id, at=3.5))  # again: nothing changes
    assert state.themes.install("bob", theme.theme_id).installed_at == 3.0  # type: ignore[union-attr]
    assert state.themes.install_count(theme.theme_id) == 1
    assert state.apply(apply("bob", theme_id=theme.theme_id, custom_vars={"--accent": "#ff0000"}))
    view = active_view(state.themes, "bob")
    assert view["active_theme_id"] == theme.theme_id
    assert view["theme_name"] == "dracula-dark"
    assert view["variables"] == DRACULA | {"--accent": "#ff0000"}
    assert view["custom_vars"] == {"--accent": "#ff0000"}
    assert view["is_dark"] is True
    # Overrides alone keep the theme; the theme alone keeps the overrides.
    assert state.apply(apply("bob", change_theme=False, custom_vars={"--bg": "#ffffff"}))
    assert active_view(state.themes, "bob")["variables"]["--bg"] == "#ffffff"
    assert active_view(state.themes, "bob")["is_dark"] is False
    assert state.apply(apply("bob", theme_id=None))
    view = active_view(state.themes, "bob")
    assert (view["active_theme_id"], view["variables"]) == (None, {"--bg": "#ffffff"})
    # Uninstalling the active theme puts bob back on the default; his overrides stay.
    assert state.apply(apply("bob", theme_id=theme.theme_id))
    assert state.apply(uninstall("bob", theme.theme_id))
    view = active_view(state.themes, "bob")
    assert view["active_theme_id"] is None
    assert view["custom_vars"] == {"--bg": "#ffffff"}
    assert not state.apply(uninstall("bob", theme.theme_id))  # not installed any more
    assert state.themes.install_count(theme.theme_id) == 0


def test_theme_an_account_deletion_takes_its_themes_installs_and_prefs() -> None:
    state = state_with("alice", "bob", "carol")
    alices, bobs = publish("alice", "a-theme"), publish("bob", "b-theme")
    for event in (
        alices,
        bobs,
        install("bob", alices.theme_id),
        install("carol", alices.theme_id),
        install("carol", bobs.theme_id),
        install("alice", bobs.theme_id),
        apply("bob", theme_id=alices.theme_id, custom_vars={"--accent": "#123456"}),
        apply("alice", theme_id=bobs.theme_id),
    ):
        assert state.apply(event)
    assert state.apply(AccountDeleted(event_id=eid(), user_id="alice", occurred_at=10.0))
    themes = state.themes
    assert themes.named("a-theme") is None
    assert themes.theme(alices.theme_id) is None
    assert themes.installed_of("bob") == []
    assert [i.theme_id for i in themes.installed_of("carol")] == [bobs.theme_id]
    assert themes.installers == {bobs.theme_id: {"carol"}}
    assert themes.prefs_of("alice") is None
    bob = themes.prefs_of("bob")
    assert bob is not None
    assert (bob.active_theme_id, bob.custom_vars) == (None, {"--accent": "#123456"})
    # The name is free again.
    assert state.apply(publish("carol", "a-theme"))


def test_theme_events_are_folded_once() -> None:
    state = state_with("alice")
    event = publish("alice", "once")
    assert state.apply(event)
    assert not state.apply(event)  # redelivered: already seen
    assert len(state.themes.themes) == 1


def test_theme_browse_searches_sorts_and_ties_by_name() -> None:
    state = state_with("alice", "bob", "carol")
    older = publish("alice", "zeta-night", at=1.0, description="A calm NIGHT theme")
    newer = publish("alice", "alpha-day", at=5.0)
    third = publish("bob", "beta", at=3.0)
    for event in (
        older,
        newer,
        third,
        install("bob", older.theme_id),
        install("carol", older.theme_id),
    ):
        assert state.apply(event)
    assert state.apply(install("carol", third.theme_id))
    names = lambda found: [t.name for t in found]  # noqa: E731
    assert names(browse(state.themes, None, "installs")) == ["zeta-night", "beta", "alpha-day"]
    assert names(browse(state.themes, None, "new")) == ["alpha-day", "beta", "zeta-night"]
    assert names(browse(state.themes, None, "name")) == ["alpha-day", "beta", "zeta-night"]
    assert names(browse(state.themes, "night", "name")) == ["zeta-night"]
    assert names(browse(state.themes, "  ", "name")) == ["alpha-day", "beta", "zeta-night"]


def test_theme_publish_refusal_names_the_reason() -> None:
    state = state_with("alice")
    assert state.apply(publish("alice", "mine"))
    current = state.themes.named("mine")
    taken = publish_refusal(user_id="bob", current=current, display_name="X")
    assert taken is not None
    assert (taken.status, taken.code) == (409, "name_taken")
    first = publish_refusal(user_id="bob", current=None, display_name=None)
    assert first is not None
    assert (first.status, first.code) == (400, "validation_error")
    assert publish_refusal(user_id="alice", current=current, display_name=None) is None


def test_theme_ids_are_uuids_in_their_canonical_form() -> None:
    value = uuid.uuid4()
    assert theme_id_of(value.hex) == str(value)
    assert theme_id_of(str(value).upper()) == str(value)
    assert theme_id_of("dracula-dark") is None
    assert theme_id_of("") is None


def test_theme_values_a_looser_rule_stored_are_not_served() -> None:
    """The fold trusts its events; the read rules serve only what passes today's checks."""
    state = state_with("alice")
    legacy = publish(
        "alice",
        "legacy",
        variables={"--bg": "url(https://evil.example/x)", "--accent": "#abcdef", "--nope": "red"},
        custom_css="@import url(https://evil.example/x.css);",
    )
    assert state.apply(legacy)
    assert state.apply(install("alice", legacy.theme_id))
    assert state.apply(apply("alice", theme_id=legacy.theme_id, custom_vars={"--border": "red;"}))
    view = active_view(state.themes, "alice")
    assert view["variables"] == {"--accent": "#abcdef"}
    assert view["custom_vars"] == {}
    assert view["custom_css"] == ""
    assert view["is_dark"] is None


def test_theme_export_file_has_all_ten_variables() -> None:
    state = state_with("alice")
    theme = publish("alice", "dracula-dark")
    for event in (
        theme,
        install("alice", theme.theme_id),
        apply("alice", theme_id=theme.theme_id, custom_vars={"--border": "#444444"}),
    ):
        assert state.apply(event)
    exported = merged_file(state.themes, "alice", dict(DARK_DEFAULTS))
    assert list(exported) == list(DARK_DEFAULTS)
    assert exported == dict(DARK_DEFAULTS) | DRACULA | {"--border": "#444444"}
