"""Reading the project's TOML data files (the catalog, the platforms file): one way to fail.

Each loader turns a :class:`DataFileProblem` into its own ``CatalogError`` wording, with
the file and, where TOML says it, the line. Pure: the standard library only, so listing
commands (``portprobe targets``, ``portprobe platforms``) start fast.
"""

from __future__ import annotations

import os
import re
import tomllib
from typing import Any

#: tomllib ends its messages with "(at line L, column C)": moved to the front as file:line.
_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


class DataFileProblem(Exception):
    """What is wrong, and the line where the file says it (None: the whole file)."""

    def __init__(self, problem: str, line: int | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.line = line


def read_text(path: str | os.PathLike[str]) -> str:
    """The file as UTF-8 text, or a :class:`DataFileProblem` saying why not."""
    try:
        with open(os.fspath(path), encoding="utf-8") as handle:
            return handle.read()
    except UnicodeDecodeError as exc:
        raise DataFileProblem(f"not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise DataFileProblem(f"cannot read: {exc.strerror or exc}") from None


def parse_toml(text: str) -> dict[str, Any]:
    """TOML 1.0 text as a dict, or a :class:`DataFileProblem` with the line at fault."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        found = _TOML_POSITION.search(message)
        if found:
            problem = f"column {found.group(2)}: invalid TOML: {message[: found.start()]}"
            raise DataFileProblem(problem, int(found.group(1))) from None
        raise DataFileProblem(f"invalid TOML: {message}") from None
