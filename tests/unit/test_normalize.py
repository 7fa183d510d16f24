from __future__ import annotations

import pytest

from ingest.normalize import (
    ItemError,
    RequestMeta,
    codetrackr_item,
    dedupe,
    parse_user_agent,
    resolve_timezone,
    wakatime_item,
)
from schemas.heartbeat import Heartbeat

NOW = 1_760_000_000.0
META = RequestMeta(user_id="u1", received_at=NOW, timezone="Europe/Berlin")


def waka(**overrides: object) -> dict[str, object]:
    item: dict[str, object] = {
        "entity": "/src/app.py",
        "type": "file",
        "time": NOW - 60,
        "project": "app",
        "language": "Python",
    }
    item.update(overrides)
    return item


def test_wakatime_item_coerces_string_positions_and_ignores_unknown_fields() -> None:
    hb = wakatime_item(waka(lineno="12", cursorpos="", whatever={"x": 1}), 0, META)
    assert isinstance(hb, Heartbeat)
    assert hb.lineno == 12
    assert hb.cursorpos is None
    assert hb.duration == 0.0
    assert hb.source == "wakatime"
    assert hb.timezone == "Europe/Berlin"


def test_wakatime_item_error_names_the_field() -> None:
    err = wakatime_item(waka(category="napping"), 3, META)
    assert isinstance(err, ItemError)
    assert err.index == 3
    assert "category" in err.fields
    missing = wakatime_item({"entity": "x"}, 0, META)
    assert isinstance(missing, ItemError)
    assert "time" in missing.fields


@pytest.mark.parametrize(
    ("time", "problem"), [(1.0, "before the year 2000"), (NOW + 3 * 86400, "future")]
)
def test_wakatime_item_rejects_untimely_heartbeats(time: float, problem: str) -> None:
    err = wakatime_item(waka(time=time), 0, META)
    assert isinstance(err, ItemError)
    assert problem in err.fields["time"]


def test_wakatime_item_takes_editor_and_os_from_user_agent() -> None:
    ua = "wakatime/13.1.0 (Linux-6.1.0-x86_64) Python3.9.18 vim/9.0 vim-wakatime/11.0.0"
    hb = wakatime_item(waka(user_agent=ua), 0, META)
    assert isinstance(hb, Heartbeat)
    assert (hb.editor, hb.os) == ("vim", "Linux")


def test_parse_user_agent_handles_absent_and_odd_values() -> None:
    assert parse_user_agent(None) == (None, None)
    assert parse_user_agent("curl/8.0") == (None, None)


def test_codetrackr_item_maps_file_and_lang_and_defaults_duration() -> None:
    hb = codetrackr_item({"project": "core", "file": "src/main.rs", "lang": "rust"}, 0, META)
    assert isinstance(hb, Heartbeat)
    assert (hb.entity, hb.language, hb.duration, hb.time) == ("src/main.rs", "rust", 30.0, NOW)
    imported = codetrackr_item({"project": "core", "time": NOW - 10}, 0, META, source="import")
    assert isinstance(imported, Heartbeat)
    assert imported.duration == 60.0


def test_codetrackr_item_requires_project_and_a_sane_duration() -> None:
    no_project = codetrackr_item({"file": "a"}, 0, META)
    assert isinstance(no_project, ItemError)
    assert "project" in no_project.fields
    negative = codetrackr_item({"project": "p", "duration": -5}, 0, META)
    assert isinstance(negative, ItemError)
    assert "duration" in negative.fields


def test_event_id_is_the_same_for_the_same_activity_in_both_dialects() -> None:
    a = wakatime_item(waka(time=NOW - 5), 0, META)
    b = codetrackr_item(
        {"project": "app", "file": "/src/app.py", "lang": "Python", "time": NOW - 5}, 0, META
    )
    other_user = wakatime_item(waka(time=NOW - 5), 0, RequestMeta("u2", NOW))
    assert isinstance(a, Heartbeat)
    assert isinstance(b, Heartbeat)
    assert isinstance(other_user, Heartbeat)
    assert a.event_id == b.event_id
    assert a.event_id != other_user.event_id


def test_dedupe_keeps_first_of_each_activity() -> None:
    first = wakatime_item(waka(lines=1), 0, META)
    again = wakatime_item(waka(lines=2), 1, META)
    assert isinstance(first, Heartbeat)
    assert isinstance(again, Heartbeat)
    assert dedupe([first, again]) == [first]


def test_resolve_timezone_prefers_user_then_header_then_utc() -> None:
    assert resolve_timezone("Asia/Kolkata", "Europe/Berlin") == "Asia/Kolkata"
    assert resolve_timezone(None, "Europe/Berlin") == "Europe/Berlin"
    assert resolve_timezone(None, "Mars/Olympus") == "UTC"
    assert resolve_timezone(None, None) == "UTC"


def test_wakatime_item_refuses_counts_beyond_storage() -> None:
    err = wakatime_item(waka(lines=2**40), 0, META)
    assert isinstance(err, ItemError)
    assert "lines" in err.fields
