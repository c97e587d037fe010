"""The command line: options in, one library call, a renderer at the end, an exit code.

The package is all the typer code there is: ``diagnose`` (the default command),
``listings`` (``targets``, ``platforms``), ``merge``, the shared ``options``, and what a
terminal needs (``terminal``, ``output``). Everything heavy (trio, dnspython, ssl, the
renderers) is imported inside the commands, so ``portprobe --help`` and ``--version``
start fast. Library errors become one line on stderr and exit 2 here, at the edge; a bug
becomes exit 1 with a short message (and the traceback only under ``-v``).
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from collections.abc import Sequence
from typing import Annotated

import typer
from typer import _click
from typer._click.shell_completion import CompletionItem
from typer.core import TyperCommand, TyperGroup

from portprobe._version import __version__
from portprobe.cli import diagnose, listings, merge, serve
from portprobe.errors import PortprobeError
from portprobe.exit_codes import (
    ASSERTION,
    INTERNAL_ERROR,
    INTERRUPTED,
    NAGIOS_CRITICAL,
    NAGIOS_OK,
    NAGIOS_UNKNOWN,
    NAGIOS_WARNING,
    USAGE,
    VERDICT,
)
from portprobe.text import one_line

__all__ = ["app", "main", "run"]

ISSUES_URL = "the portprobe issue tracker"
DEFAULT_COMMAND = "diagnose"


def _write_exit_codes(formatter: _click.HelpFormatter) -> None:
    """The exit codes, from ``portprobe.exit_codes`` (so help and code cannot disagree)."""
    verdicts = ", ".join(f"{code} {verdict}" for verdict, code in VERDICT.items() if code)
    nagios = (
        f"{NAGIOS_OK} OK, {NAGIOS_WARNING} WARNING, {NAGIOS_CRITICAL} CRITICAL, "
        f"{NAGIOS_UNKNOWN} UNKNOWN"
    )
    rows = [
        ("0", "port 25 is open, or the --expect verdict was met"),
        ("3-8", f"the port-25 verdict: {verdicts}"),
        (str(ASSERTION), "an --expect, --require-port or --require-ready assertion failed"),
        (str(USAGE), "usage or input error: bad option, unreadable file, unwritable output"),
        (str(INTERNAL_ERROR), "a bug in portprobe"),
        (str(INTERRUPTED), "Ctrl-C, SIGTERM or --deadline; the partial report is written"),
        ("nagios", f"with --format nagios: {nagios}"),
    ]
    with formatter.section("Exit codes"):
        formatter.write_dl(rows)


class DiagnoseCommand(TyperCommand):
    """``diagnose``: its help ends with the exit codes."""

    def format_epilog(self, ctx: _click.Context, formatter: _click.HelpFormatter) -> None:
        super().format_epilog(ctx, formatter)
        _write_exit_codes(formatter)


class PortprobeGroup(TyperGroup):
    """The ``portprobe`` group: without a command name it runs ``diagnose`` (the spec).

    The commands are the group's own, so a new command needs no list kept by hand; the
    root's help shows the default command's options and the exit codes too.
    """

    def _root_flags(self, ctx: _click.Context) -> set[str]:
        return {
            opt for param in self.get_params(ctx) for opt in (*param.opts, *param.secondary_opts)
        }

    def wants_default_command(self, ctx: _click.Context, args: Sequence[str]) -> bool:
        if not args:
            # Completing `portprobe <TAB>` lists the commands; running `portprobe` diagnoses.
            return not ctx.resilient_parsing
        first = args[0]
        return first not in self.commands and first.split("=")[0] not in self._root_flags(ctx)

    def parse_args(self, ctx: _click.Context, args: list[str]) -> list[str]:
        if self.wants_default_command(ctx, args):
            args = [DEFAULT_COMMAND, *args]
        return super().parse_args(ctx, args)

    def _default_context(self, ctx: _click.Context) -> _click.Context:
        command = self.commands[DEFAULT_COMMAND]
        return command.make_context(DEFAULT_COMMAND, [], parent=ctx, resilient_parsing=True)

    def shell_complete(self, ctx: _click.Context, incomplete: str) -> list[CompletionItem]:
        """``portprobe --for<TAB>`` offers the default command's options too."""
        items = super().shell_complete(ctx, incomplete)
        if incomplete.startswith("-"):
            sub = self._default_context(ctx)
            items.extend(sub.command.shell_complete(sub, incomplete))
        return items

    def format_options(self, ctx: _click.Context, formatter: _click.HelpFormatter) -> None:
        super().format_options(ctx, formatter)
        sub = self._default_context(ctx)
        rows = [
            record
            for param in sub.command.get_params(sub)
            if "--help" not in param.opts and (record := param.get_help_record(sub))
        ]
        with formatter.section(f"Options of the default command ({DEFAULT_COMMAND})"):
            formatter.write_dl(rows)

    def format_epilog(self, ctx: _click.Context, formatter: _click.HelpFormatter) -> None:
        super().format_epilog(ctx, formatter)
        _write_exit_codes(formatter)


