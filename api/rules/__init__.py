"""The read rules: pure functions from projection rows to answers (ranges, totals, WakaTime
shapes, badge SVGs, export formats). No web framework here; see docs/architecture.md."""
