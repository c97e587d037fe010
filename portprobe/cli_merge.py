"""``portprobe merge REPORT.json…``: one fleet view over the reports of many vantage points.

Kept apart from ``cli.py`` so the command registers with one line
(``cli_merge.register(app)``). Like ``diagnose`` it only translates: sources in, the pure
``portprobe.fleet`` loader, a renderer, an exit code. Each unreadable or foreign report is
one line on stderr; any of them means exit 2 unless ``--skip-bad``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from portprobe.exit_codes import USAGE

MERGE_FORMATS = ("table", "markdown", "json", "openmetrics")
EXTENSIONS = {"table": ".txt", "markdown": ".md", "json": ".json", "openmetrics": ".prom"}


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
    fmt: Annotated[
        str | None,
        typer.Option("--format", metavar="FORMAT", help="table | markdown | json | openmetrics."),
    ] = None,
    json_: Annotated[bool, typer.Option("--json", help="Same as --format json.")] = False,
    output: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--output",
            metavar="PATH",
            help="Write the view to PATH atomically (a directory gets portprobe-fleet.EXT).",
        ),
    ] = None,
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
    if fmt is not None and fmt not in MERGE_FORMATS:
        _say(f"error: --format: {fmt!r} is not one of {', '.join(MERGE_FORMATS)}")
        raise typer.Exit(USAGE)
    if json_:
        if fmt not in (None, "json"):
            _say(f"error: --json and --format {fmt} disagree; give one")
            raise typer.Exit(USAGE)
        fmt = "json"
    from portprobe.errors import PortprobeError
    from portprobe.fleet import load_fleet
    from portprobe.output import check_writable, write_atomically
    from portprobe.render.fleet import render_fleet

    if output is not None and output.is_dir():
        output = output / f"portprobe-fleet{EXTENSIONS[fmt or 'table']}"
    try:
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
    text = render_fleet(fmt or "table", fleet)
    if output is not None:
        try:
            write_atomically(output, text)
        except PortprobeError as exc:
            _say(f"error: {exc}")
            raise typer.Exit(USAGE) from None
    else:
        sys.stdout.write(text)
    raise typer.Exit(0)


def register(app: typer.Typer) -> None:
    """Add ``merge`` to ``app`` (the lead's one line in ``cli.py``)."""
    app.command("merge")(merge)
