"""Real servers on loopback for the tests: aiosmtpd (real SMTP), trustme (real certificates),
and small raw trio servers for what no real server does (never speaks, drips, floods).

Raw servers come in two forms with the same handlers. ``serve_memory`` runs them over
trio's in-memory lockstep streams through the engine's connector seam: no kernel, no
real time, so the mock clock can jump without racing bytes in flight (and lockstep
streams have no buffer, so a flood is as flow-controlled as over TCP). ``serve_raw``
runs them on a real loopback socket, for tests where the kernel's behaviour is the point;
those tests make no timing assertions.

Ports are free high ports mapped onto the 25/465/587/2525 roles through
``ProbeSpec.connect_port`` (``--port-map`` on the command line), so nothing needs root.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import functools
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio
import trio.testing
import trustme
from aiosmtpd.controller import Controller

from portprobe.model import ProbeSpec

HOST = "mx.test.example"


def free_port(family: int = socket.AF_INET) -> int:
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0))
        return int(s.getsockname()[1])


def closed_port() -> int:
    """A port with nothing listening (bound, then released: the kernel answers with RST)."""
    return free_port()


@dataclass
class Certs:
    ca: trustme.CA
    ca_file: Path
    good: trustme.LeafCert  # for HOST
    wrong_name: trustme.LeafCert  # for another name
    expired: trustme.LeafCert  # for HOST, expired yesterday

    def server_context(self, leaf: trustme.LeafCert | None = None) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        (leaf or self.good).configure_cert(ctx)
        return ctx


def make_certs(directory: Path) -> Certs:
    ca = trustme.CA()
    ca_file = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    now = dt.datetime.now(dt.UTC)
    return Certs(
        ca=ca,
        ca_file=ca_file,
        # IP SANs too, so probes of --target 127.0.0.1 verify like a named host would.
        good=ca.issue_cert(HOST, "127.0.0.1", "127.0.0.2", "::1"),
        wrong_name=ca.issue_cert("other.test.example"),
        expired=ca.issue_cert(
            HOST, not_before=now - dt.timedelta(days=30), not_after=now - dt.timedelta(days=1)
        ),
    )


class _Handler:
    """aiosmtpd handler that accepts nothing: portprobe never gets past EHLO anyway."""

    def __init__(self) -> None:
        self.commands: list[str] = []


@contextlib.contextmanager
def aiosmtpd_server(
    *,
    hostname: str = HOST,
    starttls: ssl.SSLContext | None = None,
    implicit_tls: ssl.SSLContext | None = None,
    ident: str = "ESMTP test server",
    address: str = "127.0.0.1",
    port: int | None = None,
) -> Iterator[int]:
    """A real aiosmtpd SMTP server in a thread; yields its port."""
    if port is None:
        port = free_port(socket.AF_INET6 if ":" in address else socket.AF_INET)
    kwargs: dict[str, Any] = {"server_hostname": hostname, "ident": ident}
    if starttls is not None:
        kwargs["tls_context"] = starttls
    if implicit_tls is not None:
        kwargs["ssl_context"] = implicit_tls
    controller = Controller(_Handler(), hostname=address, port=port, **kwargs)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


def spec(port: int, role: int = 25, host: str = HOST, address: str = "127.0.0.1") -> ProbeSpec:
    family = "ipv6" if ":" in address else "ipv4"
    return ProbeSpec(
        target=host,
        host=host,
        address=address,
        family=family,
        port=role,
        provider="test",
        connect_port=port,
    )


# --- raw trio servers (in the test's own trio run, so the mock clock drives them) ---------


Handler = Callable[[trio.abc.Stream, "Transcript"], Awaitable[None]]


@dataclass
class Transcript:
    """What a raw server received, with the moment each chunk arrived (trio time)."""

    chunks: list[tuple[float, bytes]] = field(default_factory=list)
    connections: int = 0

    @property
    def data(self) -> bytes:
        return b"".join(chunk for _, chunk in self.chunks)

    async def receive(self, stream: trio.abc.Stream) -> bytes:
        data = await stream.receive_some(65536)
        if data:
            self.chunks.append((trio.current_time(), data))
        return data

    async def read_line(self, stream: trio.abc.Stream, buf: bytearray) -> bytes | None:
        while b"\n" not in buf:
            data = await self.receive(stream)
            if not data:
                return None
            buf += data
        line, _, rest = bytes(buf).partition(b"\n")
        buf[:] = rest
        return line + b"\n"


async def serve_raw(nursery: trio.Nursery, handler: Handler) -> tuple[int, Transcript]:
    """Start a raw TCP server on 127.0.0.1 inside ``nursery``; returns (port, transcript)."""
    transcript = Transcript()

    async def on_connection(stream: trio.abc.Stream) -> None:
        transcript.connections += 1
        try:
            await handler(stream, transcript)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            await trio.aclose_forcefully(stream)

    listeners = await nursery.start(
        functools.partial(trio.serve_tcp, on_connection, 0, host="127.0.0.1")
    )
    port = listeners[0].socket.getsockname()[1]
    return port, transcript


async def simple_smtp_dialogue(
    stream: trio.abc.Stream, transcript: Transcript, greeting: bytes = b"220 raw.test ESMTP\r\n"
) -> None:
    """Greet, then answer EHLO/HELO/QUIT like a minimal server (no STARTTLS)."""
    await stream.send_all(greeting)
    buf = bytearray()
    while True:
        line = await transcript.read_line(stream, buf)
        if line is None:
            return
        verb = line.split()[0].upper() if line.split() else b""
        if verb == b"EHLO":
            await stream.send_all(b"250-raw.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
        elif verb == b"HELO":
            await stream.send_all(b"250 raw.test\r\n")
        elif verb == b"QUIT":
            await stream.send_all(b"221 bye\r\n")
            return
        else:
            await stream.send_all(b"502 not here\r\n")


# --- the same handlers over in-memory streams, through the connector seam ------------------


class MemoryConnection(trio.abc.HalfCloseableStream):
    """One end of an in-memory connection, as the engine's ``Connector`` contract asks:
    a stream that names our address (``local_address``). ``reset()`` on one end makes the
    other end's next receive fail as a TCP RST does (``BrokenResourceError`` caused by
    ``ECONNRESET``, exactly what ``trio.SocketStream`` raises)."""

    def __init__(self, stream: trio.StapledStream, local_address: str) -> None:
        self._stream = stream
        self.local_address = local_address
        self.peer: MemoryConnection | None = None
        self.closed_at: float | None = None  # trio time of our close, for the tests
        self._reset = False

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self._stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._stream.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        data = await self._stream.receive_some(max_bytes)
        if self._reset:
            raise trio.BrokenResourceError from ConnectionResetError(
                errno.ECONNRESET, "Connection reset by peer"
            )
        return data

    async def send_eof(self) -> None:
        await self._stream.send_eof()

    async def aclose(self) -> None:
        if self.closed_at is None:
            self.closed_at = trio.current_time()
        await self._stream.aclose()

    def reset(self) -> None:
        """Abort like ``SO_LINGER 0``: the peer sees a reset, not an orderly close."""
        if self.peer is not None:
            self.peer._reset = True
        self._stream.send_stream.close()  # type: ignore[attr-defined]
        self._stream.receive_stream.close()  # type: ignore[attr-defined]


def memory_connection_pair(local: str = "127.0.0.1") -> tuple[MemoryConnection, MemoryConnection]:
    client_end, server_end = trio.testing.lockstep_stream_pair()
    client = MemoryConnection(client_end, local)
    server = MemoryConnection(server_end, "127.0.0.1")
    client.peer, server.peer = server, client
    return client, server


async def serve_memory(
    nursery: trio.Nursery, handler: Handler, *, local: str = "127.0.0.1"
) -> tuple[Callable[[ProbeSpec], Awaitable[trio.abc.Stream]], Transcript]:
    """A connector whose every call is one connection to ``handler``, run in ``nursery``."""
    transcript = Transcript()

    async def on_connection(stream: MemoryConnection) -> None:
        try:
            await handler(stream, transcript)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            await trio.aclose_forcefully(stream)

    async def connect(spec: ProbeSpec, _options: object = None) -> trio.abc.Stream:
        transcript.connections += 1
        client, server = memory_connection_pair(local)
        nursery.start_soon(on_connection, server)
        return client

    return connect, transcript
