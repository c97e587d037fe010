"""A real dnsmasq on a loopback address and a free high port, for readiness tests.

dnsmasq runs in the foreground with nothing of the machine's (``--conf-file=/dev/null
--no-resolv --no-hosts``), binds only its 127.0.0.x address, forwards nowhere, and
answers NXDOMAIN for every name under the ``--local`` domains it does not hold (``test``
and the reverse trees). Records come in as dnsmasq options (``--ptr-record``,
``--host-record``, ``--address``, ``--txt-record``). It is ready when it answers a query.
"""

from __future__ import annotations

import contextlib
import random
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode

_READY_NAME = "ready.test"
_START_BOUND = 10.0  # seconds dnsmasq gets to answer its first query


def dnsmasq_binary() -> str | None:
    return shutil.which("dnsmasq") or (
        "/usr/sbin/dnsmasq" if Path("/usr/sbin/dnsmasq").exists() else None
    )


@dataclass(frozen=True)
class DnsmasqServer:
    address: str
    port: int

    @property
    def nameserver(self) -> tuple[str, int]:
        return (self.address, self.port)


def _free_port(address: str) -> int | None:
    """A port free for both UDP and TCP on ``address`` (dnsmasq listens on both)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind((address, 0))
        port = int(udp.getsockname()[1])
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            try:
                tcp.bind((address, port))
            except OSError:
                return None
    return port


def _answers(server: DnsmasqServer) -> bool:
    query = dns.message.make_query(_READY_NAME, "A")
    try:
        response = dns.query.udp(query, server.address, port=server.port, timeout=0.2)
    except (dns.exception.DNSException, OSError):
        return False
    return response.rcode() == dns.rcode.NOERROR and bool(response.answer)


@contextlib.contextmanager
def run_dnsmasq(
    options: Sequence[str] | Callable[[DnsmasqServer], Sequence[str]], log: Path
) -> Iterator[DnsmasqServer]:
    """Start dnsmasq with ``options`` (records; or a function of where it will listen,
    for records that name the server itself), yield where it listens, stop it."""
    binary = dnsmasq_binary()
    if binary is None:
        raise FileNotFoundError("dnsmasq")
    for _ in range(20):
        address = f"127.0.{random.randint(1, 254)}.{random.randint(2, 254)}"
        port = _free_port(address)
        if port is not None:
            break
    else:
        raise RuntimeError("no free loopback port for dnsmasq")
    server = DnsmasqServer(address, port)
    argv = [
        binary,
        "--keep-in-foreground",
        "--conf-file=/dev/null",
        "--no-resolv",
        "--no-hosts",
        "--no-poll",
        "--bind-interfaces",
        f"--listen-address={address}",
        f"--port={port}",
        "--user=root",
        "--pid-file=",
        "--cache-size=0",
        "--local=/test/",
        "--local=/in-addr.arpa/",
        "--local=/ip6.arpa/",
        "--log-queries",
        f"--log-facility={log}",
        f"--host-record={_READY_NAME},127.0.0.1",
        *(options(server) if callable(options) else options),
    ]
    with open(log.with_suffix(".out"), "wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + _START_BOUND
        while not _answers(server):
            if process.poll() is not None:
                output = log.with_suffix(".out").read_text(errors="replace")
                raise RuntimeError(f"dnsmasq exited {process.returncode}: {output.strip()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"dnsmasq did not answer within {_START_BOUND} s")
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def silent_udp_server() -> Iterator[tuple[str, int]]:
    """A loopback UDP socket that receives queries and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield ("127.0.0.1", int(sock.getsockname()[1]))
