"""Probe I/O: the engine (one probe), the runner (many at once), TLS and error mapping."""

from portprobe.probe.connect import Connector, SocketOptions, open_tcp
from portprobe.probe.engine import ProbeConfig, probe
from portprobe.probe.pathwait import PathEvidence
from portprobe.probe.runner import Runner

__all__ = [
    "Connector",
    "PathEvidence",
    "ProbeConfig",
    "Runner",
    "SocketOptions",
    "open_tcp",
    "probe",
]
