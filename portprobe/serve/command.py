"""``portprobe serve``: what the sub-command calls, without the CLI framework.

The CLI registers the sub-command and calls :func:`serve_main` with the options parsed;
every import of the server stack (h11, prometheus_client) happens inside it, so no other
command pays for them. The typer options the sub-command declares (spec "As a service
for Prometheus"):

==========================  ==================  =============================================
option                      ServeOptions field  meaning
==========================  ==================  =============================================
``--listen HOST:PORT``      ``listen``          default ``127.0.0.1:9925``; ``[::1]:9925``;
                                                port 0 picks a free port (printed at start)
``--config FILE``           ``config``          the modules file (portprobe/serve/config.py)
``--cache-ttl DURATION``    ``cache_ttl``       ``60s`` (``0``, ``90``, ``30s``, ``5m``, ``1h``):
                                                how long a finished result answers scrapes
``--readiness-ttl DURATION`` ``readiness_ttl``   ``10m``: how long a mail-readiness answer
                                                (about this machine) serves every module
``--max-concurrent N``      ``max_concurrent``  runs at once (default 8); more → 503
``--timeout-offset SECS``   ``timeout_offset``  taken off Prometheus' scrape timeout (0.5)
``--max-connections N``     ``max_connections`` HTTP connections at once (default 256)
``--per-host N``            ``per_host``        connections to one address, process-wide
the diagnosis options       ``request``         without ``--config``: the ``default`` module,
(``--target``, ``--domain``,                    built as for the main command into one
``--ports``, ``-4``/``-6``,                     :class:`~portprobe.DiagnoseRequest`
``--nameserver``, ...)
==========================  ==================  =============================================

Registering it (in the CLI package; the diagnosis options and their parsing are the main
command's, shared)::

    @app.command("serve")
    def serve(listen: str = DEFAULT_LISTEN, config: Path | None = None, cache_ttl: str = "60s",
              max_concurrent: int = 8, ...the diagnosis options...) -> None:
        from portprobe.serve.command import ServeOptions, serve_main
        options = ServeOptions(listen=listen, config=config, cache_ttl=cache_ttl,
                               max_concurrent=max_concurrent, request=<the DiagnoseRequest>)
        raise typer.Exit(serve_main(options, say=lambda line: typer.echo(line, err=True)))

Exit codes: 0 after SIGTERM or SIGINT (runs in flight are cut and their scrapes answered
with the partial result, flagged ``portprobe_interrupted 1``; then connections close),
2 for bad input (a modules file with a typo: ``FILE:LINE: modules.x.key: problem``; an
address to listen on that is taken or not local), each said in one line.
"""

from __future__ import annotations

import re
import signal
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from portprobe import defaults
from portprobe.errors import InputError, PortprobeError
from portprobe.exit_codes import USAGE
from portprobe.request import DiagnoseRequest

if TYPE_CHECKING:
    import trio

    from portprobe.serve.exporter import Exporter
    from portprobe.shared import Shared

DEFAULT_LISTEN = "127.0.0.1:9925"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


@dataclass(frozen=True)
class ServeOptions:
    listen: str = DEFAULT_LISTEN
    config: Path | None = None
    request: DiagnoseRequest = field(default_factory=DiagnoseRequest)
    cache_ttl: str | float = 60.0
    readiness_ttl: str | float = 600.0
    max_concurrent: int = 8
    timeout_offset: float = 0.5
    max_connections: int = 256
    head_timeout: float = 5.0
    per_host: int = defaults.PER_HOST


