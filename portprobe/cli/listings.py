"""``portprobe targets`` and ``portprobe platforms``: the package's data files, listed."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from portprobe.cli.options import ColorMode, ColorOption


def targets(
    catalog: Annotated[
        Path | None,
        typer.Option("--catalog", metavar="FILE", help="Show this catalog instead."),
    ] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print the catalog as JSON.")] = False,
    color: ColorOption = ColorMode.AUTO,
) -> None:
    """List the built-in catalog: providers, hosts, the ports they answer on.

    Examples:

      portprobe targets

      portprobe targets --json | jq '.providers[].name'
    """
    from portprobe.cli.terminal import color_enabled
    from portprobe.render.catalog import catalog_to_dict, render_catalog_table
    from portprobe.targets.catalog import load_catalog

    loaded = load_catalog(catalog)
    if json_:
        import json

        print(json.dumps(catalog_to_dict(loaded), indent=2))
    else:
        print(render_catalog_table(loaded, color=color_enabled(sys.stdout, color)))


def platforms(
    json_: Annotated[bool, typer.Option("--json", help="Print the data file as JSON.")] = False,
    sources: Annotated[bool, typer.Option("--sources", help="Show each source URL.")] = False,
    color: ColorOption = ColorMode.AUTO,
) -> None:
    """List the platforms portprobe recognises: how, the ports each blocks, how to lift it.

    Examples:

      portprobe platforms

      portprobe platforms --sources

      portprobe platforms --json | jq '.platforms[].id'
    """
    from portprobe.cli.terminal import color_enabled
    from portprobe.environment.platforms import load_platforms
    from portprobe.render.platforms import platforms_to_dict, render_platforms_table

    loaded = load_platforms()
    if json_:
        import json

        print(json.dumps(platforms_to_dict(loaded), indent=2))
    else:
        table = render_platforms_table(
            loaded, color=color_enabled(sys.stdout, color), show_sources=sources
        )
        print(table)
