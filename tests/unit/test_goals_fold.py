"""The goals' fold (``accounts.goals``) inside the account state: who may create, change and
delete a goal, the cap per account, and what an account deletion takes with it."""

from __future__ import annotations

from accounts.goals import MAX_GOALS_PER_USER
from accounts.state import AccountState
from schemas.events import AccountCreated, AccountDeleted, GoalCreated, GoalDeleted, GoalUpdated


def account(user: str) -> AccountCreated:
    return AccountCreated(event_id=f"a-{user}", user_id=user, occurred_at=1.0, username=f"n{user}")


def goal(user: str, goal_id: str, **fields: object) -> GoalCreated:
    values: dict[str, object] = {"period": "daily", "target_seconds": 3600} | fields
    return GoalCreated(
        event_id=f"c-{goal_id}-{user}",
        user_id=user,
        occurred_at=10.0,
        goal_id=goal_id,
        **values,  # type: ignore[arg-type]
    )


def state_with(*users: str) -> AccountState:
    state = AccountState()
    for user in users:
        assert state.apply(account(user))
    return state


def test_goal_created_listed_and_scoped() -> None:
    state = state_with("u1")
    assert state.apply(goal("u1", "g1", kind="at_most", scope="category", scope_value="meeting"))
    [found] = state.goals.of("u1")
    assert (found.kind, found.scope, found.scope_value) == ("at_most", "category", "meeting")
    assert found.created_at == found.updated_at == 10.0


def test_goal_of_an_unknown_user_or_a_taken_id_is_rejected() -> None:
    state = state_with("u1", "u2")
    assert not state.apply(goal("ghost", "g0"))
    assert state.apply(goal("u1", "g1"))
    assert not state.apply(goal("u2", "g1"))  # the id is u1's
    assert state.goals.of("u2") == []
    assert not state.apply(goal("u1", "g2", scope="language"))  # a scope needs its value
    assert [g.goal_id for g in state.goals.of("u1")] == ["g1"]


def test_goal_cap_per_account() -> None:
    state = state_with("u1")
    for i in range(MAX_GOALS_PER_USER):
        assert state.apply(goal("u1", f"g{i}"))
    assert not state.apply(goal("u1", "one-too-many"))
    assert len(state.goals.of("u1")) == MAX_GOALS_PER_USER


def test_only_the_owner_updates_or_deletes() -> None:
    state = state_with("u1", "u2")
    assert state.apply(goal("u1", "g1", scope="language", scope_value="Python"))
    stranger = GoalUpdated(
        event_id="x1", user_id="u2", occurred_at=11.0, goal_id="g1", target_seconds=1
    )
    assert not state.apply(stranger)
    assert not state.apply(GoalDeleted(event_id="x2", user_id="u2", occurred_at=11.0, goal_id="g1"))
    assert state.apply(
        GoalUpdated(
            event_id="x3",
            user_id="u1",
            occurred_at=12.0,
            goal_id="g1",
            target_seconds=7200,
            period="weekly",
        )
    )
    changed = state.goals.owned("u1", "g1")
    assert changed is not None
    assert (changed.target_seconds, changed.period, changed.scope_value) == (
        7200,
        "weekly",
        "Python",
    )
    assert changed.updated_at == 12.0
    assert state.apply(
        GoalUpdated(event_id="x4", user_id="u1", occurred_at=13.0, goal_id="g1", change_scope=True)
    )
    unscoped = state.goals.owned("u1", "g1")
    assert unscoped is not None
    assert unscoped.scope is None
    assert unscoped.scope_value is None
    assert state.apply(GoalDeleted(event_id="x5", user_id="u1", occurred_at=14.0, goal_id="g1"))
    assert state.goals.of("u1") == []
    assert state.goals.goal("g1") is None
    # A deleted goal's id is never reused, and a second delete changes nothing.
    assert not state.apply(GoalDeleted(event_id="x6", user_id="u1", occurred_at=15.0, goal_id="g1"))
    assert not state.apply(goal("u1", "g1"))


def test_account_deletion_takes_its_goals() -> None:
    state = state_with("u1", "u2")
    assert state.apply(goal("u1", "g1"))
    assert state.apply(goal("u2", "g2"))
    assert state.apply(AccountDeleted(event_id="d1", user_id="u1", occurred_at=20.0))
    assert state.goals.of("u1") == []
    assert state.goals.goal("g1") is None
    assert [g.goal_id for g in state.goals.of("u2")] == ["g2"]
    # Whatever the deleted account appends later is rejected.
    assert not state.apply(goal("u1", "g3"))


def test_refolding_the_same_events_reaches_the_same_goals() -> None:
    events = [
        account("u1"),
        goal("u1", "g1"),
        goal("u1", "g2", kind="at_most"),
        GoalUpdated(event_id="x1", user_id="u1", occurred_at=12.0, goal_id="g2", title="calm"),
        GoalDeleted(event_id="x2", user_id="u1", occurred_at=13.0, goal_id="g1"),
    ]
    first, second = AccountState(), AccountState()
    for event in events:
        first.apply(event)
    for event in events + events:  # redelivered: applied once
        second.apply(event)
    assert first.goals.of("u1") == second.goals.of("u1")
    assert [(g.goal_id, g.title) for g in first.goals.of("u1")] == [("g2", "calm")]