app = typer.Typer(
    name="portprobe",
    cls=PortprobeGroup,
    help=(
        "Can this machine send mail on port 25, and if not, who is stopping it?\n\n"
        "Without a command, runs `diagnose` with the options below. Examples:\n\n"
        "  portprobe                        # probe the built-in catalog\n\n"
        "  portprobe --domain example.org   # probe example.org's MX hosts\n\n"
        "  portprobe --json -o report.json  # machine-readable report\n\n"
        "  portprobe --expect open -q       # CI: exit 9 unless port 25 is open"
    ),
    add_completion=True,
    no_args_is_help=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version_callback(value: bool) -> None:
    if value:
        print(f"portprobe {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "-V", "--version", callback=_version_callback, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """Can this machine send mail on port 25, and if not, who is stopping it?"""


app.command(DEFAULT_COMMAND, cls=DiagnoseCommand)(diagnose.diagnose)
app.command("targets")(listings.targets)
app.command("platforms")(listings.platforms)
app.command("merge")(merge.merge)
app.command("serve")(serve.serve)


# --- entry point ---------------------------------------------------------------------------


def _wants_nagios(argv: Sequence[str]) -> bool:
    """A monitoring plugin reports its own usage errors as UNKNOWN (3), not 2."""
    for i, arg in enumerate(argv):
        if arg == "--format=nagios" or (arg == "--format" and argv[i + 1 : i + 2] == ["nagios"]):
            return True
    return False


def _fail(message: str, code: int, *, nagios: bool = False) -> int:
    print(f"portprobe: {message}", file=sys.stderr)
    if nagios:  # a plugin's output is read from stdout (Monitoring Plugins guidelines)
        print(f"PORTPROBE UNKNOWN - {message}")
    return code


def _flush_streams(code: int, usage: int) -> int:
    """Flush stdout and stderr; output that could not be written turns success into ``usage``."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        pass  # nobody reads: not an error (`portprobe --help | head -1`)
    except (OSError, ValueError) as exc:
        if code == 0:
            code = _fail(f"error: cannot write to stdout: {getattr(exc, 'strerror', exc)}", usage)
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.flush()
    return code


def main(argv: Sequence[str] | None = None) -> None:
    """The ``portprobe`` command: run, flush, and leave without the interpreter's teardown.

    Tearing down trio's, dnspython's and typer's module graphs costs ~90 ms at exit, a
    sixth of a whole diagnosis, while nothing is left to do: the report file is written
    and fsync'd, stdout and stderr are flushed here, and portprobe registers no atexit
    work (mypy exits the same way, for the same reason). ``run`` is the in-process form.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    code = run(args)
    os._exit(_flush_streams(code, NAGIOS_UNKNOWN if _wants_nagios(args) else USAGE))


def run(argv: list[str]) -> int:
    """Run the CLI and return its exit code; every expected error is one line on stderr."""
    from typer.exceptions import TyperException

    verbose = "-v" in argv or "--verbose" in argv
    nagios = _wants_nagios(argv)
    usage = NAGIOS_UNKNOWN if nagios else USAGE
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="portprobe", standalone_mode=False)
    except typer.Exit as exc:
        return exc.exit_code
    except TyperException as exc:  # usage errors: bad option, bad value
        return _fail(f"error: {one_line(exc.format_message())}", usage, nagios=nagios)
    except PortprobeError as exc:  # bad input, unreadable file, unwritable output
        return _fail(f"error: {one_line(str(exc))}", usage, nagios=nagios)
    except (typer.Abort, KeyboardInterrupt):
        return _fail("interrupted", INTERRUPTED)
    except OSError as raised:
        if (broken := _stdout_failure(raised)) is None:
            return _internal_error(raised, verbose)
        return _fail(f"error: cannot write to stdout: {broken.strerror or broken}", usage)
    except Exception as raised:
        return _internal_error(raised, verbose)
    return int(result) if isinstance(result, int) else 0


#: What writing to a full or failing stdout raises (nothing else in portprobe lets them out:
#: probes turn socket errors into results, ``-o`` turns its own into OutputError).
_WRITE_FAILURES = frozenset(
    {errno.ENOSPC, errno.EFBIG, errno.EIO, getattr(errno, "EDQUOT", errno.ENOSPC)}
)


def _stdout_failure(raised: OSError) -> OSError | None:
    """Why stdout takes nothing (a full disk, /dev/full), or None: then ``raised`` is a bug.

    Text that could not be written may stay buffered, so a second flush fails the same
    way; or the buffer was dropped, and then a write error that names no file is stdout's.
    """
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        return None
    except OSError as exc:
        return exc
    if raised.filename is None and raised.errno in _WRITE_FAILURES:
        return raised
    return None


def _internal_error(raised: Exception, verbose: bool) -> int:
    """A bug: one line naming it (and the traceback under -v), exit 1."""
    if verbose:
        import traceback

        traceback.print_exception(raised)
    bug: BaseException = raised
    while isinstance(bug, BaseExceptionGroup) and len(bug.exceptions) == 1:
        bug = bug.exceptions[0]  # a bug raised inside a trio nursery: name the real one
    return _fail(
        f"internal error: {type(bug).__name__}: {one_line(str(bug))}. This is a bug in "
        f"portprobe {__version__}; please report it to {ISSUES_URL} with the command line"
        + ("" if verbose else " and the traceback that -v prints"),
        INTERNAL_ERROR,
    )
