"""A small HTTP/1.1 server: h11 (the protocol, no I/O) over trio sockets (the I/O).

Enough for an exporter that Prometheus scrapes, and bounded against clients that are
not Prometheus:

- at most ``max_connections`` connections at once; one more is accepted and closed at
  once, so open file descriptors stay bounded however many clients connect;
- a request head must arrive whole within ``head_timeout`` seconds of the connection
  being ready for it (a deadline, not a per-read timeout: a slowloris client dripping a
  byte a second is cut off like an idle one), and a response must be taken within the
  same time;
- a head larger than ``max_head`` bytes is answered 431 and the connection closed; a
  request body (nothing here takes one) of more than 64 KiB is answered 413;
- GET and HEAD only (405 otherwise); keep-alive as HTTP/1.1 asks.

The handler gets a :class:`Request` and returns a :class:`Response`; it never sees h11.
"""

from __future__ import annotations

import errno
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Final
from urllib.parse import parse_qs, urlsplit

import h11
import trio

BODY_MAX: Final = 64 * 1024
_REASONS: Final = {s.value: s.phrase.encode() for s in HTTPStatus}
_ACCEPT_RETRY: Final = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names; a repeated header joined with ","
    target_length: int  # bytes of the request target (path and query) as sent
    bad_query: bool = False  # more fields than any route takes


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def text(cls, status: int, line: str) -> Response:
        return cls(status, (line.rstrip("\n") + "\n").encode())


Handler = Callable[[Request], Awaitable[Response]]


@dataclass
class ConnectionStats:
    """Counters the exporter reads for its own metrics (plain ints: no dependency)."""

    open: int = 0
    peak: int = 0  # most connections open at once
    rejected: int = 0
    timed_out: int = 0


class HTTPServer:
    def __init__(
        self,
        handler: Handler,
        *,
        max_connections: int = 256,
        head_timeout: float = 5.0,
        max_head: int = 16 * 1024,
    ) -> None:
        self.handler = handler
        self.max_connections = max_connections
        self.head_timeout = head_timeout
        self.max_head = max_head
        self.stats = ConnectionStats()

    async def serve(self, listeners: list[trio.SocketListener]) -> None:
        """Accept on every listener until cancelled; connections end with the caller."""
        async with trio.open_nursery() as nursery:
            for listener in listeners:
                nursery.start_soon(self._accept_loop, listener, nursery)

    async def _accept_loop(self, listener: trio.SocketListener, nursery: trio.Nursery) -> None:
        async with listener:
            while True:
                try:
                    stream = await listener.accept()
                except OSError as exc:
                    if exc.errno in _ACCEPT_RETRY:
                        await trio.sleep(0.1)  # out of descriptors: let some close first
                        continue
                    raise
                if self.stats.open >= self.max_connections:
                    self.stats.rejected += 1
                    await trio.aclose_forcefully(stream)
                    continue
                self.stats.open += 1
                self.stats.peak = max(self.stats.peak, self.stats.open)
                nursery.start_soon(self._connection, stream)

    async def _connection(self, stream: trio.SocketStream) -> None:
        try:
            conn = h11.Connection(h11.SERVER, max_incomplete_event_size=self.max_head)
            while await self._one_exchange(conn, stream):
                conn.start_next_cycle()
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError, h11.ProtocolError):
            pass
        finally:
            self.stats.open -= 1
            await trio.aclose_forcefully(stream)

    async def _one_exchange(self, conn: h11.Connection, stream: trio.SocketStream) -> bool:
        """One request and its response; False when the connection is to be closed."""
        try:
            with trio.fail_after(self.head_timeout):
                event = await _next_event(conn, stream, self.max_head)
                if not isinstance(event, h11.Request):
                    return False  # closed between requests, or an idle keep-alive
                too_big = await _drain_body(conn, stream)
        except trio.TooSlowError:
            self.stats.timed_out += 1
            if (
                conn.our_state in (h11.IDLE, h11.SEND_RESPONSE)
                and conn.their_state is h11.SEND_BODY
            ):
                await self._send(conn, stream, Response.text(408, "request timed out"), False)
            return False
        except h11.RemoteProtocolError as exc:
            status = exc.error_status_hint
            line = "request head too large" if status == 431 else "malformed HTTP request"
            if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                await self._send(conn, stream, Response.text(status, line), False)
            return False
        method = event.method.decode("ascii", "replace")
        if too_big:
            await self._send(conn, stream, Response.text(413, "request body too large"), False)
            return False
        if method not in ("GET", "HEAD"):
            response = Response.text(405, f"method {method} not allowed: GET or HEAD")
            response.headers.append(("Allow", "GET, HEAD"))
        else:
            response = await self.handler(_request(event, method))
        await self._send(conn, stream, response, method == "HEAD")
        return conn.our_state is h11.DONE and conn.their_state is h11.DONE

    async def _send(
        self, conn: h11.Connection, stream: trio.SocketStream, response: Response, head: bool
    ) -> None:
        headers = [
            ("Content-Type", response.content_type),
            ("Content-Length", str(len(response.body))),
            *response.headers,
        ]
        if response.status >= 400 and response.status not in (404,):
            headers.append(("Connection", "close"))
        reason = _REASONS.get(response.status, b"")
        start = h11.Response(status_code=response.status, headers=headers, reason=reason)
        parts = [conn.send(start)]
        if not head:
            parts.append(conn.send(h11.Data(data=response.body)))
        parts.append(conn.send(h11.EndOfMessage()))
        with trio.move_on_after(self.head_timeout):
            await stream.send_all(b"".join(p for p in parts if p))


async def _next_event(
    conn: h11.Connection, stream: trio.SocketStream, limit: int = BODY_MAX
) -> h11.Event | type:
    """The next event, reading at most ``limit`` bytes for it (431 beyond that)."""
    read = 0
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            data = await stream.receive_some(4096)
            read += len(data)
            if read > limit:
                raise h11.RemoteProtocolError("head too large", error_status_hint=431)
            conn.receive_data(data)  # b"" marks the end of the stream
            continue
        return event


async def _drain_body(conn: h11.Connection, stream: trio.SocketStream) -> bool:
    """Read (and drop) a request body; True when it is larger than :data:`BODY_MAX`."""
    seen = 0
    while True:
        event = await _next_event(conn, stream)
        if isinstance(event, h11.Data):
            seen += len(event.data)
            if seen > BODY_MAX:
                return True
        elif isinstance(event, h11.EndOfMessage) or event is h11.PAUSED:
            return False
        else:
            return False


def _request(event: h11.Request, method: str) -> Request:
    raw = event.target.decode("ascii", "replace")
    parts = urlsplit(raw)
    headers: dict[str, str] = {}
    for name, value in event.headers:
        key = name.decode("ascii", "replace").lower()
        text = value.decode("latin-1")
        headers[key] = f"{headers[key]},{text}" if key in headers else text
    try:
        query = parse_qs(parts.query, keep_blank_values=True, max_num_fields=16)
    except ValueError:
        return Request(method, parts.path, {}, headers, len(event.target), bad_query=True)
    return Request(method, parts.path, query, headers, len(event.target))
