"""Account state as a pure fold over account events (no I/O, no clock).

Applying the same event twice changes nothing (events are recognised by ``event_id``), so the fold
is safe under redelivery and under the read-your-writes shortcut where a process applies its own
event before it reads it back from the log. Every process folds the same single-partition topic
in the same order, so every process reaches the same decisions: the first event to claim a
username, an account number, an identity, a refresh token or an OAuth state wins, and a later
clashing event is rejected (listed in ``rejected``) without changing anything.

An :class:`AccountDeleted` removes the user and everything of theirs at once: keys, sessions,
follows both ways, the hire inquiries they received and the ones they sent, their side of the
plugin and theme stores (:mod:`accounts.plugins`, :mod:`accounts.themes`), their goals
(:mod:`accounts.goals`); their username,
account number and identity are free again. Later events of the user name an unknown user, so
they are rejected like any other event about a user that does not exist. On the embedded log the
user's records are then removed too (:mod:`accounts.erasure`), and a refold of what remains
reaches this same state.

Time enters only through the events' own timestamps: a session's expiry is compared with the
clock by the callers (the authenticator, the refresh endpoint), never here.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field, replace

from accounts.goals import GoalBook
from accounts.plugins import PluginCatalog
from accounts.themes import ThemeCatalog
from schemas.events import (
    PROFILE_FIELDS,
    PROFILE_TEXT_FIELDS,
    AccountCreated,
    AccountDeleted,
    AccountEvent,
    AccountSuspended,
    AccountUnsuspended,
    ApiKeyCreated,
    ApiKeyRevoked,
    ApiKeyUsed,
    ContactMessageSent,
    HeartbeatsIgnored,
    IngestRulesReplaced,
    ProfileUpdated,
    ProjectAliasesReplaced,
    ProjectLabelsReplaced,
    SessionRefreshed,
    SessionRevoked,
    SessionStarted,
    UserFollowed,
    UserUnfollowed,
    is_goal_event,
    is_store_event,
    is_theme_event,
)

MAX_KEYS_PER_USER = 5
DEFAULT_TIMEOUT_MINUTES = 15  # WakaTime's default keystroke timeout
MIN_TIMEOUT_MINUTES, MAX_TIMEOUT_MINUTES = 1, 240
# Live sessions per account; a login past it ends the session refreshed longest ago.
MAX_SESSIONS_PER_USER = 50
# Rotated-out refresh tokens remembered per session, to recognise their reuse (older ones are
# merely unknown, which is refused too, just without ending the session).
RETIRED_TOKENS_PER_SESSION = 200
# Hire inquiries kept per recipient (the newest).
MAX_MESSAGES_PER_USER = 200
# Project aliases and labels of one user (names as heartbeats carry them: up to 2048 characters).
MAX_PROJECT_ALIASES = 1000
MAX_LABELED_PROJECTS = 1000
MAX_LABELS_PER_PROJECT = 20
MAX_PROJECT_NAME = 2048
MAX_LABEL = 64
# Ingest rules of one user: ignore patterns and language mappings (by file extension).
MAX_IGNORE_PATTERNS = 100
MAX_IGNORE_PATTERN = 512
MAX_LANGUAGE_MAPPINGS = 200
MAX_EXTENSION = 32
MAX_LANGUAGE_NAME = 64


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
    display_name: str | None = None
    bio: str | None = None
    website: str | None = None
    avatar_url: str | None = None
    identity_provider: str | None = None  # None: an anonymous account (logs in by number)
    # (alias, project), sorted by alias; and (project, labels), sorted by project. See
    # ``project_settings_problem`` for what a valid set is.
    project_aliases: tuple[tuple[str, str], ...] = ()
    project_labels: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # Ingest rules (``ingest_rules_problem`` says what a valid set is) and the heartbeats they
    # have dropped so far.
    ignore_patterns: tuple[str, ...] = ()
    language_mappings: tuple[tuple[str, str], ...] = ()
    heartbeats_ignored: int = 0


@dataclass(frozen=True, slots=True)
class ApiKey:
    key_id: str
    user_id: str
    name: str
    key_prefix: str
    key_hash: str
    created_at: float
    read_only: bool = False


@dataclass(frozen=True, slots=True)
class Session:
    """A logged-in device: its current refresh token's hash and when that token lapses."""

    session_id: str
    user_id: str
    method: str
    device: str
    created_at: float
    refreshed_at: float
    expires_at: float
    refresh_hash: str


