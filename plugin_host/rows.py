"""The rows of the host relations (``relations.py``'s ``host`` tables) for one caller: pure.

Account tables hold the caller's own rows only; the store tables hold what every user may see
(published, unbanned plugins and their reviews) plus the caller's own entries, installs and
settings. The SQL executor drops owner-only rows that do not name the caller whatever it gets, so
these functions are a first filter, not the only one. Times are epoch seconds (the executor turns
them into ClickHouse's text form).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from accounts.plugins import PluginCatalog, StorePlugin
from accounts.state import AccountState

Row = dict[str, Any]

HOST_RELATIONS = (
    "users",
    "api_keys",
    "user_follows",
    "plugin_store",
    "installed_plugins",
    "plugin_settings",
    "plugin_reviews",
)
_MENTIONED = re.compile(r"\b(" + "|".join(HOST_RELATIONS) + r")\b", re.IGNORECASE)


def mentioned_relations(sql: str) -> set[str]:
    """The host relations ``sql`` may read (by name; a superset is harmless)."""
    return {match.lower() for match in _MENTIONED.findall(sql)}


def host_rows(state: AccountState, user_id: str, relations: Iterable[str]) -> dict[str, list[Row]]:
    """The rows of each relation in ``relations`` the caller may see."""
    builders = {
        "users": _users,
        "api_keys": _api_keys,
        "user_follows": _follows,
        "plugin_store": _store,
        "installed_plugins": _installed,
        "plugin_settings": _settings,
        "plugin_reviews": _reviews,
    }
    return {name: builders[name](state, user_id) for name in relations if name in builders}


def _users(state: AccountState, user_id: str) -> list[Row]:
    user = state.users.get(user_id)
    if user is None:
        return []
    return [
        {
            "id": user.user_id,
            "username": user.username,
            "display_name": user.display_name,
            "avatar_url": user.avatar_url,
            "bio": user.bio,
            "website": user.website,
            "country": user.country,
            "timezone": user.timezone,
            "is_public": user.is_public,
            "available_for_hire": user.available_for_hire,
            "profile_show_languages": user.profile_show_languages,
            "profile_show_projects": user.profile_show_projects,
            "profile_show_activity": user.profile_show_activity,
            "profile_show_plugins": user.profile_show_plugins,
            "profile_show_streak": user.profile_show_streak,
            "created_at": user.created_at,
        }
    ]


def _api_keys(state: AccountState, user_id: str) -> list[Row]:
    return [
        {
            "id": key.key_id,
            "user_id": key.user_id,
            "name": key.name,
            "read_only": key.read_only,
            "created_at": key.created_at,
            "last_used_at": state.key_last_used.get(key.key_id),
        }
        for key in state.keys_of(user_id)
    ]


def _follows(state: AccountState, user_id: str) -> list[Row]:
    rows = [
        {"follower_id": user_id, "following_id": other}
        for other in sorted(state.following.get(user_id, ()))
    ]
    rows += [
        {"follower_id": other, "following_id": user_id}
        for other in sorted(state.followers.get(user_id, ()))
    ]
    return rows


def visible_plugins(catalog: PluginCatalog, user_id: str) -> list[StorePlugin]:
    """Published, unbanned plugins, and the caller's own (banned or not)."""
    return [p for p in catalog.plugins.values() if not p.banned or p.author_id == user_id]


def _store(state: AccountState, user_id: str) -> list[Row]:
    catalog = state.plugins
    rows = []
    for plugin in visible_plugins(catalog, user_id):
        rating, reviews = catalog.rating(plugin.name)
        rows.append(
            {
                "id": plugin.plugin_id,
                "name": plugin.name,
                "display_name": plugin.display_name,
                "description": plugin.description,
                "author_id": plugin.author_id,
                "version": plugin.version,
                "icon": plugin.icon,
                "widget_type": plugin.widget_type,
                "repository": plugin.repository,
                "is_published": True,
                "is_banned": plugin.banned,
                "install_count": catalog.install_count(plugin.name),
                "rating": rating,
                "review_count": reviews,
                "created_at": plugin.created_at,
                "updated_at": plugin.updated_at,
            }
        )
    return rows


def _installed(state: AccountState, user_id: str) -> list[Row]:
    catalog = state.plugins
    rows = []
    for install in catalog.installed_of(user_id):
        plugin = catalog.plugin(install.name)
        rows.append(
            {
                "id": install.install_id,
                "user_id": user_id,
                "plugin_id": plugin.plugin_id if plugin else None,
                "plugin": install.name,
                "installed_at": install.installed_at,
                "suspended": install.suspended,
                "suspended_reason": install.suspended_reason,
            }
        )
    return rows


def _settings(state: AccountState, user_id: str) -> list[Row]:
    return [
        {
            "user_id": row.user_id,
            "plugin": row.name,
            "settings": json.dumps(row.settings, separators=(",", ":")),
            "updated_at": row.updated_at,
        }
        for row in state.plugins.settings_of(user_id)
    ]


def _reviews(state: AccountState, user_id: str) -> list[Row]:
    catalog = state.plugins
    rows = []
    for plugin in visible_plugins(catalog, user_id):
        for review in catalog.reviews.get(plugin.name, {}).values():
            rows.append(
                {
                    "id": review.review_id,
                    "plugin_id": plugin.plugin_id,
                    "plugin": plugin.name,
                    "user_id": review.user_id,
                    "rating": review.rating,
                    "comment": review.comment,
                    "created_at": review.created_at,
                    "updated_at": review.updated_at,
                }
            )
    return rows
