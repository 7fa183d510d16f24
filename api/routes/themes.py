"""The theme store over HTTP: publish, browse, install, uninstall, the active theme and apply.

The seed's routes (``/api/v1/themes``, ``publish``, ``installed``, ``install/{id}``,
``uninstall/{id}``, ``active``, ``apply``) and three helpers: ``defaults`` (the built-in light
and dark values of the ten variables), ``export`` (the caller's current look as a
``codetrackr-theme.json``) and ``import`` (such a file checked, unknown names ignored, nothing
stored). Every change is an event on the accounts topic (``ThemePublished``, ``ThemeInstalled``,
``ThemeUninstalled``, ``ThemeApplied``), answered once the log's order decided it. Every value
is checked by :mod:`api.rules.theme_css` before it is appended, and again before it is served.
"""

# No `from __future__ import annotations` here: FastAPI must resolve the locally defined
# dependency aliases when the routes are declared.

import time
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from accounts.directory import AccountDirectory, new_event_id
from accounts.themes import StoreTheme
from api.deps import Directory, Reader, Writer, api_parts
from api.routes.account_forms import iso, json_body, parse, plain_text
from api.rules.plugin_store import page_of, total_pages
from api.rules.theme_css import (
    DARK_DEFAULTS,
    LIGHT_DEFAULTS,
    THEME_VARIABLES,
    CssRefused,
    check_custom_css,
    check_variables,
    import_theme_file,
    served_custom_css,
    served_variables,
)
from api.rules.themes import active_view, browse, merged_file, publish_refusal, theme_id_of
from http_edge.body import read_json
from http_edge.errors import ApiError, error_responses
from schemas.events import (
    PLUGIN_NAME_PATTERN,
    ThemeApplied,
    ThemeInstalled,
    ThemePublished,
    ThemeUninstalled,
)

MAX_DISPLAY_NAME = 100
MAX_DESCRIPTION = 1000
MAX_PER_PAGE = 100
PUBLISH_BODY_LIMIT = 64 * 1024  # a 16 KiB override, JSON-escaped, and the texts
THEME_BODY_LIMIT = 16 * 1024

router = APIRouter(tags=["themes"])
PageQuery = Annotated[int, Query(ge=1, le=100_000, description="1-based page")]
PerPageQuery = Annotated[int, Query(ge=1, le=MAX_PER_PAGE, description="items per page")]


# -- bodies --------------------------------------------------------------------------------------


class PublishIn(BaseModel):
    """A theme to publish or update (the seed's fields); omitted fields keep their values."""

    model_config = ConfigDict(extra="ignore")
    name: str = Field(
        min_length=1,
        max_length=64,
        pattern=PLUGIN_NAME_PATTERN,
        description="unique kebab-case identifier, e.g. dracula-dark",
    )
    display_name: str | None = Field(
        default=None, min_length=1, max_length=MAX_DISPLAY_NAME, description="required at first"
    )
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION)
    version: str | None = Field(
        default=None,
        max_length=32,
        pattern=r"^[0-9][0-9A-Za-z.+-]*$",
        description="semver string (default 1.0.0)",
    )
    icon: str | None = Field(default=None, min_length=1, max_length=16, description="an emoji")
    variables: dict[str, Any] | None = Field(
        default=None,
        description="some of the ten CSS variables -> values; required on the first publish",
    )
    custom_css: str | None = Field(
        default=None, description='raw CSS override (checked, at most 16 KiB); "" clears it'
    )
    _text = field_validator("display_name", "description", "icon")(plain_text)

    @field_validator("display_name", "icon")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value:
            raise ValueError("must not be blank")
        return value


class ApplyIn(BaseModel):
    """``theme_id``: the theme to make active (installed first), ``null`` for the default theme,
    absent to keep it. ``custom_vars``: your overrides (``{}`` clears them), absent or ``null``
    to keep them."""

    model_config = ConfigDict(extra="ignore")
    theme_id: str | None = Field(default=None, max_length=64, description="a theme UUID or null")
    custom_vars: dict[str, Any] | None = None


