"""The plugin store over HTTP: publish, browse, install, review, report, and moderation.

* ``POST /api/v1/store/publish``: publish a plugin or, as its original publisher, update it (an
  upsert by ``name``; omitted fields keep their values). 201 on the first publish, 200 on an
  update; 409 ``name_taken`` when the name is someone else's; 403 ``plugin_banned``; 403
  ``publish_not_allowed`` for an account not linked to GitHub, GitLab or OIDC unless the
  server's ``CODETRACKR_PLUGIN_PUBLISH`` is ``any``. A ``server_script`` must compile and run
  its top level within a short limit (400 ``invalid_server_script``).
* ``GET /api/v1/store`` (no credentials): the listed (not banned) plugins, searched and sorted,
  a page at a time; ``GET /api/v1/store/{name}``: one plugin with its versions and both scripts.
* ``POST /api/v1/store/install/{name}``, ``DELETE /api/v1/store/uninstall/{name}`` (the plugin's
  key-value data of the caller goes with the install), ``GET /api/v1/store/installed``.
* ``POST`` / ``GET /api/v1/store/{name}/reviews``, ``POST /api/v1/store/{name}/report``.
* ``/api/v1/admin/store/...``: ban, unban, delete, and the reports, for the usernames in
  ``CODETRACKR_ADMINS`` (403 for anyone else).

Every change is an event on the accounts topic; the answer comes once the log's order decided
it, so a lost race is answered from the catalog as it then is.
"""

# No `from __future__ import annotations` here: FastAPI must resolve the locally defined
# dependency aliases when the routes are declared.

import logging
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from accounts.directory import AccountDirectory, new_event_id
from accounts.plugins import PluginCatalog, StorePlugin
from api.deps import Directory, Plugins, Reader, Writer, api_parts
from api.routes.account_forms import check_website, iso, json_body, parse, plain_text
from api.rules.plugin_store import browse, page_of, publish_refusal, total_pages
from http_edge.auth import Principal
from http_edge.errors import ApiError, error_responses
from plugin_host.executor import PluginServices
from plugins_runtime.kv import KeyValueUnavailable
from schemas.events import (
    PLUGIN_NAME_PATTERN,
    PluginInstalled,
    PluginModerated,
    PluginPublished,
    PluginReported,
    PluginReviewed,
    PluginUninstalled,
    WidgetType,
)

_log = logging.getLogger(__name__)

MAX_SCRIPT_BYTES = 256 * 1024
MAX_DISPLAY_NAME = 100
MAX_DESCRIPTION = 1000
MAX_TEXT = 2000
PUBLISH_BODY_LIMIT = 2 * 1024 * 1024  # two scripts of 256 KiB, JSON-escaped, and the texts
MAX_PER_PAGE = 100
# Names that are paths of the store's own routes (``GET /api/v1/store/installed``), and the
# plugin editor's (``/api/v1/plugins/editor/run``, whose key-value namespace is ``editor``).
RESERVED_NAMES = frozenset({"installed", "install", "uninstall", "publish", "editor"})

router = APIRouter(tags=["plugin store"])
PluginNamePath = Annotated[
    str, Path(min_length=1, max_length=64, pattern=PLUGIN_NAME_PATTERN, description="kebab-case")
]
PageQuery = Annotated[int, Query(ge=1, le=100_000, description="1-based page")]
PerPageQuery = Annotated[int, Query(ge=1, le=MAX_PER_PAGE, description="items per page")]


# -- bodies --------------------------------------------------------------------------------------


def _script(value: str | None) -> str | None:
    if value is not None and len(value.encode("utf-8", "surrogatepass")) > MAX_SCRIPT_BYTES:
        raise ValueError(f"at most {MAX_SCRIPT_BYTES // 1024} KiB")
    return value


