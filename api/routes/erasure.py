"""Deleting your account, or your activity of a time range.

Both need a login token (not an API key: a key pasted into an editor must not be able to wipe
an account) and are events on the log like every other change:

* ``DELETE /api/v1/user/me`` (and Chronova's ``DELETE /api/v1/users/current``), with
  ``{"confirm": "<your username>"}``: appends :class:`AccountDeleted` (the account, its keys,
  sessions, follows and messages are gone from the answer on, in every process) together with a
  full :class:`UserDataErased` on the heartbeats topic, behind every heartbeat of the user.
* ``POST /api/v1/user/data/delete`` with ``{"start", "end"}``: appends a :class:`UserDataErased`
  of that range.

Both answer 202: the event is durably on the log and the account is already gone, while the
projections (and, on the embedded log, the log's own records) are erased by the projector a
moment later (``docs/accounts.md``, "Deleting your data").
"""

# No `from __future__ import annotations` here: FastAPI must resolve the locally defined
# dependency alias (`LoggedIn`) when the routes are declared.

import logging
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta, tzinfo
from datetime import time as clock
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, field_validator, model_validator

from accounts.directory import new_event_id
from api.deps import Directory, Log, LoggedIn, api_parts
from api.routes.account_forms import iso, json_body, parse
from eventlog.port import Record
from http_edge.errors import ApiError, error_responses
from plugin_host.host import KeyValue
from plugins_runtime.kv import KeyValueUnavailable
from schemas.events import HEARTBEATS_TOPIC, AccountDeleted, UserDataErased, encode_event

_log = logging.getLogger(__name__)

# What the projections can hold (a ClickHouse Date), with a day of margin for timezones.
_FIRST_DAY, _LAST_DAY = date(1970, 1, 2), date(2149, 5, 31)


class DeleteAccountIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    confirm: str


class DeleteRangeIn(BaseModel):
    """A range of your activity: dates are whole local days in your profile's timezone (``end``
    included); times with an offset are exact instants (``end`` excluded)."""

    model_config = ConfigDict(extra="forbid")

    start: AwareDatetime | date
    end: AwareDatetime | date

    @field_validator("start", "end")
    @classmethod
    def _in_range(cls, value: datetime | date) -> datetime | date:
        day = value.date() if isinstance(value, datetime) else value
        if not _FIRST_DAY <= day <= _LAST_DAY:
            raise ValueError(f"must be between {_FIRST_DAY} and {_LAST_DAY}")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> "DeleteRangeIn":
        # Compared as instants in UTC; the exact bounds are computed in the user's timezone.
        if _instant(self.start, UTC, end=False) >= _instant(self.end, UTC, end=True):
            raise ValueError("start must be before end")
        return self

    def bounds(self, timezone: str) -> tuple[float, float]:
        tz = ZoneInfo(timezone)
        return _instant(self.start, tz, end=False), _instant(self.end, tz, end=True)


def _instant(value: datetime | date, tz: tzinfo, *, end: bool) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    day = value + timedelta(days=1) if end else value
    return datetime.combine(day, clock(), tzinfo=tz).timestamp()


def _marker(user_id: str, start: float | None = None, end: float | None = None) -> Record:
    erasure = UserDataErased(
        event_id=new_event_id(), user_id=user_id, occurred_at=time.time(), start=start, end=end
    )
    return Record(HEARTBEATS_TOPIC, user_id.encode(), encode_event(erasure))


router = APIRouter(tags=["accounts"])


async def delete_account(
    request: Request, principal: LoggedIn, directory: Directory
) -> JSONResponse:
    body = await parse(request, DeleteAccountIn)
    user = principal.user
    if body.confirm != user.username:
        raise ApiError(
            400,
            "to delete your account, send your username as `confirm`",
            code="confirmation_required",
            details={"fields": {"confirm": "must equal your username"}},
        )
    # The plugins the user published go with the account, and so does what they kept for
    # their other users (taken before the deletion forgets who installed them).
    doomed = [
        (plugin.name, sorted(directory.plugins.installers.get(plugin.name, ())))
        for plugin in directory.plugins.published_by(user.user_id)
    ]
    event = AccountDeleted(event_id=new_event_id(), user_id=user.user_id, occurred_at=time.time())
    await directory.record(event, also=[_marker(user.user_id)])
    plugins = api_parts(request).plugins
    if plugins is not None:
        await forget_plugin_data(plugins.executor.kv, user.user_id, doomed)
    return JSONResponse(
        {
            "data": {
                "id": user.user_id,
                "username": user.username,
                "status": "deleted",
                "message": "account deleted; its data is being erased from every projection",
            }
        },
        status_code=202,
    )


async def forget_plugin_data(
    kv: KeyValue, user_id: str, doomed: Sequence[tuple[str, Sequence[str]]]
) -> None:
    """Delete the user's key-value data of every plugin, and every user's data of the plugins
    ``doomed`` (name, installers). The account is already gone: a failure here is logged, and
    the hook processor deletes the user's data again when it reads the deletion."""
    try:
        await kv.delete_user(user_id)
        for name, installers in doomed:
            for installer in installers:
                await kv.delete_plugin_user(name, installer)
    except KeyValueUnavailable:
        _log.warning("plugin data of deleted account %s not erased yet", user_id, exc_info=True)


for _path, _summary in (
    ("/api/v1/user/me", "Delete your account and every piece of data it holds"),
    ("/api/v1/users/current", "Chronova: delete your account and all of its data"),
):
    router.add_api_route(
        _path,
        delete_account,
        methods=["DELETE"],
        status_code=202,
        summary=_summary,
        responses=error_responses(400, 401, 413, 503),
        openapi_extra=json_body(DeleteAccountIn),
    )


@router.post(
    "/api/v1/user/data/delete",
    status_code=202,
    summary="Erase your activity of a time range from every projection and the log",
    responses=error_responses(400, 401, 413, 503),
    openapi_extra=json_body(DeleteRangeIn),
)
async def delete_range(request: Request, principal: LoggedIn, log: Log) -> JSONResponse:
    body = await parse(request, DeleteRangeIn)
    start, end = body.bounds(principal.user.timezone)
    await log.append([_marker(principal.user.user_id, start, end)])
    return JSONResponse(
        {"data": {"start": iso(start), "end": iso(end), "status": "erasing"}},
        status_code=202,
    )
