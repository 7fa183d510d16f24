from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from ingest.normalize import (
    MAX_ID_LENGTH,
    DeletionRequest,
    ItemError,
    RequestMeta,
    codetrackr_item,
    dedupe,
    deletion_request,
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


def test_wakatime_item_takes_editor_os_and_plugin_from_user_agent() -> None:
    ua = "wakatime/13.1.0 (Linux-6.1.0-x86_64) Python3.9.18 vim/9.0 vim-wakatime/11.0.0"
    hb = wakatime_item(waka(user_agent=ua), 0, META)
    assert isinstance(hb, Heartbeat)
    assert (hb.editor, hb.os, hb.plugin, hb.user_agent) == ("vim", "Linux", "vim-wakatime", ua)


def test_wakatime_item_prefers_its_own_user_agent_then_the_header_and_machine() -> None:
    header_ua = "wakatime/v1.90.0 (darwin-23.1.0-arm64) go1.22.1 vscode/1.85.0 vscode-wakatime/24.5"
    meta = RequestMeta("u1", NOW, user_agent=header_ua, machine="laptop")
    from_header = wakatime_item(waka(), 0, meta)
    own = wakatime_item(waka(user_agent="(Windows-10) emacs/29.1 emacs-wakatime/3.0"), 1, meta)
    assert isinstance(from_header, Heartbeat)
    assert isinstance(own, Heartbeat)
    assert (from_header.editor, from_header.os, from_header.plugin) == (
        "vscode",
        "Mac",
        "vscode-wakatime",
    )
    assert (own.editor, own.os, own.plugin) == ("emacs", "Windows", "emacs-wakatime")
    assert from_header.machine == own.machine == "laptop"


@pytest.mark.parametrize(
    ("user_agent", "expected"),
    [
        (None, (None, None, None)),
        ("", (None, None, None)),
        ("curl/8.0", (None, None, None)),
        ("wakatime/13.1.0 (macOS-13.4-arm64-arm-64bit) Python3.9", (None, "Mac", None)),
        (
            "wakatime/v1.73.0 (linux-5.15.0-x86_64) go1.20.3 PyCharm/2023.2 PyCharm-wakatime/15.0",
            ("PyCharm", "Linux", "PyCharm-wakatime"),
        ),
        ("vscode/1.80.0 vscode-wakatime/4.0.0", ("vscode", None, "vscode-wakatime")),
        ("x (Haiku-1) ed/1 ed-wakatime/1", ("ed", "Haiku", "ed-wakatime")),
    ],
)
def test_parse_user_agent_finds_editor_os_and_plugin(
    user_agent: str | None, expected: tuple[str | None, str | None, str | None]
) -> None:
    assert parse_user_agent(user_agent) == expected


def test_codetrackr_item_maps_file_and_lang_and_defaults_duration() -> None:
    hb = codetrackr_item({"project": "core", "file": "src/main.rs", "lang": "rust"}, 0, META)
    assert isinstance(hb, Heartbeat)
    assert (hb.entity, hb.language, hb.duration, hb.time) == ("src/main.rs", "Rust", 30.0, NOW)
    assert hb.language_raw == "rust"
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


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        (True, True),
        (False, False),
        (None, False),
        (1, True),
        (0, False),
        (2, True),
        (1.0, True),
        ("true", True),
        ("True", True),
        ("1", True),
        ("yes", True),
        ("false", False),
        ("0", False),
        ("", False),
        ("  ", False),
        ("null", False),
    ],
)
def test_wakatime_item_coerces_is_write(sent: Any, stored: bool) -> None:
    hb = wakatime_item(waka(is_write=sent), 0, META)
    assert isinstance(hb, Heartbeat)
    assert hb.is_write is stored


@pytest.mark.parametrize("sent", ["maybe", [1], {"x": 1}, "nan"])
def test_wakatime_item_rejects_meaningless_is_write(sent: Any) -> None:
    err = wakatime_item(waka(is_write=sent), 0, META)
    assert isinstance(err, ItemError)
    assert list(err.fields) == ["is_write"]


