"""Public profiles, following, and hire inquiries.

* ``GET /api/v1/user/profile/{username}``: a public profile, no credentials. Each stats section
  honours its ``profile_show_*`` switch (a hidden section is ``0`` or ``[]``): ``weekly_seconds``
  (``profile_show_activity``, the last 7 local days), ``streak_days`` (``profile_show_streak``),
  ``languages`` and ``projects`` (``profile_show_languages`` / ``_projects``, the last 30 days).
  ``plugins`` (``profile_show_plugins``): the plugins the user published to the store and that
  are not banned, as the store lists them, by name.
* ``POST /api/v1/user/follow/{username}``, ``DELETE /api/v1/user/unfollow/{username}``,
  ``GET /api/v1/user/following/{username}``; ``GET /api/v1/user/following`` and ``/followers``
  list public accounts.
* ``POST /api/v1/user/contact/{username}``: a hire inquiry to a public profile available for
  hire; ``GET /api/v1/user/contact``: the inquiries you received, newest first.

A private profile and a name nobody has get one identical 404, looked up without a sync of the
account log, so neither the answer nor its timing tells them apart. Following yourself or
writing to yourself is a 400.
"""

# No `from __future__ import annotations` here: FastAPI must resolve the locally defined
# dependency aliases when the routes are declared.

import time
from datetime import timedelta
from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, Path, Request

from accounts.directory import AccountDirectory, new_event_id
from accounts.state import User
from api.deps import Directory, Reader, Writer, Writes, api_parts
from api.routes.account_forms import ContactIn, iso, json_body, parse
from api.routes.plugin_store import card
from api.routes.store_calls import blocking
from api.rules.projects import naming_of
from api.rules.stats import ranked, streaks, sum_breakdown, today_in
from http_edge.errors import ApiError, error_responses
from projections.daily import DailyRow
from projections.ports import ProfileStore
from schemas.events import ContactMessageSent, UserFollowed, UserUnfollowed

WEEK_DAYS = 7
TOP_DAYS = 30
TOP_LANGUAGES = 8
TOP_PROJECTS = 6
_NOT_FOUND = "no such user, or the profile is private"


def _store(request: Request) -> ProfileStore:
    return cast(ProfileStore, api_parts(request).store)


Store = Annotated[ProfileStore, Depends(_store)]
Username = Annotated[str, Path(max_length=100, description="a user's username")]
router = APIRouter(tags=["profiles"])


def _self(action: str) -> ApiError:
    return ApiError(400, f"you cannot {action} yourself", code="validation_error")


async def public_user(directory: AccountDirectory, username: str) -> User:
    found = await directory.user_by_username(username, fresh=False)
    if found is None or not found.is_public:
        raise ApiError(404, _NOT_FOUND)
    return found


def public_summary(directory: AccountDirectory, user_id: str) -> dict[str, Any] | None:
    user = directory.state.users.get(user_id)
    if user is None or not user.is_public:
        return None
    return {
        "username": user.username,
        "display_name": user.display_name,
        "avatar_url": user.avatar_url,
    }


@router.get(
    "/api/v1/user/profile/{username}",
    summary="A public profile; each stats section only if the user shows it",
    responses=error_responses(404, 503),
)
async def profile(username: Username, directory: Directory, store: Store) -> dict[str, Any]:
    user = await public_user(directory, username)
    today = today_in(user.timezone)
    week_start = today - timedelta(days=WEEK_DAYS - 1)
    shows_tops = user.profile_show_languages or user.profile_show_projects
    rows: list[DailyRow] = []
    if shows_tops or user.profile_show_activity:
        first = today - timedelta(days=(TOP_DAYS if shows_tops else WEEK_DAYS) - 1)
        stored = await blocking(store.daily_rows, user.user_id, first, today)
        rows = naming_of(user.project_aliases, user.project_labels).rows(stored)
    weekly = sum(row.total_seconds for row in rows if row.date >= week_start)
    streak = 0
    if user.profile_show_streak:
        streak, _ = streaks(await blocking(store.active_dates, user.user_id), today)

    def tops(dimension: str, label: str, limit: int) -> list[dict[str, Any]]:
        totals = ranked(sum_breakdown(rows, dimension))
        return [
            {label: name, "seconds": round(seconds)}
            for name, seconds in totals[:limit]
            if seconds > 0
        ]

    return {
        "username": user.username,
        "display_name": user.display_name,
        "avatar_url": user.avatar_url,
        "bio": user.bio,
        "website": user.website,
        "country": user.country,
        "plan": "free",
        "member_since": iso(user.created_at),
        "follower_count": len(directory.followers_of(user.user_id)),
        "following_count": len(directory.following_of(user.user_id)),
        "available_for_hire": user.available_for_hire,
        "show_languages": user.profile_show_languages,
        "show_projects": user.profile_show_projects,
        "show_activity": user.profile_show_activity,
        "show_plugins": user.profile_show_plugins,
        "show_streak": user.profile_show_streak,
        "weekly_seconds": round(weekly) if user.profile_show_activity else 0,
        "streak_days": streak,
        "languages": (
            tops("language", "language", TOP_LANGUAGES) if user.profile_show_languages else []
        ),
        "projects": (
            tops("project", "project", TOP_PROJECTS) if user.profile_show_projects else []
        ),
        "plugins": published(directory, user) if user.profile_show_plugins else [],
    }