class PublishIn(BaseModel):
    """A plugin to publish or update; omitted fields keep their values (the seed's fields, plus
    ``server_script``: the lifecycle hooks and RPC ``endpoints`` run on the server)."""

    model_config = ConfigDict(extra="ignore")
    name: str = Field(
        min_length=1,
        max_length=64,
        pattern=PLUGIN_NAME_PATTERN,
        description="unique kebab-case identifier, e.g. streak-counter",
    )
    display_name: str | None = Field(
        default=None, min_length=1, max_length=MAX_DISPLAY_NAME, description="required at first"
    )
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION)
    version: str | None = Field(
        default=None,
        max_length=32,
        pattern=r"^[0-9][0-9A-Za-z.+-]*$",
        description="semver string (default 0.1.0)",
    )
    icon: str | None = Field(default=None, min_length=1, max_length=16, description="an emoji")
    widget_type: WidgetType | None = None
    repository: str | None = Field(
        default=None, max_length=500, description='an http(s) URL; "" clears it'
    )
    script: str | None = Field(
        default=None, description="the widget, run in the user's browser (at most 256 KiB)"
    )
    server_script: str | None = Field(
        default=None, description="lifecycle hooks and RPC endpoints, run on the server (256 KiB)"
    )
    _text = field_validator("display_name", "description", "icon")(plain_text)
    _repository = field_validator("repository")(check_website)
    _scripts = field_validator("script", "server_script")(_script)

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value in RESERVED_NAMES:
            raise ValueError("this name is reserved")
        return value

    @field_validator("display_name", "icon")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value:
            raise ValueError("must not be blank")
        return value


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    rating: int = Field(ge=1, le=5, description="1 to 5 stars")
    comment: str = Field(default="", max_length=MAX_TEXT)
    _text = field_validator("comment")(plain_text)


class ReportIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    reason: str = Field(min_length=1, max_length=MAX_TEXT, description="what is wrong with it")
    _text = field_validator("reason")(plain_text)

    @field_validator("reason")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value:
            raise ValueError("must not be blank")
        return value


class ModerationIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    reason: str = Field(default="", max_length=MAX_TEXT)
    _text = field_validator("reason")(plain_text)


# -- views ---------------------------------------------------------------------------------------


def _author(directory: AccountDirectory, user_id: str) -> str | None:
    user = directory.state.users.get(user_id)
    return user.username if user is not None else None


def card(
    catalog: PluginCatalog, directory: AccountDirectory, plugin: StorePlugin
) -> dict[str, Any]:
    """A plugin as the store lists it."""
    rating, reviews = catalog.rating(plugin.name)
    return {
        "name": plugin.name,
        "display_name": plugin.display_name,
        "description": plugin.description,
        "version": plugin.version,
        "icon": plugin.icon,
        "widget_type": plugin.widget_type,
        "repository": plugin.repository or None,
        "author": _author(directory, plugin.author_id),
        "install_count": catalog.install_count(plugin.name),
        "rating": round(rating, 2) if rating is not None else None,
        "review_count": reviews,
        "created_at": iso(plugin.created_at),
        "updated_at": iso(plugin.updated_at),
    }


def _moderation(plugin: StorePlugin) -> dict[str, Any]:
    return {"banned": plugin.banned, "ban_reason": plugin.ban_reason or None}


def detail(
    catalog: PluginCatalog,
    directory: AccountDirectory,
    plugin: StorePlugin,
    *,
    viewer: Principal | None,
    moderator: bool,
) -> dict[str, Any]:
    view = card(catalog, directory, plugin)
    view["versions"] = [
        {"version": v.version, "published_at": iso(v.published_at)}
        for v in reversed(plugin.versions)
    ]
    view["script"] = plugin.script
    view["server_script"] = plugin.server_script
    view["installed"] = (
        catalog.install(viewer.user.user_id, plugin.name) is not None if viewer else None
    )
    if moderator:
        view |= _moderation(plugin)
    return view


# -- helpers -------------------------------------------------------------------------------------


