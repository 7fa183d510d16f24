"""The JavaScript evaluated in every fresh context before the plugin's script.

It evaluates to one function, ``host(op, ...)``, which the engine keeps as a handle and never puts
on ``globalThis``: the plugin cannot reach the queue or forge an outcome except through ``ctx``.
Everything the plugin can see is ``log``/``warn``/``error`` (and ``console`` with the same three)
plus the ``ctx`` handed to its hook. Built-ins the prelude relies on are captured before the
plugin runs, so a script that overwrites ``JSON`` or ``Promise`` only breaks its own results.

Operations (all arguments and answers are strings, numbers or booleans; structures cross as JSON):

- ``start(kind, name, arg_json)``: ``kind`` is ``"hook"`` or ``"rpc"``; calls the handler with
  ``(ctx, arg)`` and answers ``"started"``, or ``"unknown"`` if the script defines no such handler.
- ``take()``: the queued host calls as ``{"calls": [[id, kind, args], ...], "overflow": bool}``,
  emptying the queue; ``overflow`` means the plugin asked for more than ``maxHostCalls``.
- ``settle(id, ok, text)``: resolve call ``id`` with ``JSON.parse(text)``, or reject it with
  ``new Error(text)``.
- ``status()``: ``""`` while the handler's promise is pending, else ``{"ok": true, "result":
  "<json>"}`` or ``{"ok": false, "name", "message", "stack", "invalid"}``.
- ``logs()``: ``{"lines": [[level, text], ...], "dropped": n}``, emptying the buffer.
"""

from __future__ import annotations

