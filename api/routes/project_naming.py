"""A user's project aliases and labels: read them, replace them.

``GET``/``PUT /api/v1/user/project_aliases`` and ``/api/v1/user/project_labels``. A ``PUT``
replaces the whole set with one account event (``ProjectAliasesReplaced``,
``ProjectLabelsReplaced``), answered once the log holds it; every read applies the new set from
then on (:mod:`api.rules.projects`), past days included, since the heartbeats keep their names.
"""

# No `from __future__ import annotations` here: FastAPI must resolve the dependency aliases
# when the routes are declared.

import time
from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from accounts.directory import new_event_id
from accounts.state import (
    MAX_LABEL,
    MAX_LABELED_PROJECTS,
    MAX_LABELS_PER_PROJECT,
    MAX_PROJECT_ALIASES,
    MAX_PROJECT_NAME,
    aliases_problem,
    labels_problem,
)
from api.deps import Reader, Writer, Writes
from http_edge.errors import ApiError, error_responses
from schemas.events import ProjectAliasesReplaced, ProjectLabelsReplaced

router = APIRouter(tags=["accounts"], responses=error_responses(401, 503))

ProjectName = Annotated[str, Field(min_length=1, max_length=MAX_PROJECT_NAME)]
LabelName = Annotated[str, Field(min_length=1, max_length=MAX_LABEL)]


class Alias(BaseModel):
    model_config = ConfigDict(extra="forbid")

    alias: ProjectName = Field(description="a project name as heartbeats carry it")
    project: ProjectName = Field(description="the project every read counts it as")


class Aliases(BaseModel):
    model_config = ConfigDict(extra="forbid")

    aliases: list[Alias] = Field(max_length=MAX_PROJECT_ALIASES)


class Labels(BaseModel):
    model_config = ConfigDict(extra="forbid")

    project: ProjectName = Field(description="a project name (after aliases)")
    labels: list[LabelName] = Field(min_length=1, max_length=MAX_LABELS_PER_PROJECT)


class ProjectLabels(BaseModel):
    model_config = ConfigDict(extra="forbid")

    labels: list[Labels] = Field(max_length=MAX_LABELED_PROJECTS)


def _invalid(field: str, problem: str) -> ApiError:
    return ApiError(
        400,
        f"invalid {field}: {problem}",
        code="validation_error",
        details={"fields": {field: problem}},
    )


@router.get("/api/v1/user/project_aliases", summary="Your project aliases")
async def get_aliases(principal: Reader) -> Aliases:
    pairs = principal.user.project_aliases
    return Aliases(aliases=[Alias(alias=a, project=p) for a, p in pairs])


@router.put(
    "/api/v1/user/project_aliases",
    summary="Replace your project aliases (applied to every read, past days included)",
    responses=error_responses(400, 403),
)
async def put_aliases(body: Aliases, principal: Writer, writes: Writes) -> Aliases:
    pairs = tuple((a.alias, a.project) for a in body.aliases)
    problem = aliases_problem(pairs)
    if problem is not None:
        raise _invalid("aliases", problem)
    event = ProjectAliasesReplaced(
        event_id=new_event_id(),
        user_id=principal.user.user_id,
        occurred_at=time.time(),
        aliases=pairs,
    )
    if not await writes.record(event):
        raise ApiError(401, "this account no longer exists")
    return Aliases(aliases=[Alias(alias=a, project=p) for a, p in sorted(pairs)])


@router.get("/api/v1/user/project_labels", summary="Your project labels")
async def get_labels(principal: Reader) -> ProjectLabels:
    pairs = principal.user.project_labels
    return ProjectLabels(labels=[Labels(project=p, labels=list(names)) for p, names in pairs])


@router.put(
    "/api/v1/user/project_labels",
    summary="Replace your project labels",
    responses=error_responses(400, 403),
)
async def put_labels(body: ProjectLabels, principal: Writer, writes: Writes) -> ProjectLabels:
    pairs = tuple((item.project, tuple(item.labels)) for item in body.labels)
    problem = labels_problem(pairs)
    if problem is not None:
        raise _invalid("labels", problem)
    event = ProjectLabelsReplaced(
        event_id=new_event_id(),
        user_id=principal.user.user_id,
        occurred_at=time.time(),
        labels=pairs,
    )
    if not await writes.record(event):
        raise ApiError(401, "this account no longer exists")
    return ProjectLabels(
        labels=[Labels(project=p, labels=list(names)) for p, names in sorted(pairs)]
    )
