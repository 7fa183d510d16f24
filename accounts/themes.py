"""The theme store as a pure fold over its events (no I/O, no clock).

Theme events ride the accounts topic (:mod:`schemas.events`), so every process folds them in the
same global order, inside :class:`accounts.state.AccountState`, which hands each one here once
and only when its author is a live account. What the fold decides, every process decides the
same way:

* a name belongs to its first publisher, who may publish it again (an update in place: the
  theme keeps its id, everyone who installed it sees the new values); anyone else is rejected.
  A first publish needs a display name and variables, and an id no theme holds;
* an install needs a published theme; installing what is installed changes nothing;
* an uninstall drops the install and, when it was the user's active theme, the user is back on
  the default theme (their custom variables stay);
* an apply sets the active theme (which must be installed; ``None`` is the default theme)
  and/or replaces the custom variables, all or nothing;
* an account deletion removes the user's installs and preferences and the themes they
  published, with everyone's installs of them (whoever had one active is back on the default).

Values are not checked here: the API checks them before appending (``api.rules.theme_css``) and
again before serving them, so a record the checks would refuse today is never served.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TypeVar

from schemas.events import (
    ThemeApplied,
    ThemeEvent,
    ThemeInstalled,
    ThemePublished,
    ThemeUninstalled,
)

T = TypeVar("T")

# Defaults of a first publish (the seed's).
DEFAULT_VERSION = "1.0.0"
DEFAULT_ICON = "\N{ARTIST PALETTE}"


@dataclass(frozen=True, slots=True)
class StoreTheme:
    theme_id: str
    name: str
    author_id: str
    display_name: str
    description: str
    version: str
    icon: str
    variables: dict[str, str]
    custom_css: str
    created_at: float
    updated_at: float
    first_event_id: str  # the event that published it first (its answer is a 201)


@dataclass(frozen=True, slots=True)
class ThemeInstall:
    user_id: str
    theme_id: str
    installed_at: float


@dataclass(frozen=True, slots=True)
class ThemePrefs:
    """A user's ``user_theme_prefs``: the active theme (None: the default) and overrides."""

    user_id: str
    active_theme_id: str | None
    custom_vars: dict[str, str]
    updated_at: float


