"""Running the installed portprobe in the lab's client namespace, and reading its report."""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .netlab import Lab
from .topology import DOMAINS

#: The portprobe installed beside the running interpreter (``.venv/bin/portprobe``).
PORTPROBE = Path(sys.executable).parent / "portprobe"


@dataclass
class Report:
    argv: list[str]
    exit_code: int
    data: dict[str, Any]
    stderr: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def verdict(self) -> dict[str, Any]:
        return dict(self.data.get("verdict") or {})

    @property
    def reasons(self) -> str:
        return "\n".join(self.verdict.get("reasons") or [])

    def probes(self, port: int | None = None, family: str | None = None) -> list[dict[str, Any]]:
        return [
            p
            for p in self.data.get("probes") or []
            if (port is None or p["port"] == port) and (family is None or p["family"] == family)
        ]

    def summary(self) -> str:
        """A compact picture for assertion messages."""
        lines = [
            f"exit {self.exit_code}: {' '.join(self.argv)}",
            f"verdict {self.verdict.get('port25')} families {self.verdict.get('families')}",
            *(f"  reason: {r}" for r in self.verdict.get("reasons") or []),
        ]
        for p in self.probes():
            tls = p.get("tls") or {}
            lines.append(
                f"  {p.get('host')} [{p.get('address')}]:{p['port']} {p.get('state')}"
                f" starttls={p.get('starttls')} verified={tls.get('verified')}"
                f" anomalies={p.get('anomalies')} error={(p.get('error') or {}).get('kind')}"
            )
        if self.stderr.strip():
            lines.append("stderr: " + self.stderr.strip()[-2000:])
        return "\n".join(lines)


def portprobe_argv(lab: Lab, *args: str, domains: tuple[str, ...] = DOMAINS) -> list[str]:
    targets: list[str] = []
    if not any(a in ("--target", "--domain") for a in args):
        for domain in domains:
            targets += ["--domain", domain]
    return [
        str(PORTPROBE),
        *targets,
        *args,
        "--nameserver",
        lab.nameserver,
        "--ca-file",
        str(lab.ca_file),
        "--json",
    ]


def run_portprobe(
    lab: Lab, *args: str, timeout: float = 90, domains: tuple[str, ...] = DOMAINS
) -> Report:
    """portprobe with ``--domain`` for each of ``domains`` (none: the built-in catalog)."""
    argv = portprobe_argv(lab, *args, domains=domains)
    proc = lab.run_client(argv, timeout=timeout)
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        data = {}
    return Report(argv, proc.returncode, data, proc.stderr if data else proc.stdout + proc.stderr)


def matches(pattern: str, text: str) -> bool:
    return re.search(pattern, text, re.IGNORECASE | re.DOTALL) is not None
