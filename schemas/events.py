"""Events on the log: past-tense names, each with a version, encoded as JSON.

Two topics carry them. ``codetrackr.heartbeats`` holds :class:`HeartbeatsReceived`, one record per
accepted request, keyed by user id so one user's heartbeats stay ordered and the whole request is
appended atomically, and :class:`HeartbeatsDeleted`, keyed the same way. ``codetrackr.accounts``
holds account events on a single partition, so their order is global (which keeps usernames and
account numbers unique).
"""

from __future__ import annotations

import datetime as dt
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


class HeartbeatsDeleted(_Event):
    """The user deleted these heartbeats (``ids`` are heartbeat ``event_id``s) of local ``date``.

    On the heartbeats topic, keyed by the user id like the heartbeats it deletes, so it follows
    them on their partition. Only the user's own heartbeats of that local date (the date in the
    heartbeat's own timezone) are deleted; unknown ids change nothing. Deletion is final: the
    same activity sent again later (it has the same id) stays deleted.
    """

    type: Literal["HeartbeatsDeleted"] = "HeartbeatsDeleted"
    version: Literal[1] = 1
    date: dt.date
    ids: tuple[str, ...]


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
    """The profile fields a request changed; ``None`` means unchanged.

    ``timezone`` decides local days; ``timeout_minutes`` and ``writes_only`` are the defaults of
    the duration rule for reads; ``is_public`` and the ``profile_show_*`` flags decide what others
    may read (public stats, cards, badges).
    """

    type: Literal["ProfileUpdated"] = "ProfileUpdated"
    version: Literal[1] = 1
    timezone: str | None = None
    timeout_minutes: int | None = None
    writes_only: bool | None = None
    is_public: bool | None = None
    profile_show_languages: bool | None = None
    profile_show_projects: bool | None = None
    profile_show_activity: bool | None = None
    profile_show_plugins: bool | None = None
    profile_show_streak: bool | None = None
    available_for_hire: bool | None = None
    show_in_leaderboard: bool | None = None
    country: str | None = None  # two-letter code; "" clears it


# The fields of ProfileUpdated that are profile values (the rest identify the event).
PROFILE_FIELDS: tuple[str, ...] = tuple(
    name
    for name in ProfileUpdated.model_fields
    if name not in {*_Event.model_fields, "type", "version"}
)


AccountEvent = Annotated[
    AccountCreated | ApiKeyCreated | ApiKeyRevoked | ProfileUpdated, Field(discriminator="type")
]
Event = Annotated[
    HeartbeatsReceived
    | HeartbeatsDeleted
    | AccountCreated
    | ApiKeyCreated
    | ApiKeyRevoked
    | ProfileUpdated,
    Field(discriminator="type"),
]

_EVENT: TypeAdapter[Event] = TypeAdapter(Event)


def encode_event(event: Event) -> bytes:
    return event.model_dump_json().encode("utf-8")


def decode_event(raw: bytes) -> Event:
    """Parse one record value. Raises ``pydantic.ValidationError`` on an unknown or bad event."""
    return _EVENT.validate_json(raw)
