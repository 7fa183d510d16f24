"""The canonical language rule (pure): one name per language, whatever the client called it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.normalize import RequestMeta, codetrackr_item, wakatime_item
from schemas.events import HeartbeatsReceived, decode_event, encode_event
from schemas.heartbeat import Heartbeat
from schemas.languages import (
    _ALIASES,
    _NAMES,
    OTHER,
    canonical_language,
    language_key,
    merge_languages,
    with_canonical_language,
)

NOW = 1_760_000_000.0
META = RequestMeta(user_id="u1", received_at=NOW)


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("Python", "Python"),
        ("python", "Python"),
        ("PYTHON", "Python"),
        ("  python ", "Python"),
        ("javascript", "JavaScript"),
        ("typescript", "TypeScript"),
        ("typescriptreact", "TSX"),
        ("javascriptreact", "JSX"),
        ("csharp", "C#"),
        ("cpp", "C++"),
        ("c++", "C++"),
        ("shellscript", "Bash"),
        ("golang", "Go"),
        ("go", "Go"),
        ("rust", "Rust"),
        ("vue", "Vue.js"),
        ("markdown", "Markdown"),
        ("yaml", "YAML"),
        ("yml", "YAML"),
        ("json", "JSON"),
        ("plaintext", "Text"),
        ("objective-c", "Objective-C"),
        ("vim  script", "Vim script"),
        ("restructuredtext", "reStructuredText"),
    ],
)
def test_canonical_language_gives_wakatimes_spelling(raw: str, name: str) -> None:
    assert canonical_language(raw) == name


@pytest.mark.parametrize("raw", [None, "", "   ", "Unknown", "unknown", "other", "OTHER"])
def test_canonical_language_names_a_missing_language_other(raw: str | None) -> None:
    assert canonical_language(raw) == OTHER == "Other"


def test_canonical_language_merges_case_variants_of_an_unknown_name() -> None:
    spellings = ["myLang", "MYLANG", "mylang", " MyLang\t"]
    assert {canonical_language(s) for s in spellings} == {"Mylang"}
    assert canonical_language("brand new  THING") == "Brand New Thing"
    assert canonical_language('<rust & "c">') == '<Rust & "C">'


def test_every_listed_name_is_its_own_canonical_name_and_aliases_point_at_names() -> None:
    assert all(canonical_language(name) == name for name in _NAMES)
    assert all(key == language_key(key) for key in _ALIASES)
    assert set(_ALIASES.values()) <= set(_NAMES)
    assert not {language_key(name) for name in _NAMES} & set(_ALIASES)


@given(st.text(max_size=40))
def test_canonical_language_is_idempotent_and_case_insensitive(raw: str) -> None:
    name = canonical_language(raw)
    assert name  # never empty
    assert canonical_language(name) == name
    assert canonical_language(raw.upper()) == canonical_language(raw.lower()) or (
        # a few letters change under case mapping (ß -> SS): then the key differs too
        language_key(raw.upper()) != language_key(raw.lower())
    )


def test_merge_languages_sums_the_spellings_of_one_language() -> None:
    merged = merge_languages([("python", 10.0), ("Python", 5.0), ("", 2.0), ("golang", 1.0)])
    assert merged == {"Python": 15.0, "Other": 2.0, "Go": 1.0}


def test_both_dialects_store_the_canonical_name_and_keep_the_raw_one() -> None:
    item = {"entity": "/a.py", "time": NOW - 60, "project": "p"}
    waka = wakatime_item({**item, "language": "PYTHON"}, 0, META)
    ours = codetrackr_item({**item, "file": "/a.py", "lang": "python"}, 0, META)
    none = wakatime_item(item, 0, META)
    assert isinstance(waka, Heartbeat)
    assert isinstance(ours, Heartbeat)
    assert isinstance(none, Heartbeat)
    assert (waka.language, waka.language_raw) == ("Python", "PYTHON")
    assert (ours.language, ours.language_raw) == ("Python", "python")
    assert (none.language, none.language_raw) == (None, None)  # shown as "Other" by reads
    # One activity, whichever spelling sent it: the ids agree.
    same = wakatime_item({**item, "language": "Python"}, 0, META)
    assert isinstance(same, Heartbeat)
    assert same.event_id == waka.event_id


def test_a_record_from_before_the_rule_decodes_and_is_canonicalized_when_projected() -> None:
    sent = wakatime_item(
        {"entity": "/a.py", "time": NOW - 60, "project": "p", "language": "python"}, 0, META
    )
    assert isinstance(sent, Heartbeat)
    # What the log holds from before: the client's name in `language`, no `language_raw`.
    old = sent.model_dump(exclude={"language_raw"}) | {"language": "python"}
    raw = encode_event(
        HeartbeatsReceived(
            event_id="e", user_id="u1", occurred_at=NOW, heartbeats=(Heartbeat(**old),)
        )
    ).replace(b'"language_raw":null,', b"")
    assert b"language_raw" not in raw
    event = decode_event(raw)
    assert isinstance(event, HeartbeatsReceived)
    projected = with_canonical_language(event.heartbeats[0])
    assert (projected.language, projected.language_raw) == ("Python", "python")
    # Projecting again (a replay of the archive's output, a redelivery) changes nothing.
    assert with_canonical_language(projected) is projected
    assert with_canonical_language(sent) is sent


def test_an_exported_record_imported_again_keeps_the_spelling_first_sent() -> None:
    sent = codetrackr_item({"project": "p", "file": "/a.ts", "lang": "typescriptreact"}, 0, META)
    assert isinstance(sent, Heartbeat)
    exported = {"project": "p", "entity": "/a.ts", "time": sent.time, "duration": sent.duration}
    exported |= {"language": sent.language, "language_raw": sent.language_raw}
    again = codetrackr_item(exported, 0, META, source="import")
    assert isinstance(again, Heartbeat)
    assert (again.language, again.language_raw) == ("TSX", "typescriptreact")
    assert again.event_id == sent.event_id
