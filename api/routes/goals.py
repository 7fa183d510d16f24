"""Goals over HTTP: create, list, read, change and delete your goals, and their analytics.

Declared relative to the WakaTime base like the rest of :mod:`api.routes.wakatime` (which
includes this router), so they answer at ``/api/v1/users/current/goals`` (Chronova's path and
WakaTime's) and under the compatibility aliases. ``{user}`` is ``current`` or your own username;
anyone else's is a 403, and another user's goal id is the same 404 as an id nobody has.

Every change is an event on the accounts topic (``GoalCreated``, ``GoalUpdated``,
``GoalDeleted``), answered once the log's order decided it. Progress is read from the daily
rows in your timezone with :mod:`projections.goals` (shapes: :mod:`api.rules.goals`).
"""

# No `from __future__ import annotations` here: FastAPI must resolve the dependency aliases
# when the routes are declared.

import time
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from accounts.directory import AccountDirectory, new_event_id
from accounts.goals import MAX_GOALS_PER_USER, Goal
from accounts.state import User
from api.deps import Directory, Reader, Writer
from api.routes.account_forms import json_body, parse, plain_text
from api.routes.store_calls import blocking
from api.routes.wakatime_deps import Store, own
from api.rules.goals import (
    analytics_view,
    checked_scope,
    checked_target,
    earliest_needed,
    goal_view,
    invalid,
)
from api.rules.stats import today_in
from http_edge.errors import ApiError, error_responses
from projections.daily import DailyRow
from projections.ports import WakaTimeStore
from schemas.events import MAX_GOAL_SECONDS, GoalCreated, GoalDeleted, GoalUpdated

router = APIRouter(tags=["goals"])

_PERIODS = {"daily": "daily", "weekly": "weekly", "day": "daily", "week": "weekly"}


class GoalIn(BaseModel):
    """A goal: Chronova's fields (``type``, ``target_seconds``, one of ``language``,
    ``project``, ``editor``, ``category``) and ``kind``; WakaTime's ``delta``, ``seconds`` and
    ``is_inverse`` are accepted for the same things. On a change, omitted fields keep their
    values; naming any scope field (``null`` included) replaces the scope."""

    model_config = ConfigDict(extra="ignore")
    type: Literal["daily", "weekly"] | None = Field(default=None, description="the period")
    delta: Literal["day", "week"] | None = Field(default=None, description="WakaTime's period")
    target_seconds: int | None = Field(default=None, ge=1, le=MAX_GOAL_SECONDS)
    seconds: int | None = Field(default=None, ge=1, le=MAX_GOAL_SECONDS, description="WakaTime's")
    kind: Literal["at_least", "at_most"] | None = None
    is_inverse: bool | None = Field(default=None, description="WakaTime's: true is at_most")
    title: str | None = Field(default=None, max_length=200)
    language: str | None = Field(default=None, max_length=500)
    project: str | None = Field(default=None, max_length=500)
    editor: str | None = Field(default=None, max_length=500)
    category: str | None = Field(default=None, max_length=500)
    _text = field_validator("title", "language", "project", "editor", "category")(plain_text)

    def period(self) -> Literal["daily", "weekly"] | None:
        if self.type is not None and self.delta is not None and _PERIODS[self.delta] != self.type:
            raise invalid("type", "type and delta disagree")
        chosen = self.type or (_PERIODS[self.delta] if self.delta else None)
        return "daily" if chosen == "daily" else "weekly" if chosen == "weekly" else None

    def target(self) -> int | None:
        if self.target_seconds is not None and self.seconds not in (None, self.target_seconds):
            raise invalid("target_seconds", "target_seconds and seconds disagree")
        return self.target_seconds if self.target_seconds is not None else self.seconds

    def goal_kind(self) -> Literal["at_least", "at_most"] | None:
        if self.is_inverse is None:
            return self.kind
        inverse: Literal["at_least", "at_most"] = "at_most" if self.is_inverse else "at_least"
        if self.kind is not None and inverse != self.kind:
            raise invalid("kind", "kind and is_inverse disagree")
        return inverse

    def scope_named(self) -> bool:
        return bool({"language", "project", "editor", "category"} & self.model_fields_set)

    def scope(self) -> tuple[str | None, str | None]:
        return checked_scope(
            {
                "language": self.language,
                "project": self.project,
                "editor": self.editor,
                "category": self.category,
            }
        )


def _now() -> float:
    return time.time()


def _owner(user: User) -> dict[str, Any]:
    return {
        "id": user.user_id,
        "username": user.username,
        "display_name": user.display_name or user.username,
    }


def _too_many() -> ApiError:
    return ApiError(409, f"you have {MAX_GOALS_PER_USER} goals; delete one first", code="conflict")


def _unknown(goal_id: str) -> ApiError:
    return ApiError(404, f"no goal {goal_id!r} of yours", code="not_found")


async def _rows(store: WakaTimeStore, user: User, goals: list[Goal]) -> list[DailyRow]:
    today = today_in(user.timezone)
    first = earliest_needed(goals, user.timezone, today)
    rows: list[DailyRow] = await blocking(store.daily_rows, user.user_id, first, today)
    return rows


async def _view(store: WakaTimeStore, user: User, goal: Goal) -> dict[str, Any]:
    rows = await _rows(store, user, [goal])
    return goal_view(
        goal, rows, tz=user.timezone, today=today_in(user.timezone), owner=_owner(user)
    )


def _mine(directory: AccountDirectory, user: User, goal_id: str) -> Goal:
    goal = directory.goals.owned(user.user_id, goal_id)
    if goal is None:
        raise _unknown(goal_id)
    return goal


