"""``/metrics`` in Prometheus text format, on every role (docs/operations.md#metrics).

Two kinds of figures. Counted as they happen, with ``prometheus_client`` objects in the process's
own registry: HTTP requests and their latency (an ASGI middleware: one dictionary lookup and a few
additions per request), WebSocket connections and the closes the server decided, rate-limit
refusals, heartbeats accepted and the log's append latency (the ingest appender's observer),
rejected ingest requests by error code. Read at scrape time from state the parts already keep (no
cost on their hot paths): each projector's health, its lag per partition and in seconds, its
batches, dead letters and restarts; plugin executions by outcome; the hook processor's counts.

A registry per app, not the global one: tests build several apps in one process.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from codetrackr.health import ProjectorProbe

CONTENT_TYPE = CONTENT_TYPE_LATEST
# One ``_created`` series per counter adds nothing a scraper uses here.
disable_created_metrics()  # type: ignore[no-untyped-call]
_UNMATCHED = "unmatched"
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Lag is read from the log at scrape time; a slow log must not hold the scrape up.
_LAG_TIMEOUT_S = 2.0


@dataclass
class Sources:
    """The state read at scrape time; filled in as the parts are built (some in a lifespan)."""

    projectors: list[ProjectorProbe] = field(default_factory=list)
    # (runtime label, executor) pairs: "rpc" for the API's, "hooks" for the hook processor's.
    executors: list[tuple[str, Any]] = field(default_factory=list)
    # The hook processor's counters: fired, failed, suspended.
    hooks: list[Any] = field(default_factory=list)


class Metrics:
    """The process's metrics: its registry, the counted metrics and the scrape-time sources."""

    def __init__(self, role: str) -> None:
        self.role = role
        self.registry = CollectorRegistry(auto_describe=True)
        self.sources = Sources()
        r = self.registry
        self.requests = Counter(
            "codetrackr_http_requests",
            "HTTP requests answered, by method, route template and status",
            ["method", "route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "codetrackr_http_request_duration_seconds",
            "Time from the request's arrival to the end of its response, by route template",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.rate_limited = Counter(
            "codetrackr_rate_limited_requests",
            "Requests refused with 429 (a rate limit or an API key's budget)",
            registry=r,
        )
        self.ingest_rejected = Counter(
            "codetrackr_ingest_rejected_requests",
            "Heartbeat requests refused, by error code (nothing of them was recorded)",
            ["reason"],
            registry=r,
        )
        self.heartbeats = Counter(
            "codetrackr_heartbeats_accepted",
            "Heartbeats durably appended to the log (each answered 2xx)",
            registry=r,
        )
        self.append_latency = Histogram(
            "codetrackr_log_append_duration_seconds",
            "Time the event log took to acknowledge an ingest request's records",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.sockets = Gauge(
            "codetrackr_websocket_connections", "WebSockets open now", ["path"], registry=r
        )
        self.socket_closes = Counter(
            "codetrackr_websocket_server_closes",
            "WebSockets the server closed, by close code (1013 slow consumer, 1008 policy, "
            "1001 shutdown)",
            ["code"],
            registry=r,
        )
        self._lags: dict[str, dict[str, int]] = {}
        r.register(_StateCollector(self))

    def observe_append(self, heartbeats: int, seconds: float) -> None:
        """The ingest appender's observer."""
        self.heartbeats.inc(heartbeats)
        self.append_latency.observe(seconds)

    async def render(self) -> bytes:
        """The text exposition, after reading the projectors' lag from the log."""
        probes = list(self.sources.projectors)
        lags = await asyncio.gather(
            *(asyncio.wait_for(p.lag_by_partition(), _LAG_TIMEOUT_S) for p in probes),
            return_exceptions=True,
        )
        self._lags = {
            probe.health.name: lag
            for probe, lag in zip(probes, lags, strict=True)
            if isinstance(lag, dict)
        }
        return generate_latest(self.registry)


class _StateCollector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        sources = self._metrics.sources
        yield from _projector_families(sources.projectors, self._metrics._lags)
        executions = CounterMetricFamily(
            "codetrackr_plugin_executions",
            "Plugin executions by runtime (rpc, hooks) and outcome (ok or the failure kind)",
            labels=["runtime", "outcome"],
        )
        for runtime, executor in sources.executors:
            for outcome, count in sorted(executor.outcomes.items()):
                executions.add_metric([runtime, outcome], count)
        yield executions
        hooks = CounterMetricFamily(
            "codetrackr_plugin_hooks",
            "Hooks fired, failed and suspensions recorded",
            labels=["what"],
        )
        for processor in sources.hooks:
            hooks.add_metric(["fired"], processor.fired)
            hooks.add_metric(["failed"], processor.failed)
            hooks.add_metric(["suspended"], processor.suspended)
        yield hooks


def _projector_families(
    probes: list[ProjectorProbe], lags: dict[str, dict[str, int]]
) -> Iterable[Metric]:
    now_ms = int(time.time() * 1000)
    alive = GaugeMetricFamily(
        "codetrackr_projector_alive", "1 while the projector runs", labels=["projector"]
    )
    lag_seconds = GaugeMetricFamily(
        "codetrackr_projector_lag_seconds",
        "Age of the oldest record of the batch in hand (0 when idle)",
        labels=["projector"],
    )
    lag_records = GaugeMetricFamily(
        "codetrackr_projector_lag_records",
        "Records on the log past the projector's committed position, per partition",
        labels=["projector", "partition"],
    )
    batches = SummaryMetricFamily(
        "codetrackr_projector_batch_records",
        "Records per batch handled (count: batches, sum: records)",
        labels=["projector"],
    )
    batch_seconds = SummaryMetricFamily(
        "codetrackr_projector_batch_duration_seconds",
        "Seconds per batch handled, retries included",
        labels=["projector"],
    )
    dead = CounterMetricFamily(
        "codetrackr_projector_dead_letters",
        "Records the projector sent to the dead-letter topic",
        labels=["projector"],
    )
    restarts = CounterMetricFamily(
        "codetrackr_projector_restarts", "Restarts after the projector died", labels=["projector"]
    )
    for probe in probes:
        health = probe.health
        name = [health.name]
        alive.add_metric(name, 1.0 if health.alive else 0.0)
        lag_seconds.add_metric(name, health.lag_seconds(now_ms))
        for partition, lag in sorted(lags.get(health.name, {}).items()):
            lag_records.add_metric([health.name, partition], lag)
        batches.add_metric(name, count_value=health.batches, sum_value=health.batch_records)
        batch_seconds.add_metric(name, count_value=health.batches, sum_value=health.batch_seconds)
        dead.add_metric(name, health.dead_letters)
        restarts.add_metric(name, health.restarts)
    yield from (alive, lag_seconds, lag_records, batches, batch_seconds, dead, restarts)


class MetricsMiddleware:
    """Pure ASGI (no per-request task or body buffering): times each HTTP request to the end of
    its response and counts it under its route template (``unmatched`` when no route took it,
    so stray paths add no label values); counts WebSockets open and the closes sent."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self._app = app
        self._m = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self._app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self._app(scope, receive, sending)
        finally:
            m = self._m
            route = _route(scope)
            method = str(scope.get("method", ""))
            m.requests.labels(method, route, str(status)).inc()
            m.latency.labels(method, route).observe(time.perf_counter() - started)
            if status == 429:
                m.rate_limited.inc()
            if status >= 400 and "ingest" in _tags(scope):
                state = scope.get("state") or {}
                m.ingest_rejected.labels(str(state.get("error_code", status))).inc()

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        opened: Gauge | None = None

        async def sending(message: Message) -> None:
            nonlocal opened
            if message["type"] == "websocket.accept":
                opened = self._m.sockets.labels(_route(scope))  # routed by now
                opened.inc()
            elif message["type"] == "websocket.close":
                self._m.socket_closes.labels(str(message.get("code", 1000))).inc()
            await send(message)

        try:
            await self._app(scope, receive, sending)
        finally:
            if opened is not None:
                opened.dec()


def _route(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else _UNMATCHED


def _tags(scope: Scope) -> list[str]:
    tags = getattr(scope.get("route"), "tags", None)
    return list(tags) if isinstance(tags, list) else []


def metrics_endpoint(metrics: Metrics) -> Callable[..., Any]:
    """The ``GET /metrics`` handler for FastAPI."""
    from starlette.responses import Response

    async def handler() -> Response:
        return Response(await metrics.render(), media_type=CONTENT_TYPE)

    return handler
