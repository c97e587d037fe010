"""``portprobe platforms`` (table and JSON), and the environment's one line in a report.

The data file's text is shown with control characters made visible (a user's own file
goes through the same renderer). Imports tabulate only when a table is drawn.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from portprobe.environment.model import Environment
from portprobe.environment.platforms import PlatformCatalog, PlatformInfo, Policy
from portprobe.text import shorten, visible

#: Evidence shown on the "Running on:" line; the JSON keeps all of it.
_LINE_EVIDENCE = 3
#: Table cells cut to keep ``portprobe platforms`` within a wide terminal.
_LABEL_WIDTH = 36
_RECOGNISED_WIDTH = 44


def platforms_to_dict(platforms: PlatformCatalog) -> dict[str, Any]:
    """The data file as JSON-ready data (``portprobe platforms --json``)."""
    return {
        "path": platforms.path,
        "names": list(platforms.names),
        "platforms": [entry.to_dict() for entry in platforms.platforms],
    }


def _bold(text: str, color: bool) -> str:
    return f"\x1b[1m{text}\x1b[0m" if color else text


def _recognised_by(entry: PlatformInfo) -> str:
    parts = [f"{name}={'|'.join(patterns)}" for name, patterns in entry.match.dmi]
    if entry.match.ptr:
        parts.append("ptr=" + "|".join(entry.match.ptr))
    parts += [f"{entry.ci} {var}={value}" for var, value in entry.match.env]
    return "; ".join(parts) or "--platform only"


def _row(id_: str, label: str, policy: Policy, recognised: str, show_sources: bool) -> list[str]:
    blocked = ",".join(str(p) for p in policy.blocked) or "-"
    row = [
        visible(id_),
        shorten(visible(label), _LABEL_WIDTH),
        blocked,
        policy.unblock,
        "yes" if policy.verified else "no",
        policy.read.isoformat(),
        shorten(visible(recognised), _RECOGNISED_WIDTH),
    ]
    if show_sources:
        row.append(visible(policy.source))
    return row


def render_platforms_table(
    platforms: PlatformCatalog, *, color: bool = False, show_sources: bool = False
) -> str:
    """One row per platform and per variant (``portprobe platforms``); ``--json`` has
    every field in full."""
    from tabulate import tabulate  # only this command needs it; keep imports cheap

    headers = ["id", "platform", "blocked", "unblock", "verified", "read", "recognised by"]
    if show_sources:
        headers.append("source")
    rows: list[list[str]] = []
    for entry in platforms.platforms:
        recognised = _recognised_by(entry)
        rows.append(_row(entry.id, entry.label, entry.policy, recognised, show_sources))
        rows[-1][0] = _bold(rows[-1][0], color)
        for variant in entry.variants:
            name = f"{entry.id}:{variant.id}"
            rows.append(_row(name, f"  {variant.label}", variant.policy, "", show_sources))
    table = tabulate(
        rows,
        headers=[_bold(h, color) for h in headers],
        tablefmt="simple",
        disable_numparse=True,  # "25,465" is a port list, not a number
    )
    unverified = sum(
        1
        for e in platforms.platforms
        for p in (e.policy, *(v.policy for v in e.variants))
        if not p.verified
    )
    footer = (
        f"{len(platforms.platforms)} platforms ({visible(platforms.path)}); {unverified} "
        'policies have no primary source (advice says "reportedly"). '
        "--platform takes an id or id:variant."
    )
    return f"{table}\n\n{footer}"


def _as_dict(env: Environment | Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    return env.to_dict() if isinstance(env, Environment) else env


def running_on(env: Environment | Mapping[str, Any] | None) -> str | None:
    """The report's one line, e.g. ``Running on: AWS EC2 (dmi:sys_vendor "Amazon EC2");
    CI github-actions (provider-hosted)``; ``None`` when detection was not run.

    Takes the ``Environment`` or its ``to_dict()`` (the renderers work from the report
    dict)."""
    data = _as_dict(env)
    if data is None:
        return None
    platform = str(data.get("platform") or "unknown")
    where = data.get("label") or ("unknown platform" if platform == "unknown" else platform)
    evidence = [
        f'{c.get("source")} "{shorten(str(c.get("value")), 40)}"'
        for c in data.get("evidence") or []
        if not str(c.get("source")).startswith("env:") and c.get("indicates") != "no known platform"
    ][:_LINE_EVIDENCE]
    line = f"Running on: {where}"
    if evidence:
        line += f" ({', '.join(evidence)})"
    if data.get("ci") is not None:
        runner = data.get("ci_hosted")
        hosted = "" if runner is None else " (provider-hosted)" if runner else " (self-hosted)"
        line += f"; CI {data['ci']}{hosted}"
    return visible(line)


def junit_properties(env: Environment | Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """``<property>`` name/value pairs for the JUnit suite (``-`` for none, as junit.py)."""
    data = _as_dict(env)
    if data is None:
        return []
    hosted = data.get("ci_hosted")
    return [
        ("environment.platform", visible(str(data.get("platform") or "unknown"))),
        ("environment.label", visible(str(data.get("label") or "-"))),
        ("environment.ci", visible(str(data.get("ci") or "-"))),
        ("environment.ci_hosted", "-" if hosted is None else str(bool(hosted)).lower()),
    ]
