"""Load figure: peak RSS of 2,000 probes with --concurrency 500 against loopback servers.

    uv run python bench/load.py                  # the figure (CLI and in-process runner)
    uv run python bench/load.py --probes 4000    # other sizes

The servers run in a process of their own (their memory is not counted): trio listeners
on 500 loopback addresses 127.0.1.1 ... (one port for the plain roles 25/587/2525, one
for implicit TLS on 465, with a trustme certificate covering every address), each
greeting after ``--delay`` seconds so that the concurrency limit really binds.

Each measured run is a fresh child process; its peak RSS is ``ru_maxrss`` from
``wait4()``. Rows:

- ``baseline``: the interpreter importing portprobe, trio, ssl and dnspython, probing nothing;
- ``runner``: ``portprobe.probe.Runner`` in process, results kept, no report;
- ``cli``: ``portprobe --target ... --concurrency 500 --json`` end to end (plan, probe,
  verdict, render), output discarded.

Only loopback addresses are ever used.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROLES = (25, 465, 587, 2525)


def addresses(n: int) -> list[str]:
    return [f"127.0.{1 + i // 250}.{1 + i % 250}" for i in range(n)]


# --- the server process ---------------------------------------------------------------------


def serve(n_addresses: int, delay: float, workdir: Path) -> None:
    import functools
    import ssl

    import trio
    import trustme

    ca = trustme.CA()
    ca_file = workdir / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*addresses(n_addresses)).configure_cert(context)

    async def dialogue(stream: trio.abc.Stream, name: bytes) -> None:
        # Each address greets with its own name, as distinct real servers do (one greeting
        # shared by every "provider" is what an intercepting middlebox looks like).
        await trio.sleep(delay)
        await stream.send_all(b"220 [" + name + b"] ESMTP bench\r\n")
        buf = b""
        while True:
            while b"\n" not in buf:
                data = await stream.receive_some(4096)
                if not data:
                    return
                buf += data
            line, _, buf = buf.partition(b"\n")
            verb = line.split(b" ", 1)[0].strip().upper()
            if verb == b"EHLO":
                await stream.send_all(b"250-[" + name + b"]\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
            elif verb == b"QUIT":
                await stream.send_all(b"221 bye\r\n")
                return
            else:
                await stream.send_all(b"502 no\r\n")

    async def plain(stream: trio.SocketStream) -> None:
        with contextlib.suppress(trio.BrokenResourceError):
            await dialogue(stream, stream.socket.getsockname()[0].encode())

    async def implicit_tls(stream: trio.SocketStream) -> None:
        try:
            name = stream.socket.getsockname()[0].encode()
            await dialogue(trio.SSLStream(stream, context, server_side=True), name)
        except trio.BrokenResourceError:
            pass

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            ports: dict[str, int] = {}
            for name, handler in (("plain", plain), ("tls", implicit_tls)):
                port = 0
                for address in addresses(n_addresses):
                    listeners = await nursery.start(
                        functools.partial(trio.serve_tcp, handler, port, host=address, backlog=1024)
                    )
                    port = listeners[0].socket.getsockname()[1]
                ports[name] = port
            print(json.dumps({**ports, "ca_file": str(ca_file)}), flush=True)
            await trio.wrap_file(sys.stdin).read()  # serve until the parent closes stdin
            nursery.cancel_scope.cancel()

    raise_fd_limit()
    trio.run(main)


# --- the measured children -------------------------------------------------------------------


def raise_fd_limit() -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 8192 if hard == resource.RLIM_INFINITY else min(8192, hard)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def runner_child(server: dict[str, object], probes: int, concurrency: int) -> None:
    """The library call, exactly as the README shows it (spec "Library API")."""
    import trio

    import portprobe

    plain = int(server["plain"])  # type: ignore[call-overload]
    request = portprobe.DiagnoseRequest(
        targets=tuple(addresses(-(-probes // len(ROLES)))),
        families=("ipv4",),
        ports=tuple(ROLES),
        port_map={role: int(server["tls"]) if role == 465 else plain for role in ROLES},  # type: ignore[call-overload]
        ca_file=Path(str(server["ca_file"])),
        timeout=60,
        connect_timeout=30,
        concurrency=concurrency,
        readiness=False,
    )
    report = trio.run(portprobe.diagnose, request)
    print(json.dumps(dict(Counter(p.result.state for p in report.probes))))


def baseline_child() -> None:
    import dns.asyncresolver  # noqa: F401
    import trio  # noqa: F401

    import portprobe.cli
    import portprobe.diagnosis
    import portprobe.render  # noqa: F401

    print("{}")


def measure(argv: list[str]) -> tuple[float, int, str, int]:
    """Run ``argv``; (wall seconds, peak RSS in bytes, stdout, exit status)."""
    with tempfile.TemporaryFile() as out:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.PIPE, preexec_fn=raise_fd_limit)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        err = proc.stderr.read().decode() if proc.stderr else ""
        if err.strip():
            print(err.strip(), file=sys.stderr)
        out.seek(0)
        return wall, usage.ru_maxrss * 1024, out.read().decode(), proc.returncode


def cli_argv(server: dict[str, object], probes: int, concurrency: int) -> list[str]:
    targets = addresses(-(-probes // len(ROLES)))
    argv = [sys.executable, "-m", "portprobe", "--concurrency", str(concurrency)]
    argv += ["--timeout", "60", "--connect-timeout", "30", "--json", "-4"]
    argv += ["--ca-file", str(server["ca_file"])]
    for role in ROLES:
        argv += ["--port-map", f"{role}={server['tls' if role == 465 else 'plain']}"]
    for address in targets:
        argv += ["--target", address]
    return argv


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--probes", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=500)
    parser.add_argument("--delay", type=float, default=0.1, help="greeting delay (s)")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child", choices=("runner", "baseline"), help=argparse.SUPPRESS)
    parser.add_argument("--server", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.serve:
        return serve(args.serve, args.delay, args.workdir)
    if args.child == "runner":
        return runner_child(json.loads(args.server), args.probes, args.concurrency)
    if args.child == "baseline":
        return baseline_child()

    n_addresses = -(-args.probes // len(ROLES))
    if n_addresses > 250 * 250:
        parser.error("too many probes for the loopback address plan")
    with tempfile.TemporaryDirectory() as workdir:
        server_proc = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--serve",
                str(n_addresses),
                "--delay",
                str(args.delay),
                "--workdir",
                workdir,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert server_proc.stdout is not None
            server = json.loads(server_proc.stdout.readline())
            me = [sys.executable, __file__, "--probes", str(args.probes)]
            me += ["--concurrency", str(args.concurrency)]
            rows = []
            for mode, argv in (
                ("baseline", [*me, "--child", "baseline"]),
                ("runner", [*me, "--child", "runner", "--server", json.dumps(server)]),
                ("cli", cli_argv(server, args.probes, args.concurrency)),
            ):
                wall, rss, out, code = measure(argv)
                if mode == "cli":
                    report = json.loads(out)
                    states = dict(Counter(p["state"] for p in report["probes"]))
                else:
                    states = json.loads(out.strip().splitlines()[-1])
                probes = 0 if mode == "baseline" else sum(states.values())
                rows.append((mode, probes, args.concurrency, wall, rss, code, states))
        finally:
            if server_proc.stdin:
                server_proc.stdin.close()
            server_proc.wait(timeout=30)

    header = f"{'mode':<9} {'probes':>6} {'conc':>5} {'wall s':>7} {'peak RSS MB':>12}"
    print(f"{header} {'exit':>4}  states")
    for mode, probes, conc, wall, rss, code, states in rows:
        shown = ", ".join(f"{n} {s}" for s, n in sorted(states.items())) or "-"
        print(
            f"{mode:<9} {probes:>6} {conc:>5} {wall:>7.2f} {rss / 2**20:>12.1f} {code:>4}  {shown}"
        )


if __name__ == "__main__":
    main()
