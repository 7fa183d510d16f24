"""The pure rules of AI coding activity: record ids, the heartbeats records stand for (and that
AI time is never counted twice with hand-written time), search queries and snippets, date
filters, tool statistics, the claude.json import plan and the seed's error shape."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.rules.ai import date_window, moment, parse_search, plan_import, snippet, tokens
from http_edge.errors import in_seed_style, seed_error_body
from http_edge.problem import ApiError
from projections.ai import (
    AI_CATEGORY,
    SessionOrigin,
    ai_heartbeats,
    percentile,
    stamped,
    tool_stats,
)
from projections.daily import compute_day
from schemas.ai import (
    AiMessage,
    AiSessionStart,
    file_activity_record,
    message_record,
    project_id_of,
    project_name_of,
    project_record,
    session_end_record,
    session_start_record,
    tool_call_record,
)
from schemas.heartbeat import Heartbeat

T0 = datetime(2024, 3, 30, 10, tzinfo=UTC).timestamp()
NOW = T0 + 86_400


# ---- ids --------------------------------------------------------------------------------------


def test_project_ids_are_stable_per_user_and_path_and_fit_javascript_numbers() -> None:
    first = project_id_of("u1", "/home/ada/tracker")
    assert first == project_id_of("u1", "/home/ada/tracker")
    assert first != project_id_of("u2", "/home/ada/tracker")
    assert first != project_id_of("u1", "/home/ada/other")
    assert 0 < first < 2**53
    assert project_name_of("/home/ada/tracker/") == "tracker"
    assert project_name_of("C:\\code\\app") == "app"
    assert project_name_of("/") == "/"


def test_record_ids_name_the_same_activity_the_same_way() -> None:
    one = message_record("u1", "s", "user", "hi", T0)
    assert one.id == message_record("u1", "s", "user", "hi", T0 + 0.0001).id  # same millisecond
    assert one.id != message_record("u1", "s", "user", "hi!", T0).id
    assert one.id != message_record("u1", "s", "assistant", "hi", T0).id
    assert one.id != message_record("u2", "s", "user", "hi", T0).id
    assert one.id != message_record("u1", "s", "user", "hi", T0 + 1).id
    start = session_start_record("u1", "s", "/p", T0)
    assert start.id == session_start_record("u1", "s", "/p", T0, client_user="x").id
    assert start.id != session_end_record("u1", "s", T0).id
    assert project_record("u1", "/p", T0).project_id == start.project_id


def test_stamping_adds_the_sessions_origin_without_changing_the_id() -> None:
    message = message_record("u1", "s", "user", "hi", T0)
    origin = SessionOrigin("/home/ada/tracker", "Cursor")
    stamped_message = stamped(message, origin)
    assert isinstance(stamped_message, AiMessage)
    assert stamped_message.id == message.id
    assert (stamped_message.project_path, stamped_message.assistant) == (
        origin.project_path,
        "Cursor",
    )
    own = message_record("u1", "s", "user", "hi", T0, project_path="/own")
    assert stamped(own, origin).project_path == "/own"  # what the client said wins
    assert stamped(message, None) is message
    start = session_start_record("u1", "s", "/p", T0)
    assert stamped(start, origin) is start


# ---- AI time ----------------------------------------------------------------------------------


def test_each_record_stands_for_one_ai_coding_heartbeat_of_its_session() -> None:
    start = session_start_record("u1", "s", "/home/ada/tracker", T0, assistant="Claude Code")
    edit = file_activity_record(
        "u1", "s", "/home/ada/tracker/a.py", "modified", T0 + 60, lines_added=3, lines_removed=1
    )
    tool = tool_call_record(
        "u1",
        "Read",
        T0 + 90,
        session_id="s",
        parameters=json.dumps({"file_path": "/home/ada/tracker/b.py"}),
        execution_time_ms=2500,
    )
    beats = ai_heartbeats(
        "u1", [project_record("u1", "/x", T0), start, edit, tool], timezone="UTC", received_at=NOW
    )
    assert len(beats) == 3  # the project record is no activity
    assert {hb.category for hb in beats} == {AI_CATEGORY}
    assert {hb.editor for hb in beats} == {"Claude Code"}
    assert {hb.project for hb in beats} == {"tracker"}
    by_entity = {hb.entity: hb for hb in beats}
    assert by_entity["/home/ada/tracker/a.py"].is_write
    assert by_entity["/home/ada/tracker/a.py"].ai_line_changes == 4
    assert by_entity["/home/ada/tracker/b.py"].duration == 2.5
    assert by_entity["Claude Code"].type == "app"
    again = ai_heartbeats("u1", [start, edit, tool], timezone="UTC", received_at=NOW + 5)
    assert [hb.event_id for hb in again] == [hb.event_id for hb in beats[:3]]


def test_a_record_takes_its_origin_from_itself_or_its_events_start_only() -> None:
    message = message_record("u1", "s", "user", "hi", T0 + 60)
    [alone] = ai_heartbeats("u1", [message], timezone="UTC", received_at=NOW)
    assert alone.project is None  # no start in its event, nothing stamped: no project
    start = session_start_record("u1", "s", "/p/tracker", T0, assistant="Aider")
    [_, joined] = ai_heartbeats("u1", [start, message], timezone="UTC", received_at=NOW)
    assert (joined.project, joined.editor) == ("tracker", "Aider")
    [own] = ai_heartbeats(
        "u1", [stamped(message, SessionOrigin("/q/site"))], timezone="UTC", received_at=NOW
    )
    assert own.project == "site"


def _hand(time: float, duration: float = 0.0) -> Heartbeat:
    return Heartbeat(
        event_id=f"h{time}",
        user_id="u1",
        time=time,
        entity="/src/a.py",
        project="tracker",
        editor="VS Code",
        duration=duration,
        received_at=NOW,
        source="wakatime",
    )


@settings(max_examples=150, deadline=None)
@given(
    hand=st.lists(st.integers(0, 7200), max_size=25),
    ai=st.lists(st.integers(0, 7200), max_size=25),
)
def test_ai_time_and_hand_time_are_never_counted_twice(hand: list[int], ai: list[int]) -> None:
    manual = [_hand(T0 + s) for s in hand]
    records = [message_record("u1", "s", "user", f"m{s}", T0 + s) for s in ai]
    assistant = ai_heartbeats("u1", records, timezone="UTC", received_at=NOW)
    day = date(2024, 3, 30)

    def total(beats: list[Heartbeat]) -> float:
        return compute_day("u1", day, beats).total_seconds

    both, alone_hand, alone_ai = total([*manual, *assistant]), total(manual), total(assistant)
    # Time is a property of the instants, not of who was active: the same instants, all of
    # them hand-written, give the same total (overlaps and gaps count once either way).
    as_if_by_hand = [_hand(hb.time, hb.duration) for hb in assistant]
    assert both == pytest.approx(total([*manual, *as_if_by_hand]))
    assert both >= max(alone_hand, alone_ai) - 1e-6
    # Activity at the very same instants as hand edits adds nothing.
    same = ai_heartbeats(
        "u1",
        [message_record("u1", "s", "user", f"x{s}", T0 + s) for s in hand],
        timezone="UTC",
        received_at=NOW,
    )
    assert total([*manual, *same]) == pytest.approx(alone_hand)


# ---- tool statistics --------------------------------------------------------------------------


def test_percentiles_interpolate_between_ranks() -> None:
    assert percentile([], 0.5) is None
    assert percentile([5.0], 0.95) == 5.0
    assert percentile([100.0, 200.0, 300.0, 400.0], 0.5) == 250.0
    assert percentile([100.0, 200.0, 300.0, 400.0], 0.95) == pytest.approx(385.0)


def test_tool_stats_count_successes_and_times_per_tool() -> None:
    stats = tool_stats(
        [
            ("Read", "success", 10.0),
            ("Read", "error", 30.0),
            ("Bash", "ok", None),
            ("Read", "OK", None),
        ]
    )
    assert [s.tool_name for s in stats] == ["Read", "Bash"]
    read = stats[0]
    assert (read.count, read.success_count, read.success_rate) == (3, 2, 0.6667)
    assert (read.p50_ms, read.avg_ms) == (20.0, 20.0)
    assert stats[1].p50_ms is None


# ---- search -----------------------------------------------------------------------------------


def test_a_query_is_words_and_quoted_phrases() -> None:
    query = parse_search('Parser  "write the TESTS" bug-fix parser')
    assert query.words == ("parser", "bug", "fix", "write", "the", "tests")
    assert query.phrases == ("write the tests",)
    assert tokens("naïve café_42") == ["naïve", "café", "42"]
    for bad in (None, "", '  "" !!'):
        with pytest.raises(ApiError) as refused:
            parse_search(bad)
        assert refused.value.status == 400
    with pytest.raises(ApiError):
        parse_search(" ".join(f"w{i}" for i in range(40)))


def test_snippets_escape_html_and_mark_whole_words_and_phrases() -> None:
    query = parse_search('parser "fix it"')
    text = "<b>The parser</b> and the parsers: fix it now."
    assert snippet(text, query) == (
        "&lt;b&gt;The <mark>parser</mark>&lt;/b&gt; and the parsers: <mark>fix it</mark> now."
    )
    long = "x " * 300 + "the parser is here " + "y " * 300
    cut = snippet(long, parse_search("parser"), width=60)
    assert cut.startswith("…")
    assert cut.endswith("…")
    assert "<mark>parser</mark>" in cut
    assert len(cut) < 100


# ---- dates and times --------------------------------------------------------------------------


def test_date_filters_are_whole_days_of_the_users_timezone() -> None:
    window = date_window("2024-03-30", "2024-03-30", "Europe/Berlin")
    start = datetime(2024, 3, 30, tzinfo=ZoneInfo("Europe/Berlin")).timestamp()
    end = datetime(2024, 3, 31, tzinfo=ZoneInfo("Europe/Berlin")).timestamp()
    assert (window.start_ms, window.end_ms) == (start * 1000, end * 1000)
    exact = date_window("2024-03-30T10:00:00Z", None, "Europe/Berlin")
    assert exact.start_ms == T0 * 1000
    assert exact.end_ms is None
    for start_date, end_date in (("2024-03-31", "2024-03-30"), ("March", None)):
        with pytest.raises(ApiError):
            date_window(start_date, end_date, "UTC")


def test_times_without_an_offset_are_the_users() -> None:
    berlin = moment("2024-03-30T11:00:00", "Europe/Berlin", now=NOW, name="t")
    assert berlin == T0
    assert moment("2024-03-30T10:00:00Z", "Europe/Berlin", now=NOW, name="t") == T0
    assert moment(T0, "UTC", now=NOW, name="t") == T0
    assert moment(None, "UTC", now=NOW, name="t") == NOW
    for bad in ("yesterday", "1999-12-31T00:00:00", NOW + 2 * 86_400, True, [1]):
        with pytest.raises(ApiError) as refused:
            moment(bad, "UTC", now=NOW, name="start_time")
        assert refused.value.details == {
            "fields": {"start_time": refused.value.details["fields"]["start_time"]}
        }


# ---- import -----------------------------------------------------------------------------------


def test_a_claude_json_plan_is_the_same_whenever_it_is_imported() -> None:
    document = {
        "projects": {
            "/home/ada/api": {
                "history": [{"display": "second"}, {"display": ""}, {"display": "first"}],
                "lastSessionId": "cc-1",
            },
            "/bad": "not an object",
        }
    }
    first = plan_import("u1", document, timezone="UTC", now=NOW)
    later = plan_import("u1", document, timezone="UTC", now=NOW + 3600)
    assert [r.id for r in first.records] == [r.id for r in later.records]
    messages = [r for r in first.records if isinstance(r, AiMessage)]
    assert [m.content for m in messages] == ["first", "second"]  # oldest first
    assert {m.session_id for m in messages} == {"cc-1"}
    assert [r.session_id for r in first.records if isinstance(r, AiSessionStart)] == ["cc-1"]
    assert first.errors == [
        "projects['/home/ada/api'].history[1]: no prompt text (`display`)",
        "projects['/bad']: must be an object",
    ]
    assert first.counts(set()) == {
        "projects_imported": 1,
        "sessions_imported": 1,
        "conversations_imported": 2,
        "activities_imported": 0,
    }
    assert first.counts({r.id for r in first.records}) == dict.fromkeys(first.counts(set()), 0)


def test_a_tracker_export_plan_reports_each_bad_record() -> None:
    document = {
        "sessions": [
            {
                "session_id": "s1",
                "project_path": "/p",
                "start_time": "2024-03-30T10:00:00Z",
                "end_time": "2024-03-30T11:00:00Z",
                "conversations": [
                    {"role": "user", "content": "ok", "timestamp": "2024-03-30T10:01:00Z"},
                    {"role": "user"},
                ],
                "activities": [{"file_path": "/p/a", "action": "moved"}],
                "tool_calls": [{"tool_name": "Bash", "timestamp": "2024-03-30T10:02:00Z"}],
            },
            "nonsense",
        ]
    }
    plan = plan_import("u1", document, timezone="UTC", now=NOW)
    assert [r.kind for r in plan.records] == [
        "session_start",
        "session_end",
        "message",
        "tool_call",
    ]
    assert len(plan.errors) == 3
    assert plan.errors[0].startswith("sessions[0].conversations[1]: ")
    assert plan.errors[1].startswith("sessions[0].activities[0]: ")
    assert plan.errors[2] == "sessions[1]: must be an object"
    with pytest.raises(ApiError):
        plan_import("u1", [], timezone="UTC", now=NOW)
    with pytest.raises(ApiError):
        plan_import("u1", {"other": 1}, timezone="UTC", now=NOW)


# ---- the seed's error shape -------------------------------------------------------------------


def test_seed_paths_answer_the_seeds_error_shape() -> None:
    assert in_seed_style("/api/projects")
    assert in_seed_style("/api/tool-calls/session/x")
    assert in_seed_style("/api/import/claude-data")
    assert not in_seed_style("/api/projectsx")
    assert not in_seed_style("/api/v1/ai/projects")
    error = ApiError(
        400, "invalid role", code="validation_error", details={"fields": {"role": "bad"}}
    )
    assert seed_error_body(error) == {
        "error": True,
        "message": "invalid role",
        "code": "VALIDATION_ERROR",
        "details": {"role": "bad"},
    }
    assert seed_error_body(ApiError(404, "nope", details={"project_id": 3}))["details"] == {
        "project_id": 3
    }
