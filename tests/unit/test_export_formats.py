"""The export formats (``api.rules.export``): what they write parses back to the records, and they
format one block at a time, which is what keeps an export's memory flat."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest

from accounts.state import ApiKey, User
from api.rules.export import (
    HEARTBEAT_COLUMNS,
    account_event_section,
    csv_rows,
    heartbeat_record,
    json_array,
    json_document,
    key_section,
    user_section,
)
from schemas.heartbeat import Heartbeat

TRICKY = [
    "/src/a, b.py",
    '/src/say "hi".py',
    "/src/two\nlines.py",
    "/src/crlf\r\nname.py",
    "/src/ünïcødé/日本語/🚀.py",
    "=HYPERLINK(1)",
    "",
    "'; DROP TABLE heartbeats; --",
]


def stored(n: int, entity: str = "/src/a.py", **fields: Any) -> dict[str, Any]:
    """A record as ``stream_heartbeats`` yields it."""
    record: dict[str, Any] = {
        name: None for name in Heartbeat.model_fields if name not in ("schema_version", "user_id")
    }
    record.update(
        event_id=f"id{n}",
        time=1711792800.123 + n,
        entity=entity,
        type="file",
        category="coding",
        dependencies=[],
        is_write=False,
        duration=30.0,
        timezone="UTC",
        received_at=1711792801.5 + n,
        source="wakatime",
        local_date=date(2024, 3, 30),
    )
    record.update(fields)
    return record


def test_heartbeat_record_has_the_columns_in_order() -> None:
    record = heartbeat_record(stored(1))

    assert tuple(record) == HEARTBEAT_COLUMNS
    assert HEARTBEAT_COLUMNS[:3] == ("id", "time", "local_date")
    assert (record["id"], record["local_date"]) == ("id1", "2024-03-30")
    assert not {"event_id", "user_id", "schema_version"} & set(record)


def test_csv_rows_parse_back_with_tricky_values() -> None:
    records = [
        heartbeat_record(stored(i, entity, project=entity or None, dependencies=["a,b", 'c"d']))
        for i, entity in enumerate(TRICKY)
    ]
    records[0]["is_write"] = True

    text = b"".join(csv_rows([records[:3], [], records[3:]])).decode("utf-8")
    header, *rows = list(csv.reader(io.StringIO(text, newline="")))

    assert header == list(HEARTBEAT_COLUMNS)
    assert [row[header.index("entity")] for row in rows] == TRICKY
    assert [row[header.index("project")] for row in rows] == TRICKY  # None is empty
    first = dict(zip(header, rows[0], strict=True))
    assert first["is_write"] == "true"
    assert rows[1][header.index("is_write")] == "false"
    assert json.loads(first["dependencies"]) == ["a,b", 'c"d']
    assert float(first["time"]) == records[0]["time"]
    assert first["lines"] == ""
    assert text.endswith("\r\n")


def test_json_array_is_valid_json_for_any_number_of_blocks() -> None:
    items = [heartbeat_record(stored(i, entity)) for i, entity in enumerate(TRICKY)]

    assert json.loads(b"".join(json_array([]))) == []
    assert json.loads(b"".join(json_array([[], []]))) == []
    assert json.loads(b"".join(json_array([items[:1], [], items[1:]]))) == items


def test_text_that_is_not_unicode_is_written_as_its_escape() -> None:
    lone = "/src/\udc80.py"  # no UTF-8 form

    body = b"".join(json_array([[{"entity": lone}]]))

    assert json.loads(body) == [{"entity": lone}]


@pytest.mark.parametrize("formatter", [json_array, csv_rows])
def test_formatters_send_each_block_before_reading_the_next(formatter: Any) -> None:
    pulled: list[int] = []

    def blocks() -> Iterator[list[dict[str, Any]]]:
        for n in range(3):
            pulled.append(n)
            yield [heartbeat_record(stored(n))]

    sent = []
    for chunk in formatter(blocks()):
        for n in range(3):
            if f"id{n}".encode() in chunk:
                assert len(pulled) == n + 1  # block n went out before block n + 1 was read
                sent.append(n)

    assert sent == [0, 1, 2]


def test_json_document_streams_arrays_after_the_head() -> None:
    def chunks(values: list[int]) -> Iterator[bytes]:
        return json_array([values[:1], values[1:]])

    body = b"".join(
        json_document({"a": 1, "b": {"c": None}}, [("x", chunks([1, 2])), ("y", chunks([]))])
    )

    document = json.loads(body)
    assert document == {"a": 1, "b": {"c": None}, "x": [1, 2], "y": []}
    assert list(document) == ["a", "b", "x", "y"]


def test_gdpr_sections_never_hold_a_secret_hash() -> None:
    key = ApiKey("k1", "u1", "laptop", "ab12cd34ef56", "f" * 64, 1711792800.0)
    created = {
        "type": "AccountCreated",
        "version": 1,
        "event_id": "e1",
        "user_id": "u1",
        "occurred_at": 1711792800.0,
        "username": "ada",
        "account_number_hash": "",
        "timezone": "UTC",
    }

    assert key_section(key, 1711796400.0) == {
        "id": "k1",
        "name": "laptop",
        "key_prefix": "ab12cd34ef56",
        "read_only": False,
        "created_at": "2024-03-30T10:00:00Z",
        "last_used_at": "2024-03-30T11:00:00Z",
    }
    assert "account_number_hash" not in account_event_section(json.dumps(created))
    profile = user_section(User("u1", "ada", "Europe/Berlin", 1711792800.0))
    assert profile["created_at"] == "2024-03-30T10:00:00Z"
    assert not any("hash" in name for name in profile)