def _unknown(name: str) -> ApiError:
    return ApiError(404, f"no plugin named {name!r} in the store")


def _banned(plugin: StorePlugin) -> ApiError:
    reason = f": {plugin.ban_reason}" if plugin.ban_reason else ""
    return ApiError(403, f"plugin {plugin.name!r} is banned{reason}", code="plugin_banned")


async def _known(directory: AccountDirectory, name: str) -> StorePlugin:
    """The plugin (after a sync when this process has not seen it yet); 404 unknown."""
    plugin = directory.plugins.plugin(name)
    if plugin is None:
        await directory.sync()
        plugin = directory.plugins.plugin(name)
    if plugin is None:
        raise _unknown(name)
    return plugin


async def _listed(directory: AccountDirectory, name: str) -> StorePlugin:
    """The plugin if it is not banned: 404 unknown, 403 banned."""
    plugin = await _known(directory, name)
    if plugin.banned:
        raise _banned(plugin)
    return plugin


def _refused_again(directory: AccountDirectory, name: str) -> ApiError:
    """Why the log's order refused a write about ``name``: the catalog as it now is."""
    plugin = directory.plugins.plugin(name)
    if plugin is None:
        return _unknown(name)
    if plugin.banned:
        return _banned(plugin)
    return ApiError(409, f"plugin {name!r} changed meanwhile; try again", code="conflict")


def _require_admin(principal: Principal, services: PluginServices) -> None:
    if not services.policy.is_admin(principal.user.username):
        raise ApiError(403, "only the store's admins (CODETRACKR_ADMINS) may moderate plugins")


async def _delete_plugin_data(services: PluginServices, name: str, user_id: str) -> int:
    try:
        return await services.executor.kv.delete_plugin_user(name, user_id)
    except KeyValueUnavailable:
        _log.warning(
            "could not delete the key-value data of %s for %s", name, user_id, exc_info=True
        )
        raise ApiError(
            503,
            "the plugin's stored data could not be deleted; send the same request again",
            headers={"Retry-After": "5"},
        ) from None


def _now() -> float:
    return time.time()


# -- publishing ----------------------------------------------------------------------------------


@router.post(
    "/api/v1/store/publish",
    summary="Publish a plugin, or update your own (upsert by name)",
    status_code=200,
    responses={
        201: {"description": "Published for the first time"},
        **error_responses(400, 401, 403, 409, 413, 503),
    },
    openapi_extra=json_body(PublishIn),
)
async def publish(
    request: Request,
    response: Response,
    principal: Writer,
    directory: Directory,
    services: Plugins,
) -> dict[str, Any]:
    me = principal.user
    body = await parse(request, PublishIn, limit=PUBLISH_BODY_LIMIT)
    await directory.sync()
    current = directory.plugins.plugin(body.name)
    refusal = publish_refusal(
        user_id=me.user_id,
        identity_provider=me.identity_provider,
        setting=services.policy.publish,
        current=current,
        display_name=body.display_name,
    )
    if refusal is not None:
        raise refusal
    if body.server_script:
        failure = await services.executor.check(body.name, body.server_script, me.user_id)
        if failure is not None:
            raise ApiError(
                400,
                f"invalid server_script: {failure.message}",
                code="invalid_server_script",
                details={"kind": failure.kind.value, "fields": {"server_script": failure.message}},
            )
    event = PluginPublished(
        event_id=new_event_id(),
        user_id=me.user_id,
        occurred_at=_now(),
        name=body.name,
        display_name=body.display_name,
        description=body.description,
        plugin_version=body.version,
        icon=body.icon,
        widget_type=body.widget_type,
        repository=body.repository,
        script=body.script,
        server_script=body.server_script,
    )
    if not await directory.record(event):
        now = directory.plugins.plugin(body.name)
        raise publish_refusal(
            user_id=me.user_id,
            identity_provider=me.identity_provider,
            setting=services.policy.publish,
            current=now,
            display_name=body.display_name,
        ) or ApiError(409, f"plugin {body.name!r} changed meanwhile; try again", code="conflict")
    plugin = directory.plugins.plugin(body.name)
    assert plugin is not None
    if plugin.plugin_id == event.event_id:
        response.status_code = 201
    return {
        "plugin": detail(directory.plugins, directory, plugin, viewer=principal, moderator=False)
    }


