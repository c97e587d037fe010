"""Anomalies only visible when probes are compared with each other (or with the catalog).

The engine flags what one conversation shows by itself (``masked-greeting``,
``starttls-stripped``...). Here we look across probes: a middlebox is recognised by
answering *differently from the real server* — the same banner for every provider, a
greeting or certificate that the same provider's port 587 contradicts, a port documented
dead that answers. Each rule returns ``Flag``s: a kebab-case code and the index of the probe
it concerns. ``annotate.py`` merges them into each probe's ``Observed`` once.
"""

from __future__ import annotations

import ipaddress
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from portprobe.model import CertInfo, ProbeResult, ProbeSpec
from portprobe.protocol.smtp import greeting_domain
from portprobe.report.refusals import refusal_kind
from portprobe.vocab import Family

#: A cross-probe anomaly: (index of the probe in the results, anomaly code).
Flag = tuple[int, str]

# "Where did the refusal come from": a RST / ICMP error from the host itself takes about
# one round trip to the host; one sent by the ISP's edge arrives much sooner. We compare
# with the TCP handshake time of the same host on another port. On loopback or a LAN both
# are well under a millisecond, so we need a clear ratio AND a round trip long enough
# that the difference is not jitter.
PATH_RTT_FLOOR_MS: Final = 20.0  # the control round trip must be at least this
PATH_RTT_RATIO: Final = 4.0  # ...and the refusal at least this many times faster


@dataclass(frozen=True)
class RefusalTiming:
    """A port-25 refusal timed against the same host's handshake on a control port."""

    index: int
    refusal_ms: float
    control_ms: float
    control_port: int

    @property
    def from_path(self) -> bool:
        return (
            self.control_ms >= PATH_RTT_FLOOR_MS
            and self.refusal_ms * PATH_RTT_RATIO <= self.control_ms
        )

    @property
    def from_host(self) -> bool:
        """As slow as a round trip to the host: consistent with the host refusing."""
        return self.control_ms >= PATH_RTT_FLOOR_MS and self.refusal_ms * 2 >= self.control_ms


# --- names --------------------------------------------------------------------------------


def greeted(result: ProbeResult) -> bool:
    """An SMTP greeting arrived, whatever its code."""
    return result.greeting is not None and result.state in ("open", "rejected")


def is_ip_literal(name: str) -> bool:
    """An address, not a name: ``192.0.2.1``, ``2001:db8::1``, or an EHLO address literal
    (``[192.0.2.1]``, ``[IPv6:2001:db8::1]``, RFC 5321 §4.1.3). All-numeric dotted text
    counts too: no top-level domain is numeric (RFC 3696 §2), so it names no domain.
    """
    text = name.strip().strip("[]")
    if text[:5].lower() == "ipv6:":
        text = text[5:]
    if _DOTTED_NUMBERS.fullmatch(text):
        return True
    if ":" not in text:
        return False  # neither an IPv6 address nor digits and dots: a name (no parse needed)
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


_DOTTED_NUMBERS: Final = re.compile(r"[0-9.]+")


def base_domain(name: str | None) -> str | None:
    """The last two labels, lower-cased: a crude registrable domain, no PSL needed.

    Good enough to tell ``mx.google.com`` (gmail-smtp-in.l.google.com) from
    ``proxy.isp.example``; a false match only makes us miss an anomaly, never invent one.
    """
    if not name or is_ip_literal(name):
        return None
    labels = [part for part in name.lower().rstrip(".").split(".") if part]
    if len(labels) < 2:
        return None
    return ".".join(labels[-2:])


def name_covered(name: str, patterns: Iterable[str]) -> bool:
    """Does a certificate name (``*.example.com`` wildcard allowed) cover ``name``?"""
    name = name.lower().rstrip(".")
    for raw in patterns:
        pattern = raw.lower().rstrip(".")
        if pattern == name:
            return True
        if pattern.startswith("*.") and "." in name and name.split(".", 1)[1] == pattern[2:]:
            return True
    return False


