"""A simulated path for the TTL ladder: routers, a host, and one rule on port 25.

``FakePath(routers, rule)`` is a connector (probe/connect.py's seam): a SYN with TTL t
below the host's distance gets the time-exceeded of router t (the kernel's ConnectFailure
with its ICMP report), one at the host's distance connects; ``rule`` changes what port 25
gets from hop ``at`` on. No sockets: silence is a sleep that only trio's clock ends.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field

import trio

from portprobe.model import IcmpReport, ProbeSpec
from portprobe.probe.connect import ConnectFailure, KernelReport, SocketOptions


class FakeStream(trio.abc.Stream):
    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        pass

    async def wait_send_all_might_not_block(self) -> None:
        pass

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        return b""

    async def aclose(self) -> None:
        pass


@dataclass
class FakePath:
    routers: list[str]  # hop 1.. (the host is one hop further)
    rule: str | None = None  # drop | reset | prohibited | proxy | local-drop | local-reject
    at: int = 1  # the hop whose filter applies the rule (FORWARD: TTLs above it)
    host_address: str = "203.0.113.10"
    local_address: str = "192.168.1.2"  # address-text
    sent: list[tuple[int, int]] = field(default_factory=list)  # (port, ttl)

    @property
    def distance(self) -> int:
        return len(self.routers) + 1

    def _exceeded(self, ttl: int) -> ConnectFailure:
        icmp = IcmpReport("ipv4", 11, 0, self.routers[ttl - 1], "EHOSTUNREACH")
        return ConnectFailure(KernelReport(errno.EHOSTUNREACH, icmp))

    async def __call__(self, spec: ProbeSpec, options: SocketOptions, /) -> trio.abc.Stream:
        ttl = options.ttl or 64
        self.sent.append((spec.port, ttl))
        await trio.sleep(0.001 * ttl)
        rule = self.rule if spec.port == 25 else None
        if rule == "local-drop":
            await trio.sleep_forever()
        if rule == "local-reject":
            icmp = IcmpReport("ipv4", 3, 3, self.local_address, "ECONNREFUSED", local=True)
            raise ConnectFailure(KernelReport(errno.ECONNREFUSED, icmp))
        if rule == "proxy" and ttl >= self.at:
            return FakeStream()
        if rule in ("drop", "reset", "prohibited") and ttl > self.at and ttl <= self.distance:
            if rule == "drop":
                await trio.sleep_forever()
            if rule == "reset":
                raise ConnectFailure(KernelReport(errno.ECONNREFUSED))
            router = (
                self.routers[self.at - 1] if self.at <= len(self.routers) else self.host_address
            )
            icmp = IcmpReport("ipv4", 3, 13, router, "EHOSTUNREACH")
            raise ConnectFailure(KernelReport(errno.EHOSTUNREACH, icmp))
        if rule == "host-drop" and ttl >= self.distance:
            await trio.sleep_forever()
        if ttl < self.distance:
            raise self._exceeded(ttl)
        return FakeStream()
