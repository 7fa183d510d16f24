"""A user's ingest rules: ``GET``/``PUT /api/v1/user/ingest_rules`` (docs/wakapi.md#ingest-rules).

Ignore patterns drop matching heartbeats at ingest (counted on the account); language mappings
set the language of files by extension as they are recorded. A ``PUT`` replaces both with one
account event (``IngestRulesReplaced``), answered once the log holds it; from then on every
ingest path (editors, Wakapi's paths, imports) applies them. Heartbeats already recorded keep
what they were recorded with.
"""

# No `from __future__ import annotations` here: FastAPI must resolve the dependency aliases
# when the routes are declared.

import time
from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from accounts.directory import new_event_id
from accounts.state import (
    MAX_EXTENSION,
    MAX_IGNORE_PATTERN,
    MAX_IGNORE_PATTERNS,
    MAX_LANGUAGE_MAPPINGS,
    MAX_LANGUAGE_NAME,
    User,
    ingest_rules_problem,
)
from api.deps import Reader, Writer, Writes
from http_edge.errors import ApiError, error_responses
from schemas.events import IngestRulesReplaced

router = APIRouter(tags=["accounts"], responses=error_responses(401, 503))


class LanguageMapping(BaseModel):
    model_config = ConfigDict(extra="forbid")

    extension: Annotated[str, Field(min_length=2, max_length=MAX_EXTENSION)] = Field(
        description="a file extension with its dot, e.g. `.vue` (any case)"
    )
    language: Annotated[str, Field(min_length=1, max_length=MAX_LANGUAGE_NAME)]


class IngestRules(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ignore: list[Annotated[str, Field(min_length=1, max_length=MAX_IGNORE_PATTERN)]] = Field(
        default=[],
        max_length=MAX_IGNORE_PATTERNS,
        description="glob patterns (`*`, `?`, `[...]`, any case) matched against a heartbeat's"
        " entity and its project; a match is dropped at ingest",
    )
    language_mappings: list[LanguageMapping] = Field(default=[], max_length=MAX_LANGUAGE_MAPPINGS)


class IngestRulesAnswer(IngestRules):
    heartbeats_ignored: int = Field(description="heartbeats the ignore patterns dropped so far")


def _answer(
    user: User, ignore: tuple[str, ...], mappings: tuple[tuple[str, str], ...]
) -> dict[str, Any]:
    return {
        "ignore": list(ignore),
        "language_mappings": [{"extension": e, "language": lang} for e, lang in mappings],
        "heartbeats_ignored": user.heartbeats_ignored,
    }


@router.get(
    "/api/v1/user/ingest_rules", summary="Your ingest rules", response_model=IngestRulesAnswer
)
async def get_rules(principal: Reader) -> dict[str, Any]:
    user = principal.user
    return _answer(user, user.ignore_patterns, user.language_mappings)


@router.put(
    "/api/v1/user/ingest_rules",
    summary="Replace your ingest rules (applied to heartbeats recorded from now on)",
    response_model=IngestRulesAnswer,
    responses=error_responses(400, 403),
)
async def put_rules(body: IngestRules, principal: Writer, writes: Writes) -> dict[str, Any]:
    ignore = tuple(body.ignore)
    mappings = tuple((m.extension.lower(), m.language) for m in body.language_mappings)
    problem = ingest_rules_problem(ignore, mappings)
    if problem is not None:
        raise ApiError(
            400,
            f"invalid ingest rules: {problem}",
            code="validation_error",
            details={"fields": {"ingest_rules": problem}},
        )
    event = IngestRulesReplaced(
        event_id=new_event_id(),
        user_id=principal.user.user_id,
        occurred_at=time.time(),
        ignore=ignore,
        language_mappings=mappings,
    )
    if not await writes.record(event):
        raise ApiError(401, "this account no longer exists")
    return _answer(principal.user, ignore, tuple(sorted(mappings)))
