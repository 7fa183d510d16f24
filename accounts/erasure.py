"""Which records of the accounts topic to remove when an account is deleted (GDPR erasure).

:class:`schemas.events.AccountDeleted` removes the user from the live state at once (see
:mod:`accounts.state`); on the embedded log their records are then removed physically. The
remaining records must still fold to the live state (minus the user): a process started later
refolds them from scratch and has to reach the same decisions as the processes that folded
everything. :func:`account_erasure` plans the removal; the log adapter deletes the records.

What goes:

* every record whose event names the user: as its author (``user_id``: their account, keys,
  sessions, profile, follows, inquiries received, the deletion itself, anything they appended
  after it), as the one followed (``followed_user_id``) or as the sender of an inquiry
  (``sender_user_id``);
* every event the fold **rejected**, whoever wrote it. A rejected event changed nothing, so
  removing it loses nothing, while keeping it is a hazard: it may have been rejected *because
  of* the user (B's ``AccountCreated`` or rename claiming the username A held, a key or session
  id A had used). Without A's records a refold would accept it, and history would change: B
  would hold the name from before A's deletion, and a later claim of it, accepted live, would
  now be rejected. Telling which rejections were the user's doing is not needed: all of them go.
  Every copy of a retried event shares its ``event_id``, so the copies go together;
* every hire inquiry the fold accepted that no inbox holds any more (pushed out by
  ``MAX_MESSAGES_PER_USER`` newer ones). Inquiries the user sent are taken out of others'
  inboxes, so a refold without them would keep older inquiries the live fold pushed out to
  make room for them. Kept, the inboxes hold exactly what the live ones hold, in order, within
  the cap. (Those inquiries are shown to nobody any more, so removing them loses nothing
  either.)

* every plugin-store record about a plugin the user published, up to the deletion (installs,
  reviews, reports, settings and moderation of it by anyone): the deletion removes those
  plugins from the store with everything about them (:mod:`accounts.plugins`), and a refold
  without the publishes would reject those records instead of accepting and then dropping them.
  Records about the name after the deletion (someone else may publish it) stay.
* likewise every theme-store record about a theme the user published, up to the deletion:
  others' installs and uninstalls of it go. Others' ``ThemeApplied`` naming it are **rewritten**
  instead, to name the default theme (``theme_id`` None): they may also have set the author's
  custom variables, which the live state keeps (the deletion only put them back on the default
  theme), and a refold without the theme's publish would reject them whole. The refold then has
  them on the default theme from that apply on rather than from the deletion; nothing else
  depends on which theme is active (an uninstall of the author's theme, the only other record
  that looks, goes), so after the deletion the two states are the same.

What stays: everything else, including ``ApiKeyUsed`` records the fold ignored (a stale or
repeated use). They are not tracked in ``seen`` or ``rejected`` because their effect is a
maximum, and keeping them is harmless: a use counts only for the key's owner, so one not naming
the user only touches another user's key, which the refold holds exactly as the live fold does.
Records that do not decode are kept (and logged): nothing can tell whom they concern, and the
fold skips them too. Events that are not account events (they do not belong on this topic) are
kept unless they name the user: the fold skips them.

Why removal is safe, i.e. never makes an accepted event rejected nor changes what it does: the
fold rejects an event either because something it needs is missing (its user, key or session,
the recipient's open profile) or because a claim it makes is held (a username, account number,
identity, key or session id, refresh token, OAuth state). What the user's events created is
needed only by events that name the user, which go too; the other users' accounts, keys,
sessions and profiles are built by their own accepted events, which stay, and caps count per
user (keys, sessions) or are handled above (inboxes). Claims only shrink: the refold never
sees the user's claims, and never accepts an event the live fold rejected since those are gone,
so at every point it holds a subset of the live fold's claims, and a claim free live is free in
the refold. By induction over the log, every kept event meets the same state (but for the
user) and is decided the same way, to the same effect. This relies on user ids never being
reused (they are random): an account created later under the deleted id would go too.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from pydantic import ValidationError

from accounts.state import AccountState
from eventlog.port import Delivered
from schemas.events import (
    AccountDeleted,
    AccountEvent,
    ApiKeyUsed,
    ContactMessageSent,
    Event,
    ThemeApplied,
    ThemeInstalled,
    ThemeUninstalled,
    decode_event,
    encode_event,
    is_account_event,
    is_store_event,
)

_log = logging.getLogger(__name__)

# The fields through which an event names a user.
_USER_FIELDS = ("user_id", "followed_user_id", "sender_user_id")


def account_erasure(
    records: Sequence[Delivered], user_id: str
) -> dict[tuple[int, int], bytes | None]:
    """The records to delete (``None``) or rewrite (the new value) for the erasure of
    ``user_id``, by ``(partition, offset)``.

    ``records`` are all the records of the accounts topic, in offset order (the fold's order);
    the plan comes in that order too. Pure: it folds a fresh :class:`AccountState` of its own.
    """
    state = AccountState()
    doomed: set[tuple[int, int]] = set()
    rewritten: dict[tuple[int, int], bytes] = {}
    folded: list[tuple[tuple[int, int], AccountEvent]] = []
    by_plugin: dict[str, list[tuple[int, int]]] = {}  # plugin name -> its store records so far
    by_theme: dict[str, list[tuple[tuple[int, int], AccountEvent]]] = {}  # theme id -> records
    for record in records:
        position = (record.partition, record.offset)
        try:
            event = decode_event(record.value)
        except ValidationError:
            _log.error(
                "erasure keeps undecodable account record at partition %s offset %s",
                record.partition,
                record.offset,
            )
            continue
        if _names(event, user_id):
            doomed.add(position)
        if not is_account_event(event):
            continue  # a heartbeats-topic event: the fold skips it
        if is_store_event(event):
            by_plugin.setdefault(event.name, []).append(position)
        theme_id = _theme_named(event)
        if theme_id is not None:
            by_theme.setdefault(theme_id, []).append((position, event))
        if isinstance(event, AccountDeleted) and event.user_id == user_id:
            for plugin in state.plugins.published_by(user_id):
                doomed.update(by_plugin.pop(plugin.name, ()))
            for theme in state.themes.published_by(user_id):
                for at, about in by_theme.pop(theme.theme_id, ()):
                    if isinstance(about, ThemeApplied):
                        rewritten[at] = encode_event(about.model_copy(update={"theme_id": None}))
                    else:
                        doomed.add(at)
        state.apply(event)
        folded.append((position, event))
    held = {(m.recipient_id, m.message_id) for inbox in state.messages.values() for m in inbox}
    for position, event in folded:
        if isinstance(event, ApiKeyUsed):
            continue  # never in ``rejected``; harmless when ignored (see the module docs)
        if event.event_id in state.rejected or (
            isinstance(event, ContactMessageSent) and (event.user_id, event.message_id) not in held
        ):
            doomed.add(position)
    plan: dict[tuple[int, int], bytes | None] = {at: None for at in doomed}
    plan.update({at: value for at, value in rewritten.items() if at not in doomed})
    return dict(sorted(plan.items()))


def _theme_named(event: AccountEvent) -> str | None:
    """The theme another user's theme record depends on, if any."""
    if isinstance(event, ThemeInstalled | ThemeUninstalled):
        return event.theme_id
    if isinstance(event, ThemeApplied) and event.change_theme:
        return event.theme_id
    return None


def _names(event: Event, user_id: str) -> bool:
    return any(getattr(event, name, None) == user_id for name in _USER_FIELDS)
