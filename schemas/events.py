"""Events on the log: past-tense names, each with a version, encoded as JSON.

Two topics carry them. ``codetrackr.heartbeats`` holds :class:`HeartbeatsReceived`, one record per
accepted request, keyed by user id so one user's heartbeats stay ordered and the whole request is
appended atomically, and :class:`HeartbeatsDeleted`, :class:`UserDataErased` and
:class:`AiActivityReceived` (AI coding activity), keyed the same way. ``codetrackr.accounts``
holds account events (accounts, keys, sessions, profiles, follows, contact messages, deletions,
suspensions), the plugin store's (publishes, installs, settings, reviews, reports, moderation),
the theme store's (publishes, installs, the applied theme) and goal definitions (created,
updated, deleted) on a single
partition, so their order is global: uniqueness (usernames, account numbers, identities) and
single use (refresh tokens, OAuth states) are decided by that order, the first event winning.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal, TypeAlias, TypeGuard

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from schemas.ai import AiRecord
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


class UserDataErased(_Event):
    """Erase the user's heartbeats whose ``time`` is in ``[start, end)`` (epoch seconds).

    Both bounds ``None`` erases everything the user ever sent: the account was deleted
    (:class:`AccountDeleted` is on the accounts topic). On the heartbeats topic, keyed by the user
    id, so it follows every heartbeat of theirs appended before it and precedes the ones after
    it: heartbeats received later stay (new activity), except after a full erasure, when nothing
    of the user is projected again. Unlike :class:`HeartbeatsDeleted` (tombstones, the rows
    stay hidden), an erasure removes the rows themselves from every projection, and on the
    embedded log the records themselves.
    """

    type: Literal["UserDataErased"] = "UserDataErased"
    version: Literal[1] = 1
    start: float | None = None
    end: float | None = None

    @property
    def everything(self) -> bool:
        return self.start is None and self.end is None

    def covers(self, time: float) -> bool:
        """Whether a heartbeat at ``time`` is erased."""
        return (self.start is None or time >= self.start) and (self.end is None or time < self.end)


class AiActivityReceived(_Event):
    """AI coding activity of one user accepted in one request (see :mod:`schemas.ai`): a
    session's start or end, messages, file activities, tool calls, projects, or a whole import.

    On the heartbeats topic, keyed by the user id, so it is ordered with the user's heartbeats
    and erasures: an erasure removes the records of its range that precede it, a replay and a
    rewrite of the embedded log treat it like heartbeats. The projector also derives heartbeats
    (category ``ai coding``, the assistant as editor) from it, so AI time is counted by the same
    durations rule as hand-written code and never twice (docs/ai.md).
    """

    type: Literal["AiActivityReceived"] = "AiActivityReceived"
    version: Literal[1] = 1
    records: tuple[AiRecord, ...]
    # The zone the records' local days are in (the user's setting when received, as heartbeats).
    timezone: str = "UTC"


class AccountCreated(_Event):
    """A new account. Only a hash of the login secret (the account number) is recorded.

    An account created through an identity provider (OAuth) has no account number
    (``account_number_hash`` is empty) and names its identity instead: ``identity_provider``
    (``github``, ``gitlab``, ``oidc``) and the provider's stable user id ``identity_subject``.
    The first event to claim a username, an account number or an identity wins.
    """

    type: Literal["AccountCreated"] = "AccountCreated"
    version: Literal[1] = 1
    username: str
    account_number_hash: str = ""
    timezone: str = "UTC"
    identity_provider: str | None = None
    identity_subject: str | None = None


class ApiKeyCreated(_Event):
    """A new API key. Only its hash and a display prefix are recorded.

    A ``read_only`` key reads stats but cannot send or delete heartbeats or change anything.
    """

    type: Literal["ApiKeyCreated"] = "ApiKeyCreated"
    version: Literal[1] = 1
    key_id: str
    name: str
    key_hash: str
    key_prefix: str
    read_only: bool = False


class ApiKeyRevoked(_Event):
    type: Literal["ApiKeyRevoked"] = "ApiKeyRevoked"
    version: Literal[1] = 1
    key_id: str


class ApiKeyUsed(_Event):
    """The key authenticated a request at ``occurred_at`` (recorded at most about once an hour
    per key and process, so "last used" is accurate to the hour)."""

    type: Literal["ApiKeyUsed"] = "ApiKeyUsed"
    version: Literal[1] = 1
    key_id: str


class ProfileUpdated(_Event):
    """The profile fields a request changed; ``None`` means unchanged.

    ``timezone`` decides local days; ``timeout_minutes`` and ``writes_only`` are the defaults of
    the duration rule for reads; ``is_public`` and the ``profile_show_*`` flags decide what others
    may read (public stats, profile, cards, badges). ``username`` renames the account (rejected
    when another account holds the name). For the text fields, ``""`` clears the value.
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
    username: str | None = None
    display_name: str | None = None
    bio: str | None = None
    website: str | None = None
    avatar_url: str | None = None


