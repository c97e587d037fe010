"""``portprobe merge REPORT.json…``: one fleet view over the reports of many vantage points.

Like ``diagnose`` it only translates: sources in, the pure ``portprobe.fleet`` loader, a
renderer, an exit code. Each unreadable or foreign report is one line on stderr; any of
them means exit 2 unless ``--skip-bad``.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from portprobe.cli.options import (
    MERGE_FORMATS,
    FleetFormatOption,
    FleetOutputOption,
    JsonOption,
    choose_format,
)
from portprobe.errors import PortprobeError
from portprobe.exit_codes import USAGE


def _say(message: str) -> None:
    """One line on stderr; a file name may carry escapes too, so it is made visible."""
    from portprobe.text import visible

    print(f"portprobe: {visible(' '.join(message.split()))}", file=sys.stderr)


def merge(
    reports: Annotated[
        list[str],
        typer.Argument(
            metavar="REPORT.json…",
            help="JSON reports (`portprobe --json -o FILE`), directories of them, or - for stdin.",
            show_default=False,
        ),
    ],
    fmt: FleetFormatOption = None,
    json_: JsonOption = False,
    output: FleetOutputOption = None,
    skip_bad: Annotated[
        bool,
        typer.Option("--skip-bad", help="Warn about unreadable reports instead of exit 2."),
    ] = False,
) -> None:
    """Merge reports from many vantage points into one view: a row per report.

    Each row: the vantage (file name or the report's own name, platform and CI, public
    address unless redacted, time), the port-25 verdict, per family and per port; then how
    many vantage points see each verdict.

    Examples:

      portprobe merge reports/                      # every *.json in a directory

      portprobe merge a.json b.json --format markdown >> "$GITHUB_STEP_SUMMARY"

      portprobe merge reports/ --format openmetrics -o /var/lib/node_exporter/fleet.prom
    """
    from portprobe.cli.output import EXTENSIONS, check_writable, write_atomically
    from portprobe.fleet import load_fleet
    from portprobe.render.fleet import render_fleet

    try:
        fmt = choose_format(fmt, json_, MERGE_FORMATS) or "table"
        if output is not None and output.is_dir():
            output = output / f"portprobe-fleet{EXTENSIONS[fmt]}"
        if output is not None:
            check_writable(output)
        fleet, errors = load_fleet(reports, stdin=sys.stdin.buffer)
    except PortprobeError as exc:
        _say(f"error: {exc}")
        raise typer.Exit(USAGE) from None
    for error in errors:
        _say(("warning: skipped " if skip_bad else "error: ") + str(error))
    if errors and not skip_bad:
        raise typer.Exit(USAGE)
    if not fleet.vantages:
        _say("error: no readable report to merge")
        raise typer.Exit(USAGE)
    text = render_fleet(fmt, fleet)
    if output is not None:
        try:
            write_atomically(output, text)
        except PortprobeError as exc:
            _say(f"error: {exc}")
            raise typer.Exit(USAGE) from None
    else:
        sys.stdout.write(text)
    raise typer.Exit(0)
