"""A delay line: holds packets queued by ``iptables -j NFQUEUE``, then lets them go.

The kernel here has no ``netem`` qdisc, so latency and loss are made in userspace: the
router's rules send packets to an NFQUEUE, this program receives each packet's id over
netfilter's netlink socket (nfnetlink_queue, ``man 7 netlink``; message layouts from
``linux/netfilter/nfnetlink_queue.h``), and issues the verdict ``NF_ACCEPT`` once the
packet has waited ``delay`` — or ``NF_DROP`` at once for the fraction ``loss``. Only
metadata is copied (``NFQNL_COPY_META``): the packet itself never leaves the kernel.

It is also used with a few milliseconds and no loss for the ICMP errors the router
sends: on a path with next to no round-trip time, an ICMP unreachable can arrive while
the client's ``connect()`` still holds the socket lock, and Linux then files it as a
"soft" error and retransmits the SYN instead of failing the connect (``tcp_v4_err`` /
``tcp_v6_err`` with ``sock_owned_by_user``). A real network never answers that fast.

Pure Python and the standard library, so it needs nothing built:
``python -m tests.lab.delayline --queue 2 --delay-ms 40 --loss 0.01``.
"""

from __future__ import annotations

import argparse
import heapq
import os
import random
import select
import signal
import socket
import struct
import sys
import time

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET, NFQNL_MSG_VERDICT, NFQNL_MSG_CONFIG = 0, 1, 2
NFQA_CFG_CMD, NFQA_CFG_PARAMS = 1, 2
NFQNL_CFG_CMD_BIND, NFQNL_CFG_CMD_PF_BIND = 1, 3
NFQNL_COPY_META = 1
NFQA_PACKET_HDR, NFQA_VERDICT_HDR = 1, 2
NF_DROP, NF_ACCEPT = 0, 1
NLM_F_REQUEST, NLM_F_ACK = 0x1, 0x4
NLMSG_ERROR, NLMSG_DONE = 2, 3
NETLINK_NO_ENOBUFS = 5
SOL_NETLINK = 270

_NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid (host order)
_NFGENMSG = struct.Struct("!BBH")  # family, version, res_id (queue number, big-endian)
_NLATTR = struct.Struct("=HH")


def _align(n: int) -> int:
    return (n + 3) & ~3


def _attr(kind: int, payload: bytes) -> bytes:
    raw = _NLATTR.pack(_NLATTR.size + len(payload), kind) + payload
    return raw + b"\0" * (_align(len(raw)) - len(raw))


def _message(msg: int, flags: int, seq: int, family: int, queue: int, attrs: bytes) -> bytes:
    body = _NFGENMSG.pack(family, 0, queue) + attrs
    kind = (NFNL_SUBSYS_QUEUE << 8) | msg
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(body), kind, flags, seq, 0) + body


def iter_messages(data: bytes):  # type: ignore[no-untyped-def]
    """(type, payload) for each netlink message in one datagram."""
    offset = 0
    while offset + _NLMSGHDR.size <= len(data):
        length, kind, _flags, _seq, _pid = _NLMSGHDR.unpack_from(data, offset)
        if length < _NLMSGHDR.size:
            break
        yield kind, data[offset + _NLMSGHDR.size : offset + length]
        offset += _align(length)


def iter_attrs(payload: bytes):  # type: ignore[no-untyped-def]
    offset = 0
    while offset + _NLATTR.size <= len(payload):
        length, kind = _NLATTR.unpack_from(payload, offset)
        if length < _NLATTR.size:
            break
        yield kind & 0x7FFF, payload[offset + _NLATTR.size : offset + length]
        offset += _align(length)


class Queue:
    """One bound NFQUEUE."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.setsockopt(SOL_NETLINK, NETLINK_NO_ENOBUFS, 1)
        self.sock.bind((0, 0))
        self.seq = 0
        for family in (socket.AF_INET, socket.AF_INET6):
            # A no-op on kernels >= 3.8, required before them.
            self._config(family, _attr(NFQA_CFG_CMD, struct.pack("!BxH", 3, family)))
        self._config(
            socket.AF_UNSPEC, _attr(NFQA_CFG_CMD, struct.pack("!BxH", NFQNL_CFG_CMD_BIND, 0))
        )
        self._config(
            socket.AF_UNSPEC, _attr(NFQA_CFG_PARAMS, struct.pack("!IB", 0, NFQNL_COPY_META))
        )

    def _config(self, family: int, attrs: bytes) -> None:
        self.seq += 1
        flags = NLM_F_REQUEST | NLM_F_ACK
        self.sock.send(_message(NFQNL_MSG_CONFIG, flags, self.seq, family, self.number, attrs))
        for kind, payload in iter_messages(self.sock.recv(65536)):
            if kind == NLMSG_ERROR:
                (errno,) = struct.unpack_from("=i", payload)
                if errno != 0:
                    raise OSError(-errno, f"nfqueue {self.number} config: {os.strerror(-errno)}")

    def packet_ids(self, data: bytes) -> list[int]:
        ids = []
        for kind, payload in iter_messages(data):
            if kind != (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
                continue
            for attr, value in iter_attrs(payload[_NFGENMSG.size :]):
                if attr == NFQA_PACKET_HDR:
                    ids.append(struct.unpack_from("!I", value)[0])
        return ids

    def verdict(self, packet_id: int, verdict: int) -> None:
        attrs = _attr(NFQA_VERDICT_HDR, struct.pack("!II", verdict, packet_id))
        self.sock.send(_message(NFQNL_MSG_VERDICT, NLM_F_REQUEST, 0, 0, self.number, attrs))


def run(queue: Queue, delay: float, loss: float, rng: random.Random) -> dict[str, int]:
    held: list[tuple[float, int]] = []  # (due, packet id): a constant delay keeps order
    stats = {"accepted": 0, "dropped": 0}
    stop = False

    def _stop(_signum: int, _frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    while not stop:
        timeout = max(0.0, held[0][0] - time.monotonic()) if held else 0.5
        try:
            readable, _, _ = select.select([queue.sock], [], [], timeout)
        except InterruptedError:
            continue
        if readable:
            now = time.monotonic()
            for packet_id in queue.packet_ids(queue.sock.recv(1 << 16)):
                if loss and rng.random() < loss:
                    queue.verdict(packet_id, NF_DROP)
                    stats["dropped"] += 1
                else:
                    heapq.heappush(held, (now + delay, packet_id))
        now = time.monotonic()
        while held and held[0][0] <= now:
            _, packet_id = heapq.heappop(held)
            queue.verdict(packet_id, NF_ACCEPT)
            stats["accepted"] += 1
    for _, packet_id in held:  # let go of what we hold rather than strand it
        queue.verdict(packet_id, NF_ACCEPT)
    return stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--queue", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--loss", type=float, default=0.0, help="fraction dropped, 0..1")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    queue = Queue(args.queue)
    print(f"delayline queue={args.queue} delay={args.delay_ms}ms loss={args.loss}", flush=True)
    stats = run(queue, args.delay_ms / 1000, args.loss, random.Random(args.seed))
    print(f"delayline queue={args.queue} {stats}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
