"""The JSON-dict form of the cells, kept only for ``junit.py`` until it reads the Report.

Temporary (issue 11): the table and Markdown renderers read the typed Report through
``cells``; delete this module when the JUnit renderer does too.

Everything that reaches a cell goes through ``visible()`` here, even text we wrote
ourselves (reasons quote server text): the report dict may come from a file, and one
forgotten path is all an escape sequence needs.
"""

from __future__ import annotations

from typing import Any, Final

from portprobe.protocol.text import shorten, visible

DASH: Final = "—"
FAMILY_NAME: Final = {"ipv4": "IPv4", "ipv6": "IPv6"}


def safe(value: object, width: int | None = None) -> str:
    """Any value as one visible line, optionally shortened."""
    text = visible("" if value is None else str(value))
    return shorten(text, width) if width else text


def greeting_cell(probe: dict[str, Any], width: int | None = None) -> str:
    greeting = probe.get("greeting")
    if greeting is None:
        error = probe.get("error")
        if error and probe.get("state") not in ("open", "rejected"):
            return safe(f"({error.get('errno') or error.get('kind')})", width)
        return DASH
    first = str(greeting.get("text", "")).split("\n", 1)[0]
    return safe(f"{greeting.get('code')} {first}".rstrip(), width)


def tls_cell(probe: dict[str, Any]) -> str:
    """``TLSv1.3 ✓``, ``TLSv1.2 ✗ hostname mismatch``, ``failed``, or a dash."""
    tls = probe.get("tls")
    if tls is None:
        anomalies = probe.get("anomalies") or []
        if probe.get("state") == "tls-error" or "starttls-handshake-failed" in anomalies:
            return "failed"
        if probe.get("starttls") == "stripped":
            return "stripped"
        return DASH
    version = safe(tls.get("version") or "TLS")
    if tls.get("verified"):
        return f"{version} ✓"
    return safe(f"{version} ✗ {tls.get('verify_error') or 'not verified'}", 40)


def ms_cell(value: object) -> str:
    if not isinstance(value, int | float):
        return DASH
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def port_cell(probe: dict[str, Any]) -> str:
    port = safe(probe.get("port"))
    return f"{port} (neg)" if probe.get("negative_control") else port


def families_text(report: dict[str, Any]) -> str:
    families = report["verdict"]["families"]
    return ", ".join(f"{FAMILY_NAME.get(f, safe(f))} {safe(v)}" for f, v in families.items())


def verdict_line(report: dict[str, Any]) -> str:
    """The one line quiet mode prints: ``port 25: blocked (high confidence; IPv4 ...)``."""
    v = report["verdict"]
    mode = f"; {safe(v['failure_mode'])}" if v.get("failure_mode") else ""
    return (
        f"port 25: {safe(v['port25'])} ({safe(v['confidence'])} confidence{mode}; "
        f"{families_text(report)})"
    )
