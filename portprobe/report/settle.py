"""What would settle an inconclusive run: the steps the undecided rules name.

A rule that cannot tell a port-25 block from an outage says what it lacked by naming one of
these in ``Finding.settle``; ``report/advice.py`` gives them as the inconclusive verdict's
advice. Each is a typed ``Advice`` whose ``ports`` let a platform that blocks them drop it.
"""

from __future__ import annotations

from typing import Final

from portprobe.advice import Advice

#: Port 25 was not in --ports.
INCLUDE_PORT25: Final = Advice("include-port25", "Include port 25 in --ports.")
#: The run was interrupted while probes were still running.
STILL_RUNNING_SETTLE: Final = Advice(
    "let-probes-finish",
    "Run again and let the probes finish: a port that is silently dropped takes the whole "
    "--timeout to be called filtered.",
)
#: Only local errors or unresolved names on port 25.
CHECK_PROBE_ERRORS: Final = Advice(
    "check-probe-errors", "Check the probe errors in the table, then run again."
)
#: Port 25 failed, and no other port reached the same hosts to tell a block from an outage.
PROBE_THE_SAME_HOSTS_ON_587: Final = Advice(
    "probe-control-port",
    "Probe the same hosts on 587 too (--ports 25,587), or add --target of a host that "
    "answers on 587.",
    ports=(587,),
)
#: One host refused port 25: it may simply run no MTA there.
PROBE_MORE_PROVIDERS: Final = Advice(
    "probe-more-providers",
    "Probe a domain's MX hosts (--domain) or use the built-in catalog, so several "
    "independent providers are tried on port 25.",
)
#: Nothing connected, and no address was found to probe.
CHECK_NAMES: Final = Advice(
    "check-names",
    "Check the host and domain names (no address was found to probe), or use --target with "
    "an IP address.",
)
#: Nothing connected, and only port 25 was probed: a block and an outage look the same.
PROBE_A_CONTROL: Final = Advice(
    "probe-control-port", "Probe a control port as well (--ports 25,587).", ports=(587,)
)
#: Nothing connected although DNS answered: every mail port may be filtered.
CHECK_CAPTIVE_PORTAL: Final = Advice(
    "check-captive-portal",
    "Check whether this network needs a login (captive portal) or allows only web traffic; "
    "then add --target of a host you know answers on 587 or 2525.",
    ports=(587, 2525),
)
#: Inconclusive with --target/--domain, and no rule said more: the catalog has controls.
DROP_TARGETS_FOR_CATALOG: Final = Advice(
    "use-catalog",
    "Run without --target/--domain to use the built-in catalog of providers and controls.",
)
#: The step when no finding said what would settle an inconclusive run: the built-in
#: catalog probes control ports, which tell a port-25 block from hosts being down.
USE_CATALOG: Final = Advice(
    "use-catalog",
    "Run again without --target to use the built-in catalog, which includes "
    "control hosts on ports 465, 587 and 2525.",
    ports=(465, 587, 2525),
)
