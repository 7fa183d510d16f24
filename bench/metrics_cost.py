"""Figure 11: what ``/metrics`` costs a request (issue: "cheap enough that the bench shows no
measurable cost").

In a child process of its own (the embedded engine serves one process per data directory), the
real ``serve`` app (``create_app``, embedded defaults, its lifespan running: log, projector,
chdb) answers requests in-process through httpx's ASGI transport, no socket. Each request is sent
twice, alternately: once through the app as it serves (with ``MetricsMiddleware``, the outermost
middleware) and once through the same app below that middleware. Everything else (routing, the
other middleware, authentication, the durable append) is the same object, so the ratio is the
middleware's share. Three requests: ``GET /healthz`` (the cheapest route, where a fixed cost shows
most), ``POST /api/v1/heartbeats`` (one heartbeat, durably appended) and
``GET /api/v1/users/current/stats/last_7_days`` (a read from the engine). The notes add what one
scrape of ``/metrics`` costs after all of them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench.child import run_child
from bench.report import Row, percentile

SAMPLES_AT_SCALE_1 = 2000
_ASGI = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


async def _measure(samples: int) -> dict[str, Any]:
    import httpx

    from codetrackr.bootstrap import create_app
    from codetrackr.metrics import MetricsMiddleware
    from codetrackr.settings import Settings

    app = create_app(Settings(), "serve")
    async with app.router.lifespan_context(app):
        # The stack Starlette builds: its error middlewares outside, then ours, outermost first.
        with_metrics: Any = app.build_middleware_stack()
        while not isinstance(with_metrics, MetricsMiddleware):
            with_metrics = with_metrics.app
        below = with_metrics._app

        def through(inner: Any) -> _ASGI:
            async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
                scope["app"] = app  # what Starlette's own __call__ sets before the stack
                await inner(scope, receive, send)

            return asgi

        clients = {
            name: httpx.AsyncClient(
                transport=httpx.ASGITransport(app=through(inner)),  # type: ignore[arg-type]
                base_url="http://bench",
            )
            for name, inner in (("metrics", with_metrics), ("bare", below))
        }
        try:
            http = clients["metrics"]
            created = (await http.post("/auth/anonymous/create", json={"timezone": "UTC"})).json()
            bearer = {"Authorization": f"Bearer {created['token']}"}
            key = (await http.post("/api/v1/keys", headers=bearer, json={"name": "b"})).json()
            auth = {"X-API-Key": key["key"]["key"]}
            now = time.time()
            beat = {"entity": "/b.py", "type": "file", "project": "bench", "language": "Python"}
            counter = iter(range(10**9))

            async def healthz(client: httpx.AsyncClient) -> httpx.Response:
                return await client.get("/healthz")

            async def heartbeat(client: httpx.AsyncClient) -> httpx.Response:
                body = {**beat, "time": now - 3600 + next(counter) * 0.001}
                return await client.post("/api/v1/heartbeats", json=[body], headers=auth)

            async def stats(client: httpx.AsyncClient) -> httpx.Response:
                return await client.get("/api/v1/users/current/stats/last_7_days", headers=auth)

            results: dict[str, Any] = {}
            for name, request in (("healthz", healthz), ("heartbeat", heartbeat), ("stats", stats)):
                times: dict[str, list[float]] = {"metrics": [], "bare": []}
                for i in range(samples + 50):
                    for which in ("metrics", "bare") if i % 2 else ("bare", "metrics"):
                        started = time.perf_counter()
                        response = await request(clients[which])
                        elapsed = time.perf_counter() - started
                        if response.status_code >= 300:
                            raise RuntimeError(f"{name}: {response.status_code} {response.text}")
                        if i >= 50:  # the first 50 of each warm up
                            times[which].append(elapsed)
                results[name] = times
            scrapes = []
            for _ in range(50):
                started = time.perf_counter()
                scraped = await http.get("/metrics")
                scrapes.append(time.perf_counter() - started)
            results["scrape"] = scrapes
            results["scrape_bytes"] = len(scraped.content)
            return results
        finally:
            for client in clients.values():
                await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, required=True)
    parser.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args()
    os.environ["CODETRACKR_DATA_DIR"] = str(args.dir)
    os.environ["CODETRACKR_RATE_LIMIT_ENABLED"] = "false"
    print(json.dumps(asyncio.run(_measure(args.samples))))


async def figure_metrics_cost(scale: float) -> list[Row]:
    samples = max(100, round(SAMPLES_AT_SCALE_1 * scale))
    result = await run_child(
        "bench.metrics_cost", ["--samples", str(samples)], what="metrics", dir_name="data"
    )
    labels = {
        "healthz": "GET /healthz",
        "heartbeat": "POST /api/v1/heartbeats (one, durably appended)",
        "stats": "GET /stats/last_7_days",
    }
    rows = []
    for letter, (name, label) in zip("abc", labels.items(), strict=True):
        times = result[name]
        rows.append(
            Row(
                mode="embedded",
                figure=f"11{letter} {label} with /metrics counting, p50",
                unit="s",
                value=percentile(times["metrics"], 50),
                baseline=percentile(times["bare"], 50),
                baseline_label="the same app below the metrics middleware, interleaved, p50",
                notes=[
                    f"p99 {percentile(times['metrics'], 99) * 1e6:.0f} us vs "
                    f"{percentile(times['bare'], 99) * 1e6:.0f} us; {samples} samples each, "
                    "in-process (ASGI, no socket), the serve app with its projector running"
                ],
            )
        )
    rows[-1].notes.append(
        f"one scrape of /metrics: p50 {percentile(result['scrape'], 50) * 1e3:.2f} ms "
        f"({result['scrape_bytes']:,} bytes) after {3 * 2 * samples:,} requests"
    )
    return rows


if __name__ == "__main__":
    main()
