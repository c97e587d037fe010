"""The socket seam: one TCP connection, with socket options, and all the kernel said.

A connector opens one TCP connection to exactly the address of a spec. The default one,
:func:`open_tcp`, does the non-blocking ``connect()`` itself (not trio's) so that it owns
the socket from creation to failure:

- **before** the SYN it sets the options a caller asked for (:class:`SocketOptions`): the
  IP TTL / IPv6 hop limit for a TTL ladder, and ``IP_RECVERR`` / ``IPV6_RECVERR`` so that
  the kernel queues the ICMP error that ended a connect;
- **after** a failed connect it reads ``SO_ERROR`` first and the socket's error queue
  second — in that order, because dequeuing the last queued error clears ``sk_err``
  (net/core/skbuff.c ``sock_dequeue_err_skb``) — and raises :class:`ConnectFailure`, an
  ``OSError`` with the same errno and text as trio's, carrying a :class:`KernelReport`.

Since Linux 5.8 (commit 45af29ca761c, "tcp: allow traceroute -Mtcpconn for unpriv users")
an ICMP error that ends a connect in SYN_SENT is queued with the ICMP type, code and the
sender's address (``SO_EE_OFFENDER``), for an unprivileged socket: a router's
time-exceeded, an ACL's administratively-prohibited. Older kernels and other systems give
the errno alone: the report then has no ICMP part. Nothing here needs root.

A connector that is not this one (tests' in-memory streams, a library user's transport)
takes the same two arguments; it may ignore the options and raise any ``OSError``.
"""

from __future__ import annotations

import errno as _errno
import ipaddress
import os
import socket
import struct
import sys
from dataclasses import dataclass, replace
from typing import Protocol

import trio

from portprobe.model import IcmpReport, ProbeSpec

# Linux constants CPython 3.11 does not export (include/uapi/linux/in.h, in6.h, socket.h).
SOL_IP = 0
IP_TTL = 2
IP_RECVERR = 11
SOL_IPV6 = 41
IPV6_UNICAST_HOPS = 16
IPV6_RECVERR = 25
MSG_ERRQUEUE = 0x2000
#: ``struct sock_extended_err`` (include/uapi/linux/errqueue.h): errno, origin, type,
#: code, pad, info, data; the offender's sockaddr follows it.
_EXTENDED_ERR = struct.Struct("=IBBBBII")
_ORIGIN_ICMP = 2
_ORIGIN_ICMP6 = 3
#: One queued error is one small cmsg; a few are read at most, never a loop on junk.
_MAX_QUEUED = 4

IS_LINUX = sys.platform.startswith("linux")
#: What a non-blocking connect() answers when the SYN is on its way.
_IN_PROGRESS = frozenset(
    {_errno.EINPROGRESS, getattr(_errno, "WSAEWOULDBLOCK", _errno.EINPROGRESS)}
)


@dataclass(frozen=True)
class SocketOptions:
    """What a connector sets on the socket before the SYN.

    ``ttl``: the IPv4 TTL or IPv6 hop limit (1-255), None for the system's default.
    ``icmp_errors``: ask the kernel to queue the ICMP error that ends a connect (Linux);
    harmless where unsupported, where it is simply not set.
    """

    ttl: int | None = None
    icmp_errors: bool = True

    def __post_init__(self) -> None:
        if self.ttl is not None and not 1 <= self.ttl <= 255:
            raise ValueError(f"ttl must be 1-255, not {self.ttl}")


DEFAULT_OPTIONS = SocketOptions()


@dataclass(frozen=True)
class KernelReport:
    """Everything the kernel said about a failed connect: the errno, and the ICMP error
    that caused it where the error queue held one."""

    errno: int
    icmp: IcmpReport | None = None


class ConnectFailure(OSError):
    """A failed connect, as trio would raise it (same errno and text), plus the report."""

    def __init__(self, report: KernelReport, text: str | None = None) -> None:
        super().__init__(report.errno, text or os.strerror(report.errno))
        self.report = report


class Connector(Protocol):
    """How to open one TCP connection to ``spec`` with ``options``: the seam tests and
    library users replace. A stream that is not a ``trio.SocketStream`` names our side of
    the connection in a ``local_address`` attribute (for the EHLO address literal)."""

    async def __call__(self, spec: ProbeSpec, options: SocketOptions, /) -> trio.abc.Stream: ...


