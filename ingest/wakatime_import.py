"""``POST /api/v1/import/wakatime``: a WakaTime data-dump export, uploaded whole.

The body is streamed to a private spool file (never held in memory), read once to check it is a
WakaTime heartbeats export (a malformed or other file gets a 400 and changes nothing), then read
again and recorded day by day: every heartbeat exactly as an editor's would be (WakaTime's rule,
deterministic event ids), so a second import of the same file, or one overlapping what editors
sent, adds nothing. Items WakaTime's schema refuses are skipped and reported, the rest recorded.
The answer comes once everything is durably appended. See docs/wakapi.md#importing-your-history.
"""

# No `from __future__ import annotations`: FastAPI resolves the route's local annotations.

import dataclasses
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from http_edge.auth import Principal
from http_edge.errors import ApiError, error_responses
from ingest.appender import HeartbeatAppender
from ingest.normalize import ItemError, RequestMeta, resolve_timezone, wakatime_item
from ingest.routes import Authenticate, request_meta
from ingest.wakatime_dump import DumpError, DumpReader
from schemas.heartbeat import Heartbeat

# Heartbeats normalized and appended at a time (a day is split into batches of this size).
BATCH = 2000
# Item errors listed in the answer (all are counted).
MAX_ERRORS_LISTED = 20


class ImportItemError(BaseModel):
    date: str
    index: int
    fields: dict[str, str]


class WakaTimeImportAnswer(BaseModel):
    status: str
    timezone: str
    days: int
    heartbeats: int
    imported: int
    duplicates: int
    rejected: int
    ignored: int
    errors: list[ImportItemError]


def _check(path: Path) -> tuple[int, int, str | None]:
    """Pass one: the whole file parses as a heartbeats export; (heartbeats, days, its zone)."""
    with path.open("rb") as stream:
        reader = DumpReader(stream)
        count = sum(1 for _ in reader.heartbeats())
    return count, reader.days, reader.timezone


def _days(path: Path) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Pass two: ``(date, heartbeats)`` batches, never mixing two days, at most BATCH each."""
    batch: list[dict[str, Any]] = []
    day = None
    with path.open("rb") as stream:
        for date, heartbeat in DumpReader(stream).heartbeats():
            if batch and (date != day or len(batch) >= BATCH):
                yield str(day), batch
                batch = []
            day = date
            batch.append(heartbeat)
    if batch:
        yield str(day), batch


def _spool(spool_dir: Path) -> tuple[IO[bytes], Path]:
    """A new private file to receive the upload."""
    spool_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, name = tempfile.mkstemp(prefix="wakatime-", suffix=".json", dir=spool_dir)
    return os.fdopen(fd, "wb"), Path(name)


@dataclasses.dataclass
class _Tally:
    imported: int = 0
    duplicates: int = 0
    rejected: int = 0
    ignored: int = 0
    errors: list[ImportItemError] = dataclasses.field(default_factory=list)
    day: str = ""
    day_index: int = 0
    seen: set[str] = dataclasses.field(default_factory=set)

    def keep(self, day: str, items: list[dict[str, Any]], meta: RequestMeta) -> list[Heartbeat]:
        """The batch's new heartbeats; copies within a day are counted as duplicates (a
        heartbeat's id includes its time, so copies always fall on one day)."""
        if day != self.day:
            self.day, self.day_index, self.seen = day, 0, set()
        kept: list[Heartbeat] = []
        for item in items:
            result = wakatime_item(item, self.day_index, meta)
            self.day_index += 1
            if isinstance(result, ItemError):
                self.rejected += 1
                if len(self.errors) < MAX_ERRORS_LISTED:
                    self.errors.append(
                        ImportItemError(date=day, index=result.index, fields=result.fields)
                    )
            elif result.event_id in self.seen:
                self.duplicates += 1
            else:
                self.seen.add(result.event_id)
                kept.append(result)
        self.imported += len(kept)
        return kept


def build_wakatime_import_router(
    authenticate_write: Authenticate,
    appender: HeartbeatAppender,
    *,
    spool_dir: Path,
    size_limit: int,
) -> APIRouter:
    router = APIRouter(tags=["ingest"])
    CurrentPrincipal = Annotated[Principal, Depends(authenticate_write)]

    @router.post(
        "/api/v1/import/wakatime",
        summary="Import a WakaTime data-dump export (heartbeats)",
        response_model=WakaTimeImportAnswer,
        responses=error_responses(400, 401, 403, 413, 503),
        openapi_extra={
            "requestBody": {
                "required": True,
                "description": "The JSON file WakaTime exports (Settings, Export: heartbeats)",
                "content": {"application/json": {"schema": {"type": "object"}}},
            }
        },
    )
    async def import_wakatime(request: Request, principal: CurrentPrincipal) -> dict[str, Any]:
        spool, path = await run_in_threadpool(_spool, spool_dir)
        try:
            with spool:
                size = 0
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > size_limit:
                        raise ApiError(413, f"the export is larger than {size_limit} bytes")
                    spool.write(chunk)
            if size == 0:
                raise ApiError(400, "empty body: upload the exported JSON file")
            try:
                total, days, dump_zone = await run_in_threadpool(_check, path)
            except DumpError as exc:
                raise ApiError(400, str(exc), code="validation_error") from None
            meta = request_meta(request, principal)
            if dump_zone:
                # The export's own zone (WakaTime's account setting) places its days.
                meta = dataclasses.replace(meta, timezone=resolve_timezone(dump_zone, None))
            tally = _Tally()
            batches = _days(path)
            while (batch := await run_in_threadpool(next, batches, None)) is not None:
                day, items = batch
                kept = tally.keep(day, items, meta)
                ignored = await appender.append_for(principal.user, kept)
                tally.ignored += ignored
                tally.imported -= ignored
            return {
                "status": "ok",
                "timezone": meta.timezone,
                "days": days,
                "heartbeats": total,
                "imported": tally.imported,
                "duplicates": tally.duplicates,
                "rejected": tally.rejected,
                "ignored": tally.ignored,
                "errors": tally.errors,
            }
        finally:
            await run_in_threadpool(path.unlink, missing_ok=True)

    return router
