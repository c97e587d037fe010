"""One DNS answer as the readiness checks read it (pure).

The type is the DNS client's own (:class:`portprobe.model.DnsAnswer`, one for the planner
and readiness alike), and ``FAILED`` the outcomes that mean a lookup broke: named here
for the readiness modules that read them.
"""

from __future__ import annotations

from typing import Final

from portprobe.model import DnsAnswer as DnsAnswer
from portprobe.vocab import DNS_FAILED, DnsOutcome

__all__ = ["FAILED", "DnsAnswer"]

#: ``nxdomain``/``nodata`` are answers ("no such record"); these are RFC 7001's
#: temporary errors.
FAILED: Final[frozenset[DnsOutcome]] = DNS_FAILED
