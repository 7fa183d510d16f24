"""Pure rules of the assistant's token usage and its cost (docs/ai.md#tokens-and-cost).

Each model request of the assistant is one :class:`schemas.ai.AiUsage` record (input, output,
cache-write and cache-read tokens, the model). The same request read twice (from two transcript
files, an import run again) has one id and counts once. Reports sum a group's requests per model
(a day in the user's timezone, a month, a session, a project, a model) and price each model's
sums with the pricing table shipped with the project (``projections/ai_pricing.json``, USD per
million tokens, offline), which a deployment may replace (``CODETRACKR_AI_PRICING_FILE``).

Cost is ccusage's rule: each kind of token at its model's price; where the table has a higher
price for tokens past 200,000 in one request (``*_above_200k``), the part of each request past
that threshold is charged at it. The ClickHouse reads therefore return, per group and model, the
sums of each kind and the sums of each kind past the threshold (:class:`UsageSums`), which price
exactly as pricing each request would. A model the table does not know costs 0 and is named in
``unpriced_models``. Prices are matched like ccusage matches them: the exact name, then any
table entry whose name contains the model's or is contained in it, in the table's order.

Billing blocks are Claude's 5-hour windows as ccusage finds them: requests in time order; a block
starts at the hour (UTC) of its first request and takes every request until one comes more than
5 hours after the block's start, or more than 5 hours after the previous request.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = [
    "BLOCK_MS",
    "KINDS",
    "TIER_THRESHOLD",
    "ModelPrice",
    "PricingError",
    "PricingTable",
    "UsageEntry",
    "UsageSums",
    "billing_blocks",
    "usage_report",
]

KINDS = ("input", "output", "cache_creation", "cache_read")
TIER_THRESHOLD = 200_000  # tokens of one kind in one request priced at the base rate
BLOCK_MS = 5 * 3600 * 1000
_HOUR_MS = 3600 * 1000
_MILLION = 1_000_000


class PricingError(ValueError):
    """A pricing document that cannot be read (named file missing, not the expected shape)."""


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """USD per million tokens of each kind; ``above`` the prices past the threshold, if any."""

    input: float
    output: float
    cache_creation: float
    cache_read: float
    above: Mapping[str, float] = field(default_factory=dict)

    def base(self, kind: str) -> float:
        return float(getattr(self, kind))


@dataclass(frozen=True, slots=True)
class UsageSums:
    """Tokens of each kind summed over some requests, and the parts past the threshold."""

    requests: int = 0
    tokens: Mapping[str, int] = field(default_factory=dict)
    above: Mapping[str, int] = field(default_factory=dict)

    def of(self, kind: str) -> int:
        return int(self.tokens.get(kind, 0))

    def __add__(self, other: UsageSums) -> UsageSums:
        return UsageSums(
            self.requests + other.requests,
            {k: self.of(k) + other.of(k) for k in KINDS},
            {k: int(self.above.get(k, 0)) + int(other.above.get(k, 0)) for k in KINDS},
        )

    @classmethod
    def of_request(cls, counts: Mapping[str, int]) -> UsageSums:
        return cls(
            1,
            {k: int(counts.get(k, 0)) for k in KINDS},
            {k: max(0, int(counts.get(k, 0)) - TIER_THRESHOLD) for k in KINDS},
        )


class PricingTable:
    """Model prices by name (:func:`load` reads the shipped table or a replacement)."""

    def __init__(self, models: Mapping[str, ModelPrice]) -> None:
        self._models = dict(models)
        self._found: dict[str, ModelPrice | None] = {}

    @property
    def models(self) -> Mapping[str, ModelPrice]:
        return self._models

    @classmethod
    def from_document(cls, document: Any) -> PricingTable:
        """The table a pricing document holds: ``{"models": {name: {"input", "output",
        "cache_creation", "cache_read", "<kind>_above_200k"?...}}}`` in USD per million tokens;
        a missing kind is priced 0."""
        models = document.get("models") if isinstance(document, dict) else None
        if not isinstance(models, dict):
            raise PricingError("a pricing document is an object with `models`")
        table: dict[str, ModelPrice] = {}
        for name, prices in models.items():
            if not isinstance(prices, dict):
                raise PricingError(f"models[{name!r}] must be an object")
            try:
                values = {k: float(prices.get(k) or 0.0) for k in KINDS}
                above = {
                    k: float(prices[f"{k}_above_200k"])
                    for k in KINDS
                    if prices.get(f"{k}_above_200k") is not None
                }
            except (TypeError, ValueError) as exc:
                raise PricingError(f"models[{name!r}]: prices must be numbers") from exc
            if any(v < 0 for v in (*values.values(), *above.values())):
                raise PricingError(f"models[{name!r}]: prices must not be negative")
            table[str(name)] = ModelPrice(above=above, **values)
        return cls(table)

    @classmethod
    def load(cls, path: str | Path | None = None) -> PricingTable:
        """The table in ``path``, else the one shipped with the project."""
        try:
            if path:
                text = Path(path).read_text(encoding="utf-8")
            else:
                text = resources.files("projections").joinpath("ai_pricing.json").read_text()
            document = json.loads(text)
        except (OSError, ValueError) as exc:
            raise PricingError(
                f"cannot read the pricing table {path or '(shipped)'}: {exc}"
            ) from exc
        return cls.from_document(document)

    def price_of(self, model: str) -> ModelPrice | None:
        """The model's prices: its exact name, else the first entry whose name contains the
        model's or is contained in it (case aside); ``None`` when none does."""
        if model in self._found:
            return self._found[model]
        found = self._models.get(model)
        if found is None and model:
            lower = model.lower()
            for name, price in self._models.items():
                key = name.lower()
                if key in lower or lower in key:
                    found = price
                    break
        self._found[model] = found
        return found

    def cost(self, model: str, sums: UsageSums) -> float | None:
        """USD the ``sums`` of ``model``'s requests cost; ``None`` when the model is unpriced."""
        price = self.price_of(model)
        if price is None:
            return None
        total = 0.0
        for kind in KINDS:
            base = price.base(kind)
            total += sums.of(kind) * base
            higher = price.above.get(kind)
            if higher is not None:
                total += int(sums.above.get(kind, 0)) * (higher - base)
        return total / _MILLION


