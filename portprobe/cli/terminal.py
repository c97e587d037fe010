"""Everything the CLI does for a person at a terminal, and nothing the library does.

The progress line on stderr, Ctrl-C and SIGTERM turned into a partial report (flagged
``interrupted``, never lost), colour and width decided from the real streams, and the
``-o`` file written atomically *before* stdout (a broken pipe must not cost the report).
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import sys
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from portprobe.cli.output import check_writable, resolve_output_path, write_atomically
from portprobe.errors import OutputError

if TYPE_CHECKING:
    from portprobe.diagnosis import Diagnosis
    from portprobe.model import ProbeResult
    from portprobe.outcome import Report


def is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False


def color_enabled(
    stream: TextIO, mode: str = "auto", environ: Mapping[str, str] = os.environ
) -> bool:
    """``--color always|never|auto``; auto is a terminal without NO_COLOR.

    https://no-color.org: NO_COLOR set to a non-empty value disables colour, an empty one
    counts as unset, and a command-line option overrides it.
    """
    if mode == "always":
        return True
    if mode == "never":
        return False
    return is_terminal(stream) and not environ.get("NO_COLOR")


def terminal_width(stream: TextIO) -> int | None:
    """The terminal's columns; None when piped (the renderers pick their own width)."""
    return shutil.get_terminal_size((120, 24)).columns if is_terminal(stream) else None


class Progress:
    """A live line on stderr while probes run; silent when stderr is not a terminal."""

    def __init__(self, enabled: bool, stream: TextIO | None = None) -> None:
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.done = 0
        self.port25: Counter[str] = Counter()

    def update(self, result: ProbeResult) -> None:
        self.done += 1
        if result.spec.port == 25:
            self.port25[result.state] += 1
        if self.enabled:
            states = ", ".join(f"{n} {s}" for s, n in self.port25.most_common())
            line = f"probing: {self.done} done" + (f" · port 25: {states}" if states else "")
            self.stream.write("\r\x1b[K" + line[:200])
            self.stream.flush()

    def clear(self) -> None:
        if self.enabled:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def run_until_stopped(
    diagnosis: Diagnosis, progress: Progress, deadline: float | None = None
) -> tuple[Report, str | None]:
    """Run ``diagnosis`` until it ends, Ctrl-C or SIGTERM arrives, or ``deadline`` passes.

    ``deadline`` is a ``time.monotonic()`` instant. A run that is stopped keeps what
    completed: the report is flagged ``interrupted``, and the second value says what
    stopped it (None when nothing did).
    """
    import trio

    stopped: str | None = None

    async def main() -> None:
        nonlocal stopped
        # The receiver is in place before the first task starts: a signal that arrives
        # before the watcher first runs (trio may run a lookup task first, and its query
        # be answered by a Ctrl-C) waits in it instead of raising KeyboardInterrupt inside
        # a nursery, where it would come out as an exception group.
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:

                async def watch_for_signals() -> None:
                    nonlocal stopped
                    async for _ in signals:
                        stopped = "interrupted"
                        nursery.cancel_scope.cancel()
                        return

                nursery.start_soon(watch_for_signals)
                left = math.inf if deadline is None else max(0.0, deadline - time.monotonic())
                with trio.move_on_after(left) as in_time:
                    await diagnosis.run()
                if in_time.cancelled_caught and stopped is None:
                    stopped = "deadline"
                nursery.cancel_scope.cancel()

    try:
        trio.run(main)
    except KeyboardInterrupt:  # before the signal receiver was in place
        stopped = "interrupted"
    finally:
        progress.clear()
    return diagnosis.report(interrupted=stopped is not None), stopped


@dataclass(frozen=True)
class Destination:
    """Where the report goes: stdout in one format, optionally a file in another."""

    stdout_format: str
    file_format: str
    path: Path | None

    @classmethod
    def prepare(cls, fmt: str | None, output: Path | None, when: datetime) -> Destination:
        """Fail before probing, not after, when the report could not be written."""
        file_format = fmt or "json"
        path = None
        if output is not None:
            path = resolve_output_path(output, file_format, when)
            check_writable(path)
        return cls(stdout_format=fmt or "table", file_format=file_format, path=path)


def emit(
    report: Report,
    destination: Destination,
    *,
    quiet: bool,
    verbose: bool,
    color: bool,
) -> OutputError | None:
    """Write the file, then stdout; what could not be written is returned, not raised."""
    from portprobe.render import render, verdict_line

    failure: OutputError | None = None
    if destination.path is not None:
        try:
            text = render(destination.file_format, report, verbose=verbose)
            write_atomically(destination.path, text)
        except OutputError as exc:
            failure = exc
    try:
        if quiet and destination.stdout_format == "table":
            sys.stdout.write(verdict_line(report) + "\n")
        else:
            text = render(
                destination.stdout_format,
                report,
                color=color,
                width=terminal_width(sys.stdout),
                verbose=verbose,
            )
            sys.stdout.write(text if text.endswith("\n") else text + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        # Nobody reads stdout any more (`portprobe | head`): point it at /dev/null so that
        # the interpreter's own flush at exit does not print a second error.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except OSError as exc:  # a full disk or a device that takes nothing (/dev/full)
        failure = failure or OutputError(f"cannot write to stdout: {exc.strerror or exc}")
    return failure
