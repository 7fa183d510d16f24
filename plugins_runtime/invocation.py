"""What to run: a plugin's script, whose context it runs in, and which hook or RPC handler."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

from plugins_runtime.host import JSON


class LifecycleHook(StrEnum):
    """The lifecycle functions a script may define (top-level or as members of ``lifecycle``)."""

    ON_HEARTBEAT = "on_heartbeat"  # (ctx, heartbeat)
    ON_HEARTBEATS_BULK = "on_heartbeats_bulk"  # (ctx, {count})
    ON_TICK = "on_tick"  # (ctx)
    ON_INSTALL = "on_install"  # (ctx)
    ON_USER_LOGIN = "on_user_login"  # (ctx, {username, is_new_user, method, ...})


@dataclass(frozen=True, slots=True)
class PluginScript:
    name: str
    source: str


@dataclass(frozen=True, slots=True)
class PluginContext:
    """The plain values of ``ctx``: ``ctx.user_id`` and ``ctx.config.base_url``."""

    user_id: str
    base_url: str


@dataclass(frozen=True, slots=True)
class HookCall:
    """Call a lifecycle hook; ``event`` is its second argument (the heartbeat of
    ``on_heartbeat``, the count of ``on_heartbeats_bulk``, the login of ``on_user_login``)."""

    hook: LifecycleHook
    event: dict[str, JSON] | None = None

    @property
    def label(self) -> str:
        return self.hook.value


@dataclass(frozen=True, slots=True)
class RpcCall:
    """Call ``endpoints[handler](ctx, body)``; ``handler`` is already sanitized."""

    handler: str
    body: JSON = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"rpc:{self.handler}"


Invocation = HookCall | RpcCall

_NOT_IN_NAME = re.compile(r"[^A-Za-z0-9_-]")


def sanitize_handler_name(raw: str) -> str:
    """Strip every character but letters, digits, ``-`` and ``_`` (the documented dispatch rule)."""
    return _NOT_IN_NAME.sub("", raw)
