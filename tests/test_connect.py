"""The socket seam (probe/connect.py): options set before the SYN, the kernel's word after.

Real sockets on loopback for what a connect does; the error queue's binary layout checked
against ``struct sock_extended_err`` bytes built here as the kernel lays them out
(include/uapi/linux/errqueue.h), since loopback never produces an ICMP error without a
firewall rule. The lab (tests/lab) sees real routers' ICMP through the same code.
"""

from __future__ import annotations

import errno
import socket
import struct
import sys

import pytest
import trio

from portprobe.model import ProbeSpec
from portprobe.probe.connect import (
    IP_RECVERR,
    IP_TTL,
    SOL_IP,
    ConnectFailure,
    KernelReport,
    SocketOptions,
    open_tcp,
    parse_extended_error,
)
from portprobe.probe.errors import classify_connect_error

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="IP_RECVERR and the error queue are Linux's"
)


def spec_for(port: int, address: str = "127.0.0.1") -> ProbeSpec:
    family = "ipv6" if ":" in address else "ipv4"
    return ProbeSpec(
        target=address, host=address, address=address, family=family, port=25, connect_port=port
    )


def extended_error(origin: int, icmp_type: int, code: int, offender: bytes) -> bytes:
    """``struct sock_extended_err`` followed by the offender's sockaddr."""
    return struct.pack("=IBBBBII", errno.EHOSTUNREACH, origin, icmp_type, code, 0, 0, 0) + offender


def sockaddr_in(address: str) -> bytes:
    return struct.pack("=HH4s8x", socket.AF_INET, 0, socket.inet_aton(address))


def sockaddr_in6(address: str) -> bytes:
    return struct.pack(
        "=HHI16sI", socket.AF_INET6, 0, 0, socket.inet_pton(socket.AF_INET6, address), 0
    )


def test_an_ipv4_router_s_time_exceeded_is_read_with_its_sender() -> None:
    report = parse_extended_error(extended_error(2, 11, 0, sockaddr_in("198.18.1.1")))
    assert report is not None
    assert (report.family, report.type, report.code, report.sender, report.errno) == (
        "ipv4",
        11,
        0,
        "198.18.1.1",
        "EHOSTUNREACH",
    )


def test_an_ipv6_administratively_prohibited_is_read_with_its_sender() -> None:
    report = parse_extended_error(extended_error(3, 1, 1, sockaddr_in6("2001:db8:1::1")))
    assert report is not None
    assert (report.family, report.type, report.code, report.sender) == (
        "ipv6",
        1,
        1,
        "2001:db8:1::1",
    )


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00" * 15,  # shorter than the struct
        extended_error(1, 0, 0, b""),  # SO_EE_ORIGIN_LOCAL: no ICMP, no sender
        extended_error(2, 11, 0, b"\x02\x00"),  # an offender cut short
        extended_error(3, 3, 0, sockaddr_in("198.18.1.1")),  # v6 origin, v4-sized address
    ],
)
def test_anything_else_on_the_queue_is_no_icmp_report(data: bytes) -> None:
    assert parse_extended_error(data) is None


def test_ttl_outside_one_to_255_is_refused() -> None:
    for ttl in (0, 256, -1):
        with pytest.raises(ValueError, match="ttl must be 1-255"):
            SocketOptions(ttl=ttl)


async def test_options_are_set_before_the_syn_and_the_stream_is_usable() -> None:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    async with trio.open_nursery() as nursery:

        async def greet(stream: trio.SocketStream) -> None:
            await stream.send_all(b"220 hi\r\n")

        nursery.start_soon(trio.serve_listeners, greet, listeners)
        stream = await open_tcp(spec_for(port), SocketOptions(ttl=7))
        async with stream:
            assert stream.socket.getsockopt(SOL_IP, IP_TTL) == 7
            if sys.platform.startswith("linux"):  # cleared once connected (spec "Path")
                assert stream.socket.getsockopt(SOL_IP, IP_RECVERR) == 0
            assert await stream.receive_some(100) == b"220 hi\r\n"
        nursery.cancel_scope.cancel()


@linux_only
async def test_a_refused_connect_carries_the_errno_and_no_icmp() -> None:
    """A RST is not an ICMP error: the queue is empty, the report says the errno alone."""
    with socket.socket() as probe_port:
        probe_port.bind(("127.0.0.1", 0))
        port = probe_port.getsockname()[1]  # bound, not listening: the kernel sends RST
        with pytest.raises(ConnectFailure) as caught:
            await open_tcp(spec_for(port))
    assert caught.value.errno == errno.ECONNREFUSED
    assert caught.value.report == KernelReport(errno.ECONNREFUSED, None)
    # The same words as trio's own connect, so reports read as before.
    assert caught.value.strerror == (
        f"Error connecting to ('127.0.0.1', {port}): {errno_text(errno.ECONNREFUSED)}"
    )
    state, error = classify_connect_error(caught.value)
    assert (state, error.errno, error.icmp) == ("refused", "ECONNREFUSED", None)


def test_the_classifier_keeps_the_kernel_s_icmp_report() -> None:
    icmp = parse_extended_error(extended_error(2, 3, 13, sockaddr_in("198.18.1.1")))
    failure = ConnectFailure(KernelReport(errno.EHOSTUNREACH, icmp))
    state, error = classify_connect_error(failure)
    assert state == "unreachable"
    assert error.icmp == icmp
    assert error.icmp is not None and error.icmp.meaning == "admin-prohibited"
    assert error.icmp.to_dict() == {
        "type": 3,
        "code": 13,
        "from": "198.18.1.1",
        "meaning": "admin-prohibited",
    }
    assert "icmp" not in error.to_dict()  # the JSON key comes with the path report


async def test_a_cancelled_connect_closes_its_socket() -> None:
    """Cancelled while the SYN is out: the socket is closed by us, not left to the GC
    (which would say so with a ResourceWarning "unclosed socket")."""
    import gc
    import warnings

    with socket.socket() as listener, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        with trio.move_on_after(0) as scope:
            await open_tcp(spec_for(port))
        assert scope.cancelled_caught
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []


def errno_text(number: int) -> str:
    import os

    return os.strerror(number)
