"""The planner: jobs (what the user named) plus DNS answers become a :class:`Plan`, streaming.

Two halves:

- :func:`assemble` is pure. Given the answers known so far it returns the plan as known
  so far and the lookups that plan still needs. With every answer in, its plan is the
  final one, and its order (job order, then MX preference, family, lowest address, port)
  does not depend on which answer came first. That order is the report's probe order.
- :class:`Planner` asks the DNS seam (:class:`~portprobe.model.DnsLookup`) for each needed
  lookup as soon as it is known to be needed (an MX answer names hosts, and their A/AAAA
  lookups start at once), and after every answer tells ``on_spec`` about each probe that
  has become certain. :func:`portprobe.targets.resolve.build_plan` is this with nobody
  listening; :class:`portprobe.pipeline.Pipeline` starts a probe for each spec.

Why a spec, once announced, stays in the final plan: a spec comes from one (host, family)
answer and the job's host list, and neither changes when other answers arrive (every job
of a run shares its ``max_mx``/``max_addresses``). What *can* change is which job's spec
wins a duplicate (host, address, port): the earliest job in plan order, whose MX answer
may come later. :meth:`Planner.spec_for` gives the winner known now.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import trio

from portprobe.model import DnsLookup, Expectation, Plan, ProbeSpec
from portprobe.targets.answers import Lookup, read_answer
from portprobe.targets.names import InputError, check_host_name, family_of
from portprobe.vocab import Family

__all__ = [
    "Assembly",
    "Job",
    "LookupKey",
    "Planner",
    "ProbeKey",
    "assemble",
    "probe_key",
]

RDTYPE: dict[Family, str] = {"ipv4": "A", "ipv6": "AAAA"}
#: Outcomes that mean the lookup itself broke (as opposed to an answer saying "none").
_BROKEN: frozenset[str] = frozenset({"servfail", "timeout", "error"})

LookupKey = tuple[str, str]  # (name, rdtype)
ProbeKey = tuple[str, str | None, int]  # (host, address, port): one probe on the wire


@dataclass(frozen=True)
class Job:
    """One thing to probe: a mail domain, a host name or an IP literal, with its ports."""

    target: str
    provider: str
    name: str
    mail_domain: bool
    literal: str | None
    ports: tuple[tuple[int, bool], ...]  # (role port, negative control?)
    expect: Expectation | None
    max_mx: int
    max_addresses: int

    @property
    def needs_dns(self) -> bool:
        return self.mail_domain or self.literal is None


def probe_key(spec: ProbeSpec) -> ProbeKey:
    """What makes two specs the same probe (the first one in plan order wins)."""
    return spec.host, spec.address, spec.port


def _address_key(address: str) -> tuple[int, int]:
    parsed = ipaddress.ip_address(address)
    return parsed.version, int(parsed)


class _Assembler:
    """Turns answers into specs, unresolved specs and notes, deduplicated, in job order.

    An answer not in yet is simply absent: its host contributes nothing until it is in,
    and the "no address in any family" and "one family broke" decisions wait for every
    family of that host.
    """

    def __init__(
        self,
        families: tuple[Family, ...],
        port_map: Mapping[int, int],
        answers: Mapping[LookupKey, Lookup],
    ) -> None:
        self.families = families
        self.port_map = port_map
        self.answers = answers
        self.specs: dict[ProbeKey, ProbeSpec] = {}
        self.unresolved: dict[tuple[str, str | None, int], ProbeSpec] = {}
        self.notes: dict[str, None] = {}

    def note(self, text: str) -> None:
        self.notes[text] = None

    def spec(self, job: Job, host: str, address: str | None, family: Family | None) -> None:
        for port, negative in job.ports:
            spec = ProbeSpec(
                target=job.target,
                host=host,
                address=address,
                family=family,
                port=port,
                provider=job.provider,
                connect_port=self.port_map.get(port),
                negative=negative,
                expect=job.expect,
            )
            if address is None:
                self.unresolved.setdefault((host, family, port), spec)
            else:
                self.specs.setdefault(probe_key(spec), spec)

    def literal(self, job: Job, literal: str) -> None:
        family: Family = "ipv6" if family_of(literal) == "ipv6" else "ipv4"
        if family in self.families:
            self.spec(job, literal, literal, family)
        else:
            self.note(f"{job.name}: an {family} address, skipped by the address-family filter")

    def host(self, job: Job, host: str) -> None:
        found: dict[Family, list[str]] = {}
        for family in self.families:
            result = self.answers.get((host, RDTYPE[family]))
            if result is None:
                continue
            addresses = sorted(set(result.addresses), key=_address_key)
            if len(addresses) > job.max_addresses:
                self.note(
                    f"{host}: probing {job.max_addresses} of {len(addresses)} "
                    f"{RDTYPE[family]} addresses (the lowest; limit max_addresses)"
                )
            found[family] = addresses[: job.max_addresses]
        complete = len(found) == len(self.families)
        if complete and not any(found.values()):
            self.spec(job, host, None, None)
            return
        for family, addresses in found.items():
            if complete and self.answers[(host, RDTYPE[family])].query.outcome in _BROKEN:
                self.spec(job, host, None, family)
            for address in addresses:
                self.spec(job, host, address, family)

    def mx_hosts(self, job: Job, result: Lookup) -> list[str]:
        """The hosts to probe for a mail domain, noting why when it is not its MX set."""
        domain, outcome = job.name, result.query.outcome
        if outcome == "null-mx":
            self.note(f"{domain}: null MX (RFC 7505): the domain accepts no mail; not probed")
            return []
        if outcome == "nodata":
            self.note(f"{domain}: no MX record; probing the domain itself (RFC 5321 §5.1)")
            return [domain]
        if outcome != "ok":
            self.note(f"{domain}: MX lookup failed ({outcome}); reported as dns-error")
            self.spec(job, domain, None, None)
            return []
        hosts: list[str] = []
        # Lowest preference first (RFC 5321 §5.1). A stable sort keeps the resolver's
        # order among equal preferences (the DNS client sorts those by name), so a DNS
        # seam cannot reorder the plan by handing records over in another order.
        for _, exchange in sorted(result.mx, key=lambda record: record[0]):
            if not exchange:
                continue  # a "0 ." beside real MX records (RFC 7505 §3 forbids it): skip
            try:
                host = check_host_name(exchange, what="MX host")
            except InputError:
                self.note(f"{domain}: MX host {exchange!r} is not a valid host name; skipped")
                continue
            if host not in hosts:
                hosts.append(host)
        if len(hosts) > job.max_mx:
            self.note(
                f"{domain}: probing {job.max_mx} of {len(hosts)} MX hosts "
                "(lowest preference first; limit max_mx)"
            )
        return hosts[: job.max_mx]


@dataclass(frozen=True)
class Assembly:
    """The plan as known from some answers, and every lookup it needs, in evidence order."""

    plan: Plan
    wanted: tuple[LookupKey, ...]
    by_key: Mapping[ProbeKey, ProbeSpec]


def assemble(
    jobs: Sequence[Job],
    families: tuple[Family, ...],
    port_map: Mapping[int, int],
    answers: Mapping[LookupKey, Lookup],
) -> Assembly:
    """The plan from the answers known so far (pure; the final plan once all are in).

    The DNS evidence is ordered like the lookups: every MX in job order, then every
    A/AAAA in job order, MX preference and family order.
    """
    assembler = _Assembler(families, port_map, answers)
    mx_keys = list(dict.fromkeys((job.name, "MX") for job in jobs if job.mail_domain))
    hosts_of: dict[int, list[str]] = {}
    for index, job in enumerate(jobs):
        if job.mail_domain:
            result = answers.get((job.name, "MX"))
            if result is not None:
                hosts_of[index] = assembler.mx_hosts(job, result)
        elif job.literal is None:
            hosts_of[index] = [job.name]
    address_keys = list(
        dict.fromkeys(
            (host, RDTYPE[family])
            for hosts in hosts_of.values()
            for host in hosts
            for family in families
        )
    )
    for index, job in enumerate(jobs):
        if job.literal is not None:
            assembler.literal(job, job.literal)
        for host in hosts_of.get(index, []):
            assembler.host(job, host)
    wanted = (*mx_keys, *address_keys)
    plan = Plan(
        specs=tuple(assembler.specs.values()),
        dns=tuple(answers[key].query for key in wanted if key in answers),
        unresolved=tuple(assembler.unresolved.values()),
        notes=tuple(assembler.notes),
    )
    return Assembly(plan, wanted, assembler.specs)


class Planner:
    """Asks DNS what the plan needs, as soon as it needs it; announces probes as they firm up.

    Each answer costs work in proportion to what it changes (the jobs that name its host),
    not to the plan so far: a run with hundreds of names stays linear. The full plan is
    assembled only when asked for, and cached until the next answer.
    ``lookup`` may be None only when no job needs DNS (IP literals alone).
    """

    def __init__(
        self,
        jobs: Sequence[Job],
        families: tuple[Family, ...],
        port_map: Mapping[int, int],
        lookup: DnsLookup | None,
    ) -> None:
        if lookup is None and any(job.needs_dns for job in jobs):
            raise ValueError("a plan with host names or mail domains needs a DNS lookup")
        self.jobs = tuple(jobs)
        self.families = families
        self.port_map = dict(port_map)
        self._lookup = lookup
        self._answers: dict[LookupKey, Lookup] = {}
        self._asked: set[LookupKey] = set()
        self._announced: set[ProbeKey] = set()
        #: The spec of the earliest job known to produce each probe: build_plan's
        #: first-one-wins, kept as answers arrive.
        self._winner: dict[ProbeKey, tuple[int, ProbeSpec]] = {}
        self._mail_jobs: dict[str, list[int]] = {}
        self._jobs_of_host: dict[str, list[int]] = {}
        self._cache: tuple[int, Assembly] | None = None
        for index, job in enumerate(self.jobs):
            if job.mail_domain:
                self._mail_jobs.setdefault(job.name, []).append(index)
            elif job.literal is None:
                self._jobs_of_host.setdefault(job.name, []).append(index)

    def _assembly(self) -> Assembly:
        if self._cache is None or self._cache[0] != len(self._answers):
            assembly = assemble(self.jobs, self.families, self.port_map, self._answers)
            self._cache = (len(self._answers), assembly)
        return self._cache[1]

    def plan(self) -> Plan:
        """The plan as known so far, in plan order; the final plan after :meth:`resolve`."""
        return self._assembly().plan

    @property
    def complete(self) -> bool:
        """Every lookup the plan needs has been answered."""
        return all(key in self._answers for key in self._assembly().wanted)

    def spec_for(self, spec: ProbeSpec) -> ProbeSpec:
        """The plan's spec for the same probe as ``spec`` (the earliest job's), as known now."""
        winner = self._winner.get(probe_key(spec))
        return winner[1] if winner is not None else spec

    async def resolve(self, on_spec: Callable[[ProbeSpec], None] | None = None) -> Plan:
        """Run every lookup the plan needs; ``on_spec`` hears of each probe once, when certain.

        Lookups run concurrently, each started the moment an answer shows it is needed.
        """
        async with trio.open_nursery() as nursery:
            for index, job in enumerate(self.jobs):
                if job.literal is not None:
                    self._found(index, job.literal, on_spec)
            for key in self._assembly().wanted:  # every MX, and the A/AAAA of named hosts
                self._ask(nursery, key, on_spec)
        return self.plan()

    def _ask(
        self,
        nursery: trio.Nursery,
        key: LookupKey,
        on_spec: Callable[[ProbeSpec], None] | None,
    ) -> None:
        if key not in self._asked:
            self._asked.add(key)
            nursery.start_soon(self._answer, nursery, key, on_spec)

    async def _answer(
        self,
        nursery: trio.Nursery,
        key: LookupKey,
        on_spec: Callable[[ProbeSpec], None] | None,
    ) -> None:
        assert self._lookup is not None  # checked in __init__
        name, rdtype = key
        result = read_answer(name, rdtype, await self._lookup.query(name, rdtype))
        self._answers[key] = result
        if rdtype == "MX":
            for index in self._mail_jobs.get(name, []):
                # A scratch assembler: only the host list matters here; the notes and
                # unresolved specs are the final assembly's business.
                scratch = _Assembler(self.families, self.port_map, self._answers)
                for host in scratch.mx_hosts(self.jobs[index], result):
                    self._jobs_of_host.setdefault(host, []).append(index)
                    for family in self.families:
                        self._ask(nursery, (host, RDTYPE[family]), on_spec)
                    self._found(index, host, on_spec)
        else:
            for index in self._jobs_of_host.get(name, []):
                self._found(index, name, on_spec)

    def _found(self, index: int, host: str, on_spec: Callable[[ProbeSpec], None] | None) -> None:
        """What job ``index`` probes on ``host`` from the answers so far: record, announce."""
        scratch = _Assembler(self.families, self.port_map, self._answers)
        job = self.jobs[index]
        if job.literal is not None:
            scratch.literal(job, job.literal)
        else:
            scratch.host(job, host)
        for key, spec in scratch.specs.items():
            winner = self._winner.get(key)
            if winner is None or index < winner[0]:
                self._winner[key] = (index, spec)
            if key not in self._announced:
                self._announced.add(key)
                if on_spec is not None:
                    on_spec(spec)