# -- views ---------------------------------------------------------------------------------------


def card(directory: AccountDirectory, theme: StoreTheme) -> dict[str, Any]:
    """A theme as the store lists it (its variables make the swatch)."""
    author = directory.state.users.get(theme.author_id)
    return {
        "id": theme.theme_id,
        "name": theme.name,
        "display_name": theme.display_name,
        "description": theme.description,
        "version": theme.version,
        "icon": theme.icon,
        "author": author.username if author is not None else None,
        "variables": served_variables(theme.variables),
        "has_custom_css": bool(served_custom_css(theme.custom_css)),
        "install_count": directory.themes.install_count(theme.theme_id),
        "created_at": iso(theme.created_at),
        "updated_at": iso(theme.updated_at),
    }


def detail(directory: AccountDirectory, theme: StoreTheme) -> dict[str, Any]:
    return card(directory, theme) | {"custom_css": served_custom_css(theme.custom_css)}


# -- helpers -------------------------------------------------------------------------------------


def _css_error(exc: CssRefused, field: str) -> ApiError:
    where = f"{field}.{exc.where}" if exc.where else field
    return ApiError(
        400,
        f"invalid {where}: {exc.message}",
        code="invalid_css",
        details={"fields": {where: exc.message}},
    )


def _canonical(theme_id: str) -> str:
    canonical = theme_id_of(theme_id)
    if canonical is None:
        raise ApiError(
            400,
            "invalid theme id: a theme id is a UUID",
            code="validation_error",
            details={"fields": {"theme_id": "not a UUID"}},
        )
    return canonical


def _unknown(theme_id: str) -> ApiError:
    return ApiError(404, f"no theme with id {theme_id!r} in the store")


def _not_installed(theme_id: str) -> ApiError:
    return ApiError(404, f"theme {theme_id!r} is not installed", code="not_installed")


async def _known(directory: AccountDirectory, theme_id: str) -> StoreTheme:
    """The theme (after a sync when this process has not seen it yet); 404 unknown."""
    theme = directory.themes.theme(theme_id)
    if theme is None:
        await directory.sync()
        theme = directory.themes.theme(theme_id)
    if theme is None:
        raise _unknown(theme_id)
    return theme


def _now() -> float:
    return time.time()


# -- publishing and browsing ---------------------------------------------------------------------


@router.post(
    "/api/v1/themes/publish",
    summary="Publish a theme, or update your own (upsert by name)",
    status_code=200,
    responses={
        201: {"description": "Published for the first time"},
        **error_responses(400, 401, 403, 409, 413, 503),
    },
    openapi_extra=json_body(PublishIn),
)
async def publish(
    request: Request, response: Response, principal: Writer, directory: Directory
) -> dict[str, Any]:
    me = principal.user
    body = await parse(request, PublishIn, limit=PUBLISH_BODY_LIMIT)
    try:
        variables = check_variables(body.variables) if body.variables is not None else None
    except CssRefused as exc:
        raise _css_error(exc, "variables") from None
    try:
        custom_css = check_custom_css(body.custom_css) if body.custom_css is not None else None
    except CssRefused as exc:
        raise _css_error(exc, "custom_css") from None
    await directory.sync()
    current = directory.themes.named(body.name)
    refusal = publish_refusal(user_id=me.user_id, current=current, display_name=body.display_name)
    if refusal is not None:
        raise refusal
    if current is None and variables is None:
        raise ApiError(
            400,
            "invalid variables: required on the first publish of a theme",
            code="validation_error",
            details={"fields": {"variables": "required on the first publish"}},
        )
    event = ThemePublished(
        event_id=new_event_id(),
        user_id=me.user_id,
        occurred_at=_now(),
        name=body.name,
        theme_id=current.theme_id if current is not None else str(uuid.uuid4()),
        display_name=body.display_name,
        description=body.description,
        theme_version=body.version,
        icon=body.icon,
        variables=variables,
        custom_css=custom_css,
    )
    if not await directory.record(event):
        now = directory.themes.named(body.name)
        raise publish_refusal(
            user_id=me.user_id, current=now, display_name=body.display_name
        ) or ApiError(409, f"theme {body.name!r} changed meanwhile; try again", code="conflict")
    theme = directory.themes.named(body.name)
    assert theme is not None
    if theme.first_event_id == event.event_id:
        response.status_code = 201
    return {"theme": detail(directory, theme)}


