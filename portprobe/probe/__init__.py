"""Probe I/O: the engine (one probe), the runner (many at once), TLS and error mapping."""

from portprobe.probe.engine import ProbeConfig, open_tcp, probe
from portprobe.probe.runner import Runner

__all__ = ["ProbeConfig", "Runner", "open_tcp", "probe"]