@dataclass(frozen=True, slots=True)
class ContactMessage:
    message_id: str
    recipient_id: str
    sender_user_id: str
    sender_name: str
    sender_email: str
    message: str
    sent_at: float


@dataclass
class AccountState:
    users: dict[str, User] = field(default_factory=dict)
    keys_by_hash: dict[str, ApiKey] = field(default_factory=dict)
    keys_by_id: dict[str, ApiKey] = field(default_factory=dict)
    keys_by_user: dict[str, dict[str, ApiKey]] = field(default_factory=dict)
    key_last_used: dict[str, float] = field(default_factory=dict)
    user_by_account_hash: dict[str, str] = field(default_factory=dict)
    user_by_username: dict[str, str] = field(default_factory=dict)
    user_by_identity: dict[tuple[str, str], str] = field(default_factory=dict)
    revoked_keys: set[str] = field(default_factory=set)
    sessions: dict[str, Session] = field(default_factory=dict)
    sessions_by_user: dict[str, dict[str, Session]] = field(default_factory=dict)
    # Every refresh token hash ever issued for a live session (current and retired) -> session.
    session_by_refresh_hash: dict[str, str] = field(default_factory=dict)
    retired_refresh: dict[str, deque[str]] = field(default_factory=dict)
    ended_sessions: set[str] = field(default_factory=set)
    used_oauth_states: set[str] = field(default_factory=set)
    following: dict[str, set[str]] = field(default_factory=dict)  # follower -> followed
    followers: dict[str, set[str]] = field(default_factory=dict)  # followed -> followers
    messages: dict[str, deque[ContactMessage]] = field(default_factory=dict)
    plugins: PluginCatalog = field(default_factory=PluginCatalog)
    themes: ThemeCatalog = field(default_factory=ThemeCatalog)
    goals: GoalBook = field(default_factory=GoalBook)
    suspended: dict[str, str] = field(default_factory=dict)  # user id -> the admin's reason
    seen: set[str] = field(default_factory=set)
    rejected: set[str] = field(default_factory=set)

    # -- queries -------------------------------------------------------------------------------

    def keys_of(self, user_id: str) -> list[ApiKey]:
        found = self.keys_by_user.get(user_id, {}).values()
        return sorted(found, key=lambda k: (k.created_at, k.key_id))

    def sessions_of(self, user_id: str) -> list[Session]:
        found = self.sessions_by_user.get(user_id, {}).values()
        return sorted(found, key=lambda s: (s.created_at, s.session_id))

    def messages_of(self, user_id: str) -> list[ContactMessage]:
        """The user's hire inquiries, newest first."""
        return list(reversed(self.messages.get(user_id, ())))

    # -- the fold ------------------------------------------------------------------------------

    def apply(self, event: AccountEvent) -> bool:
        """Fold one event in; returns False when it was already applied or is rejected."""
        if isinstance(event, ApiKeyUsed):
            # Idempotent by nature (a maximum), and frequent: not remembered in ``seen``.
            return self._key_used(event)
        if event.event_id in self.seen:
            return False
        self.seen.add(event.event_id)
        accepted = self._apply(event)
        if not accepted:
            self.rejected.add(event.event_id)
        return accepted

    def _apply(self, event: AccountEvent) -> bool:
        if isinstance(event, AccountCreated):
            return self._created(event)
        if isinstance(event, ApiKeyCreated):
            return self._key_created(event)
        if isinstance(event, ApiKeyRevoked):
            return self._key_revoked(event)
        if isinstance(event, ProfileUpdated):
            return self._profile(event)
        if isinstance(event, SessionStarted):
            return self._session_started(event)
        if isinstance(event, SessionRefreshed):
            return self._session_refreshed(event)
        if isinstance(event, SessionRevoked):
            return self._session_revoked(event)
        if isinstance(event, UserFollowed | UserUnfollowed):
            return self._follow(event)
        if isinstance(event, ContactMessageSent):
            return self._message(event)
        if isinstance(event, ProjectAliasesReplaced):
            return self._aliases(event)
        if isinstance(event, ProjectLabelsReplaced):
            return self._labels(event)
        if isinstance(event, IngestRulesReplaced):
            return self._ingest_rules(event)
        if isinstance(event, HeartbeatsIgnored):
            return self._ignored(event)
        if isinstance(event, AccountDeleted):
            return self._deleted(event)
        if isinstance(event, AccountSuspended):
            if event.user_id not in self.users:
                return False
            self.suspended[event.user_id] = event.reason
            return True
        if isinstance(event, AccountUnsuspended):
            return self.suspended.pop(event.user_id, None) is not None
        if is_store_event(event):
            return event.user_id in self.users and self.plugins.apply(event)
        if is_theme_event(event):
            return event.user_id in self.users and self.themes.apply(event)
        if is_goal_event(event):
            return event.user_id in self.users and self.goals.apply(event)
        return False  # ApiKeyUsed is handled before ``seen``

    def _created(self, event: AccountCreated) -> bool:
        # The log is the arbiter of uniqueness: the first event wins, later clashes are ignored.
        identity = _identity(event)
        if (
            event.user_id in self.users
            or event.username.lower() in self.user_by_username
            or (
                event.account_number_hash and event.account_number_hash in self.user_by_account_hash
            )
            or (identity is not None and identity in self.user_by_identity)
        ):
            return False
        self.users[event.user_id] = User(
            event.user_id,
            event.username,
            event.timezone,
            event.occurred_at,
            event.timezone != "UTC",
            identity_provider=event.identity_provider if identity else None,
        )
        self.user_by_username[event.username.lower()] = event.user_id
        if event.account_number_hash:
            self.user_by_account_hash[event.account_number_hash] = event.user_id
        if identity is not None:
            self.user_by_identity[identity] = event.user_id
        return True

    def _key_created(self, event: ApiKeyCreated) -> bool:
        if event.user_id not in self.users or event.key_id in self.revoked_keys:
            return False
        if event.key_hash in self.keys_by_hash or event.key_id in self.keys_by_id:
            return False
        if len(self.keys_by_user.get(event.user_id, ())) >= MAX_KEYS_PER_USER:
            return False
        key = ApiKey(
            event.key_id,
            event.user_id,
            event.name,
            event.key_prefix,
            event.key_hash,
            event.occurred_at,
            event.read_only,
        )
        self.keys_by_hash[key.key_hash] = key
        self.keys_by_id[key.key_id] = key
        self.keys_by_user.setdefault(key.user_id, {})[key.key_id] = key
        return True

    def _key_revoked(self, event: ApiKeyRevoked) -> bool:
        key = self.keys_by_id.get(event.key_id)
        if key is None or key.user_id != event.user_id:
            return False
        self.revoked_keys.add(event.key_id)
        del self.keys_by_id[key.key_id]
        del self.keys_by_user[key.user_id][key.key_id]
        del self.keys_by_hash[key.key_hash]
        self.key_last_used.pop(key.key_id, None)
        return True

    def _key_used(self, event: ApiKeyUsed) -> bool:
        key = self.keys_by_id.get(event.key_id)
        if key is None or key.user_id != event.user_id:
            return False
        if event.occurred_at <= self.key_last_used.get(key.key_id, float("-inf")):
            return False
        self.key_last_used[key.key_id] = event.occurred_at
        return True

    def _profile(self, event: ProfileUpdated) -> bool:
        user = self.users.get(event.user_id)
        if user is None:
            return False
        changes = {
            name: value for name in PROFILE_FIELDS if (value := getattr(event, name)) is not None
        }
        new_name = changes.get("username")
        if new_name is not None:
            holder = self.user_by_username.get(new_name.lower())
            if not new_name or (holder is not None and holder != user.user_id):
                return False  # the whole event: a request's changes apply all or not at all
        if "timezone" in changes:
            changes["timezone_set"] = True
        for name in PROFILE_TEXT_FIELDS:
            if changes.get(name) == "":
                changes[name] = None
        if new_name is not None:
            del self.user_by_username[user.username.lower()]
            self.user_by_username[new_name.lower()] = user.user_id
        self.users[user.user_id] = replace(user, **changes)
        return True

    def _aliases(self, event: ProjectAliasesReplaced) -> bool:
        user = self.users.get(event.user_id)
        if user is None or aliases_problem(event.aliases) is not None:
            return False
        self.users[user.user_id] = replace(user, project_aliases=tuple(sorted(event.aliases)))
        return True

    def _ingest_rules(self, event: IngestRulesReplaced) -> bool:
        user = self.users.get(event.user_id)
        if user is None or ingest_rules_problem(event.ignore, event.language_mappings):
            return False
        mappings = tuple(sorted((ext.lower(), lang) for ext, lang in event.language_mappings))
        self.users[user.user_id] = replace(
            user, ignore_patterns=tuple(event.ignore), language_mappings=mappings
        )
        return True

    def _ignored(self, event: HeartbeatsIgnored) -> bool:
        user = self.users.get(event.user_id)
        if user is None or event.count < 1:
            return False
        self.users[user.user_id] = replace(
            user, heartbeats_ignored=user.heartbeats_ignored + event.count
        )
        return True

    def _labels(self, event: ProjectLabelsReplaced) -> bool:
        user = self.users.get(event.user_id)
        if user is None or labels_problem(event.labels) is not None:
            return False
        self.users[user.user_id] = replace(user, project_labels=tuple(sorted(event.labels)))
        return True

    def _session_started(self, event: SessionStarted) -> bool:
        if event.user_id not in self.users:
            return False
        if event.session_id in self.sessions or event.session_id in self.ended_sessions:
            return False
        if event.refresh_hash in self.session_by_refresh_hash:
            return False
        if event.oauth_state is not None:
            if event.oauth_state in self.used_oauth_states:
                return False
            self.used_oauth_states.add(event.oauth_state)
        self._prune_sessions(event.user_id, event.occurred_at)
        session = Session(
            event.session_id,
            event.user_id,
            event.method,
            event.device,
            event.occurred_at,
            event.occurred_at,
            event.expires_at,
            event.refresh_hash,
        )
        self._put_session(session)
        self.session_by_refresh_hash[event.refresh_hash] = event.session_id
        return True

    def _prune_sessions(self, user_id: str, now: float) -> None:
        """End the user's lapsed sessions, and the stalest beyond the cap (deterministic: uses
        the event's time, not the clock)."""
        mine = self.sessions_of(user_id)
        for session in mine:
            if session.expires_at < now:
                self._end_session(session)
        alive = sorted(
            (s for s in mine if s.session_id in self.sessions),
            key=lambda s: (s.refreshed_at, s.session_id),
        )
        for session in alive[: max(0, len(alive) - MAX_SESSIONS_PER_USER + 1)]:
            self._end_session(session)

    def _session_refreshed(self, event: SessionRefreshed) -> bool:
        session = self.sessions.get(event.session_id)
        if session is None or session.user_id != event.user_id:
            return False
        if event.previous_hash != session.refresh_hash:
            return False
        if event.refresh_hash in self.session_by_refresh_hash:
            return False
        retired = self.retired_refresh.setdefault(
            session.session_id, deque(maxlen=RETIRED_TOKENS_PER_SESSION)
        )
        if len(retired) == retired.maxlen:
            self.session_by_refresh_hash.pop(retired[0], None)
        retired.append(session.refresh_hash)
        self.session_by_refresh_hash[event.refresh_hash] = session.session_id
        self._put_session(
            replace(
                session,
                refresh_hash=event.refresh_hash,
                refreshed_at=event.occurred_at,
                expires_at=event.expires_at,
            )
        )
        return True

    def _session_revoked(self, event: SessionRevoked) -> bool:
        session = self.sessions.get(event.session_id)
        if session is None or session.user_id != event.user_id:
            return False
        self._end_session(session)
        return True

    def _put_session(self, session: Session) -> None:
        self.sessions[session.session_id] = session
        self.sessions_by_user.setdefault(session.user_id, {})[session.session_id] = session

    def _end_session(self, session: Session) -> None:
        del self.sessions[session.session_id]
        del self.sessions_by_user[session.user_id][session.session_id]
        self.ended_sessions.add(session.session_id)
        self.session_by_refresh_hash.pop(session.refresh_hash, None)
        for retired in self.retired_refresh.pop(session.session_id, ()):
            self.session_by_refresh_hash.pop(retired, None)

    def _follow(self, event: UserFollowed | UserUnfollowed) -> bool:
        follower, followed = event.user_id, event.followed_user_id
        if follower not in self.users or followed not in self.users or follower == followed:
            return False
        mine = self.following.setdefault(follower, set())
        theirs = self.followers.setdefault(followed, set())
        if isinstance(event, UserFollowed):
            if followed in mine:
                return False
            mine.add(followed)
            theirs.add(follower)
            return True
        if followed not in mine:
            return False
        mine.discard(followed)
        theirs.discard(follower)
        return True

    def _message(self, event: ContactMessageSent) -> bool:
        recipient = self.users.get(event.user_id)
        if recipient is None or event.sender_user_id not in self.users:
            return False
        # Re-checked here, so a race with the recipient closing their profile is decided by
        # the log's order.
        if not (recipient.is_public and recipient.available_for_hire):
            return False
        if event.sender_user_id == recipient.user_id:
            return False
        inbox = self.messages.setdefault(recipient.user_id, deque(maxlen=MAX_MESSAGES_PER_USER))
        inbox.append(
            ContactMessage(
                event.message_id,
                recipient.user_id,
                event.sender_user_id,
                event.sender_name,
                event.sender_email,
                event.message,
                event.occurred_at,
            )
        )
        return True

    def _deleted(self, event: AccountDeleted) -> bool:
        """Forget the user and everything that is theirs or names them.

        Their key ids join ``revoked_keys`` and their sessions ``ended_sessions`` (through
        :meth:`_end_session`), as for a revocation or a logout: those ids stay used, so a late
        event naming them cannot bring a key or a session back. The OAuth states their logins
        consumed stay consumed for the same reason. Deletion is rare, so the indexes that do not
        hang off the user (account number, identity, others' follows and inboxes) are scanned.
        """
        user = self.users.pop(event.user_id, None)
        if user is None:
            return False
        gone = user.user_id
        self.suspended.pop(gone, None)
        del self.user_by_username[user.username.lower()]
        for number in [h for h, owner in self.user_by_account_hash.items() if owner == gone]:
            del self.user_by_account_hash[number]
        for identity in [i for i, owner in self.user_by_identity.items() if owner == gone]:
            del self.user_by_identity[identity]
        for key in self.keys_by_user.pop(gone, {}).values():
            del self.keys_by_hash[key.key_hash]
            del self.keys_by_id[key.key_id]
            self.key_last_used.pop(key.key_id, None)
            self.revoked_keys.add(key.key_id)
        for session in self.sessions_of(gone):
            self._end_session(session)  # also forgets its refresh hashes, current and retired
        self.sessions_by_user.pop(gone, None)
        for followed in self.following.pop(gone, set()):
            self._drop_follow(self.followers, followed, gone)
        for follower in self.followers.pop(gone, set()):
            self._drop_follow(self.following, follower, gone)
        self.messages.pop(gone, None)
        self.plugins.forget_user(gone)
        self.themes.forget_user(gone)
        self.goals.forget_user(gone)
        for recipient, inbox in list(self.messages.items()):
            kept = [m for m in inbox if m.sender_user_id != gone]
            if len(kept) == len(inbox):
                continue
            if kept:
                self.messages[recipient] = deque(kept, maxlen=inbox.maxlen)
            else:
                del self.messages[recipient]
        return True

    @staticmethod
    def _drop_follow(index: dict[str, set[str]], owner: str, gone: str) -> None:
        """Remove ``gone`` from ``owner``'s set in ``index`` (and the set, once empty)."""
        others = index.get(owner)
        if others is None:
            return
        others.discard(gone)
        if not others:
            del index[owner]


