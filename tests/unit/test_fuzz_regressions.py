"""Regressions for what the API fuzzer (``tests/e2e/test_api_fuzz.py``) found: each was a 500."""

from __future__ import annotations

from datetime import date

import pytest

from api.rules.stats import EARLIEST, LATEST, resolve_range
from http_edge.errors import ApiError
from ingest.normalize import ItemError, RequestMeta, codetrackr_item, wakatime_item
from schemas.heartbeat import MAX_TEXT, Heartbeat, is_timezone

META = RequestMeta(user_id="u", received_at=1_700_000_000.0)
TODAY = date(2026, 3, 10)


# -- an explicit null (or a blank string) in an optional text field raised a TypeError ----------


@pytest.mark.parametrize("value", [None, "", "  "])
@pytest.mark.parametrize("field", ["project", "branch", "language", "machine", "user_agent"])
def test_wakatime_null_or_blank_text_is_absent(field: str, value: str | None) -> None:
    hb = wakatime_item({"entity": "/src/a.py", "time": 1_699_999_000, field: value}, 0, META)
    assert isinstance(hb, Heartbeat)
    assert getattr(hb, field) is None


@pytest.mark.parametrize("field", ["file", "entity", "lang", "language", "branch", "commit"])
def test_codetrackr_null_text_is_absent(field: str) -> None:
    hb = codetrackr_item({"project": "core", field: None}, 0, META)
    assert isinstance(hb, Heartbeat)


def test_overlong_text_is_still_a_field_error() -> None:
    item = {"entity": "/a.py", "time": 1_699_999_000, "branch": "b" * (MAX_TEXT + 1)}
    err = wakatime_item(item, 3, META)
    assert isinstance(err, ItemError)
    assert list(err.fields) == ["branch"]


# -- a position or count that a float parses to infinity raised an OverflowError ---------------


@pytest.mark.parametrize("value", ["inf", "-Infinity", "1e400"])
def test_infinite_number_strings_are_field_errors(value: str) -> None:
    err = codetrackr_item({"project": "core", "lineno": value}, 0, META)
    assert isinstance(err, ItemError)
    assert list(err.fields) == ["lineno"]


# -- a timezone naming a tzdata directory, or too long for a file name, raised an OSError -------


@pytest.mark.parametrize("name", ["America", "Etc", "Europe/" + "x" * 300])
def test_directory_and_overlong_names_are_not_timezones(name: str) -> None:
    assert not is_timezone(name)
    assert is_timezone("America/Mexico_City")


# -- stats ranges naming days that datetime arithmetic cannot reach raised ValueError/Overflow --


@pytest.mark.parametrize(
    ("start", "end", "bad"),
    [
        ("0001-01-01", "0012-01-05", "start"),  # what the fuzzer sent
        (None, "9999-12-31", "end"),
        ("0001-01-01T00:00:00+01:00", None, "start"),  # overflows on the shift to the timezone
        (None, "9999-12-31T23:00:00-05:00", "end"),
        ("1999-12-30", None, "start"),
        (None, "2100-01-01", "end"),
    ],
)
def test_range_days_outside_the_stored_era_are_validation_errors(
    start: str | None, end: str | None, bad: str
) -> None:
    with pytest.raises(ApiError) as caught:
        resolve_range(None, start, end, tz="Europe/Berlin", today=TODAY)
    assert (caught.value.status, caught.value.code) == (400, "validation_error")
    assert list(caught.value.details["fields"]) == [bad]


@pytest.mark.parametrize("tz", ["Pacific/Kiritimati", "Pacific/Niue", "Europe/Berlin"])
def test_the_widest_allowed_range_has_bounds_in_every_timezone(tz: str) -> None:
    span = resolve_range(None, EARLIEST.isoformat(), LATEST.isoformat(), tz=tz, today=TODAY)
    assert (span.start, span.end) == (EARLIEST, LATEST)
    first, last = span.iso_bounds()
    assert first[:7] == "1999-12"
    assert last[:7] in ("2099-12", "2100-01")


def test_read_json_refuses_huge_numbers_and_deep_nesting_with_400() -> None:
    import asyncio

    from starlette.requests import Request

    from http_edge.body import read_json
    from http_edge.errors import ApiError

    def request_with(body: bytes) -> Request:
        async def receive() -> dict[str, object]:
            return {"type": "http.request", "body": body, "more_body": False}

        return Request({"type": "http", "method": "POST", "headers": []}, receive)

    for body in (b"1" * 5000, b"[" * 100_000 + b"]" * 100_000):
        with pytest.raises(ApiError) as info:
            asyncio.run(read_json(request_with(body), limit=1_000_000))
        assert info.value.status == 400
        assert info.value.code == "invalid_json"