# -- browsing ------------------------------------------------------------------------------------


@router.get(
    "/api/v1/store",
    summary="The plugin store (no credentials): search, sort and page the listed plugins",
    responses=error_responses(400),
)
async def store(
    directory: Directory,
    q: Annotated[str | None, Query(max_length=100, description="search text")] = None,
    sort: Annotated[Literal["installs", "rating", "new"], Query()] = "installs",
    page: PageQuery = 1,
    per_page: PerPageQuery = 20,
) -> dict[str, Any]:
    catalog = directory.plugins
    found = browse(catalog, q, sort)
    return {
        "plugins": [card(catalog, directory, p) for p in page_of(found, page, per_page)],
        "total": len(found),
        "page": page,
        "per_page": per_page,
        "total_pages": total_pages(len(found), per_page),
    }


@router.get(
    "/api/v1/store/installed",
    summary="Your installed plugins with the scripts a dashboard loads",
    responses=error_responses(401, 503),
)
async def installed(principal: Reader, directory: Directory) -> dict[str, Any]:
    catalog = directory.plugins
    rows = []
    for install in catalog.installed_of(principal.user.user_id):
        plugin = catalog.plugin(install.name)
        if plugin is None or plugin.banned:
            continue
        rows.append(
            card(catalog, directory, plugin)
            | {
                "script": plugin.script,
                "installed_at": iso(install.installed_at),
                "suspended": install.suspended,
                "suspended_reason": install.suspended_reason,
            }
        )
    return {"plugins": rows, "total": len(rows)}


@router.get(
    "/api/v1/store/{name}",
    summary="One plugin: its card, versions and scripts (no credentials)",
    responses=error_responses(404),
)
async def plugin_detail(
    request: Request, name: PluginNamePath, directory: Directory
) -> dict[str, Any]:
    parts = api_parts(request)
    viewer = await parts.guards.read(request) if parts.is_authenticated(request) else None
    moderator = (
        viewer is not None
        and parts.plugins is not None
        and parts.plugins.policy.is_admin(viewer.user.username)
    )
    plugin = await _known(directory, name)
    if plugin.banned and not (
        moderator or (viewer is not None and viewer.user.user_id == plugin.author_id)
    ):
        raise _unknown(name)
    mine = viewer is not None and viewer.user.user_id == plugin.author_id
    return {
        "plugin": detail(
            directory.plugins, directory, plugin, viewer=viewer, moderator=moderator or mine
        )
    }


# -- installing ----------------------------------------------------------------------------------


@router.post(
    "/api/v1/store/install/{name}",
    summary="Install a plugin (201), or resume a suspended install (200)",
    status_code=200,
    responses={201: {"description": "Installed"}, **error_responses(401, 403, 404, 503)},
)
async def install(
    name: PluginNamePath, response: Response, principal: Writer, directory: Directory
) -> dict[str, Any]:
    me = principal.user
    await _listed(directory, name)
    event = PluginInstalled(
        event_id=new_event_id(), user_id=me.user_id, occurred_at=_now(), name=name
    )
    if not await directory.record(event):
        raise _refused_again(directory, name)
    done = directory.plugins.install(me.user_id, name)
    assert done is not None
    if done.install_id == event.event_id:
        response.status_code = 201
    return {
        "status": "installed",
        "name": name,
        "installed_at": iso(done.installed_at),
        "suspended": done.suspended,
    }


