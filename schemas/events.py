"""Events on the log: past-tense names, each with a version, encoded as JSON.

Two topics carry them. ``codetrackr.heartbeats`` holds :class:`HeartbeatsReceived`, one record per
accepted request, keyed by user id so one user's heartbeats stay ordered and the whole request is
appended atomically. ``codetrackr.accounts`` holds account events on a single partition, so their
order is global (which keeps usernames and account numbers unique).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from schemas.heartbeat import Heartbeat

HEARTBEATS_TOPIC = "codetrackr.heartbeats"
ACCOUNTS_TOPIC = "codetrackr.accounts"


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: str
    user_id: str
    occurred_at: float


class HeartbeatsReceived(_Event):
    """Heartbeats of one user accepted in one request (already validated and normalized)."""

    type: Literal["HeartbeatsReceived"] = "HeartbeatsReceived"
    version: Literal[1] = 1
    heartbeats: tuple[Heartbeat, ...]


class AccountCreated(_Event):
    """A new account. Only a hash of the login secret (the account number) is recorded."""

    type: Literal["AccountCreated"] = "AccountCreated"
    version: Literal[1] = 1
    username: str
    account_number_hash: str
    timezone: str = "UTC"


class ApiKeyCreated(_Event):
    """A new API key. Only its hash and a display prefix are recorded."""

    type: Literal["ApiKeyCreated"] = "ApiKeyCreated"
    version: Literal[1] = 1
    key_id: str
    name: str
    key_hash: str
    key_prefix: str


class ApiKeyRevoked(_Event):
    type: Literal["ApiKeyRevoked"] = "ApiKeyRevoked"
    version: Literal[1] = 1
    key_id: str


class ProfileUpdated(_Event):
    """Changed profile fields only (for now: the timezone that decides local days)."""

    type: Literal["ProfileUpdated"] = "ProfileUpdated"
    version: Literal[1] = 1
    timezone: str | None = None


AccountEvent = Annotated[
    AccountCreated | ApiKeyCreated | ApiKeyRevoked | ProfileUpdated, Field(discriminator="type")
]
Event = Annotated[
    HeartbeatsReceived | AccountCreated | ApiKeyCreated | ApiKeyRevoked | ProfileUpdated,
    Field(discriminator="type"),
]

_EVENT: TypeAdapter[Event] = TypeAdapter(Event)


def encode_event(event: Event) -> bytes:
    return event.model_dump_json().encode("utf-8")


def decode_event(raw: bytes) -> Event:
    """Parse one record value. Raises ``pydantic.ValidationError`` on an unknown or bad event."""
    return _EVENT.validate_json(raw)