@router.get(
    "/api/v1/themes",
    summary="The theme store (no credentials): search, sort and page the published themes",
    responses=error_responses(400),
)
async def themes(
    directory: Directory,
    q: Annotated[str | None, Query(max_length=100, description="search text")] = None,
    sort: Annotated[Literal["installs", "new", "name"], Query()] = "installs",
    page: PageQuery = 1,
    per_page: PerPageQuery = 20,
) -> dict[str, Any]:
    found = browse(directory.themes, q, sort)
    return {
        "themes": [card(directory, t) for t in page_of(found, page, per_page)],
        "total": len(found),
        "page": page,
        "per_page": per_page,
        "total_pages": total_pages(len(found), per_page),
    }


@router.get(
    "/api/v1/themes/defaults",
    summary="The built-in light and dark values of the ten theme variables (no credentials)",
)
async def defaults() -> dict[str, Any]:
    return {
        "variables": list(THEME_VARIABLES),
        "light": dict(LIGHT_DEFAULTS),
        "dark": dict(DARK_DEFAULTS),
    }


# -- installing ----------------------------------------------------------------------------------


@router.get(
    "/api/v1/themes/installed",
    summary="Your installed themes, with their variables and raw CSS",
    responses=error_responses(401, 503),
)
async def installed(principal: Reader, directory: Directory) -> dict[str, Any]:
    catalog = directory.themes
    user_id = principal.user.user_id
    active = catalog.active_of(user_id)
    rows = []
    for install in catalog.installed_of(user_id):
        theme = catalog.theme(install.theme_id)
        if theme is None:
            continue
        rows.append(
            detail(directory, theme)
            | {
                "installed_at": iso(install.installed_at),
                "active": active is not None and active.theme_id == theme.theme_id,
            }
        )
    return {"themes": rows, "total": len(rows)}


@router.post(
    "/api/v1/themes/install/{theme_id}",
    summary="Add a theme to your library (201), or nothing when it is there (200)",
    status_code=200,
    responses={201: {"description": "Installed"}, **error_responses(400, 401, 403, 404, 503)},
)
async def install(
    theme_id: str, response: Response, principal: Writer, directory: Directory
) -> dict[str, Any]:
    me = principal.user
    canonical = _canonical(theme_id)
    await _known(directory, canonical)
    already = directory.themes.install(me.user_id, canonical) is not None
    event = ThemeInstalled(
        event_id=new_event_id(), user_id=me.user_id, occurred_at=_now(), theme_id=canonical
    )
    if not await directory.record(event):
        raise _unknown(canonical)  # deleted meanwhile (its author's account went)
    done = directory.themes.install(me.user_id, canonical)
    assert done is not None
    if not already:
        response.status_code = 201
    return {"status": "installed", "theme_id": canonical, "installed_at": iso(done.installed_at)}


@router.delete(
    "/api/v1/themes/uninstall/{theme_id}",
    summary="Remove a theme from your library; if it was active you are back on the default",
    responses=error_responses(400, 401, 403, 404, 503),
)
async def uninstall(theme_id: str, principal: Writer, directory: Directory) -> dict[str, Any]:
    me = principal.user
    canonical = _canonical(theme_id)
    if directory.themes.install(me.user_id, canonical) is None:
        await directory.sync()
    if directory.themes.install(me.user_id, canonical) is None:
        raise _not_installed(canonical)
    # Refused only when an uninstall of the same install came first: the outcome is the same.
    await directory.record(
        ThemeUninstalled(
            event_id=new_event_id(), user_id=me.user_id, occurred_at=_now(), theme_id=canonical
        )
    )
    active = directory.themes.active_of(me.user_id)
    return {
        "status": "uninstalled",
        "theme_id": canonical,
        "active_theme_id": active.theme_id if active is not None else None,
    }


