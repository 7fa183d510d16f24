"""Sandboxed plugin runtime: lifecycle and RPC scripts run in QuickJS with hard limits.

What belongs here: running one plugin script for one call (a lifecycle hook or an RPC handler) in
a fresh QuickJS context (:mod:`plugins_runtime.engine`), the limits it runs under
(:mod:`plugins_runtime.limits`), the promises through which it reaches the host's database and
key-value store (:mod:`plugins_runtime.host`, :mod:`plugins_runtime.prelude`), the typed outcome
(:mod:`plugins_runtime.outcome`) and the async front doors that keep all of it off the event
loop: on threads of the server (:mod:`plugins_runtime.sandbox`) or in child processes
(:mod:`plugins_runtime.processes`, speaking :mod:`plugins_runtime.wire` with
:mod:`plugins_runtime.sandbox_worker`); and plugin SQL checked and confined to the calling user
(:mod:`plugins_runtime.sql_scope`, pure, over the tables of :mod:`plugins_runtime.relations`), run
read-only on ClickHouse (:mod:`plugins_runtime.sql_executor`); and the plugins' durable key-value
namespace (:mod:`plugins_runtime.kv`, adapters :mod:`plugins_runtime.kv_sqlite` and
:mod:`plugins_runtime.kv_redis`, chosen by :mod:`plugins_runtime.kv_factory`). The sandbox
reaches the database and key-value store only through the ``HostCalls`` implementation handed in,
which is where the SQL executor and the key namespace are plugged in.
"""

from plugins_runtime.host import JSON, HostCallError, HostCalls
from plugins_runtime.invocation import (
    HookCall,
    Invocation,
    LifecycleHook,
    PluginContext,
    PluginScript,
    RpcCall,
    sanitize_handler_name,
)
from plugins_runtime.kv import KeyValueUnavailable, PluginKeyValue, namespaced_key
from plugins_runtime.limits import SandboxLimits
from plugins_runtime.outcome import (
    FailureKind,
    LogLine,
    SandboxFailure,
    SandboxOk,
    SandboxResult,
    http_status,
)
from plugins_runtime.processes import ProcessSandbox, SandboxUnavailable
from plugins_runtime.sandbox import PluginSandbox, Sandbox

__all__ = [
    "JSON",
    "FailureKind",
    "HookCall",
    "HostCallError",
    "HostCalls",
    "Invocation",
    "KeyValueUnavailable",
    "LifecycleHook",
    "LogLine",
    "PluginContext",
    "PluginKeyValue",
    "PluginSandbox",
    "PluginScript",
    "ProcessSandbox",
    "RpcCall",
    "Sandbox",
    "SandboxFailure",
    "SandboxLimits",
    "SandboxOk",
    "SandboxResult",
    "SandboxUnavailable",
    "http_status",
    "namespaced_key",
    "sanitize_handler_name",
]
