"""The read API's two paths to a user's days agree: the stored daily projection, and the fold
from archived heartbeats that answers other timeouts, writes only, projects and timezones.

Runs on the real engine (chdb in-process), with heartbeats written by the real projector.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import date, timedelta

import pytest

from api.rules.activity import ActivityReader, Question
from api.rules.stats import DateRange
from processors.handlers import HeartbeatProjector
from projections.clickhouse import ClickHouseProjectionStore
from projections.daily import DailyRow, compute_day, day_spans, local_date
from projections.durations import filter_spans, totals
from schemas.events import HeartbeatsReceived
from schemas.heartbeat import Heartbeat, heartbeat_event_id

pytestmark = pytest.mark.clickhouse

USER = "reader-user"
FIRST = date(2026, 3, 27)  # the days cover Europe/Berlin's switch to summer time (March 29)
DAYS = 5


def make(rng: random.Random, t: float, tz: str) -> Heartbeat:
    fields = {
        "user_id": USER,
        "entity": rng.choice(["/a.py", "/b.go", "/c.rs"]),
        "type": "file",
        "category": "coding",
        "project": rng.choice(["api", "web", None]),
        "branch": rng.choice(["main", "dev"]),
        "language": rng.choice(["Python", "Go"]),
        "is_write": rng.random() < 0.3,
        "time": t,
    }
    return Heartbeat(
        event_id=heartbeat_event_id(**fields),  # type: ignore[arg-type]
        received_at=t + 5,
        timezone=tz,
        source="wakatime",
        editor="vim",
        **fields,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def beats() -> list[Heartbeat]:
    rng = random.Random(7)
    start = 1774562400.0  # 2026-03-26T22:00:00Z
    out = []
    t = start
    while t < start + DAYS * 86400:
        t += rng.choice([20, 45, 90, 300, 700, 1200, 4000])
        out.append(make(rng, t, rng.choice(["Europe/Berlin", "Europe/Berlin", "UTC"])))
    return out


@pytest.fixture(scope="module")
def store(
    tmp_path_factory: pytest.TempPathFactory, beats: list[Heartbeat]
) -> Iterator[ClickHouseProjectionStore]:
    created = ClickHouseProjectionStore(
        f"chdb://{tmp_path_factory.mktemp('reader')}", database=f"t_{uuid.uuid4().hex[:12]}"
    )
    created.migrate()
    projector = HeartbeatProjector(created)
    for first in range(0, len(beats), 37):  # several batches, as a live stream would be
        chunk = tuple(beats[first : first + 37])
        projector.handle(
            [
                HeartbeatsReceived(
                    event_id=f"e{first}", user_id=USER, occurred_at=0, heartbeats=chunk
                )
            ]
        )
    yield created
    created.close()


SPAN = DateRange(FIRST, FIRST + timedelta(days=DAYS - 1), "Europe/Berlin")


def by_day(rows: list[DailyRow]) -> dict[date, tuple[float, dict[str, float]]]:
    return {
        row.date: (
            round(row.total_seconds, 6),
            {k: round(v, 6) for k, v in row.breakdown["project"].items()},
        )
        for row in rows
        if row.total_seconds > 0
    }


def test_default_question_reads_the_projection(store: ClickHouseProjectionStore) -> None:
    reader = ActivityReader(store)
    assert Question().projected
    assert reader.rows(USER, SPAN, Question()) == store.daily_rows(USER, SPAN.start, SPAN.end)


def test_the_fold_path_equals_the_projection_for_the_same_question(
    store: ClickHouseProjectionStore,
) -> None:
    # A filter that keeps everything forces the fold; its answer must be the stored one.
    everything = Question(branches=frozenset({"main", "dev"}), project=None)
    assert not everything.projected
    folded = ActivityReader(store).rows(USER, SPAN, everything)
    stored = store.daily_rows(USER, SPAN.start, SPAN.end)
    assert by_day(folded) == by_day(stored)
    assert sum(r.total_seconds for r in stored) > 3600


def test_filters_apply_after_folding(store: ClickHouseProjectionStore) -> None:
    reader = ActivityReader(store)
    stored = store.daily_rows(USER, SPAN.start, SPAN.end)
    for project in ("api", "web"):
        only = reader.rows(USER, SPAN, Question(project=project))
        expected = {r.date: r.breakdown["project"].get(project, 0.0) for r in stored}
        got = {r.date: r.total_seconds for r in only}
        assert all(got.get(d, 0.0) == pytest.approx(s) for d, s in expected.items())
    unknown = reader.rows(USER, SPAN, Question(project="Unknown Project"))
    assert sum(r.total_seconds for r in unknown) == pytest.approx(
        sum(r.breakdown["project"].get("", 0.0) for r in stored)
    )


def test_timeout_and_writes_only_follow_the_rule(
    store: ClickHouseProjectionStore, beats: list[Heartbeat]
) -> None:
    reader = ActivityReader(store)
    for minutes in (1, 5, 60):
        for writes_only in (False, True):
            question = Question(timeout_minutes=minutes, writes_only=writes_only)
            got = {r.date: r.total_seconds for r in reader.rows(USER, SPAN, question)}
            assert got
            for day, seconds in got.items():
                todays = [hb for hb in beats if local_date(hb.time, hb.timezone) == day]
                _, spans = day_spans(USER, day, todays, timeout_s=minutes * 60)
                kept = filter_spans(spans, is_write="1") if writes_only else spans
                assert seconds == pytest.approx(totals(kept).total_seconds)


def test_another_timezone_redates_every_heartbeat(
    store: ClickHouseProjectionStore, beats: list[Heartbeat]
) -> None:
    reader = ActivityReader(store)
    tokyo = DateRange(SPAN.start - timedelta(days=1), SPAN.end + timedelta(days=1), "Asia/Tokyo")
    rows = reader.rows(USER, tokyo, Question(timezone="Asia/Tokyo"))
    assert {r.timezone for r in rows} == {"Asia/Tokyo"}
    moved = [hb.model_copy(update={"timezone": "Asia/Tokyo"}) for hb in beats]
    for row in rows:
        expected = compute_day(USER, row.date, moved)
        assert row.total_seconds == pytest.approx(expected.total_seconds)
        assert row.heartbeat_count == expected.heartbeat_count
