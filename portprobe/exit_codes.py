"""The exit codes of the spec, in one place (pure: the CLI reads it before anything heavy)."""

from __future__ import annotations

from typing import Final

#: Spec "Verdict ... and exit codes": one exit code per port-25 verdict.
VERDICT: Final[dict[str, int]] = {
    "open": 0,
    "blocked": 3,
    "intercepted": 4,
    "restricted": 5,
    "partial": 6,
    "inconclusive": 7,
    "offline": 8,
}
INTERNAL_ERROR: Final = 1  # a bug
USAGE: Final = 2  # bad option, unreadable file, bad host name, unwritable --output
ASSERTION: Final = 9  # --expect / --require-port failed
INTERRUPTED: Final = 130  # 128 + SIGINT, the shell convention
