"""The day folds (``day_folds``, m0013): each (user, local day)'s live fold, as JSON text.

Replaced whole on every write (``ReplacingMergeTree(computed_at)``, read with ``FINAL``); a fold
forgotten is a newer row with an empty ``state``, which reads as no fold. Also the tombstone
lookup the projector makes before it carries a fold on with new heartbeats.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from projections.clickhouse.client import KEYS_PER_QUERY, StoreClient
from projections.dayfold import DayFold, decode_fold, encode_fold

logger = logging.getLogger(__name__)

_FOLD_COLUMNS: tuple[str, ...] = ("user_id", "date", "state", "computed_at")


class DayFoldTables(StoreClient):
    """Writes and reads of the day folds."""

    def day_folds(self, keys: Iterable[tuple[str, date]]) -> dict[tuple[str, date], DayFold]:
        """The stored fold of each (user, day) that has one (forgotten ones left out)."""
        wanted = sorted(set(keys))
        found: dict[tuple[str, date], DayFold] = {}
        for first in range(0, len(wanted), KEYS_PER_QUERY):
            chunk = wanted[first : first + KEYS_PER_QUERY]
            sql = (
                f"SELECT user_id, date, state FROM {self._db}.day_folds FINAL"
                " WHERE user_id IN {users:Array(String)} AND date IN {dates:Array(Date)}"
                " AND (user_id, date) IN {keys:Array(Tuple(String, Date))}"
            )
            parameters = {
                "users": sorted({user for user, _ in chunk}),
                "dates": sorted({day for _, day in chunk}),
                "keys": chunk,
            }
            with self._edge("read day folds"):
                rows = self._query(sql, parameters)
            for user_id, day, state in rows:
                if not state:
                    continue
                try:
                    found[(user_id, day)] = decode_fold(user_id, day, state)
                except ValueError:  # not written by this version: the day is folded again
                    logger.warning("unreadable day fold of %s on %s ignored", user_id, day)
        return found

    def upsert_day_folds(self, folds: Sequence[DayFold]) -> None:
        """Replace the fold of each (user, day); the last one given for a day wins."""
        latest = {(fold.user_id, fold.date): encode_fold(fold) for fold in folds}
        self._write_folds(latest, "write day folds")

    def forget_day_folds(self, keys: Iterable[tuple[str, date]]) -> None:
        """Mark these days' folds forgotten (an empty state at a newer version)."""
        self._write_folds(dict.fromkeys(keys, ""), "forget day folds")

    def drop_day_folds(self, user_id: str, first: date, last: date) -> None:
        """Remove the user's folds from ``first`` to ``last`` inclusive, every version (before
        an erasure removes heartbeats of those days)."""
        condition = "user_id = {user:String} AND date BETWEEN {d0:Date} AND {d1:Date}"
        sql = (
            f"ALTER TABLE {self._db}.day_folds DELETE WHERE {condition} SETTINGS mutations_sync = 2"
        )
        with self._edge("erase from day_folds"):
            self._client().command(sql, parameters={"user": user_id, "d0": first, "d1": last})

    def _write_folds(self, states: dict[tuple[str, date], str], action: str) -> None:
        if not states:
            return
        computed_at = self._next_version_ms()
        keys = sorted(states)
        columns: list[list[Any]] = [
            [user_id for user_id, _ in keys],
            [day for _, day in keys],
            [states[key] for key in keys],
            [computed_at] * len(keys),
        ]
        with self._edge(action):
            self._insert("day_folds", _FOLD_COLUMNS, columns)
