"""Reading WakaTime's heartbeats export as a stream (ingest/wakatime_dump.py)."""

from __future__ import annotations

import io
import json
from datetime import date

import pytest

from bench.wakatime_dump import USER_AGENT, write_dump
from ingest.wakatime_dump import DumpError, DumpReader


def read(text: str) -> tuple[DumpReader, list[tuple[str, dict[str, object]]]]:
    reader = DumpReader(io.BytesIO(text.encode()))
    return reader, list(reader.heartbeats())


def test_heartbeats_come_out_by_day_with_names_resolved() -> None:
    out = io.StringIO()
    totals = write_dump(out, [date(2024, 1, 2), date(2024, 1, 9)], per_day=6, spacing_s=60)
    reader, items = read(out.getvalue())
    assert reader.timezone == "America/New_York"
    assert reader.days == 2
    assert [day for day, _ in items] == ["2024-01-02"] * 6 + ["2024-01-09"] * 6
    first = items[0][1]
    assert first["user_agent"] == USER_AGENT
    assert first["machine"] == "laptop"
    assert first["dependencies"] == ["os", "json"]
    assert isinstance(first["time"], float)
    assert totals == {date(2024, 1, 2): 4 * 60, date(2024, 1, 9): 4 * 60}


def test_a_heartbeat_keeps_its_own_user_agent_and_unknown_ids_stay_unknown() -> None:
    dump = {
        "user_agents": [{"id": "a", "value": "wakatime/1 (linux) go vim/9 vim-wakatime/1"}],
        "days": [
            {
                "date": "2024-01-02",
                "heartbeats": [
                    {
                        "time": 1704200000.0,
                        "entity": "x",
                        "user_agent_id": "a",
                        "user_agent": "own/1 (mac) go emacs/29 emacs-wakatime/1",
                    },
                    {
                        "time": 1704200060.0,
                        "entity": "y",
                        "user_agent_id": "zz",
                        "machine_name_id": "nope",
                    },
                ],
            }
        ],
    }
    reader, items = read(json.dumps(dump))
    assert reader.timezone is None
    assert items[0][1]["user_agent"].startswith("own/1")
    assert "user_agent" not in items[1][1]
    assert "machine" not in items[1][1]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"days": [{"date": "2024-01-01"', "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ('"days"', "JSON object"),
        ('{"days": [{"date": "2024-01-01", "grand_total": {"total_seconds": 5}}]}', "summaries"),
        ('{"user": {"timezone": "UTC"}}', "no `days` list"),
    ],
)
def test_what_is_not_a_heartbeats_export_is_refused(text: str, message: str) -> None:
    with pytest.raises(DumpError, match=message):
        read(text)


def test_memory_does_not_hold_the_file() -> None:
    """The reader pulls the stream as it yields: after the first heartbeat, only the parser's
    buffer of the file has been read, not the whole of it."""
    out = io.StringIO()
    write_dump(out, [date(2024, 1, d) for d in range(1, 29)], per_day=200)
    data = out.getvalue().encode()
    stream = io.BytesIO(data)
    items = DumpReader(stream).heartbeats()
    next(items)
    assert stream.tell() < len(data) // 4
