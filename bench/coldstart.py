"""Cold start: ``portprobe --help``, and process start → first connection on a listener.

Both beside ``python -c pass`` (the interpreter's own floor) in the same run, the three
commands alternating, median of ``--runs`` (default 20). The installed entry point of the
project's virtualenv is run directly (``.venv/bin/portprobe``), not through ``uv run``,
whose own start-up would be measured too.

"First SYN": a listener on 127.0.0.1 notes the moment ``accept`` returns (the handshake
it completes is the first SYN plus one loopback round trip, microseconds), measured from
just before ``Popen``; the listener then greets and closes so the run ends at once. The
portprobe command is ``portprobe --target 127.0.0.1 --port-map 25=PORT --ports 25 -q``.
For comparison, a bare ``python -c "socket.create_connection(...)"`` is timed the same way.

If a target is missed, ``python -X importtime`` of the same command shows which modules
cost what; the top of that list is printed (and written with ``--write``).

    uv run python bench/coldstart.py [--runs 20] [--write]

Loopback only.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common

VENV_BIN = common.PROJECT_DIR / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python")
PORTPROBE = str(VENV_BIN / "portprobe")

TARGET_HELP = 0.3
TARGET_VERSION = 0.15  # issue 11: --version must not pay for the probe stack
TARGET_FIRST_SYN = 0.4


class AcceptClock:
    """A loopback listener that notes when each connection is accepted, greets, closes."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[float] = []
        self._stop = False
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted.append(time.perf_counter())
            with contextlib.suppress(OSError):
                conn.sendall(b"554 5.7.1 bench listener, goodbye\r\n")
            conn.close()

    def close(self) -> None:
        self._stop = True
        self._thread.join(timeout=2)
        self.sock.close()


def time_exit(argv: list[str]) -> float:
    """Wall time from Popen to exit."""
    started = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - started


def time_first_connection(argv: list[str], clock: AcceptClock) -> float | None:
    """Wall time from Popen to the listener's first accept of this process's connection."""
    seen = len(clock.accepted)
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    time.sleep(0.01)  # let the accept thread note a connection made just before exit
    if len(clock.accepted) <= seen:
        return None
    return clock.accepted[seen] - started


def importtime_top(argv: list[str], limit: int = 15) -> list[tuple[str, float, float]]:
    """(top-level module, cumulative ms, self ms) of the first-level imports, slowest first."""
    env = dict(os.environ, PYTHONPROFILEIMPORTTIME="1")
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    rows: list[tuple[str, float, float]] = []
    pattern = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)")
    for line in done.stderr.splitlines():
        match = pattern.match(line)
        if match and len(match.group(3)) <= 1:  # depth 0: imported by the program itself
            rows.append((match.group(4), int(match.group(2)) / 1000, int(match.group(1)) / 1000))
    rows.sort(key=lambda r: -r[1])
    return rows[:limit]


#: What the diagnose path pays before its first SYN, each alone in a fresh interpreter.
COMPONENTS = {
    "everything the loopback diagnose imports (cli, diagnose, targets.resolve, report, render)": (
        "import portprobe.cli, portprobe.diagnosis, portprobe.targets.resolve, "
        "portprobe.report.build, portprobe.render"
    ),
    "what a literal --target needs before its first SYN (cli, diagnose)": (
        "import portprobe.cli, portprobe.diagnosis"
    ),
    "import portprobe.targets.resolve": "import portprobe.targets.resolve",
    "import portprobe.diagnosis": "import portprobe.diagnosis",
    "import trio": "import trio",
    "import dns.asyncresolver (dnspython)": "import dns.asyncresolver",
    "import portprobe.cli (typer)": "import portprobe.cli",
    "import typer._adapters (pydantic; typer ≥ 0.29 runs it to coerce option values)": (
        "import typer._adapters"
    ),
    "import portprobe.report.build, portprobe.render": (
        "import portprobe.report.build, portprobe.render"
    ),
    "portprobe.probe.tls.make_contexts() (trust store)": (
        "from portprobe.probe.tls import make_contexts; make_contexts()"
    ),
    "import ssl": "import ssl",
}


def component_costs(runs: int) -> list[list[str]]:
    """Median wall of ``python -c CODE`` minus median of ``python -c pass``, alternating."""
    # A component this environment lacks (typer._adapters before typer 0.29) is left out.
    present = {
        name: code
        for name, code in COMPONENTS.items()
        if subprocess.run([PYTHON, "-c", code], capture_output=True, check=False).returncode == 0
    }
    samples: dict[str, list[float]] = {name: [] for name in ["pass", *present]}
    for _ in range(runs):
        samples["pass"].append(time_exit([PYTHON, "-c", "pass"]))
        for name, code in present.items():
            samples[name].append(time_exit([PYTHON, "-c", code]))
    floor = common.median(samples.pop("pass"))
    return [
        [name, f"{1000 * (common.median(v) - floor):.0f}"]
        for name, v in sorted(samples.items(), key=lambda kv: -common.median(kv[1]))
    ]


