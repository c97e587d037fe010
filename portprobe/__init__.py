"""portprobe: can this machine send mail on port 25, and if not, who is stopping it?

The library API (spec "Library API")::

    import trio, portprobe
    req = portprobe.DiagnoseRequest(domains=("example.org",), families=("ipv4",))
    report = trio.run(portprobe.diagnose, req)
    report.verdict.port25, report.to_dict()

Names are loaded on first use, so ``import portprobe`` (and ``portprobe --help``) stays
cheap: trio, dnspython and ssl are imported only when a diagnosis is made.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from portprobe._version import __version__

if TYPE_CHECKING:
    from portprobe.companions import Companion
    from portprobe.diagnosis import Diagnosis, diagnose
    from portprobe.errors import (
        CatalogError,
        InputError,
        OutputError,
        PortprobeError,
        TLSConfigError,
    )
    from portprobe.outcome import Report, Verdict
    from portprobe.probe.connect import SocketOptions
    from portprobe.request import DiagnoseRequest, PortMap
    from portprobe.shared import Shared

_LAZY = {
    "DiagnoseRequest": "portprobe.request",
    "PortMap": "portprobe.request",
    "Shared": "portprobe.shared",
    "Companion": "portprobe.companions",
    "SocketOptions": "portprobe.probe.connect",
    "Diagnosis": "portprobe.diagnosis",
    "diagnose": "portprobe.diagnosis",
    "Report": "portprobe.outcome",
    "Verdict": "portprobe.outcome",
    "PortprobeError": "portprobe.errors",
    "InputError": "portprobe.errors",
    "CatalogError": "portprobe.errors",
    "OutputError": "portprobe.errors",
    "TLSConfigError": "portprobe.errors",
}

__all__ = [
    "CatalogError",
    "Companion",
    "DiagnoseRequest",
    "Diagnosis",
    "InputError",
    "OutputError",
    "PortMap",
    "PortprobeError",
    "Report",
    "Shared",
    "SocketOptions",
    "TLSConfigError",
    "Verdict",
    "__version__",
    "diagnose",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'portprobe' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
