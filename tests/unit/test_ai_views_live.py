"""Pure rules around AI activity: the ``ai.activity`` live message, lines by the assistant and by
hand, session length distributions, and how the import command cuts a file in parts."""

from __future__ import annotations

from datetime import date

import pytest

from api.rules.ai import day_range, lines_view, session_lengths_view
from codetrackr.ai_import import chunks
from http_edge.problem import ApiError
from processors.projectors.live import AI_ITEMS, ai_messages
from schemas.ai import (
    message_record,
    session_start_record,
    tool_call_record,
    usage_record,
)
from schemas.events import AiActivityReceived
from schemas.live import live_message

T = 1_773_000_000.0


def event(user: str, records: list, event_id: str = "e") -> AiActivityReceived:  # type: ignore[type-arg]
    return AiActivityReceived(
        event_id=event_id, user_id=user, occurred_at=T, records=tuple(records)
    )


def test_one_ai_activity_per_user_counts_each_record_once_and_names_the_latest() -> None:
    start = session_start_record("u1", "s1", "/p", T)
    said = [
        message_record("u1", "s1", "user", f"prompt {i} " + "x" * 300, T + i) for i in range(30)
    ]
    call = tool_call_record("u1", "Bash", T + 5, session_id="s1", result_status="error")
    spent = usage_record(
        "u1", "s1", T + 6, model="m", message_id="a", request_id="b", output_tokens=9
    )
    events = [
        event("u1", [start, *said, call, spent]),
        event("u1", [spent, call], "e2"),  # the same records again
        event("u2", [session_start_record("u2", "s9", "/q", T)], "e3"),
    ]
    [(first_user, mine), (second_user, theirs)] = ai_messages(events)
    assert (first_user, second_user) == ("u1", "u2")
    assert mine.counts == {"session_start": 1, "message": 30, "tool_call": 1, "usage": 1}
    assert [m.preview[:9] for m in mine.messages][-1] == "prompt 29"
    assert len(mine.messages) == AI_ITEMS
    assert len(mine.messages[0].preview) == 200
    assert [(c.tool_name, c.result_status) for c in mine.tool_calls] == [("Bash", "error")]
    assert mine.tokens == {"input": 0, "output": 9, "cache_creation": 0, "cache_read": 0}
    assert theirs.tokens == {}
    assert [s.session_id for s in theirs.sessions_started] == ["s9"]
    # What a socket receives reads back as the same message.
    assert live_message.validate_json(mine.model_dump_json()) == mine


def test_lines_are_summed_per_day_and_project_with_the_assistants_share() -> None:
    d1, d2 = date(2026, 3, 9), date(2026, 3, 10)
    view = lines_view([(d1, "", 0, 4), (d1, "api", 6, 2), (d2, "api", 3, 0)])
    assert view["days"][0] == {
        "date": "2026-03-09",
        "ai_lines": 6,
        "human_lines": 6,
        "projects": [
            {"project": None, "ai_lines": 0, "human_lines": 4},
            {"project": "api", "ai_lines": 6, "human_lines": 2},
        ],
    }
    assert view["totals"] == {"ai_lines": 9, "human_lines": 6, "ai_share": 0.6}
    assert lines_view([])["totals"]["ai_share"] is None


def test_a_day_range_takes_dates_only_in_order() -> None:
    assert day_range("2026-03-01", None) == (date(2026, 3, 1), None)
    assert day_range(None, " ") == (None, None)
    for start, end in (("2026-03-02", "2026-03-01"), ("today", None), (None, "2026-13-01")):
        with pytest.raises(ApiError) as caught:
            day_range(start, end)
        assert caught.value.status == 400


def test_session_lengths_fall_in_buckets_with_interpolated_percentiles() -> None:
    def session(minutes: float | None) -> dict[str, int | None]:
        return {"start_ms": 0, "end_ms": None if minutes is None else round(minutes * 60_000)}

    view = session_lengths_view([session(m) for m in (1, 4, 10, 45, 300, None)])
    assert (view["ended_sessions"], view["open_sessions"]) == (5, 1)
    assert {b["range"]: b["sessions"] for b in view["buckets"]} == {
        "<5m": 2,
        "5m-15m": 1,
        "15m-30m": 0,
        "30m-1h": 1,
        "1h-2h": 0,
        "2h-4h": 0,
        ">=4h": 1,
    }
    assert view["p50_minutes"] == 10
    assert view["p90_minutes"] == pytest.approx(45 + (300 - 45) * 0.6)
    assert view["mean_minutes"] == 72
    empty = session_lengths_view([])
    assert (empty["p50_minutes"], empty["mean_minutes"]) == (None, None)


def test_a_file_is_sent_in_parts_of_whole_lines_numbered_from_their_first() -> None:
    data = b"aaaa\nbb\ncccccccccc\nd\n"
    parts = list(chunks(data, limit=8))
    assert parts == [(1, b"aaaa\nbb\n"), (3, b"cccccccccc\n"), (4, b"d\n")]
    assert b"".join(part for _, part in parts) == data
    assert list(chunks(b"no newline at the end", limit=4)) == [(1, b"no newline at the end")]
