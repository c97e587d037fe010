"""Middleboxes the ISP puts in the path of port 25.

The ISP's own relay is a second Postfix (see ``netlab``). This module is the other one:
an inline proxy like Cisco ASA's ESMTP inspection ("inspect esmtp", the old "fixup
smtp"), which

* masks the server's greeting text with asterisks (``220 ******…``), and
* replaces the ``STARTTLS`` keyword in the EHLO reply by ``XXXXXXXA`` (same length,
  so the byte count is unchanged), which makes clients send mail in clear text, and
* X-es out a ``STARTTLS`` command sent anyway (``XXXXXXXX``), which the server then
  refuses with 502, as it does every command the inspection does not allow.

The router's ``nat`` rules REDIRECT port-25 connections to this proxy; it learns where
the client meant to go from ``SO_ORIGINAL_DST`` (conntrack's pre-NAT destination) and
connects there itself, from the router's address, as the real box does.

``python -m tests.lab.interceptors asa --port 10026`` (inside the router namespace).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import socket
import struct
import sys

SO_ORIGINAL_DST = 80  # linux/netfilter_ipv4.h; IP6T_SO_ORIGINAL_DST has the same value
MAX_LINE = 4096  # RFC 5321 allows 512 octets for a reply line (size limits); be generous
_STARTTLS = re.compile(rb"^(25\d[ -])STARTTLS\b", re.IGNORECASE)


def original_destination(sock: socket.socket) -> tuple[str, int]:
    """The destination the client dialled, before REDIRECT rewrote it."""
    if sock.family == socket.AF_INET6:
        raw = sock.getsockopt(socket.IPPROTO_IPV6, SO_ORIGINAL_DST, 28)
        port = struct.unpack_from("!H", raw, 2)[0]
        return socket.inet_ntop(socket.AF_INET6, raw[8:24]), port
    raw = sock.getsockopt(socket.IPPROTO_IP, SO_ORIGINAL_DST, 16)
    port = struct.unpack_from("!H", raw, 2)[0]
    return socket.inet_ntop(socket.AF_INET, raw[4:8]), port


def mask_greeting_line(line: bytes) -> bytes:
    """``220 mx.example ESMTP`` → ``220 ************ *****``: code kept, text starred."""
    code, text = line[:4], line[4:].rstrip(b"\r\n")
    return code + re.sub(rb"\S", b"*", text) + b"\r\n"


def strip_starttls_line(line: bytes) -> bytes:
    return _STARTTLS.sub(rb"\1XXXXXXXA", line)


async def _server_to_client(upstream: asyncio.StreamReader, client: asyncio.StreamWriter) -> None:
    in_greeting = True
    with contextlib.suppress(
        ConnectionError, OSError, EOFError, asyncio.LimitOverrunError, ValueError
    ):
        while True:
            line = await upstream.readuntil(b"\n")
            if in_greeting:
                client.write(mask_greeting_line(line))
                in_greeting = line[3:4] == b"-"  # the greeting ends with "220 "
            else:
                client.write(strip_starttls_line(line))
            await client.drain()
    with contextlib.suppress(ConnectionError, OSError):
        client.close()


async def _client_to_server(client: asyncio.StreamReader, upstream: asyncio.StreamWriter) -> None:
    with contextlib.suppress(
        ConnectionError, OSError, EOFError, asyncio.LimitOverrunError, ValueError
    ):
        while line := await client.readuntil(b"\n"):
            if line.strip().upper() == b"STARTTLS":
                # A client that asks anyway: the command is X-ed out, as ASA does with
                # commands it does not allow, and the server answers 502.
                line = b"XXXXXXXX" + line[8:]
            upstream.write(line)
            await upstream.drain()
    with contextlib.suppress(ConnectionError, OSError):
        upstream.close()


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    try:
        host, port = original_destination(sock)
        up_reader, up_writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, limit=MAX_LINE), timeout=10
        )
    except (OSError, TimeoutError):
        writer.transport.abort()  # the client sees a reset, as from the real box
        return
    await asyncio.gather(_server_to_client(up_reader, writer), _client_to_server(reader, up_writer))


async def serve_asa(port: int) -> None:
    servers = []
    v4 = socket.create_server(("0.0.0.0", port), family=socket.AF_INET, reuse_port=False)
    v6 = socket.create_server(("::", port), family=socket.AF_INET6, dualstack_ipv6=False)
    for sock in (v4, v6):
        servers.append(await asyncio.start_server(_handle, sock=sock, limit=MAX_LINE))
    print(f"asa proxy listening on port {port}", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="middleboxes for the portprobe lab")
    sub = parser.add_subparsers(dest="kind", required=True)
    asa = sub.add_parser("asa", help="Cisco ASA-style ESMTP inspection proxy")
    asa.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_asa(args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
