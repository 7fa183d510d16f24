"""Goal definitions as a pure fold over their events (no I/O, no clock).

Goal events ride the accounts topic (:mod:`schemas.events`), so every process folds them in the
same global order, inside :class:`accounts.state.AccountState`, which hands each one here once
and only when its author is a live account. What the fold decides:

* a goal is created with a new id (an id any goal holds, or held, is rejected), and an account
  holds at most :data:`MAX_GOALS_PER_USER` goals;
* only the goal's owner may update or delete it; an update changes the fields it names;
* an account deletion removes the user's goals.

Only definitions live here. Progress is never stored: the read API computes it from the daily
rows (:mod:`api.rules.goals`), so late heartbeats move past periods as well.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from schemas.events import (
    GoalCreated,
    GoalDeleted,
    GoalEvent,
    GoalKind,
    GoalPeriod,
    GoalScope,
    GoalUpdated,
)

MAX_GOALS_PER_USER = 50


@dataclass(frozen=True, slots=True)
class Goal:
    """One goal: ``target_seconds`` per ``period`` (``daily``: a local day; ``weekly``: an ISO
    week, Monday to Sunday), ``at_least`` or ``at_most``, of all coding time (``scope`` None)
    or of the time whose ``scope`` dimension is ``scope_value``."""

    goal_id: str
    user_id: str
    period: GoalPeriod
    kind: GoalKind
    target_seconds: int
    title: str
    scope: GoalScope | None
    scope_value: str | None
    created_at: float
    updated_at: float


@dataclass
class GoalBook:
    goals: dict[str, Goal] = field(default_factory=dict)  # goal id -> goal
    by_user: dict[str, dict[str, Goal]] = field(default_factory=dict)  # user -> id -> goal
    retired: set[str] = field(default_factory=set)  # ids of deleted goals (never reused)

    # -- queries ------------------------------------------------------------------------------

    def goal(self, goal_id: str) -> Goal | None:
        return self.goals.get(goal_id)

    def of(self, user_id: str) -> list[Goal]:
        """The user's goals, oldest first."""
        found = self.by_user.get(user_id, {}).values()
        return sorted(found, key=lambda g: (g.created_at, g.goal_id))

    def owned(self, user_id: str, goal_id: str) -> Goal | None:
        """The goal when ``user_id`` owns it (another user's goal is None, like a missing one)."""
        return self.by_user.get(user_id, {}).get(goal_id)

    # -- the fold -----------------------------------------------------------------------------

    def apply(self, event: GoalEvent) -> bool:
        """Fold one event in (the caller checked its author is a live account, once)."""
        if isinstance(event, GoalCreated):
            return self._created(event)
        if isinstance(event, GoalUpdated):
            return self._updated(event)
        return self._deleted(event)

    def forget_user(self, user_id: str) -> None:
        """The account is deleted: its goals go."""
        for goal_id in list(self.by_user.pop(user_id, {})):
            self.goals.pop(goal_id, None)
            self.retired.add(goal_id)

    def _created(self, event: GoalCreated) -> bool:
        if event.goal_id in self.goals or event.goal_id in self.retired:
            return False
        mine = self.by_user.setdefault(event.user_id, {})
        if len(mine) >= MAX_GOALS_PER_USER:
            if not mine:
                del self.by_user[event.user_id]
            return False
        if (event.scope is None) != (event.scope_value is None):
            if not mine:
                del self.by_user[event.user_id]
            return False
        goal = Goal(
            goal_id=event.goal_id,
            user_id=event.user_id,
            period=event.period,
            kind=event.kind,
            target_seconds=event.target_seconds,
            title=event.title,
            scope=event.scope,
            scope_value=event.scope_value,
            created_at=event.occurred_at,
            updated_at=event.occurred_at,
        )
        mine[goal.goal_id] = goal
        self.goals[goal.goal_id] = goal
        return True

    def _updated(self, event: GoalUpdated) -> bool:
        current = self.owned(event.user_id, event.goal_id)
        if current is None:
            return False
        if event.change_scope and (event.scope is None) != (event.scope_value is None):
            return False
        goal = replace(
            current,
            period=event.period if event.period is not None else current.period,
            kind=event.kind if event.kind is not None else current.kind,
            target_seconds=(
                event.target_seconds if event.target_seconds is not None else current.target_seconds
            ),
            title=event.title if event.title is not None else current.title,
            scope=event.scope if event.change_scope else current.scope,
            scope_value=event.scope_value if event.change_scope else current.scope_value,
            updated_at=event.occurred_at,
        )
        self.by_user[event.user_id][goal.goal_id] = goal
        self.goals[goal.goal_id] = goal
        return True

    def _deleted(self, event: GoalDeleted) -> bool:
        if self.owned(event.user_id, event.goal_id) is None:
            return False
        mine = self.by_user[event.user_id]
        del mine[event.goal_id]
        if not mine:
            del self.by_user[event.user_id]
        del self.goals[event.goal_id]
        self.retired.add(event.goal_id)
        return True