# -- the active theme ----------------------------------------------------------------------------


@router.get(
    "/api/v1/themes/active",
    summary="Your active theme's variables merged with your custom overrides",
    responses=error_responses(401, 503),
)
async def active(principal: Reader, directory: Directory) -> dict[str, Any]:
    return active_view(directory.themes, principal.user.user_id)


@router.post(
    "/api/v1/themes/apply",
    summary="Set your active theme (installed, or null for the default) and/or your overrides",
    responses=error_responses(400, 401, 403, 404, 409, 413, 503),
    openapi_extra=json_body(ApplyIn),
)
async def apply(request: Request, principal: Writer, directory: Directory) -> dict[str, Any]:
    me = principal.user
    body = await parse(request, ApplyIn, limit=THEME_BODY_LIMIT)
    change_theme = "theme_id" in body.model_fields_set
    if not change_theme and body.custom_vars is None:
        raise ApiError(
            400,
            "nothing to apply: give theme_id (a UUID or null) and/or custom_vars",
            code="validation_error",
            details={"fields": {"body": "theme_id or custom_vars required"}},
        )
    try:
        custom = check_variables(body.custom_vars) if body.custom_vars is not None else None
    except CssRefused as exc:
        raise _css_error(exc, "custom_vars") from None
    theme_id = _canonical(body.theme_id) if body.theme_id is not None else None
    if theme_id is not None:
        await _known(directory, theme_id)
        if directory.themes.install(me.user_id, theme_id) is None:
            await directory.sync()
        if directory.themes.install(me.user_id, theme_id) is None:
            raise _not_installed(theme_id)
    event = ThemeApplied(
        event_id=new_event_id(),
        user_id=me.user_id,
        occurred_at=_now(),
        change_theme=change_theme,
        theme_id=theme_id,
        custom_vars=custom,
    )
    if not await directory.record(event):
        raise ApiError(
            409, "the theme was uninstalled or deleted meanwhile; try again", code="conflict"
        )
    return active_view(directory.themes, me.user_id)


# -- export and import ---------------------------------------------------------------------------


@router.get(
    "/api/v1/themes/export",
    summary="Your current look as codetrackr-theme.json (all ten variables)",
    responses={
        200: {
            "description": "A JSON object of variable name -> value, as an attachment",
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
        **error_responses(401, 503),
    },
)
async def export(
    principal: Reader,
    directory: Directory,
    mode: Annotated[
        Literal["dark", "light"], Query(description="the defaults for variables nothing sets")
    ] = "dark",
) -> JSONResponse:
    base = dict(DARK_DEFAULTS if mode == "dark" else LIGHT_DEFAULTS)
    return JSONResponse(
        merged_file(directory.themes, principal.user.user_id, base),
        headers={
            "Content-Disposition": 'attachment; filename="codetrackr-theme.json"',
            "Cache-Control": "no-store",
        },
    )


@router.post(
    "/api/v1/themes/import",
    summary="Check a codetrackr-theme.json: its known variables, checked; unknown names ignored",
    responses=error_responses(400, 413),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
)
async def import_file(request: Request) -> dict[str, Any]:
    document = await read_json(request, THEME_BODY_LIMIT)
    try:
        variables, ignored = import_theme_file(document)
    except CssRefused as exc:
        raise _css_error(exc, "file") from None
    return {"variables": variables, "ignored": ignored}


# -- one theme -----------------------------------------------------------------------------------


@router.get(
    "/api/v1/themes/{theme_id}",
    summary="One theme with its raw CSS (no credentials)",
    responses=error_responses(400, 404),
)
async def theme_detail(request: Request, theme_id: str, directory: Directory) -> dict[str, Any]:
    canonical = _canonical(theme_id)
    theme = await _known(directory, canonical)
    view = detail(directory, theme)
    parts = api_parts(request)
    if parts.is_authenticated(request):
        viewer = await parts.guards.read(request)
        view["installed"] = directory.themes.install(viewer.user.user_id, canonical) is not None
    else:
        view["installed"] = None
    return {"theme": view}
