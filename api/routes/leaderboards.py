"""Weekly leaderboards, read from their projection (``weekly_stats`` joined with the members).

No credentials: boards list only public profiles that opted in (``show_in_leaderboard``); a
profile that hides its languages has no ``top_language`` and is ranked on no language board. The
week is an ISO week (Monday to Sunday) of each user's local days; by default the current one, in
UTC. Language boards rank by the time in that language.
"""

# No `from __future__ import annotations` here: FastAPI must resolve the dependency aliases
# when the routes are declared.

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, Path, Query, Request

from api.deps import api_parts
from api.routes.store_calls import blocking
from api.rules.stats import iso_utc, ranked, today_in
from http_edge.errors import ApiError, error_responses
from projections.leaderboard import iso_week_id, week_of, week_start_of_id
from projections.ports import LeaderboardEntry, LeaderboardStore
from schemas.languages import stored_language

MAX_LIMIT = 500


def week_monday(week: str | None) -> date:
    """The Monday of the asked ISO week (``2026-W10``), or of the current week in UTC."""
    if week is None:
        return week_of(today_in("UTC"))
    try:
        return week_start_of_id(week)
    except ValueError:
        raise ApiError(
            400,
            "invalid week: expected an ISO week such as 2026-W10",
            code="validation_error",
            details={"fields": {"week": "not an ISO week"}},
        ) from None


def top(breakdown: dict[str, float]) -> str | None:
    best = [name for name, seconds in ranked(breakdown) if name and seconds > 0]
    return best[0] if best else None


def entry_view(entry: LeaderboardEntry) -> dict[str, Any]:
    return {
        "rank": entry.rank,
        "user_id": entry.user_id,
        "username": entry.username,
        "display_name": None,
        "avatar_url": None,
        "country": entry.country,
        "seconds": round(entry.seconds),
        # profile_show_languages off: no board names the user's languages.
        "top_language": top(entry.breakdown["language"]) if entry.languages_public else None,
        "top_editor": top(entry.breakdown["editor"]),
        "top_os": top(entry.breakdown["os"]),
    }


def _store(request: Request) -> LeaderboardStore:
    return cast(LeaderboardStore, api_parts(request).store)


Store = Annotated[LeaderboardStore, Depends(_store)]
router = APIRouter(
    prefix="/api/v1/leaderboards",
    tags=["leaderboards"],
    responses=error_responses(400, 503),
)


@dataclass(frozen=True, slots=True)
class _Page:
    limit: int
    offset: int
    week: str | None


CountryQ = Annotated[
    str | None,
    Query(pattern=r"^[A-Za-z]{2}$", description="two-letter country code, e.g. US"),
]


def page(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    week: Annotated[
        str | None, Query(max_length=8, description="ISO week, e.g. 2026-W10 (default: now)")
    ] = None,
) -> _Page:
    return _Page(limit, offset, week)


Page = Annotated[_Page, Depends(page)]


async def board(
    store: LeaderboardStore,
    p: _Page,
    *,
    language: str | None = None,
    country: str | None = None,
    available_for_hire: bool | None = None,
) -> dict[str, Any]:
    monday = week_monday(p.week)
    total, entries = await blocking(
        store.leaderboard,
        monday,
        language=language,
        country=country.upper() if country else None,
        available_for_hire=available_for_hire,
        limit=p.limit,
        offset=p.offset,
    )
    return {
        "leaderboard": [entry_view(e) for e in entries],
        "week": iso_week_id(monday),
        "total": total,
        "limit": p.limit,
        "offset": p.offset,
        "updated_at": iso_utc(datetime.now(UTC).timestamp()),
    }


@router.get("/global", summary="This week's ranking of public, opted-in users")
async def global_(
    p: Page, store: Store, country: CountryQ = None, available_for_hire: bool | None = None
) -> dict[str, Any]:
    return await board(store, p, country=country, available_for_hire=available_for_hire)


@router.get("/language/{lang}", summary="This week's ranking by time in one language")
async def by_language(
    p: Page,
    store: Store,
    lang: Annotated[str, Path(min_length=1, max_length=200)],
    country: CountryQ = None,
) -> dict[str, Any]:
    # Any spelling of the name (`python`, `PYTHON`, `golang`) names its board; time without
    # a language ("Other") is kept under "" in the weekly rows.
    return await board(store, p, language=stored_language(lang) or "", country=country)


@router.get("/country/{country}", summary="This week's ranking within one country")
async def by_country(p: Page, store: Store, country: str) -> dict[str, Any]:
    if len(country) != 2 or not country.isalpha():
        raise ApiError(
            400,
            "invalid country: expected a two-letter code such as US",
            code="validation_error",
            details={"fields": {"country": "not a two-letter code"}},
        )
    return await board(store, p, country=country)
