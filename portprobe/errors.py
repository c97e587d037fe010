"""The user-facing errors: one base class, so the CLI edge needs one ``except``.

Every error here means "the input (or the place asked to write) is wrong", is raised before
any probe starts, and carries a one-line message that names the offending value. A network
failure is never one of these: it is a probe result. A bug is any other exception.
"""

from __future__ import annotations


class PortprobeError(Exception):
    """Bad input, an unreadable catalog or CA file, an unwritable output: exit 2 at the CLI."""


class InputError(PortprobeError, ValueError):
    """A value the user gave is not valid (a host name, a port, a nameserver, an option)."""


class CatalogError(PortprobeError):
    """A catalog or data file (TOML) cannot be read or does not follow its documented form."""


class OutputError(PortprobeError):
    """The report cannot be written where the user asked."""


class TLSConfigError(PortprobeError):
    """``--ca-file`` cannot be read or holds no usable PEM certificate."""