@router.delete(
    "/api/v1/store/uninstall/{name}",
    summary="Uninstall a plugin; its stored data of yours goes with it",
    responses=error_responses(401, 403, 404, 503),
)
async def uninstall(
    name: PluginNamePath, principal: Writer, directory: Directory, services: Plugins
) -> dict[str, Any]:
    me = principal.user
    if directory.plugins.install(me.user_id, name) is None:
        await directory.sync()
    if directory.plugins.install(me.user_id, name) is None:
        # Not installed; data an earlier uninstall could not delete goes now (a retry).
        if not await _delete_plugin_data(services, name, me.user_id):
            raise ApiError(404, f"plugin {name!r} is not installed", code="not_installed")
        return {"status": "uninstalled", "name": name}
    # Refused only when an uninstall of the same install came first: the outcome is the same.
    await directory.record(
        PluginUninstalled(
            event_id=new_event_id(), user_id=me.user_id, occurred_at=_now(), name=name
        )
    )
    await _delete_plugin_data(services, name, me.user_id)
    return {"status": "uninstalled", "name": name}


# -- reviews and reports -------------------------------------------------------------------------


def _review_view(directory: AccountDirectory, review: Any) -> dict[str, Any]:
    return {
        "username": _author(directory, review.user_id),
        "rating": review.rating,
        "comment": review.comment,
        "created_at": iso(review.created_at),
        "updated_at": iso(review.updated_at),
    }


@router.post(
    "/api/v1/store/{name}/reviews",
    summary="Rate a plugin 1-5 with a comment; posting again edits your review",
    status_code=200,
    responses={201: {"description": "Your first review"}, **error_responses(400, 401, 403, 404)},
    openapi_extra=json_body(ReviewIn),
)
async def review(
    request: Request,
    response: Response,
    name: PluginNamePath,
    principal: Writer,
    directory: Directory,
) -> dict[str, Any]:
    me = principal.user
    body = await parse(request, ReviewIn)
    plugin = await _listed(directory, name)
    if plugin.author_id == me.user_id:
        raise ApiError(400, "you cannot review your own plugin", code="validation_error")
    event = PluginReviewed(
        event_id=new_event_id(),
        user_id=me.user_id,
        occurred_at=_now(),
        name=name,
        rating=body.rating,
        comment=body.comment,
    )
    if not await directory.record(event):
        raise _refused_again(directory, name)
    catalog = directory.plugins
    mine = catalog.reviews[name][me.user_id]
    if mine.review_id == event.event_id:
        response.status_code = 201
    rating, count = catalog.rating(name)
    return {
        "review": _review_view(directory, mine),
        "rating": round(rating, 2) if rating is not None else None,
        "review_count": count,
    }


@router.get(
    "/api/v1/store/{name}/reviews",
    summary="A plugin's reviews, newest first (no credentials)",
    responses=error_responses(404),
)
async def reviews(
    name: PluginNamePath,
    directory: Directory,
    page: PageQuery = 1,
    per_page: PerPageQuery = 20,
) -> dict[str, Any]:
    if (await _known(directory, name)).banned:
        raise _unknown(name)
    catalog = directory.plugins
    ordered = sorted(
        catalog.reviews.get(name, {}).values(), key=lambda r: (-r.updated_at, r.review_id)
    )
    rating, count = catalog.rating(name)
    return {
        "reviews": [_review_view(directory, r) for r in page_of(ordered, page, per_page)],
        "rating": round(rating, 2) if rating is not None else None,
        "total": count,
        "page": page,
        "per_page": per_page,
        "total_pages": total_pages(count, per_page),
    }


@router.post(
    "/api/v1/store/{name}/report",
    summary="Report a plugin to the store's admins",
    status_code=201,
    responses=error_responses(400, 401, 403, 404, 503),
    openapi_extra=json_body(ReportIn),
)
async def report(
    request: Request, name: PluginNamePath, principal: Writer, directory: Directory
) -> dict[str, Any]:
    body = await parse(request, ReportIn)
    await _listed(directory, name)
    event = PluginReported(
        event_id=new_event_id(),
        user_id=principal.user.user_id,
        occurred_at=_now(),
        name=name,
        reason=body.reason,
    )
    if not await directory.record(event):
        raise _refused_again(directory, name)
    return {"status": "reported", "name": name}