PRELUDE = r"""
(function (settingsJson) {
  'use strict';
  const settings = JSON.parse(settingsJson);
  const stringify = JSON.stringify, parse = JSON.parse;
  const PromiseCtor = Promise, promiseResolve = Promise.resolve.bind(Promise);
  const promiseReject = Promise.reject.bind(Promise);
  const then = Promise.prototype.then, ErrorCtor = Error, TypeErrorCtor = TypeError;
  const hasOwn = Object.prototype.hasOwnProperty, freeze = Object.freeze;
  // Reflect.apply, not fn.call: a script may redefine Function.prototype.call.
  const apply = Reflect.apply;
  const StringCtor = String;

  const waiters = Object.create(null);
  let queue = [];
  let requested = 0;
  let overflow = false;
  let outcome = null;
  let lines = [];
  let kept = 0;  // over the whole execution: draining the buffer does not reset the cap
  let dropped = 0;

  function request(kind, args) {
    requested += 1;
    if (requested > settings.maxHostCalls) {
      // Thrown, not a rejected promise: the execution fails anyway, and a loop that queues
      // 10,000 calls must stop at the cap instead of filling memory with promises first.
      if (!overflow) {
        overflow = new ErrorCtor(
          'too many host calls: at most ' + settings.maxHostCalls + ' per execution');
      }
      throw overflow;
    }
    let payload;
    try {
      payload = parse(stringify(args));
    } catch (e) {
      return promiseReject(new TypeErrorCtor('ctx.' + kind + ': arguments must be JSON values'));
    }
    const id = requested;
    queue[queue.length] = [id, kind, payload];
    return new PromiseCtor(function (resolve, reject) { waiters[id] = [resolve, reject]; });
  }

  function describe(value) {
    try {
      if (typeof value === 'string') return value;
      if (value instanceof ErrorCtor) return StringCtor(value);
      if (typeof value === 'object' && value !== null) {
        const text = stringify(value);
        return text === undefined ? StringCtor(value) : text;
      }
      return StringCtor(value);
    } catch (e) {
      return '[unprintable]';
    }
  }

  function emit(level, args) {
    if (kept >= settings.maxLogLines) { dropped += 1; return; }
    kept += 1;
    const max = settings.maxLogChars;
    let text = '';
    for (let i = 0; i < args.length; i += 1) {
      text += (i ? ' ' : '') + describe(args[i]);
      if (text.length > max) break;
    }
    if (text.length > max) text = text.slice(0, max) + ' ...[truncated]';
    lines[lines.length] = [level, text];
  }

  const log = function log(...args) { emit('log', args); };
  const warn = function warn(...args) { emit('warn', args); };
  const error = function error(...args) { emit('error', args); };
  globalThis.log = log;
  globalThis.warn = warn;
  globalThis.error = error;
  globalThis.console = freeze({ log: log, info: log, warn: warn, error: error });

  const ctx = freeze({
    user_id: settings.userId,
    config: freeze({ base_url: settings.baseUrl }),
    db: freeze({
      query: function query(sql, params) {
        return request('db.query', [sql, params === undefined ? [] : params]);
      },
    }),
    redis: freeze({
      get: function get(key) { return request('redis.get', [key]); },
      set: function set(key, value) { return request('redis.set', [key, value]); },
      del: function del(key) { return request('redis.del', [key]); },
      incr: function incr(key) { return request('redis.incr', [key]); },
    }),
  });

  function own(table, name) {
    if (typeof table !== 'object' || table === null || !apply(hasOwn, table, [name])) {
      return undefined;
    }
    const fn = table[name];
    return typeof fn === 'function' ? [fn, table] : undefined;
  }

  // Top-level declarations of the plugin's script, looked up when a hook starts (typeof keeps an
  // undeclared name from throwing). A top-level function wins over a member of `lifecycle`.
  function topLevel(name) {
    switch (name) {
      case 'on_heartbeat': return typeof on_heartbeat === 'function' ? on_heartbeat : undefined;
      case 'on_heartbeats_bulk':
        return typeof on_heartbeats_bulk === 'function' ? on_heartbeats_bulk : undefined;
      case 'on_tick': return typeof on_tick === 'function' ? on_tick : undefined;
      case 'on_install': return typeof on_install === 'function' ? on_install : undefined;
      case 'on_user_login': return typeof on_user_login === 'function' ? on_user_login : undefined;
      default: return undefined;
    }
  }

  function handler(kind, name) {
    if (kind === 'rpc') return own(typeof endpoints === 'undefined' ? undefined : endpoints, name);
    const fn = topLevel(name);
    if (fn !== undefined) return [fn, undefined];
    return own(typeof lifecycle === 'undefined' ? undefined : lifecycle, name);
  }

  function failed(e) {
    let name = 'Error', message = '', stack = '';
    try {
      if (e instanceof ErrorCtor) {
        name = StringCtor(e.name);
        message = StringCtor(e.message);
        stack = typeof e.stack === 'string' ? e.stack : '';
      } else if (e === null) {
        name = 'null';  // how QuickJS throws when it cannot even allocate the Error
      } else {
        name = 'Thrown';
        message = describe(e);
      }
    } catch (inner) {
      message = '[unprintable exception]';
    }
    outcome = { ok: false, name: name, message: message, stack: stack, invalid: false };
  }

  function succeeded(value) {
    let text;
    try {
      text = stringify(value);
    } catch (e) {
      outcome = { ok: false, name: 'TypeError', message: describe(e && e.message), stack: '',
                  invalid: true };
      return;
    }
    outcome = { ok: true, result: text === undefined ? 'null' : text };
  }

  function start(kind, name, argJson) {
    const found = handler(kind, name);
    if (found === undefined) return 'unknown';
    let pending;
    try {
      pending = apply(found[0], found[1], [ctx, parse(argJson)]);
    } catch (e) {
      pending = promiseReject(e);
    }
    apply(then, promiseResolve(pending), [succeeded, failed]);
    return 'started';
  }

  function take() {
    const calls = queue;
    queue = [];
    return stringify({ calls: calls, overflow: overflow !== false });
  }

  function settle(id, ok, text) {
    const waiter = waiters[id];
    if (waiter === undefined) return;
    delete waiters[id];
    if (ok) waiter[0](parse(text)); else waiter[1](new ErrorCtor(text));
  }

  function drainLogs() {
    const out = stringify({ lines: lines, dropped: dropped });
    lines = [];
    dropped = 0;
    return out;
  }

  return function host(op, a, b, c) {
    switch (op) {
      case 'start': return start(a, b, c);
      case 'take': return take();
      case 'settle': return settle(a, b, c);
      case 'status': return outcome === null ? '' : stringify(outcome);
      case 'logs': return drainLogs();
      default: throw new ErrorCtor('unknown host op ' + op);
    }
  };
})
"""