# The fields of ProfileUpdated that are profile values (the rest identify the event).
PROFILE_FIELDS: tuple[str, ...] = tuple(
    name
    for name in ProfileUpdated.model_fields
    if name not in {*_Event.model_fields, "type", "version"}
)
# The profile fields holding text, which ``""`` clears.
PROFILE_TEXT_FIELDS = ("country", "display_name", "bio", "website", "avatar_url")


class SessionStarted(_Event):
    """A login: a device session with its first refresh token (only its SHA-256 is recorded).

    Access tokens name their session (``sid``); they are accepted while it is neither revoked
    nor expired. ``oauth_state`` is the hash of the OAuth ``state`` nonce the login consumed: a
    state starts at most one session. ``expires_at`` is when the refresh token lapses.
    """

    type: Literal["SessionStarted"] = "SessionStarted"
    version: Literal[1] = 1
    session_id: str
    refresh_hash: str
    expires_at: float
    method: str  # "anonymous" or the identity provider's name
    device: str = ""
    oauth_state: str | None = None


class SessionRefreshed(_Event):
    """The refresh token ``previous_hash`` was exchanged for ``refresh_hash`` (rotation).

    Accepted only while ``previous_hash`` is the session's current token, so of two uses of one
    token the log's order accepts the first.
    """

    type: Literal["SessionRefreshed"] = "SessionRefreshed"
    version: Literal[1] = 1
    session_id: str
    previous_hash: str
    refresh_hash: str
    expires_at: float


class SessionRevoked(_Event):
    """The session ends: ``logout``, ``revoked`` (from the session list), or
    ``refresh_token_reuse`` (a rotated-out refresh token was presented again)."""

    type: Literal["SessionRevoked"] = "SessionRevoked"
    version: Literal[1] = 1
    session_id: str
    reason: str


class UserFollowed(_Event):
    """``user_id`` follows ``followed_user_id``."""

    type: Literal["UserFollowed"] = "UserFollowed"
    version: Literal[1] = 1
    followed_user_id: str


class UserUnfollowed(_Event):
    type: Literal["UserUnfollowed"] = "UserUnfollowed"
    version: Literal[1] = 1
    followed_user_id: str


class ProjectAliasesReplaced(_Event):
    """The user's project aliases, all of them (this replaces the previous set): each pair
    ``(alias, project)`` makes every read count the project name ``alias`` as ``project``.
    Applied at read time: heartbeats keep the name they were sent with, so aliases can change."""

    type: Literal["ProjectAliasesReplaced"] = "ProjectAliasesReplaced"
    version: Literal[1] = 1
    aliases: tuple[tuple[str, str], ...]


class ProjectLabelsReplaced(_Event):
    """The user's project labels, all of them (this replaces the previous set): each pair
    ``(project, labels)`` files the project (a name after aliases) under those labels."""

    type: Literal["ProjectLabelsReplaced"] = "ProjectLabelsReplaced"
    version: Literal[1] = 1
    labels: tuple[tuple[str, tuple[str, ...]], ...]


class IngestRulesReplaced(_Event):
    """The user's ingest rules, all of them (this replaces the previous set): heartbeats whose
    entity or project matches one of ``ignore`` (glob patterns, any case) are dropped at ingest,
    and ``language_mappings`` pairs ``(extension, language)`` set the language of a file with
    that extension as it is recorded (as Wakapi applies its mappings: at ingest, not at read)."""

    type: Literal["IngestRulesReplaced"] = "IngestRulesReplaced"
    version: Literal[1] = 1
    ignore: tuple[str, ...] = ()
    language_mappings: tuple[tuple[str, str], ...] = ()