@dataclass
class ThemeCatalog:
    themes: dict[str, StoreTheme] = field(default_factory=dict)  # theme id -> theme
    by_name: dict[str, str] = field(default_factory=dict)  # name -> theme id
    installs: dict[str, dict[str, ThemeInstall]] = field(default_factory=dict)  # user -> id ->
    installers: dict[str, set[str]] = field(default_factory=dict)  # theme id -> users
    prefs: dict[str, ThemePrefs] = field(default_factory=dict)  # user -> prefs

    # -- queries ------------------------------------------------------------------------------

    def theme(self, theme_id: str) -> StoreTheme | None:
        return self.themes.get(theme_id)

    def named(self, name: str) -> StoreTheme | None:
        theme_id = self.by_name.get(name)
        return self.themes.get(theme_id) if theme_id is not None else None

    def install(self, user_id: str, theme_id: str) -> ThemeInstall | None:
        return self.installs.get(user_id, {}).get(theme_id)

    def installed_of(self, user_id: str) -> list[ThemeInstall]:
        found = self.installs.get(user_id, {}).values()
        return sorted(found, key=lambda i: (i.installed_at, i.theme_id))

    def install_count(self, theme_id: str) -> int:
        return len(self.installers.get(theme_id, ()))

    def prefs_of(self, user_id: str) -> ThemePrefs | None:
        return self.prefs.get(user_id)

    def active_of(self, user_id: str) -> StoreTheme | None:
        prefs = self.prefs.get(user_id)
        if prefs is None or prefs.active_theme_id is None:
            return None
        return self.themes.get(prefs.active_theme_id)

    def published_by(self, user_id: str) -> list[StoreTheme]:
        return sorted(
            (t for t in self.themes.values() if t.author_id == user_id), key=lambda t: t.name
        )

    # -- the fold -----------------------------------------------------------------------------

    def apply(self, event: ThemeEvent) -> bool:
        """Fold one event in (the caller checked its author is a live account, once)."""
        if isinstance(event, ThemePublished):
            return self._published(event)
        if isinstance(event, ThemeInstalled):
            return self._installed(event)
        if isinstance(event, ThemeUninstalled):
            return self._uninstalled(event.user_id, event.theme_id)
        return self._applied(event)

    def forget_user(self, user_id: str) -> None:
        """The account is deleted: its installs and preferences go, and so do the themes it
        published (with everyone's installs of them)."""
        for theme_id in list(self.installs.get(user_id, {})):
            self._uninstalled(user_id, theme_id)
        self.prefs.pop(user_id, None)
        for theme in self.published_by(user_id):
            self._delete(theme)

    def _published(self, event: ThemePublished) -> bool:
        current = self.named(event.name)
        if current is not None and current.author_id != event.user_id:
            return False
        if current is None:
            if not event.display_name or event.variables is None:
                return False
            if event.theme_id in self.themes:
                return False
            current = StoreTheme(
                theme_id=event.theme_id,
                name=event.name,
                author_id=event.user_id,
                display_name=event.display_name,
                description="",
                version=DEFAULT_VERSION,
                icon=DEFAULT_ICON,
                variables={},
                custom_css="",
                created_at=event.occurred_at,
                updated_at=event.occurred_at,
                first_event_id=event.event_id,
            )
            self.by_name[event.name] = event.theme_id
        self.themes[current.theme_id] = replace(
            current,
            display_name=_given(event.display_name, current.display_name),
            description=_given(event.description, current.description),
            version=_given(event.theme_version, current.version),
            icon=_given(event.icon, current.icon),
            variables=dict(_given(event.variables, current.variables)),
            custom_css=_given(event.custom_css, current.custom_css),
            updated_at=event.occurred_at,
        )
        return True

    def _installed(self, event: ThemeInstalled) -> bool:
        if event.theme_id not in self.themes:
            return False
        mine = self.installs.setdefault(event.user_id, {})
        if event.theme_id not in mine:
            mine[event.theme_id] = ThemeInstall(event.user_id, event.theme_id, event.occurred_at)
            self.installers.setdefault(event.theme_id, set()).add(event.user_id)
        return True

    def _uninstalled(self, user_id: str, theme_id: str) -> bool:
        mine = self.installs.get(user_id, {})
        if mine.pop(theme_id, None) is None:
            return False
        if not mine:
            self.installs.pop(user_id, None)
        users = self.installers.get(theme_id, set())
        users.discard(user_id)
        if not users:
            self.installers.pop(theme_id, None)
        prefs = self.prefs.get(user_id)
        if prefs is not None and prefs.active_theme_id == theme_id:
            self.prefs[user_id] = replace(prefs, active_theme_id=None)
        return True

    def _applied(self, event: ThemeApplied) -> bool:
        if (
            event.change_theme
            and event.theme_id is not None
            and self.install(event.user_id, event.theme_id) is None
        ):
            return False
        current = self.prefs.get(event.user_id) or ThemePrefs(event.user_id, None, {}, 0.0)
        self.prefs[event.user_id] = ThemePrefs(
            user_id=event.user_id,
            active_theme_id=event.theme_id if event.change_theme else current.active_theme_id,
            custom_vars=dict(_given(event.custom_vars, current.custom_vars)),
            updated_at=event.occurred_at,
        )
        return True

    def _delete(self, theme: StoreTheme) -> None:
        for user_id in list(self.installers.get(theme.theme_id, ())):
            self._uninstalled(user_id, theme.theme_id)
        self.themes.pop(theme.theme_id, None)
        if self.by_name.get(theme.name) == theme.theme_id:
            del self.by_name[theme.name]


def _given(value: T | None, previous: T) -> T:
    return previous if value is None else value
