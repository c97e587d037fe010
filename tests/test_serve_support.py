"""No tests here: plumbing for the ``portprobe serve`` tests.

An exporter on a loopback port inside the test's trio run, a minimal HTTP client over
real sockets, and a loopback SMTP host whose port 25 the test can hold, silence or let
speak."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from portprobe.request import DiagnoseRequest
from portprobe.serve.config import Config, Module
from portprobe.serve.exporter import Exporter
from portprobe.shared import Shared
from tests.servers import Transcript, serve_raw, simple_smtp_dialogue


@dataclass
class Port25:
    """What the loopback host does on port 25: ``smtp`` (greets), ``silent`` (accepts and
    never speaks: a filter holding the port, verdict ``blocked``). While ``hold`` is set,
    a connection waits for it before doing either."""

    mode: str = "smtp"
    hold: trio.Event | None = None
    connections: int = 0
    open: int = 0  # connections open now
    peak: int = 0  # most open at once


@dataclass
class SmtpHost:
    port25: int
    port587: int
    behaviour: Port25 = field(default_factory=Port25)

    def request(self, **overrides: Any) -> DiagnoseRequest:
        fields: dict[str, Any] = {
            "targets": ("127.0.0.1",),
            "ports": (25, 587),
            "families": ("ipv4",),
            "port_map": {25: self.port25, 587: self.port587},
            "readiness": False,
            "timeout": 5.0,
        }
        fields.update(overrides)
        return DiagnoseRequest(**fields)


async def start_smtp_host(nursery: trio.Nursery) -> SmtpHost:
    behaviour = Port25()

    async def port25(stream: trio.abc.Stream, transcript: Transcript) -> None:
        behaviour.connections += 1
        behaviour.open += 1
        behaviour.peak = max(behaviour.peak, behaviour.open)
        try:
            if behaviour.hold is not None:
                await behaviour.hold.wait()
            if behaviour.mode == "silent":
                await trio.sleep_forever()
            await simple_smtp_dialogue(stream, transcript)
        finally:
            behaviour.open -= 1

    p25, _ = await serve_raw(nursery, port25)
    p587, _ = await serve_raw(nursery, simple_smtp_dialogue)
    return SmtpHost(p25, p587, behaviour)


def config(modules: Mapping[str, DiagnoseRequest | Module]) -> Config:
    return Config(
        {
            name: value if isinstance(value, Module) else Module(name, value)
            for name, value in modules.items()
        }
    )


@contextlib.asynccontextmanager
async def running_exporter(
    cfg: Config, *, shared: Shared | None = None, **options: Any
) -> AsyncIterator[tuple[Exporter, int]]:
    """An exporter serving on 127.0.0.1 (a free port) until the block ends."""
    exporter = Exporter(cfg, shared or Shared(), **options)
    exporter.check()
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    async with trio.open_nursery() as nursery:
        await nursery.start(exporter.run, listeners)
        yield exporter, port
        nursery.cancel_scope.cancel()


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()


async def get(
    port: int, path: str, headers: Mapping[str, str] | None = None, *, method: str = "GET"
) -> Answer:
    """One request on its own connection (``Connection: close``), read to the end."""
    with trio.fail_after(30):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            head += "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
            await stream.send_all((head + "\r\n").encode())
            data = bytearray()
            with contextlib.suppress(trio.BrokenResourceError):
                while chunk := await stream.receive_some(65536):
                    data += chunk
    raw_head, _, body = bytes(data).partition(b"\r\n\r\n")
    lines = raw_head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    parsed = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        parsed[name.strip().lower()] = value.strip()
    return Answer(status, parsed, body)


def sample(exporter: Exporter, name: str, **labels: str) -> float:
    value = exporter.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def wait_until(predicate: Any, *, limit: float = 20.0) -> None:
    """Until ``predicate()`` holds (checked every 10 ms); fails after ``limit`` seconds."""
    with trio.fail_after(limit):
        while not predicate():
            await trio.sleep(0.01)


def start_serve(config: Path, **options: Any) -> tuple[subprocess.Popen[str], str]:
    """``serve_main`` in its own process on a free loopback port; (process, base URL)."""
    extra = "".join(f", {k}={v!r}" for k, v in options.items())
    code = (
        "import sys; from pathlib import Path; "
        "from portprobe.serve.command import ServeOptions, serve_main; "
        "say = lambda line: print(line, file=sys.stderr, flush=True); "
        "sys.exit(serve_main(ServeOptions(listen='127.0.0.1:0', "
        f"config=Path(sys.argv[1]){extra}), say=say))"
    )
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(config)], stderr=subprocess.PIPE, text=True, cwd=root
    )
    assert proc.stderr is not None
    line = proc.stderr.readline()
    if "listening on " not in line:
        proc.kill()
        raise AssertionError(f"serve did not start: {line}{proc.stderr.read()}")
    return proc, line.split("listening on ", 1)[1].strip().rstrip("/")


__all__ = [
    "Answer",
    "Port25",
    "SmtpHost",
    "config",
    "get",
    "running_exporter",
    "sample",
    "start_serve",
    "start_smtp_host",
    "wait_until",
]
