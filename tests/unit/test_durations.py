"""The duration fold: the reference test vector, explicit durations, and its invariants."""

from __future__ import annotations

import random
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from projections.durations import (
    DIMENSIONS,
    SPAN_KEYS,
    Span,
    filter_spans,
    fold_spans,
    group_of,
    total_seconds,
    totals,
    unique_heartbeats,
)
from schemas.heartbeat import Heartbeat, heartbeat_event_id

T0 = 1_700_000_000.0


def make_heartbeat(offset: float, **fields: Any) -> Heartbeat:
    """A heartbeat ``offset`` seconds after T0; the id is derived like ingest derives it."""
    values: dict[str, Any] = {
        "user_id": "u1",
        "entity": "main.py",
        "type": "file",
        "category": "coding",
        "project": "codetrackr",
        "branch": "main",
        "language": "Python",
        "is_write": False,
        "editor": "vim",
        "os": "Linux",
        "machine": "laptop",
        "received_at": T0 + 10_000,
        "source": "wakatime",
    }
    values.update(fields)
    values["time"] = T0 + offset
    if "event_id" not in values:
        values["event_id"] = heartbeat_event_id(
            user_id=values["user_id"],
            entity=values["entity"],
            type=values["type"],
            category=values["category"],
            project=values["project"],
            branch=values["branch"],
            language=values["language"],
            is_write=values["is_write"],
            time=values["time"],
        )
    return Heartbeat(**values)


def wakapi_vector() -> list[Heartbeat]:
    return [
        make_heartbeat(0, editor="A"),
        make_heartbeat(30, editor="A"),
        make_heartbeat(30, editor="A"),  # duplicate: same id
        make_heartbeat(160, editor="A"),
        make_heartbeat(180, editor="B"),
        make_heartbeat(190, editor="B"),
        make_heartbeat(195, editor="B"),
    ]


# --- the reference test vector -----------------------------------------------------------------


def test_fold_spans_wakapi_vector_two_minute_timeout_gives_65_seconds() -> None:
    result = totals(fold_spans(wakapi_vector(), timeout_s=120))

    assert result.total_seconds == pytest.approx(65)
    assert result.by_dimension["editor"] == pytest.approx({"A": 50, "B": 15})


def test_fold_spans_wakapi_vector_ten_minute_timeout_gives_195_seconds() -> None:
    result = totals(fold_spans(wakapi_vector(), timeout_s=600))

    assert result.total_seconds == pytest.approx(195)
    assert result.by_dimension["editor"] == pytest.approx({"A": 180, "B": 15})


# --- explicit durations ------------------------------------------------------------------------


def test_fold_spans_overlapping_durations_are_counted_once() -> None:
    beats = [make_heartbeat(0, duration=100), make_heartbeat(50, duration=100)]

    assert total_seconds(beats, timeout_s=900) == pytest.approx(150)


def test_fold_spans_gap_is_measured_from_coverage_end() -> None:
    # Coverage ends at 100, so the gap to 200 is 100 s: under a 120 s timeout it is activity
    # (measured from the start it would be 200 s and dropped); under 90 s it is a break.
    beats = [make_heartbeat(0, duration=100), make_heartbeat(200)]

    assert total_seconds(beats, timeout_s=120) == pytest.approx(200)
    assert total_seconds(beats, timeout_s=90) == pytest.approx(100)


def test_fold_spans_contained_coverage_adds_nothing() -> None:
    beats = [
        make_heartbeat(0, duration=100, entity="a.py"),
        make_heartbeat(10, duration=5, entity="b.py"),
        make_heartbeat(20, entity="a.py"),
    ]

    result = totals(fold_spans(beats, timeout_s=900))

    assert result.total_seconds == pytest.approx(100)
    assert result.by_dimension["entity"] == pytest.approx({"a.py": 100, "b.py": 0})


def test_fold_spans_last_heartbeat_counts_only_its_duration() -> None:
    assert total_seconds([make_heartbeat(0)], timeout_s=900) == 0
    assert total_seconds([make_heartbeat(0, duration=42)], timeout_s=900) == pytest.approx(42)


# --- groups ------------------------------------------------------------------------------------