# -- moderation ----------------------------------------------------------------------------------


async def _moderate(
    request: Request,
    name: str,
    action: Literal["ban", "unban", "delete"],
    principal: Principal,
    directory: AccountDirectory,
    services: PluginServices,
) -> StorePlugin:
    _require_admin(principal, services)
    body = await parse(request, ModerationIn, optional=True)
    plugin = await _known(directory, name)
    event = PluginModerated(
        event_id=new_event_id(),
        user_id=principal.user.user_id,
        occurred_at=_now(),
        name=name,
        action=action,
        reason=body.reason,
    )
    if not await directory.record(event):
        raise _unknown(name)
    return plugin


@router.post(
    "/api/v1/admin/store/{name}/ban",
    summary="Ban a plugin: it stops loading and running for everyone at once (admins)",
    responses=error_responses(401, 403, 404, 503),
    openapi_extra=json_body(ModerationIn, required=False),
)
async def ban(
    request: Request,
    name: PluginNamePath,
    principal: Writer,
    directory: Directory,
    services: Plugins,
) -> dict[str, Any]:
    await _moderate(request, name, "ban", principal, directory, services)
    plugin = directory.plugins.plugin(name)
    assert plugin is not None
    return {"status": "banned", "name": name, "ban_reason": plugin.ban_reason or None}


@router.post(
    "/api/v1/admin/store/{name}/unban",
    summary="Lift a plugin's ban (admins)",
    responses=error_responses(401, 403, 404, 503),
)
async def unban(
    request: Request,
    name: PluginNamePath,
    principal: Writer,
    directory: Directory,
    services: Plugins,
) -> dict[str, Any]:
    await _moderate(request, name, "unban", principal, directory, services)
    return {"status": "unbanned", "name": name}


@router.delete(
    "/api/v1/admin/store/{name}",
    summary="Delete a plugin with its installs, reviews, reports and stored data (admins)",
    responses=error_responses(401, 403, 404, 503),
)
async def delete(
    request: Request,
    name: PluginNamePath,
    principal: Writer,
    directory: Directory,
    services: Plugins,
) -> dict[str, Any]:
    _require_admin(principal, services)
    await _known(directory, name)
    # The installs go with the plugin; so does each installer's key-value data.
    installers = set(directory.plugins.installers.get(name, ()))
    await _moderate(request, name, "delete", principal, directory, services)
    for user_id in sorted(installers):
        await _delete_plugin_data(services, name, user_id)
    return {"status": "deleted", "name": name, "installs_removed": len(installers)}


@router.get(
    "/api/v1/admin/store/reports",
    summary="Reports of plugins, newest first (admins)",
    responses=error_responses(401, 403),
)
async def reports(
    principal: Reader,
    directory: Directory,
    services: Plugins,
    page: PageQuery = 1,
    per_page: PerPageQuery = 50,
) -> dict[str, Any]:
    _require_admin(principal, services)
    catalog = directory.plugins
    everything = sorted(
        (r for rows in catalog.reports.values() for r in rows),
        key=lambda r: (-r.reported_at, r.report_id),
    )
    rows = []
    for found in page_of(everything, page, per_page):
        plugin = catalog.plugin(found.name)
        rows.append(
            {
                "id": found.report_id,
                "name": found.name,
                "reason": found.reason,
                "reporter": _author(directory, found.user_id),
                "reported_at": iso(found.reported_at),
                "banned": plugin.banned if plugin is not None else None,
            }
        )
    return {
        "reports": rows,
        "total": len(everything),
        "page": page,
        "per_page": per_page,
        "total_pages": total_pages(len(everything), per_page),
    }