def bytecode_state() -> str:
    """Cold start depends on whether the venv holds .pyc files Python may not write itself."""
    dont_write = os.environ.get("PYTHONDONTWRITEBYTECODE") or "unset"
    trio_dirs = list((common.PROJECT_DIR / ".venv" / "lib").glob("python3*/site-packages/trio"))
    compiled = bool(trio_dirs) and any(trio_dirs[0].glob("__pycache__/*.pyc"))
    return (
        f"PYTHONDONTWRITEBYTECODE={dont_write}; venv byte-compiled (trio has .pyc): "
        f"{'yes' if compiled else 'no'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--write", action="store_true", help="update bench/README.md")
    args = parser.parse_args()

    clock = AcceptClock()
    probe_cmd = [PORTPROBE, "--target", "127.0.0.1", "--port-map", f"25={clock.port}"]
    probe_cmd += ["--ports", "25", "-q"]
    bare_connect = [
        PYTHON,
        "-c",
        f"import socket; socket.create_connection(('127.0.0.1', {clock.port})).close()",
    ]
    commands = {
        "python -c pass": ([PYTHON, "-c", "pass"], "exit"),
        "portprobe --help": ([PORTPROBE, "--help"], "exit"),
        "portprobe --version": ([PORTPROBE, "--version"], "exit"),
        "python -c 'socket.create_connection(...)' → accept": (bare_connect, "syn"),
        "portprobe --target 127.0.0.1 … -q → accept": (probe_cmd, "syn"),
    }
    samples: dict[str, list[float]] = {name: [] for name in commands}
    try:
        for argv, _ in commands.values():  # warm the page cache once
            time_exit(argv)
        for _ in range(args.runs):
            for name, (argv, kind) in commands.items():
                value = time_exit(argv) if kind == "exit" else time_first_connection(argv, clock)
                if value is not None:
                    samples[name].append(value)
    finally:
        clock.close()

    med = {name: common.median(v) if v else float("nan") for name, v in samples.items()}
    help_ok = med["portprobe --help"] < TARGET_HELP
    version_ok = med["portprobe --version"] < TARGET_VERSION
    syn_ok = med["portprobe --target 127.0.0.1 … -q → accept"] < TARGET_FIRST_SYN
    rows = []
    for name, values in samples.items():
        target = ""
        if name == "portprobe --help":
            target = f"< {TARGET_HELP} s: {common.met(help_ok)}"
        elif name == "portprobe --version":
            target = f"< {TARGET_VERSION} s: {common.met(version_ok)}"
        elif name.startswith("portprobe --target"):
            target = f"< {TARGET_FIRST_SYN} s: {common.met(syn_ok)}"
        rows.append(
            [
                name,
                len(values),
                f"{med[name]:.3f}",
                f"{min(values):.3f}" if values else "–",
                f"{max(values):.3f}" if values else "–",
                target or "(floor)",
            ]
        )
    table = common.markdown_table(
        ["command", "runs", "median (s)", "min (s)", "max (s)", "target"], rows
    )
    print(table)

    imports = importtime_top([*probe_cmd[:1], "--help"])
    imports_probe = importtime_top(probe_cmd)
    import_tables = []
    for title, rows_ in (("`portprobe --help`", imports), ("the loopback diagnose", imports_probe)):
        t = common.markdown_table(
            ["module (imported at top level)", "cumulative (ms)", "self (ms)"],
            [[m, f"{c:.1f}", f"{s:.1f}"] for m, c, s in rows_],
        )
        import_tables.append(
            f"Slowest first-level imports of {title} (`-X importtime`, one run; a lazy "
            f"import inside a function shows at the first level):\n\n{t}\n"
        )
        print(f"\n{title}\n{t}")

    components = common.markdown_table(
        ["component (alone, fresh interpreter)", "cost over `python -c pass` (ms, median)"],
        component_costs(max(5, args.runs // 2)),
    )
    print(f"\n{components}")

    if args.write:
        body = (
            "## Cold start (issue 7, part 3)\n\n"
            f"{common.provenance()}"
            f"- {bytecode_state()}\n"
            f"- {args.runs} rounds, the four commands alternating; `.venv/bin/portprobe` "
            "run directly (no `uv run`); times from `Popen` to exit, or to the listener's "
            "`accept`.\n\n"
            f"{table}\n\nWhat the diagnose path pays before its first SYN, each piece alone "
            f"in a fresh interpreter ({max(5, args.runs // 2)} rounds). The pieces overlap "
            "and do not add up: each alone also pays for the standard-library modules the "
            "others share, `portprobe.targets.resolve` and `portprobe.diagnosis` include "
            "trio (the former dnspython too), and `make_contexts` imports `portprobe.probe`, "
            f"hence trio:\n\n{components}\n\n" + "\n".join(import_tables)
        )
        common.update_readme("coldstart", body)


if __name__ == "__main__":
    main()