@router.get(
    "/users/{user}/goals",
    summary="Your goals with the progress of their current period (Chronova's and WakaTime's)",
    responses=error_responses(403),
)
async def list_goals(
    user: str, principal: Reader, directory: Directory, store: Store
) -> dict[str, Any]:
    me = own(user, principal)
    goals = directory.goals.of(me.user_id)
    rows = await _rows(store, me, goals) if goals else []
    today = today_in(me.timezone)
    data = [goal_view(g, rows, tz=me.timezone, today=today, owner=_owner(me)) for g in goals]
    return {"data": data, "total": len(data), "total_pages": 1 if data else 0}


@router.post(
    "/users/{user}/goals",
    summary="Set a daily or weekly goal, at least or at most, optionally for one scope",
    status_code=201,
    responses=error_responses(400, 403, 409, 503),
    openapi_extra=json_body(GoalIn),
)
async def create_goal(
    request: Request, user: str, principal: Writer, directory: Directory, store: Store
) -> dict[str, Any]:
    me = own(user, principal)
    body = await parse(request, GoalIn)
    period = body.period()
    if period is None:
        raise invalid("type", "required: daily or weekly")
    target = body.target()
    if target is None:
        raise invalid("target_seconds", "required: seconds per period")
    scope, value = body.scope()
    if len(directory.goals.of(me.user_id)) >= MAX_GOALS_PER_USER:
        raise _too_many()
    event = GoalCreated(
        event_id=new_event_id(),
        user_id=me.user_id,
        occurred_at=_now(),
        goal_id=str(uuid.uuid4()),
        period=period,
        kind=body.goal_kind() or "at_least",
        target_seconds=checked_target(period, target),
        title=body.title or "",
        scope=scope,
        scope_value=value,
    )
    if not await directory.record(event):
        raise _too_many()  # a concurrent create took the last place
    return {"data": await _view(store, me, _mine(directory, me, event.goal_id))}


@router.get(
    "/users/{user}/goals/analytics",
    summary="Streaks and achievement ratios per week and month of each of your goals",
    responses=error_responses(403),
)
async def goal_analytics(
    user: str,
    principal: Reader,
    directory: Directory,
    store: Store,
    weeks: Annotated[int, Query(ge=1, le=104, description="latest weeks listed")] = 12,
    months: Annotated[int, Query(ge=1, le=24, description="latest months listed")] = 6,
) -> dict[str, Any]:
    me = own(user, principal)
    goals = directory.goals.of(me.user_id)
    rows = await _rows(store, me, goals) if goals else []
    today = today_in(me.timezone)
    views = [
        analytics_view(g, rows, tz=me.timezone, today=today, weeks=weeks, months=months)
        for g in goals
    ]
    statuses = [v["current_period"]["status"] for v in views]
    return {
        "data": {
            "timezone": me.timezone,
            "today": today.isoformat(),
            "total_goals": len(views),
            "current_periods": {
                status: statuses.count(status) for status in ("success", "pending", "fail")
            },
            "best_current_streak": max((v["streak"]["current"] for v in views), default=0),
            "goals": views,
        }
    }


@router.get(
    "/users/{user}/goals/{goal_id}",
    summary="One of your goals with its chart (WakaTime's shape, Chronova's fields)",
    responses=error_responses(403, 404),
)
async def read_goal(
    user: str, goal_id: str, principal: Reader, directory: Directory, store: Store
) -> dict[str, Any]:
    me = own(user, principal)
    return {"data": await _view(store, me, _mine(directory, me, goal_id))}


@router.patch(
    "/users/{user}/goals/{goal_id}",
    summary="Change one of your goals (omitted fields keep their values)",
    responses=error_responses(400, 403, 404, 503),
    openapi_extra=json_body(GoalIn),
)
@router.put(
    "/users/{user}/goals/{goal_id}",
    summary="Change one of your goals (as PATCH)",
    responses=error_responses(400, 403, 404, 503),
    openapi_extra=json_body(GoalIn),
)
async def update_goal(
    request: Request,
    user: str,
    goal_id: str,
    principal: Writer,
    directory: Directory,
    store: Store,
) -> dict[str, Any]:
    me = own(user, principal)
    current = _mine(directory, me, goal_id)
    body = await parse(request, GoalIn)
    period = body.period()
    target = body.target()
    if target is not None or period is not None:
        checked_target(period or current.period, target or current.target_seconds)
    change_scope = body.scope_named()
    scope, value = body.scope() if change_scope else (None, None)
    event = GoalUpdated(
        event_id=new_event_id(),
        user_id=me.user_id,
        occurred_at=_now(),
        goal_id=goal_id,
        period=period,
        kind=body.goal_kind(),
        target_seconds=target,
        title=body.title,
        change_scope=change_scope,
        scope=scope,
        scope_value=value,
    )
    if not await directory.record(event):
        raise _unknown(goal_id)  # deleted meanwhile
    return {"data": await _view(store, me, _mine(directory, me, goal_id))}


@router.delete(
    "/users/{user}/goals/{goal_id}",
    summary="Delete one of your goals",
    status_code=204,
    response_class=Response,
    responses=error_responses(403, 404, 503),
)
async def delete_goal(user: str, goal_id: str, principal: Writer, directory: Directory) -> Response:
    me = own(user, principal)
    _mine(directory, me, goal_id)
    deleted = GoalDeleted(
        event_id=new_event_id(), user_id=me.user_id, occurred_at=_now(), goal_id=goal_id
    )
    if not await directory.record(deleted):
        raise _unknown(goal_id)  # deleted meanwhile
    return Response(status_code=204)
