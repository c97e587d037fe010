"""What every benchmark shares: the machine it ran on, medians, tables, and bench/README.md.

Benchmarks are not tests: nothing here asserts a time. Each script prints a side-by-side
table and, with ``--write``, replaces its own section of ``bench/README.md`` (between
``<!-- bench:NAME -->`` markers) with the table, the machine, the command and the date.

Network rule: benchmarks send traffic only to loopback (127.0.0.0/8, ::1) or to lab hosts
inside network namespaces the lab module creates.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_DIR = BENCH_DIR.parent
README = BENCH_DIR / "README.md"


def raise_fd_limit() -> int:
    """Soft RLIMIT_NOFILE up to the hard limit: thousands of sockets at once need it."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def machine() -> str:
    """One line: CPUs, kernel, Python; what a reader needs to compare figures."""
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} CPU ({cpu}), Linux {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def now_utc() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def command_line() -> str:
    """The command that produced the figures, as a user would type it from the project."""
    script = Path(sys.argv[0]).resolve()
    try:
        script_text = str(script.relative_to(PROJECT_DIR))
    except ValueError:
        script_text = str(script)
    return shlex.join(["uv", "run", "python", script_text, *sys.argv[1:]])


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def vm_hwm_kib() -> int | None:
    """Peak resident set size of this process (VmHWM), in KiB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    from tabulate import tabulate

    return str(tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True))


def met(ok: bool) -> str:
    return "met" if ok else "**MISSED**"


def update_readme(name: str, body: str) -> None:
    """Replace the section ``name`` of bench/README.md (append it if it is new)."""
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{start}\n{body.rstrip()}\n{end}"
    text = README.read_text() if README.exists() else "# portprobe benchmarks\n"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _m: block, text)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    README.write_text(text)


def load_average() -> str:
    """Other work on the machine skews every figure: say how busy it was."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def git_state() -> str:
    head = run_text(["git", "-C", str(PROJECT_DIR), "rev-parse", "--short", "HEAD"])
    dirty = run_text(["git", "-C", str(PROJECT_DIR), "status", "--porcelain", "portprobe"])
    return f"{head or 'unknown'}{' + uncommitted changes in portprobe/' if dirty else ''}"


def provenance() -> str:
    return (
        f"- machine: {machine()}\n- code: commit {git_state()}\n"
        f"- command: `{command_line()}`\n- date: {now_utc()} "
        f"(load average when written: {load_average()})\n"
    )


def run_text(argv: Sequence[str]) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=False).stdout.strip()
