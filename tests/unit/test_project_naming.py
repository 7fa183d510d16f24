"""Project aliases and labels: the read-time rule and what the account fold accepts."""

from __future__ import annotations

from datetime import date

from accounts.state import MAX_LABEL, aliases_problem, labels_problem
from api.rules.projects import NO_NAMING, ProjectNaming, naming_of
from projections.daily import DailyRow
from projections.durations import SPAN_KEYS, Span

NAMING = ProjectNaming(
    aliases=(("api-v2", "api"), ("web-old", "web")),
    labels=(("api", ("work",)), ("web", ("work", "oss"))),
)


def row(projects: dict[str, float]) -> DailyRow:
    return DailyRow(
        "u", date(2026, 3, 2), "UTC", sum(projects.values()), 3, 0.0, 0.0,
        {"project": projects, "language": {"Go": sum(projects.values())}},
    )  # fmt: skip


def span(start: float, end: float, project: str) -> Span:
    return Span(start, end, tuple(project if key == "project" else "" for key in SPAN_KEYS))


def test_rows_merge_aliased_projects_and_keep_everything_else() -> None:
    (merged,) = NAMING.rows([row({"api-v2": 60.0, "api": 30.0, "cli": 5.0})])
    assert merged.breakdown["project"] == {"api": 90.0, "cli": 5.0}
    assert merged.breakdown["language"] == {"Go": 95.0}
    assert merged.total_seconds == 95.0
    untouched = row({"cli": 5.0})
    assert NAMING.rows([untouched]) == [untouched]
    assert NO_NAMING.rows([untouched]) == [untouched]


def test_spans_carry_the_aliased_name() -> None:
    spans = [span(0, 10, "api-v2"), span(10, 20, "cli")]
    assert NAMING.spans(spans) == [span(0, 10, "api"), span(10, 20, "cli")]


def test_labels_sum_their_projects_and_a_project_counts_toward_each() -> None:
    totals = {"api": 100.0, "web": 20.0, "cli": 7.0}
    assert NAMING.label_totals(totals) == {"work": 120.0, "oss": 20.0}
    assert NAMING.label_totals({"cli": 7.0}) == {}
    assert NAMING.projects_labeled("work") == {"api", "web"}
    assert NAMING.projects_labeled("none") == frozenset()
    assert naming_of((), ()) is NO_NAMING


def test_what_the_fold_accepts() -> None:
    assert aliases_problem((("a", "b"), ("c", "b"))) is None
    assert aliases_problem((("a", "a"),)) is not None
    assert aliases_problem((("a", "b"), ("b", "c"))) is not None  # chains
    assert aliases_problem((("a", "b"), ("a", "c"))) is not None  # one alias, one project
    assert aliases_problem((("", "b"),)) is not None
    assert labels_problem((("p", ("x", "y")),)) is None
    assert labels_problem((("p", ()),)) is not None
    assert labels_problem((("p", ("x", "x")),)) is not None
    assert labels_problem((("p", ("x" * (MAX_LABEL + 1),)),)) is not None
    assert labels_problem((("p", ("x",)), ("p", ("y",)))) is not None
