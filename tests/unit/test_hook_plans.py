"""Which hooks an event fires (processors.hook_plans): pure rules over the folded account state."""

from __future__ import annotations

import itertools

import pytest

from accounts.state import AccountState
from plugins_runtime.invocation import HookCall, LifecycleHook
from processors.hook_plans import (
    BULK_THRESHOLD,
    NEW_USER_WINDOW_S,
    ForgetJob,
    HookJob,
    heartbeat_calls,
    heartbeat_object,
    plan_event,
    tick_jobs,
)
from schemas.events import (
    AccountCreated,
    AccountDeleted,
    AccountEvent,
    HeartbeatsReceived,
    PluginInstalled,
    PluginPublished,
    PluginSuspended,
    PluginUninstalled,
    SessionStarted,
)
from tests.support.store_rows import epoch, make_heartbeat

T0 = 1_700_000_000.0
_ids = itertools.count()


def next_id() -> str:
    return f"e{next(_ids)}"


def fold(*events: AccountEvent) -> AccountState:
    state = AccountState()
    for event in events:
        assert state.apply(event), event
    return state


def account(user_id: str, at: float = T0) -> AccountCreated:
    return AccountCreated(
        event_id=next_id(),
        user_id=user_id,
        occurred_at=at,
        username=user_id,
        account_number_hash=user_id,
    )


def published(name: str) -> PluginPublished:
    return PluginPublished(
        event_id=next_id(), user_id="author", occurred_at=T0, name=name, display_name=name
    )


def installed(user_id: str, name: str, event_id: str | None = None) -> PluginInstalled:
    return PluginInstalled(
        event_id=event_id or next_id(), user_id=user_id, occurred_at=T0 + 10, name=name
    )


def request(count: int, source: str = "codetrackr") -> HeartbeatsReceived:
    beats = tuple(
        make_heartbeat(f"h{i}", epoch(10, i % 60), user_id="alice", source=source)
        for i in range(count)
    )
    return HeartbeatsReceived(
        event_id=next_id(), user_id="alice", occurred_at=T0 + 20, heartbeats=beats
    )


def test_the_heartbeat_object_has_the_seeds_fields_and_ours() -> None:
    beat = make_heartbeat(
        "h1", epoch(10) + 0.25, user_id="alice", editor="VS Code", branch=None, duration=12.5
    )
    assert heartbeat_object(beat) == {
        "project": "codetrackr",
        "language": "Python",
        "file": "/src/main.py",
        "editor": "VS Code",
        "branch": "",
        "os": "",
        "machine": "",
        "duration": 12.5,
        "time": epoch(10) + 0.25,
        "id": "h1",
        "entity": "/src/main.py",
        "type": "file",
        "category": "coding",
        "is_write": False,
        "lines": None,
        "line_additions": None,
        "line_deletions": None,
        "source": "wakatime",
    }
    domain = make_heartbeat("h2", epoch(10), entity="example.com", type="domain")
    assert heartbeat_object(domain)["file"] == ""


@pytest.mark.parametrize(
    ("count", "source", "expected"),
    [
        (1, "codetrackr", [LifecycleHook.ON_HEARTBEAT]),
        (BULK_THRESHOLD, "wakatime", [LifecycleHook.ON_HEARTBEAT] * BULK_THRESHOLD),
        (BULK_THRESHOLD + 1, "codetrackr", [LifecycleHook.ON_HEARTBEATS_BULK]),
        (2, "import", [LifecycleHook.ON_HEARTBEATS_BULK]),
        (0, "codetrackr", []),
    ],
)
def test_a_request_fires_one_hook_per_heartbeat_or_one_bulk_hook(
    count: int, source: str, expected: list[LifecycleHook]
) -> None:
    calls = heartbeat_calls(request(count, source))
    assert [call.hook for call in calls] == expected
    if expected == [LifecycleHook.ON_HEARTBEATS_BULK]:
        assert calls[0].event == {"count": count}
    else:
        assert [call.event["id"] for call in calls if call.event] == [f"h{i}" for i in range(count)]