def _identity(event: AccountCreated) -> tuple[str, str] | None:
    if event.identity_provider and event.identity_subject:
        return (event.identity_provider, event.identity_subject)
    return None


def ingest_rules_problem(
    ignore: tuple[str, ...], mappings: tuple[tuple[str, str], ...]
) -> str | None:
    """What makes a set of ingest rules invalid, or None: at most :data:`MAX_IGNORE_PATTERNS`
    non-blank patterns of up to :data:`MAX_IGNORE_PATTERN` characters, at most
    :data:`MAX_LANGUAGE_MAPPINGS` mappings, each extension (``.vue``: a dot, then letters,
    digits, ``_``, ``+``, ``-``) mapped once to a non-blank language name."""
    if len(ignore) > MAX_IGNORE_PATTERNS:
        return f"at most {MAX_IGNORE_PATTERNS} ignore patterns"
    if any(not p.strip() or len(p) > MAX_IGNORE_PATTERN for p in ignore):
        return f"an ignore pattern must be 1 to {MAX_IGNORE_PATTERN} characters, not blank"
    if len(mappings) > MAX_LANGUAGE_MAPPINGS:
        return f"at most {MAX_LANGUAGE_MAPPINGS} language mappings"
    extensions = [ext.lower() for ext, _ in mappings]
    if len(set(extensions)) != len(extensions):
        return "each extension may be mapped once"
    for ext, language in mappings:
        if not _EXTENSION.fullmatch(ext) or len(ext) > MAX_EXTENSION:
            return f"{ext!r} is not a file extension such as .vue"
        if not language.strip() or len(language) > MAX_LANGUAGE_NAME:
            return f"a language name must be 1 to {MAX_LANGUAGE_NAME} characters"
    return None


