"""Writing a report so that it is never half-written: a temporary file, then a rename.

The file gets the mode a new file would get from the umask (0644 with umask 022), not the
temporary file's 0600: a node_exporter or a web server running as its own user reads it.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from datetime import datetime
from pathlib import Path

from portprobe.errors import OutputError as OutputError

#: The file name extension of each output format (``-o DIRECTORY`` names the file).
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


def _directory_of(path: Path) -> Path:
    return path.parent if str(path.parent) else Path(".")


def check_writable(path: Path) -> None:
    """Fail before probing, not after, when the report could not be written.

    The directory is tried for real (a temporary file made and removed): ``os.access``
    says yes to root for places no file can be made in (``/proc``, a read-only bind).
    """
    directory = _directory_of(path)
    if not directory.exists():
        raise OutputError(f"cannot write the report to {path}: {directory} does not exist")
    if not directory.is_dir():
        raise OutputError(f"cannot write the report to {path}: {directory} is not a directory")
    if path.is_dir():
        raise OutputError(f"cannot write the report to {path}: it is a directory")
    if path.exists() and not os.access(path, os.W_OK):
        raise OutputError(f"cannot write the report to {path}: permission denied")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise OutputError(f"cannot write the report to {path}: {reason}") from exc
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(tmp)


def _current_umask() -> int:
    """The process umask, read without changing it where the system allows."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)  # elsewhere the only way to read it is to set it
    os.umask(mask)
    return mask


def new_file_mode() -> int:
    """The mode ``open(path, "w")`` would give a new file: 0o666 less the umask."""
    return 0o666 & ~_current_umask()


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same directory.

    The rename is atomic on POSIX (and ``os.replace`` replaces on Windows too): a reader
    sees the old file or the whole new one, and a failure (disk full, read-only file
    system) leaves no partial file behind.
    """
    directory = _directory_of(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise OutputError(f"cannot write the report to {path}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if sys.platform != "win32":  # Windows has no permission bits to give
            os.chmod(tmp, new_file_mode())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise OutputError(f"cannot write the report to {path}: {exc.strerror or exc}") from exc