def test_fold_spans_group_change_gives_gap_to_earlier_group() -> None:
    beats = [make_heartbeat(0, project="a"), make_heartbeat(60, project="b")]

    spans = fold_spans(beats, timeout_s=120)

    assert [(s.start - T0, s.end - T0, s.value("project")) for s in spans] == [
        (0, 60, "a"),
        (60, 60, "b"),
    ]


def test_fold_spans_overlap_across_group_change_is_counted_once() -> None:
    beats = [
        make_heartbeat(0, duration=100, project="a"),
        make_heartbeat(50, duration=100, project="b"),
    ]

    result = totals(fold_spans(beats, timeout_s=900))

    assert result.total_seconds == pytest.approx(150)
    assert result.by_dimension["project"] == pytest.approx({"a": 100, "b": 50})


def test_fold_spans_missing_values_group_as_empty_string() -> None:
    beat = make_heartbeat(0, project=None, language=None, editor=None, branch=None)

    assert group_of(beat) == ("", "", "", "Linux", "laptop", "", "coding", "main.py", "")


def test_totals_lists_values_with_zero_seconds() -> None:
    result = totals(fold_spans([make_heartbeat(0, project="lonely")], timeout_s=900))

    assert result.by_dimension["project"] == {"lonely": 0.0}
    assert set(result.by_dimension) == set(DIMENSIONS)


# --- period ends and filters -------------------------------------------------------------------


def test_fold_spans_period_end_cuts_coverage() -> None:
    beats = [make_heartbeat(0, duration=100)]

    spans = fold_spans(beats, timeout_s=900, period_end=lambda hb: T0 + 50)

    assert totals(spans).total_seconds == pytest.approx(50)
    assert all(span.end <= T0 + 50 for span in spans)


def test_fold_spans_leaves_out_heartbeats_after_their_period_end() -> None:
    beats = [make_heartbeat(0, project="today"), make_heartbeat(2000, project="tomorrow")]

    spans = fold_spans(beats, timeout_s=900, period_end=lambda hb: T0 + 1000)

    assert [span.value("project") for span in spans] == ["today"]
    # A heartbeat of the next period neither counts nor closes the gap before it.
    later = [make_heartbeat(0), make_heartbeat(100)]
    assert total_seconds_until(later, T0 + 50) == 0


def total_seconds_until(beats: list[Heartbeat], end: float) -> float:
    return totals(fold_spans(beats, timeout_s=900, period_end=lambda hb: end)).total_seconds


def test_fold_spans_each_heartbeat_has_its_own_period_end() -> None:
    # "early" machines' periods end at +50 s, "late" ones at +1000 s (two zones' midnights).
    def period_end(hb: Heartbeat) -> float:
        return T0 + (50 if hb.machine == "early" else 1000)

    early_then_late = [make_heartbeat(0, machine="early"), make_heartbeat(100, machine="late")]
    spans = fold_spans(early_then_late, timeout_s=900, period_end=period_end)
    # The gap after the early heartbeat counts up to its period end only.
    assert [(s.start - T0, s.end - T0, s.value("machine")) for s in spans] == [
        (0, 50, "early"),
        (100, 100, "late"),
    ]

    # Once a later period is running, a gap counts up to that one's end.
    with_late_first = [
        make_heartbeat(0, machine="late"),
        make_heartbeat(10, machine="early", duration=200),
        make_heartbeat(120, machine="late"),
    ]
    spans = fold_spans(with_late_first, timeout_s=900, period_end=period_end)
    assert totals(spans).total_seconds == pytest.approx(120)
    assert totals(spans).by_dimension["machine"] == pytest.approx({"late": 10, "early": 110})


def test_filter_spans_applies_after_folding_so_no_false_gap() -> None:
    # p at 0, q at 60, p at 120 with a 100 s timeout: p owns [0, 60]. Folding p alone would see a
    # 120 s gap and report nothing.
    beats = [
        make_heartbeat(0, project="p"),
        make_heartbeat(60, project="q"),
        make_heartbeat(120, project="p"),
    ]
    spans = fold_spans(beats, timeout_s=100)

    assert totals(filter_spans(spans, project="p")).total_seconds == pytest.approx(60)
    assert totals(filter_spans(spans, project={"p", "q"})).total_seconds == pytest.approx(120)
    assert total_seconds([b for b in beats if b.project == "p"], timeout_s=100) == 0


