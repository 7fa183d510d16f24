"""Token usage projected on the real engine (chdb in-process): one row per request however often
it is delivered or read from files, sums per local day, month, session, project and model, the
requests for billing blocks, erasure and export."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from datetime import timedelta

import pytest

from processors.handlers import HeartbeatProjector
from projections.ai import TimeWindow
from projections.ai_usage import PricingTable, usage_report
from projections.clickhouse import ClickHouseProjectionStore
from projections.erasures import LogPosition
from schemas.ai import AiRecord, project_id_of, session_start_record, usage_record
from schemas.events import HEARTBEATS_TOPIC, AccountDeleted, AiActivityReceived
from tests.support import clickhouse_fixtures
from tests.support.store_inspect import rows_of_user
from tests.support.store_rows import DAY, epoch, erased

D2 = DAY + timedelta(days=1)

pytestmark = pytest.mark.clickhouse

chdb_url = clickhouse_fixtures.chdb_url
PATH = "/home/ada/tracker"
SONNET = "claude-sonnet-4-20250514"
OPUS = "claude-opus-4-20250514"


@pytest.fixture
def store(chdb_url: str) -> Iterator[ClickHouseProjectionStore]:
    created = ClickHouseProjectionStore(chdb_url, database=f"t_{uuid.uuid4().hex[:12]}")
    created.migrate()
    yield created
    created.close()


def project(
    store: ClickHouseProjectionStore, user: str, batches: Sequence[Sequence[AiRecord]]
) -> None:
    projector = HeartbeatProjector(store)
    events = [
        AiActivityReceived(
            event_id=f"e{i}", user_id=user, occurred_at=epoch(23), records=tuple(records)
        )
        for i, records in enumerate(batches)
    ]
    projector.handle(events, [LogPosition(HEARTBEATS_TOPIC, 0, i) for i in range(len(events))])


def requests(user: str) -> list[AiRecord]:
    """DAY (UTC) at 10:00 and 23:30, the next day at 09:00."""
    return [
        session_start_record(user, "s1", PATH, epoch(10)),
        usage_record(
            user,
            "s1",
            epoch(10),
            model=SONNET,
            message_id="m1",
            request_id="r1",
            input_tokens=100,
            output_tokens=50,
            cache_creation_tokens=1000,
            cache_read_tokens=2000,
        ),
        usage_record(
            user,
            "s1",
            epoch(23, 30),
            model=OPUS,
            message_id="m2",
            request_id="r2",
            input_tokens=10,
            output_tokens=5,
        ),
        usage_record(
            user,
            "s2",
            epoch(9, day=D2),
            model=SONNET,
            message_id="m3",
            request_id="r3",
            input_tokens=1,
            output_tokens=2,
            project_path="/home/ada/other",
        ),
    ]


def copy_of_m1(user: str) -> AiRecord:
    """The first request read from another file (a resumed session's copy), dated a minute
    later and in another session."""
    return usage_record(
        user,
        "s9",
        epoch(10, 1),
        model=SONNET,
        message_id="m1",
        request_id="r1",
        input_tokens=100,
        output_tokens=50,
        cache_creation_tokens=1000,
        cache_read_tokens=2000,
    )


def by_key(rows: list) -> dict[tuple[str, str], tuple[int, int, int, int, int]]:  # type: ignore[type-arg]
    return {
        (k, model): (
            s.requests,
            s.of("input"),
            s.of("output"),
            s.of("cache_creation"),
            s.of("cache_read"),
        )
        for k, model, s, _, _ in rows
    }


def test_each_request_counts_once_per_local_day_month_session_project_and_model(
    store: ClickHouseProjectionStore,
) -> None:
    records = requests("u1")
    project(store, "u1", [records, records[1:3], [copy_of_m1("u1")]])  # redelivered, copied
    project(store, "u2", [requests("u2")])

    utc = by_key(store.ai_usage_sums("u1", "day"))
    assert utc == {
        (str(DAY), SONNET): (1, 100, 50, 1000, 2000),
        (str(DAY), OPUS): (1, 10, 5, 0, 0),
        (str(D2), SONNET): (1, 1, 2, 0, 0),
    }
    # 23:30 UTC is the next day in Berlin.
    berlin = by_key(store.ai_usage_sums("u1", "day", timezone="Europe/Berlin"))
    assert berlin[(str(D2), OPUS)] == (1, 10, 5, 0, 0)
    months = by_key(store.ai_usage_sums("u1", "month"))
    assert {k for k, _ in months} == {str(DAY)[:7]}
    sessions = by_key(store.ai_usage_sums("u1", "session"))
    assert sessions[("s1", SONNET)][0] == 1  # the copy read first stays (s1 at 10:00)
    assert ("s9", SONNET) not in sessions
    projects = by_key(store.ai_usage_sums("u1", "project"))
    assert set(projects) == {
        (str(project_id_of("u1", PATH)), SONNET),
        (str(project_id_of("u1", PATH)), OPUS),
        (str(project_id_of("u1", "/home/ada/other")), SONNET),
    }
    only = store.ai_usage_sums("u1", "model", project_id=project_id_of("u1", PATH))
    assert by_key(only) == {
        (SONNET, SONNET): (1, 100, 50, 1000, 2000),
        (OPUS, OPUS): (1, 10, 5, 0, 0),
    }
    # A window, and the report's cost of the sums ClickHouse returns.
    day10 = TimeWindow(round(epoch(0) * 1000), round(epoch(0, day=D2) * 1000))
    report = usage_report(
        store.ai_usage_sums("u1", "day", window=day10), PricingTable.load(), key_name="date"
    )
    assert report["totals"]["cost_usd"] == pytest.approx(0.005925)
    entries = store.ai_usage_entries("u1")
    assert [(e.time_ms / 1000, e.model) for e in entries] == [
        (epoch(10), SONNET),
        (epoch(23, 30), OPUS),
        (epoch(9, day=D2), SONNET),
    ]
    # Usage stands for no heartbeat of its own (the session start does).
    assert rows_of_user(store, "u1")["heartbeats"] == 1


def test_tokens_past_the_threshold_are_summed_for_pricing(store: ClickHouseProjectionStore) -> None:
    big = usage_record(
        "u1",
        "s1",
        epoch(10),
        model=SONNET,
        message_id="m",
        request_id="r",
        input_tokens=250_000,
        cache_read_tokens=10,
    )
    project(store, "u1", [[big]])
    [(_, _, sums, _, _)] = store.ai_usage_sums("u1", "day")
    assert sums.above["input"] == 50_000
    assert sums.above["cache_read"] == 0


def test_usage_is_erased_with_the_rest_and_exported(store: ClickHouseProjectionStore) -> None:
    project(store, "u1", [requests("u1")])
    project(store, "u2", [requests("u2")])
    exported = [row for block in store.stream_ai_rows("u1", "ai_usage") for row in block]
    assert [row["message_id"] for row in exported] == ["m1", "m2", "m3"]
    assert exported[0]["cache_read_tokens"] == 2000
    assert exported[0]["time"] == epoch(10)

    # A range erasure removes the requests in its range only.
    erasure = erased("u1", epoch(12), epoch(12, day=D2), "x1")
    HeartbeatProjector(store).handle([erasure], [LogPosition(HEARTBEATS_TOPIC, 0, 50)])
    assert [(k, m) for k, m, _, _, _ in store.ai_usage_sums("u1", "day")] == [(str(DAY), SONNET)]
    # Deleting the account removes them all; the other user's stay.
    deleted = AccountDeleted(event_id="d1", user_id="u1", occurred_at=epoch(13, day=D2))
    HeartbeatProjector(store).handle_accounts([(7, deleted)])
    assert store.ai_usage_sums("u1", "day") == []
    assert rows_of_user(store, "u1")["ai_usage"] == 0
    assert len(store.ai_usage_sums("u2", "day")) == 3
