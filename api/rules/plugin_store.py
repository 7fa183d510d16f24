"""The plugin store's read and publish rules: pure functions over the folded catalog.

Who may publish (:func:`publish_refusal`), what the store lists and in which order
(:func:`browse`), and the paging of any list (:func:`page_of`). The routes in
:mod:`api.routes.plugin_store` turn these into HTTP answers; nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal, TypeVar

from accounts.plugins import PluginCatalog, StorePlugin
from http_edge.problem import ApiError

T = TypeVar("T")
Sort = Literal["installs", "rating", "new"]
PublishSetting = Literal["linked", "any"]

PUBLISH_SETTING = "CODETRACKR_PLUGIN_PUBLISH"


def publish_refusal(
    *,
    user_id: str,
    identity_provider: str | None,
    setting: PublishSetting,
    current: StorePlugin | None,
    display_name: str | None,
) -> ApiError | None:
    """Why ``user_id`` may not publish this name now, or None.

    Accounts linked to an identity provider may publish; anonymous ones too only when the
    server's setting is ``any``. A name belongs to its first publisher (409 for anyone else);
    a banned plugin takes no update (403); a first publish needs a display name (400).
    """
    if setting == "linked" and identity_provider is None:
        return ApiError(
            403,
            "publishing plugins needs an account linked to GitHub, GitLab or OIDC: log in with "
            f"one of them (this server's {PUBLISH_SETTING} is 'linked'; 'any' lets every "
            "account publish)",
            code="publish_not_allowed",
            details={"setting": PUBLISH_SETTING, "value": setting},
        )
    if current is not None and current.author_id != user_id:
        return ApiError(
            409,
            f"the plugin name {current.name!r} belongs to another publisher",
            code="name_taken",
            details={"fields": {"name": "taken"}},
        )
    if current is not None and current.banned:
        return ApiError(403, f"plugin {current.name!r} is banned", code="plugin_banned")
    if current is None and not display_name:
        return ApiError(
            400,
            "invalid display_name: required on the first publish of a plugin",
            code="validation_error",
            details={"fields": {"display_name": "required on the first publish"}},
        )
    return None


def listed(catalog: PluginCatalog) -> list[StorePlugin]:
    """What the store shows anyone: every plugin that is not banned."""
    return [plugin for plugin in catalog.plugins.values() if not plugin.banned]


def matches(plugin: StorePlugin, query: str) -> bool:
    """Case-insensitive search in the name, display name and description."""
    needle = query.strip().casefold()
    if not needle:
        return True
    return any(
        needle in text.casefold() for text in (plugin.name, plugin.display_name, plugin.description)
    )


def browse(catalog: PluginCatalog, query: str | None, sort: Sort) -> list[StorePlugin]:
    """The listed plugins matching ``query``, in ``sort`` order; ties by name.

    ``installs``: most installs first (then the best rated); ``rating``: best average first,
    unrated last (then the most reviews); ``new``: the newest first publish first.
    """
    found = [plugin for plugin in listed(catalog) if query is None or matches(plugin, query)]
    found.sort(key=lambda plugin: plugin.name)
    key: Callable[[StorePlugin], tuple[float, ...]]
    if sort == "installs":

        def key(plugin: StorePlugin) -> tuple[float, ...]:
            rating, _ = catalog.rating(plugin.name)
            return (-catalog.install_count(plugin.name), -(rating or 0.0))

    elif sort == "rating":

        def key(plugin: StorePlugin) -> tuple[float, ...]:
            rating, reviews = catalog.rating(plugin.name)
            return (rating is None, -(rating or 0.0), -reviews)

    else:

        def key(plugin: StorePlugin) -> tuple[float, ...]:
            return (-plugin.created_at,)

    found.sort(key=key)  # stable: equal keys stay in name order
    return found


def page_of(items: Sequence[T], page: int, per_page: int) -> list[T]:
    """Items of 1-based ``page`` of ``per_page`` each (empty past the end)."""
    start = (page - 1) * per_page
    return list(items[start : start + per_page])


def total_pages(total: int, per_page: int) -> int:
    return max(1, -(-total // per_page))
