"""Token costs, reports and billing blocks (projections.ai_usage): ccusage's rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from projections.ai_usage import (
    PricingError,
    PricingTable,
    UsageEntry,
    UsageSums,
    billing_blocks,
    usage_report,
)

HOUR = 3_600_000


def request(i: int = 0, o: int = 0, cw: int = 0, cr: int = 0) -> UsageSums:
    return UsageSums.of_request({"input": i, "output": o, "cache_creation": cw, "cache_read": cr})


def test_the_shipped_table_prices_claude_and_codex_models() -> None:
    table = PricingTable.load()
    sonnet = table.price_of("claude-sonnet-4-20250514")
    assert sonnet is not None
    assert (sonnet.input, sonnet.output, sonnet.cache_creation, sonnet.cache_read) == (
        3.0,
        15.0,
        3.75,
        0.3,
    )
    # 100 in, 50 out, 1000 cache writes, 2000 cache reads: what ccusage answers for them.
    assert table.cost("claude-sonnet-4-20250514", request(100, 50, 1000, 2000)) == pytest.approx(
        0.0054, rel=1e-12
    )
    assert table.cost("gpt-5-codex", request(1300, 130, 0, 1200)) == pytest.approx(0.003075)
    assert table.cost("some-local-model", request(1, 1)) is None


def test_tokens_past_200k_in_one_request_cost_the_higher_price() -> None:
    table = PricingTable.from_document(
        {"models": {"m": {"input": 3, "output": 15, "input_above_200k": 6}}}
    )
    big = request(250_000, 10)
    small = request(1000, 10)
    assert table.cost("m", big) == pytest.approx((200_000 * 3 + 50_000 * 6 + 10 * 15) / 1e6)
    # Summed first, priced after: the same as pricing each request.
    assert table.cost("m", big + small) == pytest.approx(
        (table.cost("m", big) or 0) + (table.cost("m", small) or 0)
    )


def test_a_model_name_is_matched_exactly_else_by_containment() -> None:
    table = PricingTable.from_document(
        {"models": {"claude-opus-4-1": {"input": 15}, "claude-sonnet-4-5": {"input": 3}}}
    )
    assert table.price_of("claude-sonnet-4-5") is table.models["claude-sonnet-4-5"]
    assert table.price_of("claude-sonnet-4-5-20250929") is table.models["claude-sonnet-4-5"]
    assert table.price_of("gpt-5") is None


def test_a_replacement_table_is_read_from_a_file_and_a_bad_one_is_refused(tmp_path: Path) -> None:
    good = tmp_path / "prices.json"
    good.write_text(json.dumps({"models": {"house-model": {"input": 1, "output": 2}}}))
    assert PricingTable.load(good).cost("house-model", request(1_000_000, 1_000_000)) == 3.0
    for bad in ("[]", '{"models": {"m": {"input": "cheap"}}}', '{"models": {"m": {"input": -1}}}'):
        (tmp_path / "bad.json").write_text(bad)
        with pytest.raises(PricingError):
            PricingTable.load(tmp_path / "bad.json")
    with pytest.raises(PricingError):
        PricingTable.load(tmp_path / "missing.json")


def test_a_report_groups_models_prices_each_and_totals() -> None:
    table = PricingTable.load()
    rows = [
        ("2026-03-09", "claude-opus-4-20250514", request(10, 5), 1000, 2000),
        ("2026-03-09", "claude-sonnet-4-20250514", request(100, 50, 1000, 2000), 500, 900),
        ("2026-03-10", "mystery", request(7, 7), 5000, 5000),
    ]
    report = usage_report(rows, table, key_name="date")
    first, second = report["entries"]
    assert first["date"] == "2026-03-09"
    assert (first["first_request_ms"], first["last_request_ms"]) == (500, 2000)
    assert first["input_tokens"] == 110
    assert first["total_tokens"] == 3165
    assert first["cost_usd"] == pytest.approx(0.005925)
    assert first["models"] == ["claude-sonnet-4-20250514", "claude-opus-4-20250514"]
    assert second["cost_usd"] == 0.0
    assert report["unpriced_models"] == ["mystery"]
    assert report["totals"]["requests"] == 3
    assert report["totals"]["cost_usd"] == pytest.approx(0.005925)


def test_billing_blocks_start_at_the_hour_and_close_after_five_hours_or_a_gap() -> None:
    table = PricingTable.load()
    base = 1_773_000_000_000 - 1_773_000_000_000 % HOUR  # an hour
    counts = {"input": 10, "output": 10, "cache_creation": 0, "cache_read": 0}
    at = [
        base + 20 * 60_000,  # 00:20 -> block at 00:00
        base + 4 * HOUR,  # within 5h of the block's start
        base + 5 * HOUR + 10 * 60_000,  # past the block's 5 hours: a new block at 05:00
        base + 11 * HOUR,  # more than 5h after the previous request: a new block at 11:00
    ]
    entries = [UsageEntry(t, "claude-sonnet-4-20250514", counts) for t in at]
    blocks = billing_blocks(entries, table, now_ms=base + 12 * HOUR)
    assert [(b["start_ms"] - base) // HOUR for b in blocks] == [0, 5, 11]
    assert [b["requests"] for b in blocks] == [2, 1, 1]
    assert [b["is_active"] for b in blocks] == [False, False, True]
    assert blocks[0]["end_ms"] == base + 5 * HOUR
    assert blocks[0]["cost_usd"] == pytest.approx(2 * (10 * 3 + 10 * 15) / 1e6)
