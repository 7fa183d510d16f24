"""Ingest rules (ingest/rules.py, accounts/state.py): ignore patterns and language mappings."""

from __future__ import annotations

import pytest

from accounts.state import ingest_rules_problem
from ingest.normalize import RequestMeta, wakatime_item
from ingest.rules import screen
from schemas.heartbeat import Heartbeat

META = RequestMeta(user_id="u1", received_at=1_800_000_000.0)


def beat(entity: str, project: str | None = "app", language: str | None = None) -> Heartbeat:
    item = {"entity": entity, "type": "file", "time": 1_799_999_000.0, "project": project}
    if language:
        item["language"] = language
    result = wakatime_item(item, 0, META)
    assert isinstance(result, Heartbeat)
    return result


def test_no_rules_keep_everything_as_it_is() -> None:
    beats = [beat("/a.py"), beat("/b.go")]
    assert screen(beats, (), ()) == (beats, 0)


def test_ignore_patterns_match_entity_or_project_in_any_case() -> None:
    beats = [
        beat("/home/me/secret/notes.md"),
        beat("/home/me/app/main.py", project="Client-Acme"),
        beat("/home/me/app/main.py", project="app"),
        beat("/home/me/app/node_modules/x/index.js"),
    ]
    kept, ignored = screen(beats, ("*/SECRET/*", "client-*", "*node_modules*"), ())
    assert ignored == 3
    assert [(b.entity, b.project) for b in kept] == [("/home/me/app/main.py", "app")]


def test_a_mapping_sets_the_language_by_extension_and_the_id_follows() -> None:
    vue = beat("/src/App.VUE", language="HTML")
    go = beat("/src/main.go", language="Go")
    kept, ignored = screen([vue, go], (), ((".vue", "Vue"),))
    assert ignored == 0
    assert kept[0].language == "Vue.js"  # the canonical name, as if the client sent "Vue"
    assert kept[0].language_raw == "HTML"  # what the client sent stays
    assert kept[0].event_id != vue.event_id
    assert kept[0].event_id == beat("/src/App.VUE", language="Vue").event_id
    assert kept[1] == go
    # Mapping twice changes nothing more (the same heartbeat, the same id).
    assert screen(kept, (), ((".vue", "Vue"),))[0] == kept


@pytest.mark.parametrize(
    ("ignore", "mappings", "problem"),
    [
        (("",), (), "not blank"),
        (("x" * 513,), (), "1 to 512"),
        (tuple(f"p{i}" for i in range(101)), (), "at most 100"),
        ((), (("vue", "Vue"),), "not a file extension"),
        ((), ((".vue", "Vue"), (".VUE", "Other")), "mapped once"),
        ((), ((".vue", " "),), "language name"),
    ],
)
def test_invalid_rules_are_named(
    ignore: tuple[str, ...], mappings: tuple[tuple[str, str], ...], problem: str
) -> None:
    found = ingest_rules_problem(ignore, mappings)
    assert found is not None
    assert problem in found


def test_valid_rules_have_no_problem() -> None:
    assert ingest_rules_problem(("*/tmp/*",), ((".vue", "Vue"), (".h++", "C++"))) is None
