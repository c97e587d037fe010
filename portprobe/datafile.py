"""Reading the project's TOML data files (the catalog, the platforms file): one way to fail.

Each loader turns a :class:`DataFileProblem` into its own ``CatalogError`` wording, with
the file and, where TOML says it, the line; :class:`TableChecker` then checks the parsed
document's schema, each problem located at the line of the table and key at fault. Pure:
the standard library only, so listing commands (``portprobe targets``, ``portprobe
platforms``) start fast.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from typing import Any, TypeVar, cast

from portprobe.errors import CatalogError

#: A TOML table as tomllib gives it.
Table = Mapping[str, object]
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


#: Where a table is: each array-of-tables step as (name, index), e.g.
#: ``(("provider", 2), ("host", 0))`` is the first ``[[provider.host]]`` of the third
#: ``[[provider]]``.
At = tuple[tuple[str, int], ...]
#: Builds the exception for ``(path, problem, line)``; ``line`` None: not locatable.
ErrorFactory = Callable[[str, str, "int | None"], Exception]
T = TypeVar("T")


def _plain_error(path: str, problem: str, line: int | None) -> Exception:
    where = path if line is None else f"{path}:{line}"
    return CatalogError(f"{where}: {problem}")


def header(raw: str) -> str:
    """The table header on a line (``[[provider]]``), or ``""`` for any other line."""
    line = raw.split("#", 1)[0].strip().replace(" ", "")
    return line if line.startswith("[") else ""


class TableChecker:
    """Typed reads of one parsed TOML document, each failure one line naming the file and,
    when the text shows it, the line: ``my.toml:12: provider "x": port 26 is not ...``.

    ``text`` None checks a document whose text is not at hand (no lines then). Every
    getter takes the table (``raw``), the key, ``where`` (how messages name the table)
    and ``at`` (where the table is), and returns the value with its type checked.
    """

    def __init__(
        self,
        text: str | None,
        path: str,
        error: ErrorFactory = _plain_error,
        *,
        nested: bool = False,
    ) -> None:
        self.lines = text.splitlines() if text is not None else []
        self.path = path
        self._error = error
        #: Look for a key in the table's sub-tables too (``[platform.match]``'s ``env``
        #: is reported at its own line), not only up to the next table header.
        self.nested = nested

    # -- locating -----------------------------------------------------------------------

    def _block(self, at: At) -> tuple[int, int] | None:
        """First and last line of the table at ``at`` (with its sub-tables), or None."""
        first, last = 1, len(self.lines)
        prefix = ""
        for name, index in at:
            prefix = f"{prefix}.{name}" if prefix else name
            wanted = f"[[{prefix}]]"
            starts = [n for n in range(first, last + 1) if header(self.lines[n - 1]) == wanted]
            if index >= len(starts):
                return None
            first = starts[index]
            last = starts[index + 1] - 1 if index + 1 < len(starts) else last
        return first, last

    def line(self, at: At = (), key: str | None = None, *, table: str = "") -> int | None:
        """The line of ``key`` in the table at ``at`` (or in the top-level ``[table]``);
        the table's own line when the key is not found there."""
        block = self._block(at)
        if block is None:
            return None
        first, last = block
        if table:
            wanted = f"[{table}]"
            first = next((n for n, t in enumerate(self.lines, 1) if header(t) == wanted), 1)
            last = len(self.lines)
        if key is None:
            return first
        pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
        for number in range(first, last + 1):
            text = self.lines[number - 1]
            if number > first and not self.nested and header(text):
                break  # the next table: the key is not in this one
            if pattern.match(text):
                return number
        return first

    def fail(
        self,
        problem: str,
        at: At = (),
        key: str | None = None,
        *,
        table: str = "",
    ) -> Exception:
        """The exception for ``problem``, located at ``key`` of the table at ``at``."""
        line = self.line(at, key, table=table) if self.lines else None
        return self._error(self.path, problem, line)

    # -- typed reads --------------------------------------------------------------------

    def table(self, value: object, problem: str, at: At = (), key: str | None = None) -> Table:
        """``value`` as a table (a TOML table or inline table), else ``problem``."""
        if not isinstance(value, dict):
            raise self.fail(problem, at, key)
        return cast(Table, value)

    def known_keys(
        self,
        raw: Table,
        allowed: Iterable[str],
        where: str,
        at: At = (),
        *,
        table: str = "",
        line_key: str | None = None,
    ) -> None:
        """Refuse a key not in ``allowed``, located at that key (or at ``line_key``)."""
        names = sorted(allowed)
        for key in raw:
            if key not in names:
                prefix = f"{where}: " if where else ""
                raise self.fail(
                    f"{prefix}unknown key {key!r} (expected one of: {', '.join(names)})",
                    at,
                    line_key or key,
                    table=table,
                )

    def one_of(
        self,
        raw: Table,
        key: str,
        choices: tuple[T, ...],
        where: str,
        at: At = (),
        *,
        default: object = None,
    ) -> T:
        """``raw[key]`` (``default`` when absent), which must be one of ``choices``."""
        value = raw.get(key, default)
        for choice in choices:
            if value == choice and type(value) is type(choice):
                return choice
        shown = ", ".join(str(c) for c in choices)
        raise self.fail(
            f"{where}: {key} must be one of {shown}, not {value!r}", at, self._at_key(raw, key)
        )

    def text(self, raw: Table, key: str, where: str, at: At = (), *, required: bool) -> str | None:
        """``raw[key]`` as non-empty text, stripped; None when absent and not required."""
        value = raw.get(key)
        if value is None and not required:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.fail(
                f"{where}: {key} must be a non-empty string", at, self._at_key(raw, key)
            )
        return value.strip()

    def optional_string(self, raw: Table, key: str, where: str, at: At = ()) -> str | None:
        """``raw[key]`` as a string (empty allowed), or None when absent."""
        value = raw.get(key)
        if value is not None and not isinstance(value, str):
            raise self.fail(f"{where}: {key} must be a string", at, key)
        return value

    def boolean(
        self,
        raw: Table,
        key: str,
        where: str,
        at: At = (),
        *,
        default: bool | None,
        required: bool = False,
        why: str = "",
        line_key: str | None = None,
    ) -> bool | None:
        """``raw[key]`` as true or false (``default`` when absent; None when that is None
        and not ``required``); ``why`` ends the message."""
        value = raw.get(key, default)
        if value is None and not required:
            return None
        if not isinstance(value, bool):
            raise self.fail(
                f"{where}: {key} must be true or false{why}", at, line_key or self._at_key(raw, key)
            )
        return value

    def strings(self, raw: Table, key: str, problem: str, at: At = ()) -> tuple[str, ...]:
        """``raw[key]`` as a list of strings (absent: empty), else ``problem``."""
        value = raw.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(problem, at, key)
        return tuple(cast(list[str], value))

    def ports(
        self,
        raw: Table,
        key: str,
        where: str,
        at: At = (),
        *,
        allowed: tuple[int, ...],
        required: bool,
        allow_empty: bool,
    ) -> tuple[int, ...]:
        """``raw[key]`` as distinct ports from ``allowed``, in ``allowed``'s order."""
        value = raw.get(key)
        if value is None and not required:
            return ()
        located = self._at_key(raw, key)
        if not isinstance(value, list) or (not allow_empty and not value):
            wanted = "a list of ports ([] for none)" if allow_empty else "a non-empty list of ports"
            raise self.fail(f"{where}: {key} must be {wanted}", at, located)
        shown = ", ".join(str(p) for p in allowed)
        ports: list[int] = []
        for port in value:
            if type(port) is not int or port not in allowed:
                raise self.fail(f"{where}: port {port!r} is not one of {shown}", at, located)
            if port in ports:
                raise self.fail(f"{where}: port {port} is listed twice in {key}", at, located)
            ports.append(port)
        return tuple(sorted(ports, key=allowed.index))

    def regex(
        self, value: object, what: str, where: str, at: At = (), key: str | None = None
    ) -> str:
        """``value`` as a valid Python regular expression."""
        if not isinstance(value, str):
            raise self.fail(f"{where}: {what} must be a string", at, key)
        try:
            re.compile(value)
        except re.error as exc:
            raise self.fail(
                f"{where}: {what} is not a valid regular expression ({exc})", at, key
            ) from None
        return value

    def url(self, value: str, key: str, where: str, problem: str, at: At = ()) -> str:
        """``value`` as an http(s) address, else ``problem`` (``{value!r}`` is appended)."""
        if not re.match(r"https?://\S+$", value):
            raise self.fail(f"{where}: {problem}, not {value!r}", at, key)
        return value

    def local_date(
        self, raw: Table, key: str, where: str, problem: str, at: At = (), *, default: object = None
    ) -> date:
        """``raw[key]`` as a TOML local date (not a date-time), else ``problem``."""
        value = raw.get(key, default)
        if not isinstance(value, date) or isinstance(value, datetime):
            raise self.fail(f"{where}: {problem}, not {value!r}", at, self._at_key(raw, key))
        return value

    @staticmethod
    def _at_key(raw: Table, key: str) -> str | None:
        """Locate at ``key`` only when the table has it (else at the table itself)."""
        return key if key in raw else None