# --- refusal timing -----------------------------------------------------------------------


def refusal_timings(results: Sequence[ProbeResult]) -> list[RefusalTiming]:
    """Every port-25 RST/ICMP refusal that has a control handshake to compare with.

    One pass builds the control index, one pass looks each refusal up: linear in the
    number of results (a run of thousands of targets used to scan them all per refusal).
    """
    index = ControlIndex(results)
    out = []
    for i, r in enumerate(results):
        if r.spec.port != 25 or r.state not in ("refused", "unreachable"):
            continue
        if r.timings.total is None:
            continue
        control = index.fastest(r.spec)
        if control is not None:
            out.append(RefusalTiming(i, r.timings.total, control[0], control[1]))
    return out


#: A control handshake: (connect ms, port); the smallest is the fastest, ties to the lower port.
Handshake = tuple[float, int]


class ControlIndex:
    """The fastest handshake on a port other than 25, per address, host and provider.

    Built in one pass over the results; ``fastest`` looks a port-25 probe's control up by
    its address, else its host, else its provider (within its address family). Negative
    controls and probes that never connected are not controls.
    """

    def __init__(self, results: Iterable[ProbeResult]) -> None:
        self.by_address: dict[tuple[str | None, str], Handshake] = {}
        self.by_host: dict[tuple[str | None, str], Handshake] = {}
        self.by_provider: dict[tuple[str | None, str], Handshake] = {}
        for other in results:
            o = other.spec
            if o.port == 25 or o.negative or other.timings.connect is None:
                continue
            entry = (other.timings.connect, o.port)
            if o.address is not None:
                _keep_fastest(self.by_address, (o.family, o.address), entry)
            _keep_fastest(self.by_host, (o.family, o.host), entry)
            _keep_fastest(self.by_provider, (o.family, o.provider_key), entry)

    def fastest(self, s: ProbeSpec) -> Handshake | None:
        """Fastest handshake on another port: same address, else same host, else provider."""
        if s.address is not None:
            found = self.by_address.get((s.family, s.address))
            if found is not None:
                return found
        # No control shares the address, so every one of this host's is at another address
        # (and likewise for the provider's): the lookups below are the tiers of old.
        return self.by_host.get((s.family, s.host)) or self.by_provider.get(
            (s.family, s.provider_key)
        )


def _keep_fastest(
    index: dict[tuple[str | None, str], Handshake], key: tuple[str | None, str], entry: Handshake
) -> None:
    known = index.get(key)
    if known is None or entry < known:
        index[key] = entry


def cross_probe_anomalies(results: Sequence[ProbeResult]) -> dict[int, tuple[str, ...]]:
    """Index into ``results`` -> new anomaly codes (never repeating the engine's own)."""
    found: dict[int, list[str]] = defaultdict(list)
    for rule in _RULES:
        for index, code in rule(results):
            if code not in results[index].anomalies and code not in found[index]:
                found[index].append(code)
    return {i: tuple(codes) for i, codes in sorted(found.items()) if codes}


def _greeting_unexpected(results: Sequence[ProbeResult]) -> list[Flag]:
    # The catalog knows what the real server says ("mx.google.com ESMTP"); a proxy
    # answering in its place says something else.
    out = []
    for i, r in enumerate(results):
        pattern = r.spec.expect.greeting_pattern if r.spec.expect else None
        if pattern is None or r.greeting is None:
            continue
        try:
            matched = re.search(pattern, r.greeting.text, re.IGNORECASE)
        except re.error:
            continue  # a broken catalog entry is not evidence against the network
        if matched is None:
            out.append((i, "greeting-unexpected"))
    return out


def _cert_names(cert: CertInfo) -> list[str]:
    names = list(cert.san)
    names += re.findall(r"CN\s*=\s*([^,/]+)", cert.subject)
    return [n.strip() for n in names if n.strip()]