class HeartbeatsIgnored(_Event):
    """``count`` heartbeats of one request were dropped by the user's ignore rules (counted on
    the account; nothing of them is kept)."""

    type: Literal["HeartbeatsIgnored"] = "HeartbeatsIgnored"
    version: Literal[1] = 1
    count: int


class ContactMessageSent(_Event):
    """A hire inquiry for ``user_id`` (the recipient, a public profile available for hire) from
    the account ``sender_user_id``. On the accounts topic only: never archived in ClickHouse."""

    type: Literal["ContactMessageSent"] = "ContactMessageSent"
    version: Literal[1] = 1
    message_id: str
    sender_user_id: str
    sender_name: str
    sender_email: str
    message: str


class AccountDeleted(_Event):
    """The user deleted their account: it is gone at once, with its keys, sessions, follows (both
    ways) and hire inquiries (received and sent); its username, account number and identity are
    free again. Its heartbeats are erased by the :class:`UserDataErased` appended after it."""

    type: Literal["AccountDeleted"] = "AccountDeleted"
    version: Literal[1] = 1


class AccountSuspended(_Event):
    """An instance admin (``by``, checked by the API before appending) suspends the account
    ``user_id``: every request made with its credentials is refused (403 ``account_suspended``,
    with ``reason``) until :class:`AccountUnsuspended`. Nothing of its data changes."""

    type: Literal["AccountSuspended"] = "AccountSuspended"
    version: Literal[1] = 1
    by: str
    reason: str = Field(default="", max_length=2000)


class AccountUnsuspended(_Event):
    """An instance admin (``by``) lifts the suspension of ``user_id``."""

    type: Literal["AccountUnsuspended"] = "AccountUnsuspended"
    version: Literal[1] = 1
    by: str


# -- the plugin store ----------------------------------------------------------------------------
# Plugin events ride the accounts topic: its single partition gives them one global order (the
# first publisher of a name owns it, one review per user, a ban stops a plugin everywhere at once)
# and every process that folds accounts folds the store with them (:mod:`accounts.plugins`).

# Lowercase kebab-case, like the seed's ``streak-counter``: safe in URLs and key-value prefixes.
PLUGIN_NAME_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
PluginName = Annotated[str, Field(min_length=1, max_length=64, pattern=PLUGIN_NAME_PATTERN)]
WidgetType = Literal["counter", "chart", "list", "text", "progress"]


class PluginPublished(_Event):
    """``user_id`` publishes ``name`` or, as its original publisher, updates it (an upsert).

    ``None`` keeps a field's previous value (on the first publish: the store's default). Every
    accepted publish is kept as a version, scripts included. A publish by anyone but the original
    publisher, or of a banned plugin, is rejected.
    """

    type: Literal["PluginPublished"] = "PluginPublished"
    version: Literal[1] = 1
    name: PluginName
    display_name: str | None = None
    description: str | None = None
    plugin_version: str | None = None
    icon: str | None = None
    widget_type: WidgetType | None = None
    repository: str | None = None
    script: str | None = None  # the widget, run in the user's browser
    server_script: str | None = None  # lifecycle hooks and RPC endpoints, run in QuickJS


class PluginInstalled(_Event):
    """``user_id`` installs ``name`` (a new install: ``on_install`` runs for it once). Installing
    a plugin already installed and suspended resumes it instead; rejected when banned or unknown."""

    type: Literal["PluginInstalled"] = "PluginInstalled"
    version: Literal[1] = 1
    name: PluginName


class PluginUninstalled(_Event):
    """``user_id`` removes ``name``: its install and its settings for that user go."""

    type: Literal["PluginUninstalled"] = "PluginUninstalled"
    version: Literal[1] = 1
    name: PluginName


class PluginReviewed(_Event):
    """``user_id`` rates ``name`` 1 to 5 stars; a later review of theirs replaces this one."""

    type: Literal["PluginReviewed"] = "PluginReviewed"
    version: Literal[1] = 1
    name: PluginName
    rating: int = Field(ge=1, le=5)
    comment: str = Field(default="", max_length=2000)