def published(directory: AccountDirectory, user: User) -> list[dict[str, Any]]:
    """The store's cards of the plugins ``user`` published (banned ones left out), by name."""
    catalog = directory.plugins
    mine = sorted(catalog.published_by(user.user_id), key=lambda plugin: plugin.name)
    return [card(catalog, directory, plugin) for plugin in mine if not plugin.banned]


# ---- following ---------------------------------------------------------------------------


@router.post(
    "/api/v1/user/follow/{username}",
    summary="Follow a public user",
    responses=error_responses(400, 401, 403, 404, 503),
)
async def follow(
    username: Username, principal: Writer, directory: Directory, writes: Writes
) -> dict[str, Any]:
    me = principal.user
    if username.lower() == me.username.lower():
        raise _self("follow")
    target = await public_user(directory, username)
    if target.user_id not in directory.following_of(me.user_id):
        # Refused by the fold only when someone else's identical follow came first.
        await writes.record(
            UserFollowed(
                event_id=new_event_id(),
                user_id=me.user_id,
                occurred_at=time.time(),
                followed_user_id=target.user_id,
            )
        )
    return {"status": "following"}


@router.delete(
    "/api/v1/user/unfollow/{username}",
    summary="Stop following a user",
    responses=error_responses(400, 401, 403, 404, 503),
)
async def unfollow(
    username: Username, principal: Writer, directory: Directory, writes: Writes
) -> dict[str, Any]:
    me = principal.user
    if username.lower() == me.username.lower():
        raise _self("unfollow")
    found = await directory.user_by_username(username, fresh=False)
    followed = found is not None and found.user_id in directory.following_of(me.user_id)
    if not followed:
        # You may always unfollow whom you follow, even once their profile went private;
        # otherwise only public profiles are acknowledged.
        target = await public_user(directory, username)
        return {"status": "unfollowed", "username": target.username}
    assert found is not None
    await writes.record(
        UserUnfollowed(
            event_id=new_event_id(),
            user_id=me.user_id,
            occurred_at=time.time(),
            followed_user_id=found.user_id,
        )
    )
    return {"status": "unfollowed", "username": found.username}


@router.get(
    "/api/v1/user/following/{username}",
    summary="Whether you follow this user",
    responses=error_responses(401),
)
async def is_following(
    username: Username, principal: Reader, directory: Directory
) -> dict[str, Any]:
    found = await directory.user_by_username(username, fresh=False)
    mine = directory.following_of(principal.user.user_id)
    return {"following": found is not None and found.user_id in mine}


@router.get(
    "/api/v1/user/following",
    summary="The public users you follow",
    responses=error_responses(401),
)
async def following(principal: Reader, directory: Directory) -> dict[str, Any]:
    people = [
        public_summary(directory, uid) for uid in directory.following_of(principal.user.user_id)
    ]
    listed = sorted((p for p in people if p), key=lambda p: p["username"].lower())
    return {"following": listed, "total": len(listed)}


@router.get(
    "/api/v1/user/followers",
    summary="Your followers (public profiles listed; private ones only counted)",
    responses=error_responses(401),
)
async def followers(principal: Reader, directory: Directory) -> dict[str, Any]:
    ids = directory.followers_of(principal.user.user_id)
    people = [public_summary(directory, uid) for uid in ids]
    listed = sorted((p for p in people if p), key=lambda p: p["username"].lower())
    return {"followers": listed, "total": len(ids)}


# ---- hire inquiries --------------------------------------------------------------------


@router.post(
    "/api/v1/user/contact/{username}",
    summary="Send a hire inquiry to a public user available for hire",
    responses=error_responses(400, 401, 403, 404, 413, 503),
    openapi_extra=json_body(ContactIn),
)
async def contact(
    request: Request, username: Username, principal: Writer, directory: Directory, writes: Writes
) -> dict[str, Any]:
    me = principal.user
    if username.lower() == me.username.lower():
        raise _self("contact")
    body = await parse(request, ContactIn)
    target = await public_user(directory, username)
    if not target.available_for_hire:
        raise ApiError(404, _NOT_FOUND)
    sent = await writes.record(
        ContactMessageSent(
            event_id=new_event_id(),
            user_id=target.user_id,
            occurred_at=time.time(),
            message_id=new_event_id(),
            sender_user_id=me.user_id,
            sender_name=body.name,
            sender_email=body.email,
            message=body.message,
        )
    )
    if not sent:  # the recipient closed their profile or stopped being available first
        raise ApiError(404, _NOT_FOUND)
    return {"status": "sent"}


@router.get(
    "/api/v1/user/contact",
    summary="Hire inquiries you received, newest first",
    responses=error_responses(401),
)
async def inbox(principal: Reader, directory: Directory) -> dict[str, Any]:
    messages = directory.messages_of(principal.user.user_id)
    senders = directory.state.users
    return {
        "messages": [
            {
                "id": m.message_id,
                "from_username": (
                    senders[m.sender_user_id].username if m.sender_user_id in senders else None
                ),
                "name": m.sender_name,
                "email": m.sender_email,
                "message": m.message,
                "sent_at": iso(m.sent_at),
            }
            for m in messages
        ],
        "total": len(messages),
    }