def parse_duration(text: str | float, what: str = "--cache-ttl") -> float:
    """``60``, ``60s``, ``1.5m``, ``500ms``, ``1h`` as seconds (0 allowed)."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        if text < 0 or text != text or text == float("inf"):
            raise InputError(f"{what}: must be 0 or more seconds (got {text!r})")
        return float(text)
    found = _DURATION.match(str(text))
    if not found:
        raise InputError(f"{what}: {text!r} is not a duration such as 60s, 5m or 1h")
    return float(found.group(1)) * _UNIT[found.group(2)]


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[IPv6]:PORT`` (an address, not a name) → (address, port)."""
    from portprobe.targets.names import ip_literal

    raw = text.strip()
    host, sep, port = raw.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise InputError(f"--listen: {text!r} is not HOST:PORT (e.g. 127.0.0.1:9925)")
    literal = ip_literal(host)
    if literal is None:
        raise InputError(f"--listen: {host!r} is not an IP address (e.g. 127.0.0.1, [::1])")
    return literal, int(port)


def build_exporter(
    options: ServeOptions,
    shared: Shared | None = None,
    *,
    say: Callable[[str], None] | None = None,
) -> Exporter:
    """The exporter of ``options`` with its modules loaded and checked (no socket yet)."""
    from portprobe.serve.config import default_config, load_config
    from portprobe.serve.exporter import Exporter
    from portprobe.shared import Shared

    for name in ("max_concurrent", "max_connections", "per_host"):
        value = getattr(options, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            flag = "--" + name.replace("_", "-")
            raise InputError(f"{flag}: must be a whole number greater than 0 (got {value!r})")
    offset = parse_duration(options.timeout_offset, "--timeout-offset")
    config = load_config(options.config) if options.config else default_config(options.request)
    exporter = Exporter(
        config,
        shared if shared is not None else Shared(per_host=options.per_host),
        cache_ttl=parse_duration(options.cache_ttl),
        readiness_ttl=parse_duration(options.readiness_ttl, "--readiness-ttl"),
        max_concurrent=options.max_concurrent,
        timeout_offset=offset,
        max_connections=options.max_connections,
        head_timeout=options.head_timeout,
        say=say,
    )
    exporter.check()
    return exporter


def serve_main(
    options: ServeOptions,
    *,
    say: Callable[[str], None],
    shared: Shared | None = None,
    on_listening: Callable[[str], None] | None = None,
) -> int:
    """Run the exporter until SIGTERM/SIGINT; the exit code (0, or 2 for bad input).

    ``say`` writes one line to the user (the CLI passes one that writes to stderr and
    flushes: only the CLI owns the terminal): the address listened on, an error, the
    stop. ``on_listening`` is called with the base URL once the socket listens.
    ``shared``: a :class:`~portprobe.Shared` to use (tests pass one with a counting
    connector); None builds the process's own.
    """
    try:
        address, port = parse_listen(options.listen)
        exporter = build_exporter(options, shared, say=say)
    except PortprobeError as exc:
        say(f"portprobe serve: error: {exc}")
        return USAGE
    import trio

    try:
        trio.run(_serve, exporter, address, port, on_listening, say)
    except _ListenError as exc:
        say(f"portprobe serve: error: {exc}")
        return USAGE
    except KeyboardInterrupt:
        pass
    say("portprobe serve: stopped")
    return 0


class _ListenError(Exception):
    pass


async def _serve(
    exporter: Exporter,
    address: str,
    port: int,
    on_listening: Callable[[str], None] | None,
    say: Callable[[str], None],
) -> None:
    import trio

    try:
        listeners = await trio.open_tcp_listeners(port, host=address, backlog=128)
    except OSError as exc:
        raise _ListenError(f"--listen: cannot listen on {address}:{port}: {exc.strerror}") from None
    bound = listeners[0].socket.getsockname()
    host = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
    url = f"http://{host}:{bound[1]}"
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(exporter.run, listeners)
            say(f"portprobe serve: listening on {url}/")
            if on_listening is not None:
                on_listening(url)
            nursery.start_soon(_stop_on_signal, signals, exporter, nursery.cancel_scope)


async def _stop_on_signal(
    signals: AsyncIterator[int], exporter: Exporter, scope: trio.CancelScope
) -> None:
    async for _ in signals:
        await exporter.stop()
        scope.cancel()
        return
