from __future__ import annotations

import pydantic
import pytest

from schemas.events import AccountCreated, HeartbeatsReceived, decode_event, encode_event
from schemas.heartbeat import Heartbeat


def test_events_round_trip_through_json() -> None:
    hb = Heartbeat(
        event_id="e1", user_id="u", time=1.7e9, entity="a.py", received_at=1.7e9, source="wakatime"
    )
    batch = HeartbeatsReceived(event_id="b", user_id="u", occurred_at=1.0, heartbeats=(hb,))
    account = AccountCreated(
        event_id="a", user_id="u", occurred_at=1.0, username="n", account_number_hash="h"
    )
    assert decode_event(encode_event(batch)) == batch
    assert decode_event(encode_event(account)) == account


def test_decode_rejects_unknown_events() -> None:
    with pytest.raises(pydantic.ValidationError):
        decode_event(b'{"type": "Nope", "event_id": "x"}')