def _tokens_view(sums: UsageSums) -> dict[str, int]:
    view = {
        "input_tokens": sums.of("input"),
        "output_tokens": sums.of("output"),
        "cache_creation_tokens": sums.of("cache_creation"),
        "cache_read_tokens": sums.of("cache_read"),
    }
    view["total_tokens"] = sum(view.values())
    return view


def _priced(
    by_model: Mapping[str, UsageSums], pricing: PricingTable
) -> tuple[UsageSums, float, list[dict[str, Any]], list[str]]:
    total = UsageSums()
    cost = 0.0
    breakdowns: list[dict[str, Any]] = []
    unpriced: list[str] = []
    for model in sorted(by_model, key=lambda m: (-_cost_key(by_model[m], m, pricing), m)):
        sums = by_model[model]
        model_cost = pricing.cost(model, sums)
        if model_cost is None:
            unpriced.append(model)
        total += sums
        cost += model_cost or 0.0
        breakdowns.append(
            {
                "model": model,
                "requests": sums.requests,
                **_tokens_view(sums),
                "cost_usd": model_cost or 0.0,
            }
        )
    return total, cost, breakdowns, unpriced


def _cost_key(sums: UsageSums, model: str, pricing: PricingTable) -> float:
    return pricing.cost(model, sums) or 0.0


def usage_report(
    rows: Iterable[tuple[str, str, UsageSums, int, int]],
    pricing: PricingTable,
    *,
    key_name: str,
) -> dict[str, Any]:
    """Pure: ``rows`` (group key, model, sums, first and last request in epoch ms; a group's
    models may come in any order) as the report: one entry per group in the rows' first-seen
    order, each with its tokens, cost, its first and last request, the models used and a
    breakdown per model (costliest first); and the totals."""
    groups: dict[str, dict[str, UsageSums]] = {}
    spans: dict[str, tuple[int, int]] = {}
    for key, model, sums, first_ms, last_ms in rows:
        models = groups.setdefault(key, {})
        models[model] = models.get(model, UsageSums()) + sums
        low, high = spans.get(key, (first_ms, last_ms))
        spans[key] = (min(low, first_ms), max(high, last_ms))
    entries = []
    grand = UsageSums()
    grand_cost = 0.0
    unpriced: set[str] = set()
    for key, by_model in groups.items():
        total, cost, breakdowns, missing = _priced(by_model, pricing)
        grand += total
        grand_cost += cost
        unpriced.update(missing)
        entries.append(
            {
                key_name: key,
                "first_request_ms": spans[key][0],
                "last_request_ms": spans[key][1],
                "requests": total.requests,
                **_tokens_view(total),
                "cost_usd": cost,
                "models": [b["model"] for b in breakdowns],
                "model_breakdowns": breakdowns,
            }
        )
    return {
        "entries": entries,
        "totals": {"requests": grand.requests, **_tokens_view(grand), "cost_usd": grand_cost},
        "unpriced_models": sorted(unpriced),
    }


@dataclass(frozen=True, slots=True)
class UsageEntry:
    """One request, for the billing blocks: its time (epoch ms), model and token counts."""

    time_ms: int
    model: str
    counts: Mapping[str, int]


def billing_blocks(
    entries: Sequence[UsageEntry], pricing: PricingTable, *, now_ms: int
) -> list[dict[str, Any]]:
    """Pure: the 5-hour billing blocks ``entries`` fall in (see the module docs), oldest
    first, each with its start and end (epoch ms), its first and last request, whether it is
    still open at ``now_ms``, its tokens, cost and models."""
    ordered = sorted(entries, key=lambda e: e.time_ms)
    blocks: list[list[UsageEntry]] = []
    for entry in ordered:
        if blocks:
            current = blocks[-1]
            start = _hour_of(current[0].time_ms)
            if (
                entry.time_ms - start <= BLOCK_MS
                and entry.time_ms - current[-1].time_ms <= BLOCK_MS
            ):
                current.append(entry)
                continue
        blocks.append([entry])
    out = []
    for block in blocks:
        start = _hour_of(block[0].time_ms)
        by_model: dict[str, UsageSums] = {}
        for entry in block:
            by_model[entry.model] = by_model.get(entry.model, UsageSums()) + UsageSums.of_request(
                entry.counts
            )
        total, cost, breakdowns, unpriced = _priced(by_model, pricing)
        last = block[-1].time_ms
        out.append(
            {
                "start_ms": start,
                "end_ms": start + BLOCK_MS,
                "first_request_ms": block[0].time_ms,
                "last_request_ms": last,
                "is_active": now_ms < start + BLOCK_MS and now_ms - last < BLOCK_MS,
                "requests": total.requests,
                **_tokens_view(total),
                "cost_usd": cost,
                "models": [b["model"] for b in breakdowns],
                "model_breakdowns": breakdowns,
                "unpriced_models": unpriced,
            }
        )
    return out


def _hour_of(ms: int) -> int:
    return ms - ms % _HOUR_MS