def test_filter_spans_unknown_dimension_raises() -> None:
    with pytest.raises(ValueError, match="unknown dimension"):
        filter_spans([], planet="mars")


def test_fold_spans_rejects_non_positive_timeout() -> None:
    with pytest.raises(ValueError, match="timeout_s"):
        fold_spans([make_heartbeat(0)], timeout_s=0)


def test_unique_heartbeats_keeps_copy_received_last() -> None:
    early = make_heartbeat(0, event_id="same", duration=10, received_at=T0 + 1)
    late = make_heartbeat(0, event_id="same", duration=20, received_at=T0 + 2)

    assert unique_heartbeats([late, early]) == [late]
    assert unique_heartbeats([early, late]) == [late]


# --- properties --------------------------------------------------------------------------------


@st.composite
def heartbeat_lists(draw: st.DrawFn) -> list[Heartbeat]:
    count = draw(st.integers(min_value=0, max_value=40))
    beats: list[Heartbeat] = []
    for index in range(count):
        beats.append(
            make_heartbeat(
                # Millisecond resolution, like the ids and the archive; repeats happen on purpose.
                draw(st.integers(min_value=0, max_value=4 * 3600 * 1000)) / 1000,
                event_id=f"e{index}",
                duration=draw(st.one_of(st.just(0.0), st.floats(min_value=0, max_value=900))),
                project=draw(st.sampled_from(["a", "b", None])),
                editor=draw(st.sampled_from(["vim", "vscode"])),
                entity=draw(st.sampled_from(["x.py", "y.go"])),
                category=draw(st.sampled_from(["coding", "debugging"])),
            )
        )
    return beats


timeouts = st.floats(min_value=1, max_value=3600)


@given(heartbeat_lists(), timeouts, st.randoms(use_true_random=False))
def test_fold_spans_order_of_arrival_does_not_change_totals(
    beats: list[Heartbeat], timeout: float, rng: random.Random
) -> None:
    shuffled = list(beats)
    rng.shuffle(shuffled)

    assert totals(fold_spans(shuffled, timeout_s=timeout)) == totals(
        fold_spans(beats, timeout_s=timeout)
    )


@given(heartbeat_lists(), timeouts, st.randoms(use_true_random=False))
def test_fold_spans_batches_and_redelivery_do_not_change_totals(
    beats: list[Heartbeat], timeout: float, rng: random.Random
) -> None:
    # A projector that receives random batches (with at-least-once redelivery of some
    # heartbeats) and recomputes from everything it has seen must end where a one-shot fold does.
    seen: list[Heartbeat] = []
    remaining = list(beats)
    while remaining:
        size = rng.randint(1, len(remaining))
        batch, remaining = remaining[:size], remaining[size:]
        redelivered = rng.sample(seen, k=min(len(seen), rng.randint(0, 3)))
        seen.extend(batch + redelivered)

    assert totals(fold_spans(seen, timeout_s=timeout)) == totals(
        fold_spans(beats, timeout_s=timeout)
    )


@given(heartbeat_lists(), timeouts, st.data())
def test_fold_spans_duplicates_do_not_change_totals(
    beats: list[Heartbeat], timeout: float, data: st.DataObject
) -> None:
    copies = data.draw(st.lists(st.sampled_from(beats), max_size=20)) if beats else []

    assert totals(fold_spans(beats + copies, timeout_s=timeout)) == totals(
        fold_spans(beats, timeout_s=timeout)
    )


@given(heartbeat_lists(), timeouts)
def test_totals_every_dimension_sums_to_total(beats: list[Heartbeat], timeout: float) -> None:
    result = totals(fold_spans(beats, timeout_s=timeout))

    for dimension in DIMENSIONS:
        assert sum(result.by_dimension[dimension].values()) == pytest.approx(
            result.total_seconds, abs=1e-6
        )


