"""What the WakaTime routes share: the store they read, the counting-rule and filter parameters,
and whose data a request reads (``{user}``).

``{user}`` is ``current`` or the caller's own username; another name is a 403 that says nothing
about whether that user exists (:func:`own`). Routes that also serve public profiles resolve it
with :func:`owner_or_public`: private and unknown users get one identical 404.
"""

# No `from __future__ import annotations` here: FastAPI must resolve the dependency aliases
# when the routes are declared.

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, cast

from fastapi import Depends, Query, Request

from accounts.state import MAX_TIMEOUT_MINUTES, MIN_TIMEOUT_MINUTES, User
from api.deps import api_parts
from api.rules.activity import Question
from api.rules.projects import naming_of
from api.rules.stats import iso_utc
from http_edge.auth import Principal
from http_edge.errors import ApiError
from projections.ports import WakaTimeStore
from schemas.heartbeat import is_timezone
from schemas.languages import canonical_language

NOT_FOUND = "no such user, or the user's stats are private"


def _store(request: Request) -> WakaTimeStore:
    return cast(WakaTimeStore, api_parts(request).store)


Store = Annotated[WakaTimeStore, Depends(_store)]


def bad(field: str, message: str) -> ApiError:
    details = {"fields": {field: message}}
    return ApiError(400, f"invalid {field}: {message}", code="validation_error", details=details)


def now_iso() -> str:
    return iso_utc(datetime.now(UTC).timestamp())


# ---- the counting rule and the filters -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class RuleParams:
    """The duration rule's per-request parameters (``None``: the user's own setting)."""

    timeout: int | None = None
    writes_only: bool | None = None


TimeoutQ = Annotated[
    int | None,
    Query(
        ge=MIN_TIMEOUT_MINUTES,
        le=MAX_TIMEOUT_MINUTES,
        description="keystroke timeout in minutes (default: the user's setting, 15)",
    ),
]
WritesQ = Annotated[
    bool | None, Query(description="count only time after writes (default: user's setting)")
]
TimezoneQ = Annotated[
    str | None, Query(description="IANA timezone for days (default: the user's timezone)")
]
ProjectQ = Annotated[str | None, Query(max_length=500, description="only this project")]
BranchesQ = Annotated[
    str | None, Query(max_length=2000, description="comma-separated branches; needs project")
]


# Per-dimension filters Wakapi documents on summaries and stats (query name -> span dimension).
DIMENSION_FILTERS: dict[str, str] = {
    "language": "language",
    "editor": "editor",
    "operating_system": "os",
    "machine": "machine",
}
_DimQ = Annotated[str | None, Query(max_length=500)]


@dataclass(frozen=True, slots=True)
class DimensionParams:
    """``language``, ``editor``, ``operating_system``, ``machine``: one value each, or none;
    ``label``: the projects filed under it (the owner's project labels)."""

    values: tuple[tuple[str, str], ...] = ()
    label: str | None = None

    def for_question(self) -> tuple[tuple[str, str], ...]:
        return tuple(
            (DIMENSION_FILTERS[name], canonical_language(value) if name == "language" else value)
            for name, value in self.values
        )

    @property
    def asked(self) -> list[tuple[str, str]]:
        """Every filter given, by query name."""
        return [*self.values, *([("label", self.label)] if self.label is not None else [])]


def dimension_params(
    language: _DimQ = None,
    editor: _DimQ = None,
    operating_system: _DimQ = None,
    machine: _DimQ = None,
    label: _DimQ = None,
) -> DimensionParams:
    asked = {
        "language": language,
        "editor": editor,
        "operating_system": operating_system,
        "machine": machine,
    }
    return DimensionParams(tuple((k, v) for k, v in asked.items() if v is not None), label)


Dimensions = Annotated[DimensionParams, Depends(dimension_params)]
NO_DIMENSIONS = DimensionParams()


def rule_params(timeout: TimeoutQ = None, writes_only: WritesQ = None) -> RuleParams:
    return RuleParams(timeout, writes_only)


Rule = Annotated[RuleParams, Depends(rule_params)]


def question(
    owner: User,
    rule: RuleParams,
    timezone: str | None = None,
    project: str | None = None,
    branches: str | None = None,
    dimensions: DimensionParams = NO_DIMENSIONS,
) -> Question:
    if timezone is not None and not is_timezone(timezone):
        raise bad("timezone", "not a timezone of the IANA database, e.g. Europe/Berlin")
    chosen: frozenset[str] | None = None
    if branches is not None:
        if project is None:
            raise bad("branches", "filtering by branches needs a project")
        chosen = frozenset(b.strip() for b in branches.split(",") if b.strip())
    return Question(
        timeout_minutes=owner.timeout_minutes if rule.timeout is None else rule.timeout,
        writes_only=owner.writes_only if rule.writes_only is None else rule.writes_only,
        project=project,
        branches=chosen,
        timezone=None if timezone in (None, owner.timezone) else timezone,
        dimensions=dimensions.for_question(),
        naming=naming_of(owner.project_aliases, owner.project_labels),
        label=dimensions.label,
    )


# ---- whose data ------------------------------------------------------------------------------


def own(user: str, principal: Principal) -> User:
    if user == "current" or user.lower() == principal.user.username.lower():
        return principal.user
    raise ApiError(403, "you can only read your own data with this endpoint")


@dataclass(frozen=True, slots=True)
class DataOwner:
    """Whose data a request reads, and whether the caller owns it."""

    user: User
    owner: bool


async def owner_or_public(request: Request, user: str) -> DataOwner:
    """Resolve ``{user}`` for routes that also serve public profiles: the caller themself (with
    credentials), or a public user; private and unknown users get the same 404."""
    parts = api_parts(request)
    authenticate = parts.guards.read
    if parts.is_authenticated(request):
        principal = await authenticate(request)
        if user == "current" or user.lower() == principal.user.username.lower():
            return DataOwner(principal.user, owner=True)
    elif user == "current":
        await authenticate(request)  # raises the 401 that asks for credentials
    found = await parts.directory.user_by_username(user, fresh=False)
    if found is None or not found.is_public:
        raise ApiError(404, NOT_FOUND)
    return DataOwner(found, owner=False)