def test_heartbeats_fire_for_every_install_of_their_user_only() -> None:
    state = fold(
        account("author"),
        account("alice"),
        account("bob"),
        published("a"),
        published("b"),
        installed("alice", "a"),
        installed("alice", "b"),
        installed("bob", "a"),
    )
    jobs = plan_event(request(2), state)
    assert [(j.user_id, j.plugin) for j in jobs] == [("alice", "a")] * 2 + [("alice", "b")] * 2
    assert all(isinstance(j, HookJob) and j.received_at == T0 + 20 for j in jobs)


def test_on_install_only_for_the_install_that_is_current() -> None:
    first = installed("alice", "a", "install-1")
    state = fold(account("author"), account("alice"), published("a"), first)
    assert plan_event(first, state) == [
        HookJob("alice", "a", HookCall(LifecycleHook.ON_INSTALL), install_id="install-1")
    ]
    suspended = PluginSuspended(
        event_id=next_id(), user_id="alice", occurred_at=T0 + 30, name="a", reason="r"
    )
    resumed = installed("alice", "a", "install-2")
    state.apply(suspended)
    state.apply(resumed)
    assert plan_event(resumed, state) == []  # a resume is no new install
    gone = PluginUninstalled(event_id=next_id(), user_id="alice", occurred_at=T0 + 40, name="a")
    state.apply(gone)
    assert plan_event(first, state) == []  # removed since: its on_install is not fired late
    assert plan_event(gone, state) == [ForgetJob("alice", "a")]


@pytest.mark.parametrize(
    ("after_s", "is_new"), [(0.0, True), (NEW_USER_WINDOW_S, True), (NEW_USER_WINDOW_S + 1, False)]
)
def test_a_login_tells_whether_the_user_is_new(after_s: float, is_new: bool) -> None:
    state = fold(account("author"), account("alice"), published("a"), installed("alice", "a"))
    login = SessionStarted(
        event_id=next_id(),
        user_id="alice",
        occurred_at=T0 + after_s,
        session_id="s",
        refresh_hash="r",
        expires_at=T0 + 9999,
        method="gitlab",
    )
    [job] = plan_event(login, state)
    assert isinstance(job, HookJob)
    assert job.call == HookCall(
        LifecycleHook.ON_USER_LOGIN,
        {"username": "alice", "is_new_user": is_new, "method": "gitlab", "time": T0 + after_s},
    )


def test_account_deletion_forgets_every_plugin_and_ticks_cover_every_install() -> None:
    state = fold(
        account("author"),
        account("alice"),
        account("bob"),
        published("a"),
        installed("bob", "a"),
        installed("alice", "a"),
    )
    deleted = AccountDeleted(event_id=next_id(), user_id="alice", occurred_at=T0 + 50)
    assert plan_event(deleted, state) == [ForgetJob("alice", None)]
    assert [(j.user_id, j.plugin, j.call.hook) for j in tick_jobs(state.plugins)] == [
        ("alice", "a", LifecycleHook.ON_TICK),
        ("bob", "a", LifecycleHook.ON_TICK),
    ]


def test_a_fetch_is_planned_in_append_time_order_keeping_each_partitions_order() -> None:
    from eventlog.port import Delivered
    from processors.plugin_hooks import in_time_order
    from schemas.events import ACCOUNTS_TOPIC, HEARTBEATS_TOPIC

    def rec(topic: str, partition: int, offset: int, ts: int) -> Delivered:
        return Delivered(topic, partition, offset, b"", b"", ts)

    beats0 = [rec(HEARTBEATS_TOPIC, 0, 0, 5), rec(HEARTBEATS_TOPIC, 0, 1, 3)]  # a clock step back
    beats1 = [rec(HEARTBEATS_TOPIC, 1, 0, 4)]
    accounts = [rec(ACCOUNTS_TOPIC, 0, 0, 1), rec(ACCOUNTS_TOPIC, 0, 1, 4)]
    merged = in_time_order([*beats0, *beats1, *accounts])
    assert [(r.topic[-5:], r.partition, r.offset) for r in merged] == [
        ("ounts", 0, 0),
        ("ounts", 0, 1),  # a tie: the account event first
        ("beats", 1, 0),
        ("beats", 0, 0),
        ("beats", 0, 1),  # never before its partition's earlier record
    ]
