"""Everything the CLI does for a person at a terminal, and nothing the library does.

The progress line on stderr, Ctrl-C and SIGTERM turned into a partial report (flagged
``interrupted``, never lost), colour and width decided from the real streams, and the
``-o`` file written atomically *before* stdout (a broken pipe must not cost the report).
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from portprobe.errors import OutputError
from portprobe.output import check_writable, resolve_output_path, write_atomically

if TYPE_CHECKING:
    from portprobe.diagnosis import Diagnosis
    from portprobe.model import ProbeResult
    from portprobe.outcome import Report


def is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False


def color_enabled(stream: TextIO) -> bool:
    """Colour only on a terminal, never with NO_COLOR set (https://no-color.org)."""
    return is_terminal(stream) and "NO_COLOR" not in os.environ


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


def run_until_interrupted(diagnosis: Diagnosis, progress: Progress) -> Report:
    """Run ``diagnosis``; Ctrl-C or SIGTERM stops it and keeps what completed."""
    import trio

    async def main() -> bool:
        interrupted = False
        async with trio.open_nursery() as nursery:

            async def watch_for_signals() -> None:
                nonlocal interrupted
                with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                    async for _ in signals:
                        interrupted = True
                        nursery.cancel_scope.cancel()
                        return

            nursery.start_soon(watch_for_signals)
            await diagnosis.run()
            nursery.cancel_scope.cancel()
        return interrupted

    try:
        interrupted = trio.run(main)
    except KeyboardInterrupt:  # before the signal receiver was in place
        interrupted = True
    finally:
        progress.clear()
    return diagnosis.report(interrupted=interrupted)


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
) -> OutputError | None:
    """Write the file, then stdout; a file that cannot be written is returned, not raised."""
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
                color=color_enabled(sys.stdout),
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
    return failure