class PluginReported(_Event):
    """``user_id`` reports ``name`` to the admins."""

    type: Literal["PluginReported"] = "PluginReported"
    version: Literal[1] = 1
    name: PluginName
    reason: str = Field(default="", max_length=2000)


class PluginModerated(_Event):
    """An admin (``user_id``; the API checks the role before appending) bans, unbans or deletes
    ``name``. A ban stops the plugin running and loading for everyone at once; a deletion removes
    it with its installs, settings, reviews and reports, and frees the name."""

    type: Literal["PluginModerated"] = "PluginModerated"
    version: Literal[1] = 1
    name: PluginName
    action: Literal["ban", "unban", "delete"]
    reason: str = Field(default="", max_length=2000)


SettingsWriteMode = Literal[
    "insert",
    "insert_or_ignore",
    "upsert_replace",
    "upsert_merge",
    "update_replace",
    "update_merge",
    "delete",
]


class PluginSettingsChanged(_Event):
    """A plugin's SQL wrote its own ``plugin_settings`` row of ``user_id`` (see ``mode``).

    The fold applies ``mode`` against the row as the log's order finds it, so two concurrent
    writes compose: ``insert`` is rejected when the row exists, the ``update_*`` modes change
    nothing when it does not, ``*_merge`` merges ``settings`` (a JSON object) into the row's
    (top-level keys, like Postgres' ``jsonb ||``). Rejected when the plugin is not installed.
    """

    type: Literal["PluginSettingsChanged"] = "PluginSettingsChanged"
    version: Literal[1] = 1
    name: PluginName
    mode: SettingsWriteMode
    settings: str | None = None  # JSON object text; None for ``delete``


class PluginSuspended(_Event):
    """The hook processor stopped running ``name`` for ``user_id`` after repeated failures;
    ``reason`` is shown to the user. Installing the plugin again resumes it."""

    type: Literal["PluginSuspended"] = "PluginSuspended"
    version: Literal[1] = 1
    name: PluginName
    reason: str


# -- the theme store -----------------------------------------------------------------------------
# Theme events ride the accounts topic for the same reasons as the plugin store's (the first
# publisher of a name owns it; an account deletion takes its themes with it in every process) and
# are folded by ``accounts.themes``. Values are checked by the API before an event is appended
# (``api.rules.theme_css``); the fold trusts them and the API checks them again when it serves.

ThemeName = Annotated[str, Field(min_length=1, max_length=64, pattern=PLUGIN_NAME_PATTERN)]


class ThemePublished(_Event):
    """``user_id`` publishes the theme ``name`` or, as its original publisher, updates it.

    On the first publish of a name the theme gets ``theme_id`` (a UUID, what installs name) and
    needs a ``display_name`` and ``variables``; an update keeps the theme's id whatever this one
    says. ``None`` keeps a field's previous value (on the first publish: the default).
    ``variables`` maps some of the ten CSS variables to values; ``custom_css`` is the checked,
    re-serialized raw CSS override (``""`` clears it). Rejected when the name is someone else's.
    """

    type: Literal["ThemePublished"] = "ThemePublished"
    version: Literal[1] = 1
    name: ThemeName
    theme_id: str
    display_name: str | None = None
    description: str | None = None
    theme_version: str | None = None
    icon: str | None = None
    variables: dict[str, str] | None = None
    custom_css: str | None = None


class ThemeInstalled(_Event):
    """``user_id`` adds the theme ``theme_id`` to their library (again: nothing changes).
    Rejected when no such theme is published."""

    type: Literal["ThemeInstalled"] = "ThemeInstalled"
    version: Literal[1] = 1
    theme_id: str


class ThemeUninstalled(_Event):
    """``user_id`` removes ``theme_id`` from their library; if it was their active theme they are
    back on the default one (their custom variables stay). Rejected when not installed."""

    type: Literal["ThemeUninstalled"] = "ThemeUninstalled"
    version: Literal[1] = 1
    theme_id: str