@given(heartbeat_lists(), timeouts)
def test_fold_spans_total_is_independent_of_grouping(
    beats: list[Heartbeat], timeout: float
) -> None:
    # Erase every grouping value: one group throughout. Group changes only decide who gets the
    # time, never how much there is.
    erased = [
        b.model_copy(update={"project": "p", "editor": "e", "entity": "f", "category": "coding"})
        for b in beats
    ]

    assert total_seconds(erased, timeout_s=timeout) == pytest.approx(
        total_seconds(beats, timeout_s=timeout), abs=1e-6
    )


@given(heartbeat_lists(), timeouts, timeouts)
def test_fold_spans_total_is_monotone_in_timeout(
    beats: list[Heartbeat], first: float, second: float
) -> None:
    shorter, longer = sorted((first, second))

    assert total_seconds(beats, timeout_s=shorter) <= total_seconds(beats, timeout_s=longer) + 1e-6


@given(heartbeat_lists(), timeouts)
def test_fold_spans_total_fits_within_covered_range(beats: list[Heartbeat], timeout: float) -> None:
    total = total_seconds(beats, timeout_s=timeout)
    if not beats:
        assert total == 0
        return
    first_start = min(b.time for b in beats)
    last_end = max(b.time + b.duration for b in beats)

    assert 0 <= total <= last_end - first_start + 1e-6


@given(heartbeat_lists(), timeouts)
def test_fold_spans_spans_are_ordered_and_disjoint(beats: list[Heartbeat], timeout: float) -> None:
    spans = fold_spans(beats, timeout_s=timeout)

    assert all(span.seconds >= 0 for span in spans)
    assert all(a.end <= b.start for a, b in pairwise(spans))


@given(
    heartbeat_lists(),
    timeouts,
    st.integers(min_value=0, max_value=4 * 3600),
    st.integers(min_value=0, max_value=4 * 3600),
)
def test_fold_spans_period_ends_never_add_time(
    beats: list[Heartbeat], timeout: float, first: int, second: int
) -> None:
    # Two "zones", one per entity, whose periods end at different instants.
    ends = {"x.py": T0 + first, "y.go": T0 + second}
    clipped = fold_spans(beats, timeout_s=timeout, period_end=lambda hb: ends[hb.entity])

    assert all(span.end <= max(ends.values()) for span in clipped)
    assert all(a.end <= b.start for a, b in pairwise(clipped))
    assert totals(clipped).total_seconds <= total_seconds(beats, timeout_s=timeout) + 1e-6
    assert totals(clipped) == totals(
        fold_spans(reversed(beats), timeout_s=timeout, period_end=lambda hb: ends[hb.entity])
    )


@settings(max_examples=25)
@given(heartbeat_lists(), timeouts)
def test_span_value_matches_group_position(beats: list[Heartbeat], timeout: float) -> None:
    for span in fold_spans(beats, timeout_s=timeout):
        assert isinstance(span, Span)
        assert [span.value(d) for d in SPAN_KEYS] == list(span.group)


@settings(max_examples=50)
@given(heartbeat_lists(), timeouts)
def test_the_write_flag_splits_spans_but_never_changes_totals(
    beats: list[Heartbeat], timeout: float
) -> None:
    as_reads = [hb.model_copy(update={"is_write": False}) for hb in beats]
    with_flags = totals(fold_spans(beats, timeout_s=timeout))
    without = totals(fold_spans(as_reads, timeout_s=timeout))
    assert with_flags.total_seconds == pytest.approx(without.total_seconds)
    for dimension in DIMENSIONS:
        assert with_flags.by_dimension[dimension] == pytest.approx(without.by_dimension[dimension])


def test_writes_only_keeps_the_time_that_follows_a_write() -> None:
    # read at 0, write at 60, read at 120, read at 180: the write's span is 60..120.
    beats = [
        make_heartbeat(0),
        make_heartbeat(60, is_write=True),
        make_heartbeat(120),
        make_heartbeat(180),
    ]
    spans = fold_spans(beats, timeout_s=900)
    assert total_seconds(beats, timeout_s=900) == 180
    writes = filter_spans(spans, is_write="1")
    assert sum(span.seconds for span in writes) == 60
