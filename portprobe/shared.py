"""What every diagnosis of one process shares: files read once, contexts built once, manners
kept process-wide.

A CLI run makes one :class:`~portprobe.diagnosis.Diagnosis` and exits, so it passes
nothing and each run builds its own. A long-running process — ``portprobe serve``, a
library user's scheduler — makes one ``Shared`` and hands it to every ``Diagnosis``:

    shared = portprobe.Shared()
    report = await portprobe.diagnose(request, shared=shared)

Then:

- the catalog and the platform table are read and checked once (again only when the file
  changed on disk), the TLS contexts with the system trust store (20-40 ms) are built
  once per CA file, one DNS client serves every run that asks the same servers, and the
  DMI strings (platform evidence) are read from /sys once;
- **manners hold for the process, not per run**: one :class:`~portprobe.probe.runner.Manners`
  limits the connections to each address across every diagnosis at once (two concurrent
  scrapes never open more than ``per_host`` connections to the same MX together), and
  one socket budget sized from the open-file limit is shared by all of them;
- ``connector`` and ``lookup``, when given, are the transport seams every diagnosis made
  with this object uses (httpx's ``transport=``): in-memory streams, a scripted DNS.

Nothing here does I/O when made; each resource is built on first use, from the trio
thread of the caller (a ``Shared`` is not for several threads at once).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

from portprobe import defaults

if TYPE_CHECKING:
    from portprobe.environment.platforms import PlatformCatalog
    from portprobe.model import DnsLookup
    from portprobe.probe.connect import Connector
    from portprobe.probe.dnsclient import DnsClient
    from portprobe.probe.runner import Manners
    from portprobe.probe.tls import TLSContexts
    from portprobe.targets.catalog import Catalog


@dataclass(frozen=True)
class _FileKey:
    """A file as it is now: a changed file is read again, an unchanged one never."""

    path: str | None
    mtime_ns: int = 0
    size: int = 0

    @classmethod
    def of(cls, path: Path | None) -> _FileKey:
        if path is None:
            return cls(None)
        try:
            stat = os.stat(path)
        except OSError:
            return cls(os.fspath(path))  # the loader reports why it cannot read it
        return cls(os.fspath(path), stat.st_mtime_ns, stat.st_size)


class Shared:
    """Resources built once and shared by every diagnosis made with this object.

    ``per_host``: the process-wide limit of simultaneous connections to one address
    (each run's own ``per_host`` still applies within it). ``sockets``: how many probe
    connections may be open at once across all runs; None sizes it from the open-file
    limit when first needed.
    """

    def __init__(
        self,
        *,
        per_host: int = defaults.PER_HOST,
        sockets: int | None = None,
        connector: Connector | None = None,
        lookup: DnsLookup | None = None,
    ) -> None:
        if isinstance(per_host, bool) or not isinstance(per_host, int) or per_host < 1:
            raise ValueError(f"per_host must be a whole number of at least 1, not {per_host!r}")
        if sockets is not None and (not isinstance(sockets, int) or sockets < 1):
            raise ValueError(f"sockets must be a whole number of at least 1, not {sockets!r}")
        self.per_host = per_host
        self.connector = connector
        self.lookup = lookup
        self._sockets = sockets
        self._manners: Manners | None = None
        self._tls: dict[_FileKey, TLSContexts] = {}
        self._catalogs: dict[_FileKey, Catalog] = {}
        self._platforms: PlatformCatalog | None = None
        self._dmi: dict[str, Mapping[str, str]] = {}
        self._dns: dict[tuple[tuple[tuple[str, int], ...], float], DnsClient] = {}

    @property
    def manners(self) -> Manners:
        """The process-wide per-address limit and socket budget."""
        if self._manners is None:
            from portprobe.probe.runner import Manners, fd_budget

            self._manners = Manners(self.per_host, self._sockets or fd_budget())
        return self._manners

    def tls(self, ca_file: Path | None) -> TLSContexts:
        """The verifying and the looking TLS contexts, with ``ca_file`` trusted too.

        Raises :class:`~portprobe.errors.TLSConfigError` for a CA file that cannot be read
        or holds no certificate (before any network activity).
        """
        key = _FileKey.of(ca_file)
        contexts = self._tls.get(key)
        if contexts is None:
            contexts = self._tls[key] = _load_tls(ca_file)
        return contexts

    def catalog(self, path: Path | None) -> Catalog:
        """The catalog at ``path`` (None: the built-in one), read and checked once."""
        key = _FileKey.of(path)
        catalog = self._catalogs.get(key)
        if catalog is None:
            from portprobe.targets.catalog import load_catalog

            catalog = self._catalogs[key] = load_catalog(path)
        return catalog

    def dns(self, nameservers: tuple[tuple[str, int], ...], timeout: float) -> DnsLookup:
        """The DNS client for these servers (none: the system's) and this timeout: the
        ``lookup`` given when this was made, else one :class:`DnsClient` per pair, shared
        by the planner and the readiness checks of every run that asks for the same."""
        if self.lookup is not None:
            return self.lookup
        key = (nameservers, timeout)
        client = self._dns.get(key)
        if client is None:
            from portprobe.probe.dnsclient import DnsClient

            client = self._dns[key] = DnsClient(nameservers, timeout)
        return client

    def dmi(self, sysfs: Path) -> Mapping[str, str]:
        """The DMI strings under ``sysfs``, read once: firmware does not change while the
        machine runs, and a long-running process need not read /sys for every report."""
        key = os.fspath(sysfs)
        found = self._dmi.get(key)
        if found is None:
            from portprobe.environment.detect import read_dmi

            found = self._dmi[key] = MappingProxyType(read_dmi(sysfs))
        return found

    def platforms(self) -> PlatformCatalog:
        """The built-in platform table (package data: it cannot change under us)."""
        if self._platforms is None:
            from portprobe.environment.platforms import load_platforms

            self._platforms = load_platforms()
        return self._platforms


def _load_tls(ca_file: Path | None) -> TLSContexts:
    import ssl

    from portprobe.errors import TLSConfigError
    from portprobe.probe.tls import make_contexts

    ca = str(ca_file) if ca_file else None
    if ca is not None:
        try:
            with open(ca, "rb"):
                pass
        except OSError as exc:
            raise TLSConfigError(f"--ca-file: cannot read {ca}: {exc.strerror or exc}") from exc
    try:
        return make_contexts(ca)
    except (ssl.SSLError, ValueError) as exc:
        raise TLSConfigError(f"--ca-file: {ca} holds no usable PEM certificate ({exc})") from exc