def test_wakatime_item_coerces_numeric_strings_and_fractions_of_every_count() -> None:
    counts = ("lines", "line_additions", "line_deletions", "lineno", "cursorpos")
    hb = wakatime_item(
        waka(
            **{name: f" {i + 1} " for i, name in enumerate(counts)},
            project_root_count="3.0",
            ai_line_changes=4.7,
            human_line_changes="-2",
        ),
        0,
        META,
    )
    assert isinstance(hb, Heartbeat)
    assert [getattr(hb, name) for name in counts] == [1, 2, 3, 4, 5]
    assert (hb.project_root_count, hb.ai_line_changes, hb.human_line_changes) == (3, 4, -2)
    bad = wakatime_item(waka(lines="many"), 0, META)
    assert isinstance(bad, ItemError)
    assert list(bad.fields) == ["lines"]


def test_wakatime_item_ignores_unknown_fields_of_any_shape() -> None:
    hb = wakatime_item(waka(id="client-id", extra=[1, {"a": None}], user_id="someone"), 0, META)
    assert isinstance(hb, Heartbeat)
    assert hb.user_id == "u1"  # the owner is the caller, never what the body says


def test_wakatime_item_time_may_be_a_numeric_string() -> None:
    hb = wakatime_item(waka(time=str(NOW - 60.5)), 0, META)
    assert isinstance(hb, Heartbeat)
    assert hb.time == NOW - 60.5


def test_wakatime_item_accepts_the_edges_of_the_timely_window() -> None:
    assert isinstance(wakatime_item(waka(time=946684800.0), 0, META), Heartbeat)
    assert isinstance(wakatime_item(waka(time=NOW + 86400), 0, META), Heartbeat)
    assert isinstance(wakatime_item(waka(time=946684799.9), 0, META), ItemError)
    assert isinstance(wakatime_item(waka(time=NOW + 86400.5), 0, META), ItemError)


def test_wakatime_item_refuses_counts_beyond_storage() -> None:
    err = wakatime_item(waka(lines=2**40), 0, META)
    assert isinstance(err, ItemError)
    assert "lines" in err.fields


# -- DELETE .../heartbeats.bulk bodies -----------------------------------------------------------


def test_deletion_request_takes_the_date_and_distinct_ids_in_order() -> None:
    parsed = deletion_request({"date": "2024-03-30", "ids": ["b", " a ", "b"], "extra": 1})
    assert parsed == DeletionRequest(date(2024, 3, 30), ("b", "a"))
    assert deletion_request({"date": "2024-03-30", "ids": []}) == DeletionRequest(
        date(2024, 3, 30), ()
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([], "body"),
        ("2024-03-30", "body"),
        ({"ids": ["a"]}, "date"),
        ({"date": 20240330, "ids": ["a"]}, "date"),
        ({"date": "2024-3-30", "ids": ["a"]}, "date"),
        ({"date": "2024-W13-6", "ids": ["a"]}, "date"),
        ({"date": "2024-02-30", "ids": ["a"]}, "date"),
        ({"date": "1969-12-31", "ids": ["a"]}, "date"),
        ({"date": "2150-01-01", "ids": ["a"]}, "date"),
        ({"date": "2024-03-30"}, "ids"),
        ({"date": "2024-03-30", "ids": "a"}, "ids"),
        ({"date": "2024-03-30", "ids": ["a", 7]}, "ids.1"),
        ({"date": "2024-03-30", "ids": ["a", "  "]}, "ids.1"),
        ({"date": "2024-03-30", "ids": ["x" * (MAX_ID_LENGTH + 1)]}, "ids.0"),
    ],
)
def test_deletion_request_names_what_is_wrong(body: Any, field: str) -> None:
    err = deletion_request(body)
    assert isinstance(err, ItemError)
    assert field in err.fields
