"""What a second diagnosis in the same process costs against the first (issue 21).

A long-running process (``portprobe serve``, a library user) runs many diagnoses. Each one
used to build every resource itself: TLS contexts with the system trust store, the
platform table, the catalog, DNS resolvers. With one :class:`portprobe.Shared` they are
built once. This script runs the same loopback diagnosis ``--runs`` times in one process,
first each with its own resources, then all with one ``Shared``, and prints the first
run and the median of the later ones for both.

    uv run python bench/second_diagnosis.py [--runs 20] [--write]

Loopback only: one listener on 127.0.0.1 that greets and answers EHLO and QUIT; the
diagnosis probes ports 25 and 587 mapped onto it, so a run is a real TCP + SMTP
conversation whose network part costs well under a millisecond.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import command_line, machine, now_utc, update_readme

import portprobe


async def smtp_listener(listeners: list[trio.SocketListener]) -> None:
    async def serve(stream: trio.SocketStream) -> None:
        async with stream:
            await stream.send_all(b"220 bench ESMTP\r\n")
            buffer = b""
            while True:
                try:
                    data = await stream.receive_some(4096)
                except trio.BrokenResourceError:
                    return
                if not data:
                    return
                buffer += data
                while b"\r\n" in buffer:
                    line, buffer = buffer.split(b"\r\n", 1)
                    verb = line[:4].upper()
                    if verb == b"EHLO":
                        await stream.send_all(b"250-bench\r\n250 PIPELINING\r\n")
                    elif verb == b"QUIT":
                        await stream.send_all(b"221 bye\r\n")
                        return
                    else:
                        await stream.send_all(b"502 no\r\n")

    await trio.serve_listeners(serve, listeners)


async def measure(runs: int) -> dict[str, list[float]]:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    request = portprobe.DiagnoseRequest(
        targets=("127.0.0.1",),
        ports=(25, 587),
        port_map={25: port, 587: port},
        families=("ipv4",),
        readiness=False,
    )
    figures: dict[str, list[float]] = {"own resources": [], "one Shared": []}
    async with trio.open_nursery() as nursery:
        nursery.start_soon(smtp_listener, listeners)
        for label in figures:
            shared = None
            for _ in range(runs):
                start = time.perf_counter()
                if label == "one Shared":
                    if shared is None:
                        shared = portprobe.Shared()
                    diagnosis = portprobe.Diagnosis(request, shared=shared)
                else:
                    diagnosis = portprobe.Diagnosis(request)
                await diagnosis.run()
                report = diagnosis.report()
                figures[label].append(time.perf_counter() - start)
                state = report.probes[0].result.state
                assert state == "open", state
            if not hasattr(portprobe, "Shared"):
                break
        nursery.cancel_scope.cancel()
    return {k: v for k, v in figures.items() if v}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    figures = trio.run(measure, args.runs)
    rows = ["| resources | first run | later runs (median) | later / first |", "|---|---|---|---|"]
    for label, times in figures.items():
        later = statistics.median(times[1:])
        rows.append(
            f"| {label} | {times[0] * 1000:.1f} ms | {later * 1000:.1f} ms | "
            f"{later / times[0]:.2f} × |"
        )
    table = "\n".join(rows)
    print(table)
    if args.write:
        update_readme(
            "second-diagnosis",
            f"## A second diagnosis in the same process (issue 21)\n\n{table}\n\n"
            f"{machine()}; {now_utc()}; `{command_line()}`; {args.runs} runs each.",
        )


if __name__ == "__main__":
    main()