class ThemeApplied(_Event):
    """``user_id`` sets their theme preferences.

    With ``change_theme`` the active theme becomes ``theme_id`` (``None``: the default theme),
    which must be installed; ``custom_vars`` (``None``: unchanged, ``{}``: cleared) replaces the
    user's overrides, merged over the active theme's variables when read. All or nothing: a
    theme not installed rejects the whole event.
    """

    type: Literal["ThemeApplied"] = "ThemeApplied"
    version: Literal[1] = 1
    change_theme: bool = True
    theme_id: str | None = None
    custom_vars: dict[str, str] | None = None


# -- goals ---------------------------------------------------------------------------------------
# Goal definitions ride the accounts topic: every process folds them with the account
# (``accounts.goals``), an account deletion takes them with it, and a replay brings them back.
# Progress is never stored: it is read from the daily rows (``api.rules.goals``).

GoalPeriod = Literal["daily", "weekly"]
GoalKind = Literal["at_least", "at_most"]
GoalScope = Literal["language", "project", "editor", "category"]
# A week of seconds: no daily or weekly target can need more.
MAX_GOAL_SECONDS = 7 * 86_400


class GoalCreated(_Event):
    """``user_id`` sets a goal: ``target_seconds`` per local day or ISO week (Monday to Sunday)
    in the user's timezone, at least (reach it) or at most (stay within it), of all coding time
    or of one ``scope`` value (e.g. the language ``Python``, the category ``meeting``).
    Rejected when ``goal_id`` is taken or the user holds the most goals allowed."""

    type: Literal["GoalCreated"] = "GoalCreated"
    version: Literal[1] = 1
    goal_id: str
    period: GoalPeriod
    kind: GoalKind = "at_least"
    target_seconds: int = Field(ge=1, le=MAX_GOAL_SECONDS)
    title: str = Field(default="", max_length=200)
    scope: GoalScope | None = None
    scope_value: str | None = Field(default=None, max_length=500)


class GoalUpdated(_Event):
    """``user_id`` changes their goal ``goal_id``; ``None`` keeps a field. With
    ``change_scope`` the scope becomes ``scope``/``scope_value`` (``None``: all coding time).
    Rejected when the goal is not theirs (or gone)."""

    type: Literal["GoalUpdated"] = "GoalUpdated"
    version: Literal[1] = 1
    goal_id: str
    period: GoalPeriod | None = None
    kind: GoalKind | None = None
    target_seconds: int | None = Field(default=None, ge=1, le=MAX_GOAL_SECONDS)
    title: str | None = Field(default=None, max_length=200)
    change_scope: bool = False
    scope: GoalScope | None = None
    scope_value: str | None = Field(default=None, max_length=500)


class GoalDeleted(_Event):
    """``user_id`` deletes their goal ``goal_id``. Rejected when it is not theirs (or gone)."""

    type: Literal["GoalDeleted"] = "GoalDeleted"
    version: Literal[1] = 1
    goal_id: str


# The registry: which events each topic carries. Every runtime check of an event's topic derives
# from these tuples (``is_heartbeat_event``, ``is_account_event``). The unions below list the same
# classes because a type checker cannot build a Union from a tuple; a unit test
# (tests/unit/test_event_registry.py) holds each union equal to its row of the registry.
HEARTBEAT_EVENTS: tuple[type[_Event], ...] = (
    HeartbeatsReceived,
    HeartbeatsDeleted,
    UserDataErased,
    AiActivityReceived,
)
# The plugin store's events (on the accounts topic), folded by ``accounts.plugins``.
STORE_EVENTS: tuple[type[_Event], ...] = (
    PluginPublished,
    PluginInstalled,
    PluginUninstalled,
    PluginReviewed,
    PluginReported,
    PluginModerated,
    PluginSettingsChanged,
    PluginSuspended,
)
# The theme store's events (on the accounts topic), folded by ``accounts.themes``.
THEME_EVENTS: tuple[type[_Event], ...] = (
    ThemePublished,
    ThemeInstalled,
    ThemeUninstalled,
    ThemeApplied,
)
# The goals' events (on the accounts topic), folded by ``accounts.goals``.
GOAL_EVENTS: tuple[type[_Event], ...] = (GoalCreated, GoalUpdated, GoalDeleted)
ACCOUNT_EVENTS: tuple[type[_Event], ...] = (
    AccountCreated,
    ApiKeyCreated,
    ApiKeyRevoked,
    ApiKeyUsed,
    ProfileUpdated,
    SessionStarted,
    SessionRefreshed,
    SessionRevoked,
    UserFollowed,
    UserUnfollowed,
    ContactMessageSent,
    AccountDeleted,
    AccountSuspended,
    AccountUnsuspended,
    ProjectAliasesReplaced,
    ProjectLabelsReplaced,
    IngestRulesReplaced,
    HeartbeatsIgnored,
    *STORE_EVENTS,
    *THEME_EVENTS,
    *GOAL_EVENTS,
)
EVENTS_BY_TOPIC: dict[str, tuple[type[_Event], ...]] = {
    HEARTBEATS_TOPIC: HEARTBEAT_EVENTS,
    ACCOUNTS_TOPIC: ACCOUNT_EVENTS,
}