def _cert_name_unexpected(results: Sequence[ProbeResult]) -> list[Flag]:
    # A certificate that does not cover the name the catalog documents was minted by
    # somebody else: typically an antivirus or corporate TLS proxy.
    out = []
    for i, r in enumerate(results):
        name = r.spec.expect.cert_name if r.spec.expect else None
        if name is None or r.tls is None or r.tls.cert is None:
            continue
        if not name_covered(name, _cert_names(r.tls.cert)):
            out.append((i, "cert-name-unexpected"))
    return out


def _starttls_missing_on_25(results: Sequence[ProbeResult]) -> list[Flag]:
    # Every large provider offers STARTTLS on its MX; a missing keyword on 25 while the
    # catalog says it must, or while the same provider offers it on 587 at two providers
    # or more, means something in the path removed it - without the XXXXXXXA trace ASA
    # leaves. One server of one's own offering STARTTLS on 587 and not on 25 is most
    # likely configured that way: that alone is no middlebox sign (the verdict's reasons
    # still say so).
    offered_587 = {
        (r.spec.provider_key, r.spec.family)
        for r in results
        if r.spec.port == 587 and r.starttls == "offered"
    }
    out = []
    unlike_587: dict[Family | None, list[tuple[int, str]]] = defaultdict(list)
    for i, r in enumerate(results):
        if r.spec.port != 25 or r.starttls != "not-offered":
            continue
        if r.spec.expect and r.spec.expect.starttls:
            out.append((i, "starttls-missing-on-25"))
        elif (r.spec.provider_key, r.spec.family) in offered_587:
            unlike_587[r.spec.family].append((i, r.spec.provider_key))
    for found in unlike_587.values():
        if len({provider for _, provider in found}) >= 2:
            out += [(i, "starttls-missing-on-25") for i, _ in found]
    return sorted(out)


def starttls_only_on_587(results: Iterable[ProbeResult]) -> list[ProbeResult]:
    """Port-25 probes without STARTTLS whose provider offers it on 587 (same family)."""
    results = list(results)
    offered_587 = {
        (r.spec.provider_key, r.spec.family)
        for r in results
        if r.spec.port == 587 and r.starttls == "offered"
    }
    return [
        r
        for r in results
        if r.spec.port == 25
        and r.starttls == "not-offered"
        and (r.spec.provider_key, r.spec.family) in offered_587
    ]


def _issuer_org(issuer: str) -> str:
    # Let's Encrypt rotates intermediates (R10/R11...) between servers, so compare the
    # issuing organisation, not the full issuer name.
    m = re.search(r"(?:^|[,/]\s*)O\s*=\s*([^,/]+)", issuer)
    return (m.group(1) if m else issuer).strip().lower()


def _cert_differs_from_587(results: Sequence[ProbeResult]) -> list[Flag]:
    # The same host name on 25 and 587 is one server with one certificate. Another
    # issuer, disjoint names, or a chain that stops verifying only on 25 is a TLS proxy
    # re-signing the port-25 session.
    certs_587 = {
        (r.spec.host, r.spec.family): r.tls
        for r in results
        if r.spec.port == 587 and r.tls is not None and r.tls.cert is not None
    }
    out = []
    for i, r in enumerate(results):
        if r.spec.port != 25 or r.tls is None or r.tls.cert is None:
            continue
        other = certs_587.get((r.spec.host, r.spec.family))
        if other is None or other.cert is None:
            continue
        names_25 = {n.lower() for n in _cert_names(r.tls.cert)}
        names_587 = {n.lower() for n in _cert_names(other.cert)}
        differs = (
            _issuer_org(r.tls.cert.issuer) != _issuer_org(other.cert.issuer)
            or (bool(names_25) and bool(names_587) and not names_25 & names_587)
            or (other.verified and not r.tls.verified)
        )
        if differs:
            out.append((i, "cert-differs-from-587"))
    return out


