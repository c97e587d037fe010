"""A fast SMTP responder for the concurrency benchmark, run as its own process.

It listens on N loopback addresses (127.20.x.y) × 4 high ports, one port per role
(25, 465, 587, 2525), so the runner's per-address limit applies as it does against real
hosts. Every connection is greeted after a fixed delay (a stand-in for the round trips and
the greeting pause of a real server); EHLO, STARTTLS and QUIT are answered. With
``--tls`` the 465 role speaks implicit TLS and the others offer STARTTLS, with a
certificate from a throw-away CA (trustme) that covers ``*.bench.test``.

Loopback only. It stops by itself after ``--lifetime`` seconds, or when stdin closes.

    python bench/responder.py --hosts 200 --base-port 42000 --delay 0.2 --tls-dir DIR
"""

from __future__ import annotations

import argparse
import errno
import socket
import ssl
import sys
from pathlib import Path

import trio

ROLES = (25, 465, 587, 2525)
DOMAIN = "bench.test"


def address(index: int) -> str:
    """The loopback address of host ``index`` (up to 62,500 hosts)."""
    return f"127.20.{index // 250}.{index % 250 + 1}"


def host_name(index: int) -> str:
    return f"mx{index}.{DOMAIN}"


def write_certs(directory: Path) -> Path:
    """A CA and a leaf for ``*.bench.test`` in ``directory``; returns the CA file."""
    import trustme

    ca = trustme.CA()
    leaf = ca.issue_cert(f"*.{DOMAIN}")
    ca.cert_pem.write_to_path(str(directory / "ca.pem"))
    leaf.private_key_and_cert_chain_pem.write_to_path(str(directory / "leaf.pem"))
    return directory / "ca.pem"


def server_context(directory: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(directory / "leaf.pem"))
    return ctx


class Responder:
    def __init__(self, delay: float, tls: ssl.SSLContext | None) -> None:
        self.delay = delay
        self.tls = tls
        self.connections = 0

    async def serve(self, stream: trio.abc.Stream, role: int, name: str) -> None:
        self.connections += 1
        try:
            if role == 465 and self.tls is not None:
                stream = trio.SSLStream(stream, self.tls, server_side=True)
                await stream.do_handshake()
            await trio.sleep(self.delay)
            await stream.send_all(f"220 {name} ESMTP bench\r\n".encode())
            await self._dialogue(stream, role, name)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        finally:
            await trio.aclose_forcefully(stream)

    async def _dialogue(self, stream: trio.abc.Stream, role: int, name: str) -> None:
        buf = bytearray()
        in_tls = role == 465 and self.tls is not None
        while True:
            while b"\n" not in buf:
                data = await stream.receive_some(4096)
                if not data:
                    return
                buf += data
                if len(buf) > 4096:
                    return
            line, _, rest = bytes(buf).partition(b"\n")
            buf[:] = rest
            verb = line.strip().split(b" ", 1)[0].upper()
            if verb in (b"EHLO", b"HELO"):
                caps = [name, "PIPELINING", "SIZE 10240000", "8BITMIME"]
                if self.tls is not None and not in_tls:
                    caps.append("STARTTLS")
                reply = "".join(f"250-{c}\r\n" for c in caps[:-1]) + f"250 {caps[-1]}\r\n"
                await stream.send_all(reply.encode())
            elif verb == b"STARTTLS" and self.tls is not None and not in_tls:
                await stream.send_all(b"220 2.0.0 Ready to start TLS\r\n")
                stream = trio.SSLStream(stream, self.tls, server_side=True)
                await stream.do_handshake()
                in_tls = True
                buf.clear()
            elif verb == b"QUIT":
                await stream.send_all(b"221 2.0.0 Bye\r\n")
                return
            else:
                await stream.send_all(b"502 5.5.2 not here\r\n")


def listen(addr: str, port: int) -> trio.SocketListener:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((addr, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise SystemExit(f"responder: {addr}:{port} is in use") from exc
        raise
    sock.listen(128)
    return trio.SocketListener(trio.socket.from_stdlib_socket(sock))


async def main_async(args: argparse.Namespace) -> None:
    import resource

    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    tls = server_context(Path(args.tls_dir)) if args.tls_dir else None
    responder = Responder(args.delay, tls)
    with trio.move_on_after(args.lifetime):
        async with trio.open_nursery() as nursery:
            for index in range(args.hosts):
                addr, name = address(index), host_name(index)
                for offset, role in enumerate(ROLES):
                    listener = listen(addr, args.base_port + offset)

                    async def handler(
                        stream: trio.SocketStream, role: int = role, name: str = name
                    ) -> None:
                        await responder.serve(stream, role, name)

                    nursery.start_soon(trio.serve_listeners, handler, [listener])
            print("READY", flush=True)
            # The parent closes our stdin when it is done: stop then.
            await trio.to_thread.run_sync(sys.stdin.read, abandon_on_cancel=True)
            nursery.cancel_scope.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, required=True)
    parser.add_argument("--base-port", type=int, default=42000)
    parser.add_argument("--delay", type=float, default=0.2)
    parser.add_argument("--tls-dir", default=None, help="directory with leaf.pem (see --tls)")
    parser.add_argument("--lifetime", type=float, default=900.0)
    args = parser.parse_args()
    trio.run(main_async, args)


if __name__ == "__main__":
    main()
