"""Account state as a pure fold over account events (no I/O).

Applying the same event twice changes nothing (events are recognised by ``event_id``), so the fold
is safe under redelivery and under the read-your-writes shortcut where a process applies its own
event before it reads it back from the log.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from schemas.events import (
    PROFILE_FIELDS,
    AccountCreated,
    AccountEvent,
    ApiKeyCreated,
    ApiKeyRevoked,
    ProfileUpdated,
)

MAX_KEYS_PER_USER = 5
DEFAULT_TIMEOUT_MINUTES = 15  # WakaTime's default keystroke timeout
MIN_TIMEOUT_MINUTES, MAX_TIMEOUT_MINUTES = 1, 240


@dataclass(frozen=True, slots=True)
class User:
    user_id: str
    username: str
    timezone: str
    created_at: float
    timezone_set: bool = False
    timeout_minutes: int = DEFAULT_TIMEOUT_MINUTES
    writes_only: bool = False
    is_public: bool = False
    profile_show_languages: bool = False
    profile_show_projects: bool = False
    profile_show_activity: bool = False
    profile_show_plugins: bool = False
    profile_show_streak: bool = False
    available_for_hire: bool = False
    show_in_leaderboard: bool = False
    country: str | None = None


@dataclass(frozen=True, slots=True)
class ApiKey:
    key_id: str
    user_id: str
    name: str
    key_prefix: str
    key_hash: str
    created_at: float


@dataclass
class AccountState:
    users: dict[str, User] = field(default_factory=dict)
    keys_by_hash: dict[str, ApiKey] = field(default_factory=dict)
    keys_by_id: dict[str, ApiKey] = field(default_factory=dict)
    user_by_account_hash: dict[str, str] = field(default_factory=dict)
    user_by_username: dict[str, str] = field(default_factory=dict)
    revoked_keys: set[str] = field(default_factory=set)
    seen: set[str] = field(default_factory=set)
    rejected: set[str] = field(default_factory=set)

    def keys_of(self, user_id: str) -> list[ApiKey]:
        found = [k for k in self.keys_by_id.values() if k.user_id == user_id]
        return sorted(found, key=lambda k: (k.created_at, k.key_id))

    def apply(self, event: AccountEvent) -> bool:
        """Fold one event in; returns False when it was already applied or is rejected."""
        if event.event_id in self.seen:
            return False
        self.seen.add(event.event_id)
        if isinstance(event, AccountCreated):
            accepted = self._created(event)
        elif isinstance(event, ApiKeyCreated):
            accepted = self._key_created(event)
        elif isinstance(event, ApiKeyRevoked):
            accepted = self._key_revoked(event)
        else:
            accepted = self._profile(event)
        if not accepted:
            self.rejected.add(event.event_id)
        return accepted

    def _created(self, event: AccountCreated) -> bool:
        # The log is the arbiter of uniqueness: the first event wins, later clashes are ignored.
        if (
            event.user_id in self.users
            or event.username.lower() in self.user_by_username
            or event.account_number_hash in self.user_by_account_hash
        ):
            return False
        self.users[event.user_id] = User(
            event.user_id,
            event.username,
            event.timezone,
            event.occurred_at,
            event.timezone != "UTC",
        )
        self.user_by_username[event.username.lower()] = event.user_id
        self.user_by_account_hash[event.account_number_hash] = event.user_id
        return True

    def _key_created(self, event: ApiKeyCreated) -> bool:
        if event.user_id not in self.users or event.key_id in self.revoked_keys:
            return False
        if event.key_hash in self.keys_by_hash or event.key_id in self.keys_by_id:
            return False
        if len(self.keys_of(event.user_id)) >= MAX_KEYS_PER_USER:
            return False
        key = ApiKey(
            event.key_id,
            event.user_id,
            event.name,
            event.key_prefix,
            event.key_hash,
            event.occurred_at,
        )
        self.keys_by_hash[key.key_hash] = key
        self.keys_by_id[key.key_id] = key
        return True

    def _key_revoked(self, event: ApiKeyRevoked) -> bool:
        self.revoked_keys.add(event.key_id)
        key = self.keys_by_id.get(event.key_id)
        if key is None or key.user_id != event.user_id:
            return False
        del self.keys_by_id[key.key_id]
        del self.keys_by_hash[key.key_hash]
        return True

    def _profile(self, event: ProfileUpdated) -> bool:
        user = self.users.get(event.user_id)
        if user is None:
            return False
        changes = {
            name: value for name in PROFILE_FIELDS if (value := getattr(event, name)) is not None
        }
        if "timezone" in changes:
            changes["timezone_set"] = True
        if changes.get("country") == "":
            changes["country"] = None
        self.users[user.user_id] = replace(user, **changes)
        return True
