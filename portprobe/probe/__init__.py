"""Probe I/O: the engine (one probe), the runner (many at once), TLS and error mapping."""

from portprobe.probe.engine import Connector, ProbeConfig, open_tcp, probe
from portprobe.probe.pathwait import PathEvidence
from portprobe.probe.runner import Runner

__all__ = ["Connector", "PathEvidence", "ProbeConfig", "Runner", "open_tcp", "probe"]
