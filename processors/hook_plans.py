"""Which plugin hooks an event fires: pure rules of the hook processor (no I/O, no clock).

:func:`plan_event` turns one event of the log into jobs for :mod:`processors.plugin_hooks`, one
per (user, plugin) pair it concerns, in the order they must run for that pair. Whether a job
still runs is decided when its turn comes (the install may have been banned, suspended or removed
meanwhile); these rules only decide what an event asks for.
"""

from __future__ import annotations

from dataclasses import dataclass

from accounts.plugins import PluginCatalog
from accounts.state import AccountState
from plugins_runtime.host import JSON
from plugins_runtime.invocation import HookCall, LifecycleHook
from schemas.events import (
    AccountDeleted,
    Event,
    HeartbeatsReceived,
    PluginInstalled,
    PluginUninstalled,
    SessionStarted,
)
from schemas.heartbeat import Heartbeat

# A request carrying more heartbeats than this (or any import) fires one ``on_heartbeats_bulk``
# instead of one ``on_heartbeat`` per heartbeat.
BULK_THRESHOLD = 100
# A login within this many seconds of the account's creation is the new user's first one.
NEW_USER_WINDOW_S = 60.0


@dataclass(frozen=True, slots=True)
class HookJob:
    """Run ``call`` of ``plugin`` for ``user_id`` if it is still runnable then.

    ``install_id``: only for that install (``on_install``), at most once per install once it
    succeeded (a host marker). ``received_at``: the heartbeats' request time; installs made after
    it do not see them.
    """

    user_id: str
    plugin: str
    call: HookCall
    install_id: str | None = None
    received_at: float | None = None


@dataclass(frozen=True, slots=True)
class ForgetJob:
    """Delete key-value data: ``plugin``'s of ``user_id``, or every plugin's when ``plugin`` is
    None (the account was deleted). ``plugin``'s data stays when it is installed again by then."""

    user_id: str
    plugin: str | None


Job = HookJob | ForgetJob


def heartbeat_object(heartbeat: Heartbeat) -> dict[str, JSON]:
    """The heartbeat a plugin's ``on_heartbeat`` receives: the seed's fields (text fields empty
    when unknown, ``time`` in epoch seconds) and some of ours."""
    return {
        "project": heartbeat.project or "",
        "language": heartbeat.language or "",
        "file": heartbeat.entity if heartbeat.type == "file" else "",
        "editor": heartbeat.editor or "",
        "branch": heartbeat.branch or "",
        "os": heartbeat.os or "",
        "machine": heartbeat.machine or "",
        "duration": heartbeat.duration,
        "time": heartbeat.time,
        "id": heartbeat.event_id,
        "entity": heartbeat.entity,
        "type": heartbeat.type,
        "category": heartbeat.category,
        "is_write": heartbeat.is_write,
        "lines": heartbeat.lines,
        "line_additions": heartbeat.line_additions,
        "line_deletions": heartbeat.line_deletions,
        "source": heartbeat.source,
    }


def is_bulk(event: HeartbeatsReceived) -> bool:
    """An import, or a request of more than :data:`BULK_THRESHOLD` heartbeats."""
    return len(event.heartbeats) > BULK_THRESHOLD or any(
        beat.source == "import" for beat in event.heartbeats
    )


def heartbeat_calls(event: HeartbeatsReceived) -> list[HookCall]:
    """Exactly one of: one ``on_heartbeat`` per heartbeat, in the request's order; or, for a
    bulk request, one ``on_heartbeats_bulk`` with its count."""
    if not event.heartbeats:
        return []
    if is_bulk(event):
        return [HookCall(LifecycleHook.ON_HEARTBEATS_BULK, {"count": len(event.heartbeats)})]
    return [
        HookCall(LifecycleHook.ON_HEARTBEAT, heartbeat_object(beat)) for beat in event.heartbeats
    ]


def login_event(event: SessionStarted, username: str, created_at: float) -> dict[str, JSON]:
    """What ``on_user_login`` receives. ``is_new_user``: the account was created at most
    :data:`NEW_USER_WINDOW_S` before this login (sign-up logs in at once)."""
    return {
        "username": username,
        "is_new_user": event.occurred_at - created_at <= NEW_USER_WINDOW_S,
        "method": event.method,
        "time": event.occurred_at,
    }


def plan_event(event: Event, state: AccountState) -> list[Job]:
    """The jobs ``event`` asks for, given the account state folded at least up to it."""
    catalog: PluginCatalog = state.plugins
    user_id = event.user_id
    if isinstance(event, HeartbeatsReceived):
        calls = heartbeat_calls(event)
        return [
            HookJob(user_id, install.name, call, received_at=event.occurred_at)
            for install in catalog.installed_of(user_id)
            for call in calls
        ]
    if isinstance(event, PluginInstalled):
        install = catalog.install(user_id, event.name)
        if install is None or install.install_id != event.event_id:
            return []  # a resumed install, or one removed since: no on_install
        return [
            HookJob(
                user_id, event.name, HookCall(LifecycleHook.ON_INSTALL), install_id=event.event_id
            )
        ]
    if isinstance(event, SessionStarted):
        user = state.users.get(user_id)
        if user is None:
            return []
        call = HookCall(
            LifecycleHook.ON_USER_LOGIN, login_event(event, user.username, user.created_at)
        )
        return [HookJob(user_id, install.name, call) for install in catalog.installed_of(user_id)]
    if isinstance(event, PluginUninstalled):
        return [ForgetJob(user_id, event.name)]
    if isinstance(event, AccountDeleted):
        return [ForgetJob(user_id, None)]
    return []


def tick_jobs(catalog: PluginCatalog) -> list[HookJob]:
    """One ``on_tick`` per install (whether it may run is checked when it runs)."""
    return [
        HookJob(user_id, name, HookCall(LifecycleHook.ON_TICK))
        for user_id, installs in sorted(catalog.installs.items())
        for name in sorted(installs)
    ]
