"""One address family's probes, digested once into the frozen evidence the rules read.

Evidence is counted per *provider* (``ProbeSpec.provider_key``): three MX hosts of one
operator failing together are one observation, not three. ``digest`` is the only place that
sorts probes into "greeted", "refused this client" and "failed on the path"; the rules in
``family.py`` only read what it built.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from portprobe.model import ProbeResult, ProbeSpec
from portprobe.outcome import Observed
from portprobe.report.annotate import STRONG_INTERCEPTION, WEAK_INTERCEPTION
from portprobe.report.anomalies import RefusalTiming, greeted
from portprobe.report.refusals import RefusalKind, refusal_kind
from portprobe.text import shorten, visible
from portprobe.vocab import FAMILY_NAME, FailureMode, Family

#: Probe states where the connection never produced an SMTP conversation: the ones a
#: port filter causes. ``dns-error`` and ``error`` say nothing about the path.
PATH_FAILURES: Final = frozenset(
    {"filtered", "refused", "unreachable", "no-banner", "not-smtp", "tls-error"}
)

#: The blocked failure modes, each pointing at a different kind of filter.
FAILURE_MODE: Final[dict[str, FailureMode]] = {
    "filtered": "dropped",  # SYNs silently discarded: a stateless ACL / cloud egress rule
    "refused": "reset",  # RST (or ICMP port-unreachable; Linux maps both to ECONNREFUSED)
    "unreachable": "prohibited",  # ICMP administratively prohibited from a router
    "no-banner": "no-greeting",  # something accepts the SYN and then stays silent
    "not-smtp": "no-greeting",  # ...or answers with something that is not SMTP
    "tls-error": "no-greeting",
}

FAILURE_MODE_TEXT: Final[dict[FailureMode, str]] = {
    "dropped": "silently dropped, the connection attempts timed out",
    "reset": "refused with a TCP reset or ICMP port-unreachable",
    "prohibited": "rejected with ICMP 'administratively prohibited' / unreachable",
    "no-greeting": "connected but never sent an SMTP greeting",
    "mixed": "failed in different ways",
}


def failure_mode(states: Iterable[str]) -> FailureMode | None:
    modes = {FAILURE_MODE[s] for s in states if s in FAILURE_MODE}
    if not modes:
        return None
    return modes.pop() if len(modes) == 1 else "mixed"


def quote(text: str, width: int = 120) -> str:
    """Server text fit to appear in a reason: one line, every control made visible."""
    return shorten(visible(" ".join(text.split())), width)


@dataclass(frozen=True)
class Provider25:
    """Everything one provider's port-25 probes showed, in one family."""

    key: str
    hosts: tuple[str, ...] = ()
    genuine: bool = False
    greeted: bool = False
    strong: frozenset[str] = frozenset()
    weak: frozenset[str] = frozenset()
    refusals: tuple[tuple[RefusalKind, ProbeResult], ...] = ()
    failures: tuple[tuple[int, ProbeResult], ...] = ()

    @property
    def label(self) -> str:
        return self.key

    @property
    def described(self) -> str:
        """The provider with the hosts it stands for: ``Example (mx1.example.net)``."""
        hosts = sorted(set(self.hosts) - {self.key})
        if not hosts:
            return self.key
        more = ", …" if len(hosts) > 2 else ""
        return f"{self.key} ({', '.join(hosts[:2])}{more})"

    @property
    def kinds(self) -> frozenset[RefusalKind]:
        return frozenset(kind for kind, _ in self.refusals)


@dataclass(frozen=True)
class FamilyEvidence:
    """One family's probes, digested for the rules."""

    family: Family
    results: tuple[tuple[int, Observed], ...]
    timings: Mapping[int, RefusalTiming]
    connected: bool = False
    ports: frozenset[int] = frozenset()
    providers: Mapping[str, Provider25] = field(default_factory=dict)
    controls: Mapping[str, frozenset[int]] = field(default_factory=dict)  # provider -> ports
    #: Ports of this family's probes still running when the run was interrupted.
    unfinished: frozenset[int] = frozenset()

    @property
    def name(self) -> str:
        return FAMILY_NAME[self.family]

    def answered(self) -> list[Provider25]:
        return [p for p in self.providers.values() if p.greeted or p.strong]

    def failed(self) -> list[Provider25]:
        return [p for p in self.providers.values() if p.failures and not (p.greeted or p.strong)]

    def control_ports(self, provider: Provider25) -> frozenset[int]:
        return self.controls.get(provider.key, frozenset())


@dataclass
class _Tally:
    """A provider's port-25 probes while ``digest`` collects them; frozen at the end."""

    hosts: list[str] = field(default_factory=list)
    genuine: bool = False
    greeted: bool = False
    strong: set[str] = field(default_factory=set)
    weak: set[str] = field(default_factory=set)
    refusals: list[tuple[RefusalKind, ProbeResult]] = field(default_factory=list)
    failures: list[tuple[int, ProbeResult]] = field(default_factory=list)

    def freeze(self, key: str) -> Provider25:
        return Provider25(
            key,
            tuple(self.hosts),
            self.genuine,
            self.greeted,
            frozenset(self.strong),
            frozenset(self.weak),
            tuple(self.refusals),
            tuple(self.failures),
        )


def digest(
    family: Family,
    observed: Sequence[Observed],
    timings: Sequence[RefusalTiming] = (),
    unfinished: Iterable[ProbeSpec] = (),
) -> FamilyEvidence:
    """The evidence of ``family`` among ``observed``; ``timings`` index into ``observed``.

    ``unfinished``: the probes still running when the run was interrupted (not results).
    """
    mine = tuple((i, o) for i, o in enumerate(observed) if o.result.spec.family == family)
    tallies: dict[str, _Tally] = {}
    controls: dict[str, set[int]] = defaultdict(set)
    ports: set[int] = set()
    for i, o in mine:
        r, codes = o.result, o.anomalies
        if r.spec.negative:
            # A documented-dead port 25 that accepts a connection is interception evidence.
            if r.spec.port == 25 and "negative-control-answered" in codes:
                tally = tallies.setdefault(r.spec.provider_key, _Tally())
                tally.hosts.append(r.spec.host)
                tally.strong.add("negative-control-answered")
            continue
        ports.add(r.spec.port)
        if r.spec.port != 25:
            # A control shows the path to the provider works only if the server spoke:
            # a port that connects and stays silent (or fails TLS) may be held by the same
            # filter that holds 25.
            if greeted(r):
                controls[r.spec.provider_key].add(r.spec.port)
            continue
        tally = tallies.setdefault(r.spec.provider_key, _Tally())
        tally.hosts.append(r.spec.host)
        tally.strong |= STRONG_INTERCEPTION.intersection(codes)
        tally.weak |= WEAK_INTERCEPTION.intersection(codes)
        if r.greeting is not None and r.state in ("open", "rejected"):
            tally.greeted = True
            tally.genuine = tally.genuine or o.genuine
            if r.state == "rejected":
                tally.refusals.append((refusal_kind(r.greeting), r))
        elif r.state in PATH_FAILURES:
            tally.failures.append((i, r))
    wanted = {i for i, _ in mine}
    return FamilyEvidence(
        family=family,
        results=mine,
        timings={t.index: t for t in timings if t.index in wanted},
        connected=any(o.result.connected for _, o in mine),
        ports=frozenset(ports),
        providers={key: tally.freeze(key) for key, tally in tallies.items()},
        controls={key: frozenset(found) for key, found in controls.items()},
        unfinished=frozenset(s.port for s in unfinished if s.family == family and not s.negative),
    )
