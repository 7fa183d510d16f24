"""Project aliases and labels, applied when stats are read (pure).

An alias makes every read count one project name as another (``api-v2`` and ``api`` as
``api``); a label files projects under a name of the user's choosing (``work``, ``oss``). Both
live on the user's account (``ProjectAliasesReplaced``, ``ProjectLabelsReplaced``) and are
applied here, at read time, to the daily rows and to the spans folded from the archive: the
heartbeats keep the names they were sent with, so changing an alias changes every answer at
once, past days included.

A label's time is the time of its projects (names after aliases); a project with two labels
counts toward both, as in Wakapi.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property

from projections.daily import DailyRow
from projections.durations import SPAN_KEYS, Span

_PROJECT = SPAN_KEYS.index("project")


@dataclass(frozen=True)
class ProjectNaming:
    """A user's aliases ``(alias, project)`` and labels ``(project, labels)``."""

    aliases: tuple[tuple[str, str], ...] = ()
    labels: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @cached_property
    def _alias_map(self) -> dict[str, str]:
        return dict(self.aliases)

    @cached_property
    def _label_map(self) -> dict[str, tuple[str, ...]]:
        return dict(self.labels)

    def name(self, project: str) -> str:
        """The name a read shows for ``project``."""
        return self._alias_map.get(project, project)

    def rows(self, rows: Iterable[DailyRow]) -> list[DailyRow]:
        """The rows with their project breakdown under the aliased names (seconds summed)."""
        if not self.aliases:
            return list(rows)
        out = []
        for row in rows:
            projects = row.breakdown.get("project")
            if not projects or not any(name in self._alias_map for name in projects):
                out.append(row)
                continue
            merged: dict[str, float] = {}
            for name, seconds in projects.items():
                shown = self.name(name)
                merged[shown] = merged.get(shown, 0.0) + seconds
            out.append(replace(row, breakdown={**row.breakdown, "project": merged}))
        return out

    def spans(self, spans: Iterable[Span]) -> list[Span]:
        """The spans with their project under the aliased name."""
        if not self.aliases:
            return list(spans)
        out = []
        for span in spans:
            project = span.group[_PROJECT]
            shown = self.name(project)
            if shown == project:
                out.append(span)
            else:
                group = (*span.group[:_PROJECT], shown, *span.group[_PROJECT + 1 :])
                out.append(Span(span.start, span.end, group))
        return out

    def projects_labeled(self, label: str) -> frozenset[str]:
        """The projects (names after aliases) filed under ``label``."""
        return frozenset(p for p, names in self.labels if label in names)

    def label_totals(self, project_totals: Mapping[str, float]) -> dict[str, float]:
        """Each label's time: the sum of its projects' (a project counts toward each of its
        labels); labels without time are left out."""
        out: dict[str, float] = {}
        for project, seconds in project_totals.items():
            for label in self._label_map.get(project, ()):
                out[label] = out.get(label, 0.0) + seconds
        return {label: seconds for label, seconds in out.items() if seconds > 0}


NO_NAMING = ProjectNaming()


def naming_of(
    aliases: Sequence[tuple[str, str]], labels: Sequence[tuple[str, tuple[str, ...]]]
) -> ProjectNaming:
    return ProjectNaming(tuple(aliases), tuple(labels)) if aliases or labels else NO_NAMING
