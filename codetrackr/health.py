"""Liveness (``/healthz``) and readiness (``/readyz``) of every role.

``/healthz`` answers 200 while the process serves HTTP at all: a liveness probe that fails means
"restart me". ``/readyz`` runs the checks that apply to the role and answers 200 when all pass,
503 when one fails (a readiness probe takes the process out of rotation, it does not restart it):

* ``log``: the event log answers an end-offsets request (every role);
* ``store``: the projection store answers a query (``serve``, ``api``, ``worker``);
* ``projector``: the projector's task is alive (``serve``, ``worker``), with its lag in records
  (on the log and not yet committed) and in seconds (age of the oldest record in flight), its
  restarts, the failure it is waiting out if any, and the dead letters it wrote;
* ``dead_letters``: dead letters pending on the log (written minus re-driven). Informational:
  a dead letter was handled (processing went on past it), so it never makes a process unready.

Every check is bounded by ``CODETRACKR_READINESS_TIMEOUT_S``; a check that times out fails.
A 200 body is ``{"status": "ready", "role", "checks"}``; a 503 body is the API's error envelope,
``{"error": {"code": "not_ready", "message", "details": {"failing", "role", "checks"}}}``. The
faust worker has no API server, so :func:`serve_worker_health` serves the same two paths on its
own port.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import web
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool

from eventlog.port import EventLog
from processors.deadletters import pending_count
from processors.supervision import ProjectorHealth, describe
from schemas.events import HEARTBEATS_TOPIC

if TYPE_CHECKING:  # the metrics module reads this one's probes
    from codetrackr.metrics import Metrics

# What serve_worker_health answers (the HTTP roles serve the same two through FastAPI).
WORKER_HEALTH_PATHS = ("/healthz", "/readyz")


class ProjectorProbe(Protocol):
    """What a projector shows the readiness check (``ProjectionRunner``, the faust worker)."""

    health: ProjectorHealth

    async def lag_records(self) -> int: ...

    async def lag_by_partition(self) -> dict[str, int]: ...


@dataclass
class Readiness:
    """The checks of one process. ``projectors`` may be filled after start-up (the runner is
    built in the lifespan); ``store_ping`` is a blocking call run in a worker thread."""

    role: str
    log: EventLog
    store_ping: Callable[[], object] | None = None
    projectors: list[ProjectorProbe] = field(default_factory=list)
    expects_projector: bool = False
    timeout_s: float = 2.0
    now_ms: Callable[[], int] = lambda: int(time.time() * 1000)

    async def report(self) -> tuple[bool, dict[str, Any]]:
        # Concurrently, so the whole report takes about one timeout at worst.
        pending: dict[str, Awaitable[dict[str, Any]]] = {"log": self._check_log()}
        if self.store_ping is not None:
            pending["store"] = self._check_store(self.store_ping)
        if self.expects_projector:
            pending["projector"] = self._check_projectors()
        pending["dead_letters"] = self._check_dead_letters()
        results = await asyncio.gather(*pending.values())
        checks = dict(zip(pending, results, strict=True))
        failing = sorted(name for name, check in checks.items() if not check["ok"])
        if not failing:
            return True, {"status": "ready", "role": self.role, "checks": checks}
        # Not ready is an error answer, so it is the API's one error envelope; the checks go in
        # its details.
        return False, {
            "error": {
                "code": "not_ready",
                "message": f"not ready: {', '.join(failing)}",
                "details": {"failing": failing, "role": self.role, "checks": checks},
            }
        }

    async def _bounded(self, call: Awaitable[Any]) -> Any:
        async with asyncio.timeout(self.timeout_s):
            return await call

    async def _check_log(self) -> dict[str, Any]:
        try:
            await self._bounded(self.log.end_offsets(HEARTBEATS_TOPIC))
        except Exception as exc:
            return {"ok": False, "error": _failure(exc)}
        return {"ok": True}

    async def _check_store(self, ping: Callable[[], object]) -> dict[str, Any]:
        try:
            await self._bounded(run_in_threadpool(ping))
        except Exception as exc:
            return {"ok": False, "error": _failure(exc)}
        return {"ok": True}

    async def _check_projectors(self) -> dict[str, Any]:
        if not self.projectors:
            return {"ok": False, "error": "the projector has not started"}
        lags = await asyncio.gather(
            *(self._bounded(probe.lag_records()) for probe in self.projectors),
            return_exceptions=True,
        )
        out: dict[str, Any] = {"ok": True, "projectors": []}
        for probe, lag in zip(self.projectors, lags, strict=True):
            health = probe.health
            out["projectors"].append(
                {
                    "name": health.name,
                    "alive": health.alive,
                    "failure": health.failure,
                    "restarts": health.restarts,
                    # None when the log cannot tell now (the log check says why).
                    "lag_records": lag if isinstance(lag, int) else None,
                    "lag_seconds": round(health.lag_seconds(self.now_ms()), 3),
                    "dead_letters_written": health.dead_letters,
                }
            )
            if not health.alive:
                out["ok"] = False
                out["error"] = health.failure or f"{health.name} is not running"
        return out

    async def _check_dead_letters(self) -> dict[str, Any]:
        try:
            count = await self._bounded(pending_count(self.log))
        except Exception as exc:
            return {"ok": True, "pending": None, "error": _failure(exc)}
        return {"ok": True, "pending": count}


def _failure(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    return describe(exc)


def install_health_routes(app: FastAPI, role: str, readiness: Readiness) -> None:
    """``GET /healthz`` and ``GET /readyz`` on ``app`` (on the app itself, not an included
    router, so they are listed in ``app.routes`` like any route the app serves)."""

    @app.get("/healthz", tags=["operations"], summary="Liveness and role of this process")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "role": role}

    @app.get(
        "/readyz",
        tags=["operations"],
        summary="Readiness: log, store, projector (alive, lag) and dead letters",
        responses={503: {"description": "a check failed; the body names it"}},
    )
    async def readyz() -> JSONResponse:
        ready, body = await readiness.report()
        return JSONResponse(body, status_code=200 if ready else 503)


async def serve_worker_health(
    readiness: Readiness, host: str, port: int, metrics: Metrics | None = None
) -> web.AppRunner:
    """``/healthz``, ``/readyz`` and ``/metrics`` for the faust worker on ``host:port`` (aiohttp,
    already a dependency of faust). Returns the runner; ``await runner.cleanup()`` stops it."""

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "role": readiness.role})

    async def readyz(_: web.Request) -> web.Response:
        ready, body = await readiness.report()
        return web.json_response(body, status=200 if ready else 503)

    app = web.Application()
    for path, handler in zip(WORKER_HEALTH_PATHS, (healthz, readyz), strict=True):
        app.router.add_get(path, handler)
    if metrics is not None:
        exposition = metrics

        async def metrics_text(_: web.Request) -> web.Response:
            body = await exposition.render()
            return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

        app.router.add_get("/metrics", metrics_text)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