_EXTENSION = re.compile(r"\.[A-Za-z0-9_+\-]+")


def aliases_problem(aliases: tuple[tuple[str, str], ...]) -> str | None:
    """What makes a set of project aliases invalid, or None: each alias named once, neither
    name blank or over :data:`MAX_PROJECT_NAME` characters, no alias of itself, and no chains
    (a project that is itself an alias), at most :data:`MAX_PROJECT_ALIASES`."""
    if len(aliases) > MAX_PROJECT_ALIASES:
        return f"at most {MAX_PROJECT_ALIASES} aliases"
    names = [alias for alias, _ in aliases]
    if len(set(names)) != len(names):
        return "each alias may be given once"
    for alias, project in aliases:
        if not (0 < len(alias) <= MAX_PROJECT_NAME and 0 < len(project) <= MAX_PROJECT_NAME):
            return f"project names are 1 to {MAX_PROJECT_NAME} characters"
        if alias == project:
            return f"{alias!r} cannot be an alias of itself"
        if project in names:
            return f"{project!r} is an alias itself: point its aliases at what it stands for"
    return None


def labels_problem(labels: tuple[tuple[str, tuple[str, ...]], ...]) -> str | None:
    """What makes a set of project labels invalid, or None: each project once, with 1 to
    :data:`MAX_LABELS_PER_PROJECT` distinct labels of 1 to :data:`MAX_LABEL` characters, at most
    :data:`MAX_LABELED_PROJECTS` projects."""
    if len(labels) > MAX_LABELED_PROJECTS:
        return f"at most {MAX_LABELED_PROJECTS} labeled projects"
    projects = [project for project, _ in labels]
    if len(set(projects)) != len(projects):
        return "each project may be given once"
    for project, names in labels:
        if not 0 < len(project) <= MAX_PROJECT_NAME:
            return f"project names are 1 to {MAX_PROJECT_NAME} characters"
        if not 0 < len(names) <= MAX_LABELS_PER_PROJECT or len(set(names)) != len(names):
            return f"a project has 1 to {MAX_LABELS_PER_PROJECT} distinct labels"
        if not all(0 < len(name) <= MAX_LABEL for name in names):
            return f"labels are 1 to {MAX_LABEL} characters"
    return None
