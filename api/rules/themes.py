"""The theme store's rules: pure functions over the folded catalog.

Who may publish a name (:func:`publish_refusal`), what the store lists and in which order
(:func:`browse`), and a user's active theme as the dashboard applies it (:func:`active_view`:
the theme's variables with the user's overrides on top). Values are served only when they pass
today's checks (:mod:`api.rules.theme_css`). The routes in :mod:`api.routes.themes` turn these
into HTTP answers; nothing here does I/O.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from accounts.themes import StoreTheme, ThemeCatalog
from api.rules.theme_css import is_dark, served_custom_css, served_variables
from http_edge.problem import ApiError

Sort = Literal["installs", "new", "name"]


def theme_id_of(text: str) -> str | None:
    """The canonical form of a theme id (a UUID, any accepted spelling), or None."""
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return None


def publish_refusal(
    *, user_id: str, current: StoreTheme | None, display_name: str | None
) -> ApiError | None:
    """Why ``user_id`` may not publish this name now, or None: a name belongs to its first
    publisher (409 for anyone else); a first publish needs a display name (400)."""
    if current is not None and current.author_id != user_id:
        return ApiError(
            409,
            f"the theme name {current.name!r} belongs to another publisher",
            code="name_taken",
            details={"fields": {"name": "taken"}},
        )
    if current is None and not display_name:
        return ApiError(
            400,
            "invalid display_name: required on the first publish of a theme",
            code="validation_error",
            details={"fields": {"display_name": "required on the first publish"}},
        )
    return None


def matches(theme: StoreTheme, query: str) -> bool:
    """Case-insensitive search in the name, display name and description."""
    needle = query.strip().casefold()
    if not needle:
        return True
    return any(
        needle in text.casefold() for text in (theme.name, theme.display_name, theme.description)
    )


def browse(catalog: ThemeCatalog, query: str | None, sort: Sort) -> list[StoreTheme]:
    """The published themes matching ``query`` in ``sort`` order, ties by name: ``installs``
    (most first), ``new`` (newest first publish first) or ``name``."""
    found = sorted(
        (t for t in catalog.themes.values() if query is None or matches(t, query)),
        key=lambda theme: theme.name,
    )
    if sort == "installs":
        found.sort(key=lambda theme: -catalog.install_count(theme.theme_id))
    elif sort == "new":
        found.sort(key=lambda theme: -theme.created_at)
    return found


def active_view(catalog: ThemeCatalog, user_id: str) -> dict[str, Any]:
    """``GET /api/v1/themes/active``: the seed's ``active_theme_id``, ``theme_name`` and
    ``variables`` (the active theme's, with the user's ``custom_vars`` merged on top), plus
    ``custom_vars`` alone, the theme's ``custom_css`` and ``is_dark`` (from the merged
    ``--bg``; None when it is not a plain colour or not set: the default theme's choice)."""
    theme = catalog.active_of(user_id)
    prefs = catalog.prefs_of(user_id)
    custom = served_variables(prefs.custom_vars) if prefs is not None else {}
    base = served_variables(theme.variables) if theme is not None else {}
    merged = base | custom
    return {
        "active_theme_id": theme.theme_id if theme is not None else None,
        "theme_name": theme.name if theme is not None else None,
        "variables": merged,
        "custom_vars": custom,
        "custom_css": served_custom_css(theme.custom_css) if theme is not None else "",
        "is_dark": is_dark(merged),
    }


def merged_file(catalog: ThemeCatalog, user_id: str, defaults: dict[str, str]) -> dict[str, str]:
    """The ``codetrackr-theme.json`` of the user's current look: all ten variables, the
    defaults overridden by the active theme and then by the custom variables."""
    view = active_view(catalog, user_id)
    variables: dict[str, str] = view["variables"]
    return {name: variables.get(name, value) for name, value in defaults.items()}
