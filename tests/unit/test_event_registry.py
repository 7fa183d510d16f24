"""The event registry (``schemas.events.EVENTS_BY_TOPIC``) is the one list of events per topic:
the unions the type checker sees list the same classes, and the runtime checks derive from it."""

from __future__ import annotations

from typing import get_args

import pytest

from eventlog.port import Delivered
from processors.decoding import decode_account_events, heartbeat_event
from processors.projectors.members import MEMBER_EVENTS, PROJECTED_ACCOUNT_EVENTS
from schemas import events
from schemas.events import (
    ACCOUNT_EVENTS,
    ACCOUNTS_TOPIC,
    EVENTS_BY_TOPIC,
    HEARTBEAT_EVENTS,
    HEARTBEATS_TOPIC,
    AccountEvent,
    Event,
    HeartbeatEvent,
    is_account_event,
    is_heartbeat_event,
)


def members(annotated: object) -> set[type]:
    """The classes of a (possibly ``Annotated``) union."""
    union = get_args(annotated)[0] if hasattr(annotated, "__metadata__") else annotated
    return set(get_args(union))


def test_event_registry_unions_equal_the_registry() -> None:
    assert members(HeartbeatEvent) == set(HEARTBEAT_EVENTS)
    assert members(AccountEvent) == set(ACCOUNT_EVENTS)
    assert members(Event) == set(HEARTBEAT_EVENTS) | set(ACCOUNT_EVENTS)
    assert EVENTS_BY_TOPIC == {HEARTBEATS_TOPIC: HEARTBEAT_EVENTS, ACCOUNTS_TOPIC: ACCOUNT_EVENTS}


def test_event_registry_names_every_event_class_on_one_topic() -> None:
    defined = {
        value
        for value in vars(events).values()
        if isinstance(value, type)
        and issubclass(value, events._Event)
        and value is not events._Event
    }
    assert defined == set(HEARTBEAT_EVENTS) | set(ACCOUNT_EVENTS)
    assert not set(HEARTBEAT_EVENTS) & set(ACCOUNT_EVENTS)


def example(cls: type) -> Event:
    """An instance of ``cls`` built from its required fields."""
    values = {"event_id": "e", "user_id": "u", "occurred_at": 1.0}
    fillers = {str: "x", float: 1.0, int: 1, tuple[str, ...]: ("i",)}
    for name, field in cls.model_fields.items():  # type: ignore[attr-defined]
        if field.is_required() and name not in values:
            values[name] = fillers.get(field.annotation, ())
    if cls.__name__ == "HeartbeatsDeleted":
        values["date"] = "2026-01-05"
    if cls.__name__ == "PluginModerated":
        values["action"] = "ban"
    if cls.__name__ == "PluginSettingsChanged":
        values["mode"] = "delete"
    built: Event = cls(**values)
    return built


@pytest.mark.parametrize("cls", [*HEARTBEAT_EVENTS, *ACCOUNT_EVENTS], ids=lambda c: c.__name__)
def test_event_registry_decides_the_topic_checks(cls: type) -> None:
    event = example(cls)
    on_heartbeats = cls in HEARTBEAT_EVENTS
    assert is_heartbeat_event(event) is on_heartbeats
    assert is_account_event(event) is (not on_heartbeats)
    decoded = heartbeat_event(events.encode_event(event))
    assert (decoded == event) if on_heartbeats else decoded is None


def test_event_registry_projected_account_events_are_account_events() -> None:
    assert set(MEMBER_EVENTS) <= set(PROJECTED_ACCOUNT_EVENTS) <= set(ACCOUNT_EVENTS)


def test_event_registry_account_decoding_keeps_only_projected_events() -> None:
    records = [
        Delivered(ACCOUNTS_TOPIC, 0, offset, b"u", events.encode_event(example(cls)), 0)
        for offset, cls in enumerate(ACCOUNT_EVENTS)
    ]
    kept, skipped = decode_account_events(records)
    assert skipped == 0
    assert [type(event) for _, event in kept] == [
        cls for cls in ACCOUNT_EVENTS if cls in PROJECTED_ACCOUNT_EVENTS
    ]


def test_store_events_are_account_events_and_their_union_matches() -> None:
    assert set(events.STORE_EVENTS) <= set(ACCOUNT_EVENTS)
    assert set(get_args(events.StoreEvent)) == set(events.STORE_EVENTS)
    for cls in ACCOUNT_EVENTS:
        assert events.is_store_event(example(cls)) is (cls in events.STORE_EVENTS)


def test_theme_events_are_account_events_and_their_union_matches() -> None:
    assert set(events.THEME_EVENTS) <= set(ACCOUNT_EVENTS)
    assert not set(events.THEME_EVENTS) & set(events.STORE_EVENTS)
    assert set(get_args(events.ThemeEvent)) == set(events.THEME_EVENTS)
    for cls in ACCOUNT_EVENTS:
        assert events.is_theme_event(example(cls)) is (cls in events.THEME_EVENTS)
