"""The catalog for people and for ``jq``: ``portprobe targets`` and ``targets --json``.

Presentation only: the catalog itself (its types, its TOML checks) is
:mod:`portprobe.targets.catalog`. A user catalog's text is shown with control
characters made visible, as every other renderer does with text from outside.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from portprobe.model import Expectation
from portprobe.targets.catalog import Catalog
from portprobe.text import visible

__all__ = ["catalog_to_dict", "render_catalog_table"]


def catalog_to_dict(catalog: Catalog) -> dict[str, Any]:
    """The catalog as JSON-ready data (``portprobe targets --json``)."""
    return {
        "path": catalog.path,
        "limits": {"max_mx": catalog.max_mx, "max_addresses": catalog.max_addresses},
        "providers": [provider.to_dict() for provider in catalog.providers],
    }


def _bold(text: str, color: bool) -> str:
    return f"\x1b[1m{text}\x1b[0m" if color else text


def _describe_expect(expect: Expectation | None) -> str:
    if expect is None:
        return ""
    parts = []
    if expect.greeting_pattern is not None:
        parts.append(f"greeting /{expect.greeting_pattern}/")
    if expect.starttls is not None:
        parts.append("STARTTLS" if expect.starttls else "no STARTTLS")
    if expect.cert_name is not None:
        parts.append(f"cert {expect.cert_name}")
    return ", ".join(parts)


def render_catalog_table(
    catalog: Catalog, *, color: bool = False, show_sources: bool = False
) -> str:
    """A plain-text table of the catalog, one row per host entry (``portprobe targets``).

    A user catalog's text is shown with control characters made visible.
    """
    from tabulate import tabulate  # only this command needs it; keep imports cheap

    headers: Sequence[str] = ["provider", "host", "lookup", "role", "ports", "negative", "expect"]
    if show_sources:
        headers = [*headers, "source"]
    rows: list[list[str]] = []
    for provider in catalog.providers:
        for position, host in enumerate(provider.hosts):
            row = [
                _bold(visible(provider.name), color) if position == 0 else "",
                visible(host.name),
                "MX" if host.mail_domain else "A/AAAA",
                host.role,
                ",".join(str(p) for p in host.ports),
                ",".join(str(p) for p in host.negative_ports),
                visible(_describe_expect(host.expect)),
            ]
            if show_sources:
                row.append(visible(host.source))
            rows.append(row)
    table = tabulate(
        rows,
        headers=[_bold(h, color) for h in headers],
        tablefmt="simple",
        disable_numparse=True,  # "25" is a port list, not a number to right-align
    )
    count = len(catalog.providers)
    footer = (
        f"{count} providers, {sum(len(p.hosts) for p in catalog.providers)} host entries "
        f"({visible(catalog.path)}); at most {catalog.max_mx} MX hosts per domain and "
        f"{catalog.max_addresses} addresses per host and family."
    )
    return f"{table}\n\n{footer}"
