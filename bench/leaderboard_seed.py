"""Figure 5's board: the two weeks, the accounts' heartbeats, and how the accounts get there.

Most accounts are *seeded* (``seed``: the events the API would append for them, appended with
the server's own log adapter to a fresh data directory before the server starts); the last ones
go through the API over HTTP on the running server (``populate``). Why, and what the board holds:
see :mod:`bench.leaderboard`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from tqdm import tqdm

from bench.clients import HTTP_TIMEOUT_S, BenchError
from bench.deploy import HEARTBEAT_PARTITIONS, System, Usage, own_cpu_s
from bench.live_push import ms
from bench.payloads import dumps
from eventlog.factory import open_event_log
from eventlog.port import Record
from ingest.normalize import RequestMeta, codetrackr_item, dedupe
from schemas.events import (
    ACCOUNTS_TOPIC,
    HEARTBEATS_TOPIC,
    AccountCreated,
    HeartbeatsReceived,
    ProfileUpdated,
    encode_event,
)
from schemas.heartbeat import Heartbeat

USERS_AT_SCALE_1 = 100_000
SMALL_BOARD = 100
MIN_USERS = 2 * SMALL_BOARD
POP_CONNECTIONS = 32
HTTP_USERS_AT_SCALE_1 = 200  # the last accounts, made over HTTP on the running server
MIN_HTTP_USERS = 20
SEED_CHUNK = 3000  # records per append while seeding
POP_CAP_S = 4 * 3600.0
LANGUAGES = ("Go", "Python", "TypeScript", "Rust", "Java", "SQL")
COUNTRIES = ("XX", "DE", "US", "BR")
_MAX_BEATS = 6
_MAX_DURATION_S = 600
_SMALL_WEEKS_AGO = 2


def users_at(scale: float) -> int:
    return max(MIN_USERS, round(USERS_AT_SCALE_1 * scale))


def http_users_at(scale: float) -> int:
    return max(MIN_HTTP_USERS, round(HTTP_USERS_AT_SCALE_1 * scale))


def _monday(weeks_ago: int) -> date:
    today = datetime.now(UTC).date()
    return today - timedelta(days=today.weekday(), weeks=weeks_ago)


def _week_id(monday: date) -> str:
    year, week, _ = monday.isocalendar()
    return f"{year}-W{week:02d}"


def epoch(day: date) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()


@dataclass(frozen=True)
class Weeks:
    """The big week (the current UTC ISO week) and the baseline week, and where heartbeats go."""

    big: date
    small: date
    slots: int  # start minutes available in the big week, from Monday 01:00 UTC

    @classmethod
    def now(cls) -> Weeks:
        big = _monday(0)
        room = time.time() - 900 - (epoch(big) + 3600) - _MAX_BEATS * _MAX_DURATION_S
        if room < 3600:
            raise BenchError(
                "the UTC ISO week began less than 2.5 hours ago: not enough of it to put the "
                "board's heartbeats in; run again later"
            )
        return cls(big=big, small=_monday(_SMALL_WEEKS_AGO), slots=int(room // 60))

    @property
    def big_id(self) -> str:
        return _week_id(self.big)

    @property
    def small_id(self) -> str:
        return _week_id(self.small)

    def items(self, i: int) -> list[dict[str, Any]]:
        """User ``i``'s import: 2 to 6 contiguous heartbeats in the big week (and the same in
        the baseline week for the first ``SMALL_BOARD`` users)."""
        count = 2 + i % 5
        duration = 60 + (i * 7919) % (_MAX_DURATION_S - 59)
        starts = [epoch(self.big) + 3600 + ((i * 104_729) % self.slots) * 60]
        if i < SMALL_BOARD:
            starts.append(epoch(self.small) + 3600 + ((i * 104_729) % (5 * 24 * 60)) * 60)
        return [
            {
                "project": f"board-{i % 7}",
                "file": f"/src/board/{j}.txt",
                "lang": LANGUAGES[(i + j) % len(LANGUAGES)],
                "time": start + j * duration,
                "duration": duration,
                "editor": "vscode",
                "os": "Linux",
            }
            for start in starts
            for j in range(count)
        ]


@dataclass
class Population:
    """What populating the boards took."""

    users: int
    wall_s: float = 0.0
    latencies: dict[str, list[float]] = field(
        default_factory=lambda: {"create": [], "profile": [], "import": []}
    )
    usage: Usage | None = None

    def note(self) -> str:
        per_kind = ", ".join(
            f"{kind} p50 {ms(values, 50)} p99 {ms(values, 99)}"
            for kind, values in self.latencies.items()
        )
        return (
            f"over HTTP: the last {self.users:,} accounts created, made public and opted in, "
            f"and given heartbeats in {self.wall_s:.1f} s "
            f"({self.users / max(self.wall_s, 1e-9):,.1f} accounts/s, 3 requests each, "
            f"{POP_CONNECTIONS} connections); requests: {per_kind}"
        )


def _seed_records(weeks: Weeks, i: int, now: float) -> list[Record]:
    """What the API appends for user ``i`` created, made public and opted in, and importing."""
    user_id = uuid.uuid4().hex
    key = user_id.encode()
    created = AccountCreated(
        event_id=uuid.uuid4().hex,
        user_id=user_id,
        occurred_at=now,
        username=f"board-{i:06d}",
        account_number_hash=hashlib.sha256(f"bench-{user_id}".encode()).hexdigest(),
        timezone="UTC",
    )
    profile = ProfileUpdated(
        event_id=uuid.uuid4().hex,
        user_id=user_id,
        occurred_at=now,
        is_public=True,
        show_in_leaderboard=True,
        profile_show_languages=True,  # language boards rank only those who show them
        country=COUNTRIES[i % len(COUNTRIES)],
    )
    meta = RequestMeta(user_id=user_id, received_at=now, timezone="UTC")
    beats: list[Heartbeat] = []
    for index, item in enumerate(weeks.items(i)):
        beat = codetrackr_item(item, index, meta, source="import")
        if not isinstance(beat, Heartbeat):
            raise BenchError(f"seeded heartbeat rejected by normalization: {beat}")
        beats.append(beat)
    received = HeartbeatsReceived(
        event_id=uuid.uuid4().hex,
        user_id=user_id,
        occurred_at=now,
        heartbeats=tuple(dedupe(beats)),
    )
    return [
        Record(ACCOUNTS_TOPIC, key, encode_event(created)),
        Record(HEARTBEATS_TOPIC, key, encode_event(received)),
        Record(ACCOUNTS_TOPIC, key, encode_event(profile)),
    ]


async def seed(data_dir: Path, weeks: Weeks, count: int) -> tuple[float, float]:
    """Append users 0 .. count-1 to the event log of ``data_dir`` (the server's default file and
    adapter, the server's topics); returns wall seconds and the bench's CPU seconds."""
    began, cpu = time.perf_counter(), own_cpu_s()
    await asyncio.to_thread(data_dir.mkdir, parents=True, exist_ok=True)
    log = open_event_log("embedded://", data_dir)
    await log.start()
    try:
        await log.ensure_topics({HEARTBEATS_TOPIC: HEARTBEAT_PARTITIONS, ACCOUNTS_TOPIC: 1})
        now = time.time()
        opt_ins: list[Record] = []
        with tqdm(
            total=count, desc="embedded: seeding the board", unit="user", mininterval=2
        ) as bar:
            for first in range(0, count, SEED_CHUNK // 2):
                last = min(count, first + SEED_CHUNK // 2)
                records: list[Record] = []
                for i in range(first, last):
                    created, received, profile = _seed_records(weeks, i, now)
                    records += [created, received]
                    opt_ins.append(profile)
                await log.append(records)
                bar.update(last - first)
        # The opt-ins last. The projector works out the ranks of a batch's users on the whole
        # board before and after each batch, so once users are ranked every batch costs time in
        # proportion to the board; users who code first and join the boards afterwards keep the
        # board empty while their heartbeats are projected.
        for first in range(0, len(opt_ins), SEED_CHUNK):
            await log.append(opt_ins[first : first + SEED_CHUNK])
    finally:
        await log.close()
    return time.perf_counter() - began, own_cpu_s() - cpu


async def populate(system: System, weeks: Weeks, first: int, count: int) -> Population:
    """Users ``first`` .. ``count``-1 over HTTP, as they would make themselves."""
    result = Population(users=count - first)
    next_user = first
    deadline = time.monotonic() + POP_CAP_S
    timeout = aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S)

    async def call(
        session: aiohttp.ClientSession, kind: str, url: str, body: bytes, headers: dict[str, str]
    ) -> dict[str, Any]:
        began = time.perf_counter()
        async with session.post(url, data=body, headers=headers) as response:
            text = await response.text()
            if not 200 <= response.status < 300:
                raise BenchError(f"POST {url} -> {response.status}: {text[:300]}")
        result.latencies[kind].append(time.perf_counter() - began)
        answer: dict[str, Any] = json.loads(text)
        return answer

    async def worker(
        api: aiohttp.ClientSession,
        ingest: aiohttp.ClientSession,
        bar: tqdm,  # type: ignore[type-arg]
    ) -> None:
        nonlocal next_user
        json_type = {"Content-Type": "application/json"}
        while next_user < count:
            if time.monotonic() > deadline:
                raise BenchError(f"population not done within {POP_CAP_S:.0f} s")
            i = next_user
            next_user += 1
            created = await call(
                api, "create", "/auth/anonymous/create", b'{"timezone":"UTC"}', json_type
            )
            bearer = {**json_type, "Authorization": f"Bearer {created['token']}"}
            profile = {
                "is_public": True,
                "show_in_leaderboard": True,
                "profile_show_languages": True,  # language boards rank only those who show them
                "country": COUNTRIES[i % len(COUNTRIES)],
            }
            await call(api, "profile", "/api/v1/user/profile/update", dumps(profile), bearer)
            await call(ingest, "import", "/api/v1/import", dumps(weeks.items(i)), bearer)
            bar.update(1)

    def session(base_url: str) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(limit=POP_CONNECTIONS)
        return aiohttp.ClientSession(base_url, connector=connector, timeout=timeout)

    began = time.perf_counter()
    with tqdm(
        total=count, desc=f"{system.mode}: board accounts", unit="user", mininterval=2
    ) as bar:
        async with session(system.api_url) as api, session(system.ingest_url) as ingest:
            await asyncio.gather(*(worker(api, ingest, bar) for _ in range(POP_CONNECTIONS)))
    result.wall_s = time.perf_counter() - began
    return result
