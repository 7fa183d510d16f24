"""The plugin store as a pure fold over its events (no I/O, no clock).

The store's events ride the accounts topic (:mod:`schemas.events`), so every process folds them in
the same global order, inside :class:`accounts.state.AccountState`, which hands each one here once
(it keeps ``seen`` and ``rejected``) and only when its author is a live account. What the fold
decides, every process decides the same way:

* a name belongs to its first publisher; a publish of it by anyone else is rejected, as is any
  publish while it is banned. Every accepted publish is kept as a :class:`PluginVersion`;
* an install needs a published, unbanned plugin. Installing what is already installed changes
  nothing, except that it resumes a suspended install; a *new* install is the one ``on_install``
  runs for (:attr:`Install.install_id` is its event id);
* an uninstall drops the install and the user's settings of that plugin;
* one review per user and plugin (a later one replaces it); reports are kept for the admins;
* a ban keeps everything but stops the plugin for everyone (:meth:`PluginCatalog.runnable`); a
  deletion (an admin's, or the publisher's account deletion) removes the plugin with its installs,
  settings, reviews and reports, and frees its name;
* settings rows are JSON objects written by the plugin's own SQL, applied by their ``mode``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from schemas.events import (
    PluginInstalled,
    PluginModerated,
    PluginPublished,
    PluginReported,
    PluginReviewed,
    PluginSettingsChanged,
    PluginSuspended,
    PluginUninstalled,
    StoreEvent,
)

T = TypeVar("T")

# Defaults of a first publish (the seed's).
DEFAULT_VERSION = "0.1.0"
DEFAULT_ICON = "\N{ELECTRIC PLUG}"
# Versions kept per plugin (the newest), of which the newest keep their scripts in memory (the
# older ones' scripts stay on the log); reports kept per plugin (the newest).
MAX_VERSIONS = 100
MAX_VERSION_SCRIPTS = 10
MAX_REPORTS = 500


@dataclass(frozen=True, slots=True)
class PluginVersion:
    """One publish; ``script`` and ``server_script`` are None once it is older than the newest
    ``MAX_VERSION_SCRIPTS`` (their text is still in the log's ``PluginPublished`` record)."""

    version: str
    script: str | None
    server_script: str | None
    published_at: float
    event_id: str


@dataclass(frozen=True, slots=True)
class StorePlugin:
    plugin_id: str  # the event id of its first publish
    name: str
    author_id: str
    display_name: str
    description: str
    version: str
    icon: str
    widget_type: str | None
    repository: str | None
    script: str
    server_script: str
    created_at: float
    updated_at: float
    banned: bool = False
    ban_reason: str = ""
    versions: tuple[PluginVersion, ...] = ()


@dataclass(frozen=True, slots=True)
class Install:
    install_id: str  # the event id of the install: ``on_install`` runs once for it
    user_id: str
    name: str
    installed_at: float
    suspended_reason: str | None = None
    suspended_at: float | None = None

    @property
    def suspended(self) -> bool:
        return self.suspended_reason is not None


@dataclass(frozen=True, slots=True)
class Review:
    review_id: str
    user_id: str
    name: str
    rating: int
    comment: str
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class Report:
    report_id: str
    user_id: str
    name: str
    reason: str
    reported_at: float


@dataclass(frozen=True, slots=True)
class SettingsRow:
    user_id: str
    name: str
    settings: dict[str, Any]
    updated_at: float


@dataclass
class PluginCatalog:
    plugins: dict[str, StorePlugin] = field(default_factory=dict)
    installs: dict[str, dict[str, Install]] = field(default_factory=dict)  # user -> name -> install
    installers: dict[str, set[str]] = field(default_factory=dict)  # name -> users
    reviews: dict[str, dict[str, Review]] = field(default_factory=dict)  # name -> user -> review
    reports: dict[str, list[Report]] = field(default_factory=dict)
    settings: dict[tuple[str, str], SettingsRow] = field(default_factory=dict)  # (user, name)

    # -- queries ------------------------------------------------------------------------------

    def plugin(self, name: str) -> StorePlugin | None:
        return self.plugins.get(name)

    def install(self, user_id: str, name: str) -> Install | None:
        return self.installs.get(user_id, {}).get(name)

    def installed_of(self, user_id: str) -> list[Install]:
        return sorted(self.installs.get(user_id, {}).values(), key=lambda i: i.installed_at)

    def install_count(self, name: str) -> int:
        return len(self.installers.get(name, ()))

    def rating(self, name: str) -> tuple[float | None, int]:
        """The average rating and the number of reviews."""
        reviews = self.reviews.get(name, {})
        if not reviews:
            return None, 0
        return sum(r.rating for r in reviews.values()) / len(reviews), len(reviews)

    def runnable(self, user_id: str, name: str) -> tuple[StorePlugin, Install] | None:
        """The plugin and the user's install when its hooks and RPC may run: installed, not
        banned, not suspended."""
        plugin = self.plugins.get(name)
        install = self.install(user_id, name)
        if plugin is None or install is None or plugin.banned or install.suspended:
            return None
        return plugin, install

    def settings_of(self, user_id: str) -> list[SettingsRow]:
        return [row for (owner, _), row in self.settings.items() if owner == user_id]

    def published_by(self, user_id: str) -> list[StorePlugin]:
        return [p for p in self.plugins.values() if p.author_id == user_id]

    # -- the fold -----------------------------------------------------------------------------

    def apply(self, event: StoreEvent) -> bool:
        """Fold one event in (the caller checked its author is a live account, once)."""
        if isinstance(event, PluginPublished):
            return self._published(event)
        if isinstance(event, PluginInstalled):
            return self._installed(event)
        if isinstance(event, PluginUninstalled):
            return self._uninstalled(event.user_id, event.name)
        if isinstance(event, PluginReviewed):
            return self._reviewed(event)
        if isinstance(event, PluginReported):
            return self._reported(event)
        if isinstance(event, PluginModerated):
            return self._moderated(event)
        if isinstance(event, PluginSettingsChanged):
            return self._settings(event)
        return self._suspended(event)

    def forget_user(self, user_id: str) -> None:
        """The account is deleted: its installs, settings, reviews and reports go, and so do the
        plugins it published (with everyone's installs of them)."""
        for name in list(self.installs.get(user_id, {})):
            self._uninstalled(user_id, name)
        for plugin in self.published_by(user_id):
            self._delete(plugin.name)
        for reviews in self.reviews.values():
            reviews.pop(user_id, None)
        for name, reports in list(self.reports.items()):
            self.reports[name] = [r for r in reports if r.user_id != user_id]

    def _published(self, event: PluginPublished) -> bool:
        current = self.plugins.get(event.name)
        if current is not None and (current.author_id != event.user_id or current.banned):
            return False
        if current is None:
            if not event.display_name:
                return False
            current = StorePlugin(
                plugin_id=event.event_id,
                name=event.name,
                author_id=event.user_id,
                display_name=event.display_name,
                description="",
                version=DEFAULT_VERSION,
                icon=DEFAULT_ICON,
                widget_type=None,
                repository=None,
                script="",
                server_script="",
                created_at=event.occurred_at,
                updated_at=event.occurred_at,
            )
        updated = replace(
            current,
            display_name=_given(event.display_name, current.display_name),
            description=_given(event.description, current.description),
            version=_given(event.plugin_version, current.version),
            icon=_given(event.icon, current.icon),
            widget_type=_given(event.widget_type, current.widget_type),
            repository=_given(event.repository, current.repository),
            script=_given(event.script, current.script),
            server_script=_given(event.server_script, current.server_script),
            updated_at=event.occurred_at,
        )
        version = PluginVersion(
            updated.version,
            updated.script,
            updated.server_script,
            event.occurred_at,
            event.event_id,
        )
        versions = (*current.versions, version)[-MAX_VERSIONS:]
        stale = len(versions) - MAX_VERSION_SCRIPTS
        if stale > 0 and versions[stale - 1].script is not None:
            dropped = replace(versions[stale - 1], script=None, server_script=None)
            versions = (*versions[: stale - 1], dropped, *versions[stale:])
        self.plugins[event.name] = replace(updated, versions=versions)
        return True

    def _installed(self, event: PluginInstalled) -> bool:
        plugin = self.plugins.get(event.name)
        if plugin is None or plugin.banned:
            return False
        mine = self.installs.setdefault(event.user_id, {})
        current = mine.get(event.name)
        if current is not None:
            if current.suspended:
                mine[event.name] = replace(current, suspended_reason=None, suspended_at=None)
            return True
        mine[event.name] = Install(event.event_id, event.user_id, event.name, event.occurred_at)
        self.installers.setdefault(event.name, set()).add(event.user_id)
        return True

    def _uninstalled(self, user_id: str, name: str) -> bool:
        mine = self.installs.get(user_id, {})
        if mine.pop(name, None) is None:
            return False
        if not mine:
            self.installs.pop(user_id, None)
        users = self.installers.get(name, set())
        users.discard(user_id)
        if not users:
            self.installers.pop(name, None)
        self.settings.pop((user_id, name), None)
        return True

    def _reviewed(self, event: PluginReviewed) -> bool:
        plugin = self.plugins.get(event.name)
        if plugin is None or plugin.banned:
            return False
        reviews = self.reviews.setdefault(event.name, {})
        previous = reviews.get(event.user_id)
        reviews[event.user_id] = Review(
            review_id=previous.review_id if previous else event.event_id,
            user_id=event.user_id,
            name=event.name,
            rating=event.rating,
            comment=event.comment,
            created_at=previous.created_at if previous else event.occurred_at,
            updated_at=event.occurred_at,
        )
        return True

    def _reported(self, event: PluginReported) -> bool:
        if event.name not in self.plugins:
            return False
        reports = self.reports.setdefault(event.name, [])
        reports.append(
            Report(event.event_id, event.user_id, event.name, event.reason, event.occurred_at)
        )
        del reports[:-MAX_REPORTS]
        return True

    def _moderated(self, event: PluginModerated) -> bool:
        plugin = self.plugins.get(event.name)
        if plugin is None:
            return False
        if event.action == "delete":
            self._delete(event.name)
        else:
            banned = event.action == "ban"
            self.plugins[event.name] = replace(
                plugin, banned=banned, ban_reason=event.reason if banned else ""
            )
        return True

    def _delete(self, name: str) -> None:
        self.plugins.pop(name, None)
        for user_id in list(self.installers.get(name, ())):
            self._uninstalled(user_id, name)
        self.reviews.pop(name, None)
        self.reports.pop(name, None)

    def _settings(self, event: PluginSettingsChanged) -> bool:
        if self.install(event.user_id, event.name) is None:
            return False
        key = (event.user_id, event.name)
        current = self.settings.get(key)
        if event.mode == "delete":
            return self.settings.pop(key, None) is not None
        value = _json_object(event.settings)
        if value is None:
            return False
        if event.mode == "insert" and current is not None:
            return False
        if current is None and event.mode.startswith("update_"):
            return True  # UPDATE of no row: accepted, nothing changes
        if event.mode == "insert_or_ignore" and current is not None:
            return True
        merged = (
            {**current.settings, **value}
            if current is not None and event.mode.endswith("_merge")
            else value
        )
        self.settings[key] = SettingsRow(event.user_id, event.name, merged, event.occurred_at)
        return True

    def _suspended(self, event: PluginSuspended) -> bool:
        current = self.install(event.user_id, event.name)
        if current is None:
            return False
        self.installs[event.user_id][event.name] = replace(
            current, suspended_reason=event.reason, suspended_at=event.occurred_at
        )
        return True


def _given(value: T | None, previous: T) -> T:
    return previous if value is None else value


def _json_object(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
