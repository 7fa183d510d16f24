"""Figure 4: heartbeat-to-WebSocket latency, seconds from the 2xx of one ``POST
/api/v1/heartbeat`` to the arrival of the ``heartbeat.accepted`` frame for it on the user's live
socket (``POST /api/v1/ws-ticket``, then ``GET /ws?ticket=...``; docs/live.md).

The samples are the heartbeats of figure 2 (30 s long, 2000 s from any other, on the five UTC
days before today, one at a time), so each is projected in a batch of its own and the frame for
it is told apart by its ``last_heartbeat_at``. Every other sample is instead a polling sample:
after the 2xx the client polls ``/stats/summary?range=7d`` every 10 ms until the heartbeat is
counted, as a dashboard without the socket would (figure 2's freshness). That is the baseline:
both measure "my heartbeat has been projected, and I know it", one pushed and one polled, for
the same user, the same kind of heartbeat and the same server, interleaved so both see the same
machine. The ack latency of the POST is in the notes: it is part of neither (both clocks start
at the 2xx), and ~50x smaller than either.

:class:`LiveSocket` and :func:`push_latencies` are also used by figure 5 (``bench.leaderboard``)
to measure the same latency with 100,000 users ranked on the heartbeat's week.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import httpx
from tqdm import tqdm
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bench.clients import BenchError, client, get_json, ok, timed_get
from bench.deploy import Meter, System, User
from bench.freshness import POLL_INTERVAL_S, SAMPLE_CAP_S, SAMPLES_PER_USER, sample_times
from bench.report import Row, percentile

SAMPLES_AT_SCALE_1 = 300  # of each kind: pushed and polled
MIN_SAMPLES = 10
# Between samples: the projector is back waiting for records when the next heartbeat arrives.
PAUSE_S = 0.05
OPEN_TIMEOUT_S = 10.0


def samples(scale: float) -> int:
    return max(MIN_SAMPLES, round(SAMPLES_AT_SCALE_1 * scale))


def users_needed(scale: float) -> int:
    return math.ceil(2 * samples(scale) / SAMPLES_PER_USER)


@dataclass
class _Arrivals:
    """When frames arrived (``time.perf_counter()``), by the heartbeat time they report."""

    accepted: dict[int, float] = field(default_factory=dict)
    stats: dict[int, float] = field(default_factory=dict)  # the stats.changed after it
    dropped: int = 0
    other: int = 0


class LiveSocket:
    """A user's live WebSocket, read by a background task that timestamps every frame.

    ``heartbeat.accepted`` frames are keyed by their ``last_heartbeat_at`` (whole seconds); the
    ``stats.changed`` frame of the same batch (published right after it) by the same key.
    """

    def __init__(self, system: System, user: User) -> None:
        self._system = system
        self._user = user
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._arrivals = _Arrivals()
        self._waiters: dict[int, asyncio.Future[float]] = {}
        self._last_key: int | None = None
        self.closed_with: str | None = None

    async def __aenter__(self) -> LiveSocket:
        async with client(self._system.api_url, self._user.bearer) as http:
            ticket = str(ok(await http.post("/api/v1/ws-ticket")).json()["ticket"])
        url = self._system.api_url.replace("http://", "ws://", 1) + f"/ws?ticket={ticket}"
        self._ws = await connect(url, open_timeout=OPEN_TIMEOUT_S, close_timeout=2)
        try:
            first = json.loads(await asyncio.wait_for(self._ws.recv(), OPEN_TIMEOUT_S))
            if first.get("type") != "subscribed":
                raise BenchError(f"first live frame is not 'subscribed': {first}")
        except BaseException:
            await self._ws.close()
            raise
        self._reader = asyncio.create_task(self._read(self._ws), name="live-socket-reader")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._ws is not None:
            await self._ws.close()

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for raw in ws:
                at = time.perf_counter()
                self._on_frame(json.loads(raw), at)
        except ConnectionClosed as exc:
            self.closed_with = f"{exc.rcvd.code} {exc.rcvd.reason}" if exc.rcvd else str(exc)
        self.closed_with = self.closed_with or "closed"
        for waiter in self._waiters.values():
            if not waiter.done():
                waiter.set_exception(BenchError(f"live socket closed: {self.closed_with}"))

    def _on_frame(self, frame: dict[str, Any], at: float) -> None:
        kind = frame.get("type")
        if kind == "heartbeat.accepted":
            key = round(float(frame["last_heartbeat_at"]))
            self._last_key = key
            self._arrivals.accepted.setdefault(key, at)
            waiter = self._waiters.get(key)
            if waiter is not None and not waiter.done():
                waiter.set_result(at)
        elif kind == "stats.changed":
            if self._last_key is not None:
                self._arrivals.stats.setdefault(self._last_key, at)
        elif kind == "dropped":
            self._arrivals.dropped += 1
        else:
            self._arrivals.other += 1  # leaderboard.changed and the like

    async def accepted(self, when: float, timeout_s: float) -> float:
        """``perf_counter()`` at which the ``heartbeat.accepted`` for time ``when`` arrived."""
        key = round(when)
        if key in self._arrivals.accepted:
            return self._arrivals.accepted[key]
        if self.closed_with is not None:
            raise BenchError(f"live socket closed: {self.closed_with}")
        waiter: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._waiters[key] = waiter
        try:
            return await asyncio.wait_for(waiter, timeout_s)
        except TimeoutError:
            raise BenchError(f"no heartbeat.accepted frame within {timeout_s:.0f} s") from None
        finally:
            self._waiters.pop(key, None)

    def stats_arrival(self, when: float) -> float | None:
        return self._arrivals.stats.get(round(when))

    @property
    def dropped(self) -> int:
        return self._arrivals.dropped


@dataclass
class PushSamples:
    """Seconds from the 2xx of the POST: to the frame (pushed) or to the first poll that counts
    the heartbeat (polled); plus the POST acks and the summary round trips of the polls."""

    pushed: list[float] = field(default_factory=list)
    stats_pushed: list[float] = field(default_factory=list)  # to the stats.changed frame
    polled: list[float] = field(default_factory=list)
    acks: list[float] = field(default_factory=list)
    polls: list[float] = field(default_factory=list)
    polls_per_sample: list[int] = field(default_factory=list)
    dropped: int = 0


def _heartbeat(when: float, k: int, project: str) -> dict[str, Any]:
    return {
        "project": project,
        "file": f"/src/live/{k % 17}.go",
        "lang": "Go",
        "duration": 30,
        "time": when,
    }


async def _post(ingest: httpx.AsyncClient, body: dict[str, Any], out: PushSamples) -> float:
    sent = time.perf_counter()
    ok(await ingest.post("/api/v1/heartbeat", json=body))
    acked = time.perf_counter()
    out.acks.append(acked - sent)
    return acked


async def push_latencies(
    system: System,
    user: User,
    times: Sequence[float],
    out: PushSamples,
    *,
    project: str = "live",
    bar: tqdm | None = None,  # type: ignore[type-arg]
) -> None:
    """One pushed sample per time in ``times``, one at a time (no polling)."""
    async with (
        LiveSocket(system, user) as live,
        client(system.ingest_url, {"X-API-Key": user.api_key}) as ingest,
    ):
        for k, when in enumerate(times):
            acked = await _post(ingest, _heartbeat(when, k, project), out)
            arrived = await live.accepted(when, SAMPLE_CAP_S)
            out.pushed.append(arrived - acked)
            await asyncio.sleep(PAUSE_S)
            stats_at = live.stats_arrival(when)
            if stats_at is not None:
                out.stats_pushed.append(stats_at - acked)
            if bar is not None:
                bar.update(1)
        out.dropped += live.dropped


async def _poll_until(
    api: httpx.AsyncClient, expected: int, acked: float, out: PushSamples
) -> None:
    n_polls = 0
    while True:
        began = time.perf_counter()
        rtt, summary = await timed_get(api, "/api/v1/stats/summary", {"range": "7d"})
        out.polls.append(rtt)
        n_polls += 1
        total = int(summary["total_seconds"])
        if total == expected:
            out.polled.append(time.perf_counter() - acked)
            out.polls_per_sample.append(n_polls)
            return
        if total > expected:
            raise BenchError(f"7d total {total} s, expected {expected} s")
        if time.perf_counter() - acked > SAMPLE_CAP_S:
            raise BenchError(f"heartbeat not visible after {SAMPLE_CAP_S:.0f} s")
        pause = POLL_INTERVAL_S - (time.perf_counter() - began)
        if pause > 0:
            await asyncio.sleep(pause)


async def _interleaved(
    system: System,
    user: User,
    count: int,
    out: PushSamples,
    bar: tqdm,  # type: ignore[type-arg]
) -> None:
    """Up to ``count`` samples of each kind for one user: even ones pushed, odd ones polled."""
    async with (
        LiveSocket(system, user) as live,
        client(system.ingest_url, {"X-API-Key": user.api_key}) as ingest,
        client(system.api_url, user.bearer) as api,
    ):
        expected = int(
            (await get_json(api, "/api/v1/stats/summary", {"range": "7d"}))["total_seconds"]
        )
        for k, when in enumerate(sample_times()):
            if len(out.pushed) >= count and len(out.polled) >= count:
                break
            acked = await _post(ingest, _heartbeat(when, k, "live"), out)
            expected += 30
            if k % 2 == 0:
                arrived = await live.accepted(when, SAMPLE_CAP_S)
                out.pushed.append(arrived - acked)
            else:
                await _poll_until(api, expected, acked, out)
                # Its frame too, so the next sample starts with nothing in flight.
                await live.accepted(when, SAMPLE_CAP_S)
            await asyncio.sleep(PAUSE_S)
            stats_at = live.stats_arrival(when)
            if k % 2 == 0 and stats_at is not None:
                out.stats_pushed.append(stats_at - acked)
            bar.update(1)
        out.dropped += live.dropped


def ms(values: Sequence[float], q: float) -> str:
    return f"{percentile(values, q) * 1000:.1f} ms"


async def figure_live_push(system: System, users: Sequence[User], scale: float) -> list[Row]:
    mode = system.mode
    count = samples(scale)
    out = PushSamples()
    meter = Meter(system)
    with tqdm(total=2 * count, desc=f"{mode}: live push", unit="sample", mininterval=1) as bar:
        for user in users:
            if len(out.pushed) >= count and len(out.polled) >= count:
                break
            await _interleaved(system, user, count, out, bar)
    usage = meter.stop()
    if len(out.pushed) < count or len(out.polled) < count:
        raise BenchError(f"only {len(out.pushed)}/{len(out.polled)} samples: too few users")
    per_sample = percentile([float(n) for n in out.polls_per_sample], 50)
    notes = [
        f"{len(out.pushed)} pushed and {len(out.polled)} polled samples, interleaved, one "
        f"heartbeat at a time ({PAUSE_S * 1000:.0f} ms between samples), over {len(users)} "
        "users each with one live socket",
        f"polled: {per_sample:.0f} summary polls per sample at p50, every "
        f"{POLL_INTERVAL_S * 1000:.0f} ms; summary round trip p50 {ms(out.polls, 50)}, "
        f"p99 {ms(out.polls, 99)}",
        f"2xx -> the batch's stats.changed frame: p50 {ms(out.stats_pushed, 50)}, "
        f"p99 {ms(out.stats_pushed, 99)}; POST /api/v1/heartbeat ack p50 {ms(out.acks, 50)}, "
        f"p99 {ms(out.acks, 99)}; 'dropped' notices: {out.dropped}",
        usage.note(),
    ]
    baseline = "2xx -> counted by polled /stats/summary"
    return [
        Row(
            mode=mode,
            figure="4 heartbeat -> WebSocket p50 (2xx -> heartbeat.accepted frame)",
            unit="s",
            value=percentile(out.pushed, 50),
            baseline=percentile(out.polled, 50),
            baseline_label=f"{baseline} p50, interleaved",
            notes=notes,
        ),
        Row(
            mode=mode,
            figure="4 heartbeat -> WebSocket p99",
            unit="s",
            value=percentile(out.pushed, 99),
            baseline=percentile(out.polled, 99),
            baseline_label=f"{baseline} p99",
        ),
    ]
