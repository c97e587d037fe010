"""Defaults shared by the command line and the library, each with its reason.

Pure and tiny: the CLI shows these in ``--help`` without importing trio or dnspython.
"""

from __future__ import annotations

from typing import Final

# Upper bound for one probe, all phases together (--timeout). Generous because a
# postscreen/greet_pause greeting comes after 6 s or more, and a TLS retry costs more.
TIMEOUT: Final = 10.0
# Hard bound for the TCP handshake alone: covers the SYN retransmissions at 1 s and 3 s
# (RFC 6298); ``PathEvidence`` usually decides well before it.
CONNECT_TIMEOUT: Final = 4.0
# Seconds per DNS lookup; a healthy resolver answers in < 0.1 s.
DNS_TIMEOUT: Final = 3.0
# Probes in flight at once (--concurrency).
CONCURRENCY: Final = 64
# One connection per port of the four: a mail host sees no more than this from us at once.
PER_HOST: Final = 4
# Big providers publish 2-5 MX hosts; more is an odd domain.
MAX_MX: Final = 5
# Addresses probed per host name and address family.
MAX_ADDRESSES: Final = 4
#: How many deferred destination domains of the local MTA's queue join the targets.
QUEUE_DESTINATIONS: Final = 3

#: ``--max-hops``: the TTL ladder's top (spec "Path"), and the most it may be set to.
MAX_HOPS: Final = 20
MAX_HOPS_LIMIT: Final = 64
