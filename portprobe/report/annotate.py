"""Each probe annotated once: its anomalies, whether a genuine server greeted, in whose name.

``annotate`` runs the cross-probe rules (``anomalies.py``) over the whole result set and
returns one frozen ``Observed`` per result, in order. The verdict, the report summary and
the renderers all read these, so what "genuine" or "intercepted" means is decided here once
and the JSON, the table and the verdict cannot disagree.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

from portprobe.model import ProbeResult
from portprobe.outcome import Observed
from portprobe.protocol.smtp import greeting_domain
from portprobe.report.anomalies import cross_probe_anomalies

#: Anomalies that, on a port-25 probe, say by themselves that a middlebox answered:
#: nothing a genuine MTA does produces them.
STRONG_INTERCEPTION: Final = frozenset(
    {
        "masked-greeting",  # Cisco PIX/ASA "inspect esmtp" blanks the banner to "220 ****"
        "starttls-stripped",  # ...and overwrites STARTTLS with XXXXXXXA
        "starttls-trailing-data",  # bytes injected between "220 Ready" and the handshake
        "greeting-shared-across-providers",  # one box answering for every destination
        "cert-differs-from-587",  # a TLS proxy re-signing: another name/issuer than on 587
        "negative-control-answered",  # a port documented dead accepted the connection
    }
)

#: Anomalies that are suspicious but have innocent explanations (a misconfigured MTA,
#: an out-of-date catalog entry); they decide ``intercepted`` only when most answering
#: providers show them, or when they are all the evidence there is.
WEAK_INTERCEPTION: Final = frozenset(
    {
        "greeting-name-mismatch",
        "starttls-missing-on-25",
        "greeting-unexpected",
        "cert-name-unexpected",
    }
)

INTERCEPTION: Final = STRONG_INTERCEPTION | WEAK_INTERCEPTION


def all_anomalies(result: ProbeResult, extra: Iterable[str] = ()) -> tuple[str, ...]:
    """The engine's anomalies followed by the cross-probe ones, without duplicates."""
    if not result.anomalies and not extra:
        return ()  # most probes: nothing to merge
    seen: dict[str, None] = dict.fromkeys(result.anomalies)
    seen.update(dict.fromkeys(extra))
    return tuple(seen)


def is_intercepted(anomalies: Iterable[str]) -> bool:
    return any(code in INTERCEPTION for code in anomalies)


def is_genuine(result: ProbeResult, anomalies: Iterable[str]) -> bool:
    """A 2xx greeting with nothing suggesting a middlebox produced it."""
    return result.state == "open" and not is_intercepted(anomalies)


def observe(result: ProbeResult, extra: Iterable[str] = ()) -> Observed:
    """One result with its own and ``extra`` (cross-probe) anomaly codes."""
    codes = all_anomalies(result, extra)
    domain = greeting_domain(result.greeting) if result.greeting is not None else None
    return Observed(result, codes, is_genuine(result, codes), domain)


def annotate(results: Sequence[ProbeResult]) -> tuple[Observed, ...]:
    """Every result, in order, with its anomalies (own first, then cross-probe ones)."""
    extra = cross_probe_anomalies(results)
    return tuple(observe(r, extra.get(i, ())) for i, r in enumerate(results))
