"""A connector seam over trio's in-memory streams: probes without sockets, for timing tests.

Each connection gets a fresh ``memory_stream_pair``; its server half runs ``handler`` in
the test's nursery. Nothing here touches the kernel, so trio's mock clock may jump the
moment every task waits (``autojump_threshold=0``) and a timing assertion is exact.
The net counts connections in flight, overall and per address, from connect to the end
of the server's handler. Probes must set ``ProbeConfig.ehlo_name``: a memory stream has
no socket to take a local address from.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable

import trio
import trio.testing

from portprobe.model import ProbeSpec
from tests.servers import Transcript, simple_smtp_dialogue

MemoryHandler = Callable[[trio.abc.Stream, ProbeSpec, Transcript], Awaitable[None]]


async def greet_at_once(stream: trio.abc.Stream, spec: ProbeSpec, t: Transcript) -> None:
    await simple_smtp_dialogue(stream, t)  # type: ignore[arg-type]


class MemoryNet:
    def __init__(self, nursery: trio.Nursery, handler: MemoryHandler = greet_at_once) -> None:
        self.nursery = nursery
        self.handler = handler
        self.connections: list[ProbeSpec] = []
        self.on_connect: Callable[[ProbeSpec], None] | None = None
        self.now = 0
        self.peak = 0
        self.by_address: Counter[str] = Counter()
        self.peak_by_address = 0

    async def __call__(self, spec: ProbeSpec, _options: object = None) -> trio.SocketStream:
        assert spec.address is not None
        client, server = trio.testing.memory_stream_pair()
        self.connections.append(spec)
        self.now += 1
        self.peak = max(self.peak, self.now)
        self.by_address[spec.address] += 1
        self.peak_by_address = max(self.peak_by_address, self.by_address[spec.address])
        self.nursery.start_soon(self._serve, server, spec)
        if self.on_connect is not None:
            self.on_connect(spec)
        return client  # type: ignore[return-value]  # a Stream; the engine needs no more

    async def _serve(self, stream: trio.abc.Stream, spec: ProbeSpec) -> None:
        assert spec.address is not None
        try:
            await self.handler(stream, spec, Transcript())
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            self.now -= 1
            self.by_address[spec.address] -= 1
            await trio.aclose_forcefully(stream)