def _apply(sock: socket.socket, family: int, options: SocketOptions) -> None:
    if not IS_LINUX:
        if options.ttl is not None:
            level, name = (
                (socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS)
                if family == socket.AF_INET6
                else (socket.IPPROTO_IP, socket.IP_TTL)
            )
            sock.setsockopt(level, name, options.ttl)
        return
    v6 = family == socket.AF_INET6
    if options.icmp_errors:
        sock.setsockopt(SOL_IPV6 if v6 else SOL_IP, IPV6_RECVERR if v6 else IP_RECVERR, 1)
    if options.ttl is not None:
        sock.setsockopt(
            SOL_IPV6 if v6 else SOL_IP, IPV6_UNICAST_HOPS if v6 else IP_TTL, options.ttl
        )


def _clear_icmp_errors(sock: socket.socket, family: int, options: SocketOptions) -> None:
    if IS_LINUX and options.icmp_errors:
        v6 = family == socket.AF_INET6
        sock.setsockopt(SOL_IPV6 if v6 else SOL_IP, IPV6_RECVERR if v6 else IP_RECVERR, 0)


def parse_extended_error(data: bytes) -> IcmpReport | None:
    """An ``IP_RECVERR``/``IPV6_RECVERR`` cmsg's data as an :class:`IcmpReport`.

    None for anything that is not an ICMP error with an offender address (a local error,
    a short or malformed buffer): bounded, never raises.
    """
    if len(data) < _EXTENDED_ERR.size:
        return None
    ee_errno, origin, icmp_type, code, _pad, _info, _data = _EXTENDED_ERR.unpack_from(data)
    offender = data[_EXTENDED_ERR.size :]
    sender: str | None = None
    if origin == _ORIGIN_ICMP and len(offender) >= 8:
        sender = str(ipaddress.IPv4Address(offender[4:8]))
    elif origin == _ORIGIN_ICMP6 and len(offender) >= 24:
        sender = str(ipaddress.IPv6Address(offender[8:24]))
    else:
        return None
    if sender in ("0.0.0.0", "::"):
        sender = None
    return IcmpReport(
        family="ipv6" if origin == _ORIGIN_ICMP6 else "ipv4",
        type=icmp_type,
        code=code,
        sender=sender,
        errno=_errno.errorcode.get(ee_errno, str(ee_errno)),
    )


def is_own_address(address: str) -> bool:
    """``address`` is one of this machine's: a socket can bind to it (no packet sent)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if ip.is_loopback:
        return True
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.bind((address, 0))
    except OSError:  # EADDRNOTAVAIL: not ours (a link-local one without scope counts too)
        return False
    return True


def read_error_queue(sock: socket.socket) -> IcmpReport | None:
    """The last ICMP error queued on ``sock`` (non-blocking; None when there is none)."""
    if not IS_LINUX:
        return None
    found: IcmpReport | None = None
    for _ in range(_MAX_QUEUED):
        try:
            _data, ancillary, _flags, _addr = sock.recvmsg(512, 512, MSG_ERRQUEUE)
        except OSError:  # BlockingIOError (EAGAIN): the queue is empty
            break
        for level, kind, cmsg in ancillary:
            if (level, kind) in ((SOL_IP, IP_RECVERR), (SOL_IPV6, IPV6_RECVERR)):
                found = parse_extended_error(cmsg) or found
    if found is not None and found.sender is not None and is_own_address(found.sender):
        found = replace(found, local=True)
    return found


async def open_tcp(spec: ProbeSpec, options: SocketOptions = DEFAULT_OPTIONS) -> trio.SocketStream:
    """The default connector: one TCP connection to exactly this address (no fallback)."""
    assert spec.address is not None
    family = socket.AF_INET6 if spec.family == "ipv6" else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        _apply(sock, family, options)
        address = (spec.address, spec.dial_port)
        number = sock.connect_ex(address)
        text = None  # an immediate failure: the plain strerror, as socket.connect gives
        if number in _IN_PROGRESS:
            await trio.lowlevel.wait_writable(sock)
            number = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            # trio's wording for a connect that failed after it started (kept: reports
            # quote it, and nothing about the connection changed but who reads the error).
            text = f"Error connecting to {address!r}: {os.strerror(number)}"
        if number != 0:
            raise ConnectFailure(KernelReport(number, read_error_queue(sock)), text)
        # On an established socket IP_RECVERR turns any later ICMP error (a transient
        # one, on a long greeting pause) into a hard one that kills the session: clear it.
        _clear_icmp_errors(sock, family, options)
        return trio.SocketStream(trio.socket.from_stdlib_socket(sock))
    except BaseException:
        sock.close()
        raise