def _greeting_name_mismatch(results: Sequence[ProbeResult]) -> list[Flag]:
    # RFC 5321 §4.3.1: the greeting names the server. A port-25 greeting naming a domain
    # unrelated to the host, while the same provider's other ports greet with their own
    # names, was written by something else (a transparent proxy answering in its name).
    names_by_provider: dict[tuple[str, str | None], set[str]] = defaultdict(set)
    for r in results:
        if r.spec.port == 25 or r.greeting is None:
            continue
        own = base_domain(r.spec.host)
        if own is None:  # an address names no domain: nothing to compare (no parse needed)
            continue
        said = base_domain(greeting_domain(r.greeting))
        if said == own:  # this control greets correctly
            names_by_provider[(r.spec.provider_key, r.spec.family)].update({own, said})
    out = []
    for i, r in enumerate(results):
        if r.spec.port != 25 or r.greeting is None:
            continue
        known = names_by_provider.get((r.spec.provider_key, r.spec.family))
        if not known:
            continue
        own = base_domain(r.spec.host)
        said = base_domain(greeting_domain(r.greeting))
        if own is None or said is None:
            continue
        if said != own and said not in known:
            out.append((i, "greeting-name-mismatch"))
    return out


def _normalised_first_line(r: ProbeResult) -> str | None:
    if r.greeting is None:
        return None
    first = r.greeting.lines[0] if r.greeting.lines else ""
    return f"{r.greeting.code} {' '.join(first.split()).lower()}"


def _greeting_shared(results: Sequence[ProbeResult]) -> list[Flag]:
    # Real MTAs put their own name and usually a session id in the banner; two
    # independent providers at different addresses greeting with the very same line is
    # one box answering for both. Providers hosted by the same operator greet with the
    # operator's name, which then matches every host: that is not flagged; nor is a line
    # naming no server at all (refusal boilerplate such as "421 Too many connections").
    by_port_line: dict[tuple[int, str], list[int]] = defaultdict(list)
    for i, r in enumerate(results):
        line = _normalised_first_line(r)
        if line is not None and greeted(r):
            by_port_line[(r.spec.port, line)].append(i)
    out = []
    for indexes in by_port_line.values():
        group = [results[i] for i in indexes]
        providers = {r.spec.provider_key for r in group}
        addresses = {r.spec.address for r in group}
        if len(providers) < 2 or len(addresses) < 2:
            continue
        said = base_domain(greeting_domain(group[0].greeting)) if group[0].greeting else None
        if said is None:
            continue  # boilerplate ("554 Access denied") naming no server proves nothing
        if all(base_domain(r.spec.host) == said for r in group):
            continue
        out += [(i, "greeting-shared-across-providers") for i in indexes]
    return out


def _negative_control_answered(results: Sequence[ProbeResult]) -> list[Flag]:
    # The catalog documents this port as closed on this host. If a connection completes
    # anyway, something between us and the host accepts connections on its behalf.
    return [
        (i, "negative-control-answered")
        for i, r in enumerate(results)
        if r.spec.negative and r.connected
    ]


def _refusal_from_path(results: Sequence[ProbeResult]) -> list[Flag]:
    return [(t.index, "refusal-from-path") for t in refusal_timings(results) if t.from_path]


def _receiver_refusals(results: Sequence[ProbeResult]) -> list[Flag]:
    # Not a middlebox: the real receiver turning this client away. Labelled so the table
    # shows at a glance which refusals are blocklist listings and which are load.
    out = []
    for i, r in enumerate(results):
        if r.state == "rejected" and r.greeting is not None:
            kind = refusal_kind(r.greeting)
            if kind == "blocklisted":
                out.append((i, "client-blocklisted"))
            elif kind == "rate-limited":
                out.append((i, "rate-limited"))
    return out


_RULES = (
    _greeting_unexpected,
    _cert_name_unexpected,
    _starttls_missing_on_25,
    _cert_differs_from_587,
    _greeting_name_mismatch,
    _greeting_shared,
    _negative_control_answered,
    _refusal_from_path,
    _receiver_refusals,
)
