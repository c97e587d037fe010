"""Writing a report so that it is never half-written: a temporary file, then a rename."""

from __future__ import annotations

import contextlib
import os
import tempfile
from datetime import datetime
from pathlib import Path

from portprobe.errors import OutputError as OutputError

EXTENSIONS = {
    "json": ".json",
    "markdown": ".md",
    "junit": ".xml",
    "table": ".txt",
    "openmetrics": ".prom",
    "nagios": ".txt",
}


def resolve_output_path(path: Path, fmt: str, when: datetime) -> Path:
    """A directory gets a timestamped file name; a file path is used as given."""
    if path.is_dir():
        stamp = when.strftime("%Y%m%dT%H%M%SZ")
        return path / f"portprobe-{stamp}{EXTENSIONS.get(fmt, '.txt')}"
    return path


def check_writable(path: Path) -> None:
    """Fail before probing, not after, when the report could not be written."""
    directory = path if path.is_dir() else (path.parent if str(path.parent) else Path("."))
    if not directory.exists():
        raise OutputError(f"cannot write the report to {path}: {directory} does not exist")
    if not directory.is_dir():
        raise OutputError(f"cannot write the report to {path}: {directory} is not a directory")
    if path.exists() and path.is_file() and not os.access(path, os.W_OK):
        raise OutputError(f"cannot write the report to {path}: permission denied")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write the report to {path}: {directory} is not writable")


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same directory.

    The rename is atomic on POSIX: a reader sees the old file or the whole new one, and a
    failure (disk full, read-only file system) leaves no partial file behind.
    """
    directory = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise OutputError(f"cannot write the report to {path}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise OutputError(f"cannot write the report to {path}: {exc.strerror or exc}") from exc
