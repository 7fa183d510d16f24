"""The sandbox process: ``python -m plugins_runtime.sandbox_worker``, started by
:class:`plugins_runtime.processes.ProcessSandbox`.

It reads ``run`` frames on stdin, runs each execution to its end with the same engine as the
thread sandbox (:func:`plugins_runtime.engine.execute`), sends the host calls the script makes to
the server as ``host`` frames and waits for their answers, then writes the ``done`` frame
(:mod:`plugins_runtime.wire`). One execution at a time. It holds no data of ours and opens no file
or socket: the script reaches the database and key-value store only through the server.

It exits when stdin ends (the server closed it, or died). Ctrl-C in a terminal is the server's to
handle, so SIGINT is ignored here; anything the process itself has to say goes to stderr, stdout
being the frame channel.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from typing import IO, Any

from plugins_runtime.engine import execute
from plugins_runtime.host import HostReply, HostRequest
from plugins_runtime.outcome import LogLine
from plugins_runtime.wire import (
    HEADER,
    done_message,
    frame,
    frame_length,
    host_message,
    log_message,
    parse,
    read_replies,
    read_run,
    streams_logs,
)

# As in the thread sandbox: QuickJS guards its own 512 KiB stack, the C stack under it must be
# larger whatever the platform's default.
_STACK_BYTES = 8 * 1024 * 1024
READY: dict[str, Any] = {"op": "ready"}


def _read(source: IO[bytes]) -> dict[str, Any] | None:
    header = source.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    length = frame_length(header)
    body = source.read(length)
    if len(body) < length:
        return None
    return parse(body)


def _write(sink: IO[bytes], message: dict[str, Any]) -> None:
    sink.write(frame(message))
    sink.flush()


def serve(source: IO[bytes], sink: IO[bytes]) -> None:
    """Answer ``run`` frames until ``source`` ends."""
    _write(sink, READY)
    while (message := _read(source)) is not None:
        if message["op"] != "run":
            raise SystemExit(f"sandbox process: unexpected {message['op']!r} frame")
        script, call, context, limits = read_run(message)

        def run_host_calls(requests: list[HostRequest], timeout: float) -> list[HostReply]:
            _write(sink, host_message(requests, timeout))
            answer = _read(source)
            if answer is None:
                raise RuntimeError("the server went away")  # the engine: abandoned by its caller
            if answer["op"] == "timeout":
                raise TimeoutError
            return read_replies(answer)

        def send_log(line: LogLine) -> None:
            _write(sink, log_message(line))

        on_log = send_log if streams_logs(message) else None
        result = execute(script, call, context, limits, run_host_calls, on_log=on_log)
        _write(sink, done_message(result))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m plugins_runtime.sandbox_worker")
    parser.add_argument("--nice", type=int, default=0, help="scheduling niceness to add")
    args = parser.parse_args()
    if args.nice:
        os.nice(args.nice)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    # Keep the frame channel to ourselves: anything printed goes to stderr instead.
    sink = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    threading.stack_size(_STACK_BYTES)
    worker = threading.Thread(target=serve, args=(sys.stdin.buffer, sink), name="plugin-sandbox")
    worker.start()
    worker.join()


if __name__ == "__main__":
    main()