# The events of the heartbeats topic (``HEARTBEAT_EVENTS``).
HeartbeatEvent: TypeAlias = (
    HeartbeatsReceived | HeartbeatsDeleted | UserDataErased | AiActivityReceived
)
# The events of the accounts topic (``ACCOUNT_EVENTS``).
_AccountEvents: TypeAlias = (
    AccountCreated
    | ApiKeyCreated
    | ApiKeyRevoked
    | ApiKeyUsed
    | ProfileUpdated
    | SessionStarted
    | SessionRefreshed
    | SessionRevoked
    | UserFollowed
    | UserUnfollowed
    | ContactMessageSent
    | AccountDeleted
    | AccountSuspended
    | AccountUnsuspended
    | ProjectAliasesReplaced
    | ProjectLabelsReplaced
    | IngestRulesReplaced
    | HeartbeatsIgnored
    | PluginPublished
    | PluginInstalled
    | PluginUninstalled
    | PluginReviewed
    | PluginReported
    | PluginModerated
    | PluginSettingsChanged
    | PluginSuspended
    | ThemePublished
    | ThemeInstalled
    | ThemeUninstalled
    | ThemeApplied
    | GoalCreated
    | GoalUpdated
    | GoalDeleted
)
AccountEvent = Annotated[_AccountEvents, Field(discriminator="type")]
Event = Annotated[HeartbeatEvent | _AccountEvents, Field(discriminator="type")]


def is_heartbeat_event(event: Event) -> TypeGuard[HeartbeatEvent]:
    """Whether ``event`` belongs on the heartbeats topic."""
    return isinstance(event, HEARTBEAT_EVENTS)


# The plugin store's events (``STORE_EVENTS``).
StoreEvent: TypeAlias = (
    PluginPublished
    | PluginInstalled
    | PluginUninstalled
    | PluginReviewed
    | PluginReported
    | PluginModerated
    | PluginSettingsChanged
    | PluginSuspended
)


def is_store_event(event: Event) -> TypeGuard[StoreEvent]:
    """Whether ``event`` is one of the plugin store's (a subset of the accounts topic's)."""
    return isinstance(event, STORE_EVENTS)


# The theme store's events (``THEME_EVENTS``).
ThemeEvent: TypeAlias = ThemePublished | ThemeInstalled | ThemeUninstalled | ThemeApplied


def is_theme_event(event: Event) -> TypeGuard[ThemeEvent]:
    """Whether ``event`` is one of the theme store's (a subset of the accounts topic's)."""
    return isinstance(event, THEME_EVENTS)


# The goals' events (``GOAL_EVENTS``).
GoalEvent: TypeAlias = GoalCreated | GoalUpdated | GoalDeleted


def is_goal_event(event: Event) -> TypeGuard[GoalEvent]:
    """Whether ``event`` is one of the goals' (a subset of the accounts topic's)."""
    return isinstance(event, GOAL_EVENTS)


def is_account_event(event: Event) -> TypeGuard[AccountEvent]:
    """Whether ``event`` belongs on the accounts topic."""
    return isinstance(event, ACCOUNT_EVENTS)


_EVENT: TypeAdapter[Event] = TypeAdapter(Event)


def encode_event(event: Event) -> bytes:
    return event.model_dump_json().encode("utf-8")


def decode_event(raw: bytes) -> Event:
    """Parse one record value. Raises ``pydantic.ValidationError`` on an unknown or bad event."""
    return _EVENT.validate_json(raw)
