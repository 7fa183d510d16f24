"""Bounded request heads: uvicorn's httptools protocol with a byte cap and a field-count cap.

httptools (llhttp) keeps no limit of its own: a 64 MiB ``Authorization`` header is gathered in
memory in full before the application could refuse it, and 200,000 header fields each become a
tuple. This protocol counts the bytes of a request head (request line and header fields) *as they
are fed to the parser*, feeding at most what is left of the budget at a time, so no more than
``max_bytes`` of a head is ever held; a head that reaches the cap without ending, or that carries
more than ``max_fields`` fields, is answered ``431 Request Header Fields Too Large`` (in the API's
error envelope) and the connection is closed.

The close lingers a little, as nginx does: the answer is written, the sending side shut, and
whatever the client still sends is read and dropped for up to :data:`LINGER_S` seconds, so a
client busy uploading its oversized head reads the 431 instead of a reset connection.

uvicorn's h11 protocol could bound bytes too (``h11_max_incomplete_event_size``), but it answers
400, counts no fields and parses in pure Python; keeping httptools keeps the request rate of
``docs/benchmarks.md``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["DEFAULT_MAX_FIELDS", "DEFAULT_MAX_HEAD_BYTES", "LINGER_S", "bounded_http_protocol"]

DEFAULT_MAX_HEAD_BYTES = 16 * 1024
DEFAULT_MAX_FIELDS = 100
LINGER_S = 2.0

_log = logging.getLogger(__name__)


class _HeadTooLarge(Exception):
    """Raised from a parser callback to stop httptools mid-head."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """One connection; the caps are class attributes set by :func:`bounded_http_protocol`."""

    max_head_bytes: ClassVar[int] = DEFAULT_MAX_HEAD_BYTES
    max_fields: ClassVar[int] = DEFAULT_MAX_FIELDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_bytes = 0
        self._in_head = True  # a connection starts by waiting for a request head
        self._rejected = False
        self._rejected_reason: str | None = None

    def data_received(self, data: bytes) -> None:
        if self._rejected:
            return  # lingering: drop what a refused client still sends
        while data:
            if not self._in_head:
                super().data_received(data)
                return
            # Never hand the parser more of a head than the budget allows.
            room = self.max_head_bytes - self._head_bytes
            chunk, data = data[:room], data[room:]
            self._head_bytes += len(chunk)
            super().data_received(chunk)
            if self._rejected or self.transport.is_closing():
                return
            if self.transport.get_protocol() is not self:
                return  # upgraded to a WebSocket: the rest is the new protocol's
            if self._in_head and self._head_bytes >= self.max_head_bytes:
                self._reject(f"the request head exceeds {self.max_head_bytes} bytes")
                return

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(self.headers) >= self.max_fields:
            self._rejected_reason = f"the request has more than {self.max_fields} header fields"
            raise _HeadTooLarge
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True

    def send_400_response(self, msg: str) -> None:
        # httptools reports an exception raised by a callback as a parse error: ours is a 431.
        if self._rejected_reason is not None:
            self._reject(self._rejected_reason)
            return
        super().send_400_response(msg)

    def _reject(self, reason: str) -> None:
        self._rejected = True
        _log.warning("refused a request head from %s: %s", self.client, reason)
        body = json.dumps(
            {
                "error": {
                    "code": "request_header_fields_too_large",
                    "message": reason,
                    "details": {
                        "max_header_bytes": self.max_head_bytes,
                        "max_header_fields": self.max_fields,
                    },
                }
            }
        ).encode()
        lines = [b"HTTP/1.1 431 Request Header Fields Too Large"]
        lines += [name + b": " + value for name, value in self.server_state.default_headers]
        lines += [
            b"content-type: application/json",
            b"content-length: " + str(len(body)).encode(),
            b"connection: close",
        ]
        self.transport.write(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self.loop.call_later(LINGER_S, self._close)
        else:
            self.transport.close()

    def _close(self) -> None:
        if not self.transport.is_closing():
            self.transport.close()


def bounded_http_protocol(max_head_bytes: int, max_fields: int) -> type[asyncio.Protocol]:
    """The protocol class to give ``uvicorn.run(http=...)`` for these caps."""
    return type(
        "BoundedHttpToolsProtocol",
        (BoundedHttpToolsProtocol,),
        {"max_head_bytes": max_head_bytes, "max_fields": max_fields},
    )
