"""The planner alone, through its DNS seam: a fake resolver, no sockets, no dnspython.

The loopback DNS tests (test_resolve.py) prove the real resolver and the wire; these pin
the planning rules themselves (RFC 5321 §5.1 MX order and implicit MX, RFC 7505 null MX,
failures as unresolved specs, the caps, deduplication) and that the plan does not depend
on the order in which answers arrive.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
import trio
import trio.testing

from portprobe.model import Plan, ProbeSpec
from portprobe.targets.catalog import parse_catalog
from portprobe.targets.planner import assemble, probe_key
from portprobe.targets.resolve import PlanInput, build_plan, make_planner
from tests.fake_dns import ZONE, FakeDNS


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    # No socket anywhere in this file: the clock may jump the moment every task waits.
    return trio.testing.MockClock(autojump_threshold=0)


def rows(specs: tuple[ProbeSpec, ...]) -> list[tuple[str, str | None, str | None, int]]:
    return [(s.host, s.address, s.family, s.port) for s in specs]


async def plan_for(fake: FakeDNS | None = None, **kwargs: object) -> Plan:
    kwargs.setdefault("ports", [25])
    return await build_plan(PlanInput(**kwargs), lookup=fake or FakeDNS(ZONE))  # type: ignore[arg-type]


async def test_mx_hosts_in_preference_order_ties_in_resolver_order() -> None:
    plan = await plan_for(domains=["good.test"])
    assert rows(plan.specs) == [
        ("mx1.good.test", "192.0.2.10", "ipv4", 25),
        ("mx1.good.test", "2001:db8::10", "ipv6", 25),
        ("mx2.good.test", "192.0.2.20", "ipv4", 25),
        ("mx0.good.test", "2001:db8::30", "ipv6", 25),
    ]
    assert [(q.name, q.rdtype) for q in plan.dns] == [
        ("good.test", "MX"),
        ("mx1.good.test", "A"),
        ("mx1.good.test", "AAAA"),
        ("mx2.good.test", "A"),
        ("mx2.good.test", "AAAA"),
        ("mx0.good.test", "A"),
        ("mx0.good.test", "AAAA"),
    ]
    assert plan.unresolved == ()


async def test_null_mx_probes_nothing_and_asks_nothing_more() -> None:
    fake = FakeDNS(ZONE)
    plan = await plan_for(fake, domains=["nullmx.test"])
    assert plan.specs == plan.unresolved == ()
    assert [q.outcome for q in plan.dns] == ["null-mx"]  # the seam's "0 ." made null-mx
    assert fake.asked == [("nullmx.test", "MX")]
    assert plan.notes == (
        "nullmx.test: null MX (RFC 7505): the domain accepts no mail; not probed",
    )


@pytest.mark.parametrize("domain", ["nxdomain.test", "servfail.test"])
async def test_failed_mx_lookup_is_one_unresolved_spec_per_port(domain: str) -> None:
    plan = await plan_for(domains=[domain], ports=[25, 587])
    assert plan.specs == ()
    assert rows(plan.unresolved) == [(domain, None, None, 25), (domain, None, None, 587)]
    assert "reported as dns-error" in plan.notes[0]


async def test_no_mx_is_the_implicit_mx() -> None:
    plan = await plan_for(domains=["nomx.test"])
    assert rows(plan.specs) == [
        ("nomx.test", "198.51.100.5", "ipv4", 25),
        ("nomx.test", "2001:db8::5", "ipv6", 25),
    ]
    assert "RFC 5321 §5.1" in plan.notes[0]


async def test_a_name_with_no_address_in_any_family() -> None:
    plan = await plan_for(domains=["empty.test"])
    assert plan.specs == ()
    assert rows(plan.unresolved) == [("empty.test", None, None, 25)]


async def test_mx_hosts_that_do_not_resolve() -> None:
    plan = await plan_for(domains=["mxbroken.test"])
    assert rows(plan.specs) == [
        ("mx1.good.test", "192.0.2.10", "ipv4", 25),
        ("mx1.good.test", "2001:db8::10", "ipv6", 25),
    ]
    # NXDOMAIN: no address at all; SERVFAIL in both families: no address at all either.
    assert rows(plan.unresolved) == [
        ("missing.test", None, None, 25),
        ("broken.test", None, None, 25),
    ]


async def test_one_broken_family_beside_a_working_one() -> None:
    plan = await plan_for(targets=["halfbroken.test"])
    assert rows(plan.specs) == [("halfbroken.test", "192.0.2.7", "ipv4", 25)]
    assert rows(plan.unresolved) == [("halfbroken.test", None, "ipv6", 25)]


async def test_invalid_mx_host_is_skipped_with_a_note() -> None:
    plan = await plan_for(domains=["badmx.test"])
    assert rows(plan.specs) == [("mx2.good.test", "192.0.2.20", "ipv4", 25)]
    assert any("'bad_name.test' is not a valid host name" in n for n in plan.notes)


async def test_max_mx_keeps_the_lowest_preferences_and_says_so() -> None:
    fake = FakeDNS(ZONE)
    plan = await plan_for(fake, domains=["manymx.test"], max_mx=2, families=["ipv4"])
    assert [s.host for s in plan.specs] == ["m1.manymx.test", "m2.manymx.test"]
    assert plan.notes == (
        "manymx.test: probing 2 of 4 MX hosts (lowest preference first; limit max_mx)",
    )
    assert ("m3.manymx.test", "A") not in fake.asked  # hosts past the cap are never asked


async def test_max_addresses_keeps_the_numerically_lowest() -> None:
    plan = await plan_for(targets=["many.test"], max_addresses=3, families=["ipv4"])
    assert [s.address for s in plan.specs] == ["192.0.2.1", "192.0.2.2", "192.0.2.3"]
    assert plan.notes == (
        "many.test: probing 3 of 6 A addresses (the lowest; limit max_addresses)",
    )


async def test_duplicates_first_job_wins_and_each_lookup_is_asked_once() -> None:
    fake = FakeDNS(ZONE)
    plan = await plan_for(
        fake, domains=["good.test", "GOOD.test."], targets=["mx1.good.test", "mx2.good.test"]
    )
    assert len(plan.specs) == 4 and {s.target for s in plan.specs} == {"good.test"}
    assert len(fake.asked) == len(set(fake.asked)) == 7


async def test_the_planner_asks_only_mx_a_and_aaaa() -> None:
    """CNAMEs are the resolver's business (dnspython follows them); the plan never asks."""
    fake = FakeDNS(ZONE)
    await plan_for(fake, domains=["good.test", "manymx.test", "nomx.test"], targets=["many.test"])
    assert {rdtype for _, rdtype in fake.asked} == {"MX", "A", "AAAA"}


async def test_literals_alone_need_no_resolver() -> None:
    planner = make_planner(PlanInput(targets=["192.0.2.9", "2001:db8::9"], ports=[25]))
    assert planner.complete  # nothing to ask
    plan = await planner.resolve()
    assert rows(plan.specs) == [
        ("192.0.2.9", "192.0.2.9", "ipv4", 25),
        ("2001:db8::9", "2001:db8::9", "ipv6", 25),
    ]


async def test_catalog_ports_negative_controls_and_limits() -> None:
    catalog = parse_catalog(
        """
[limits]
max_mx = 1
max_addresses = 1

[[provider]]
name = "alpha"
[[provider.host]]
domain = "good.test"
ports = [25]
negative_ports = [465]
source = "test"
""",
        "fake.toml",
    )
    plan = await plan_for(catalog=catalog, ports=[25, 465, 587])
    assert [(s.host, s.address, s.port, s.negative, s.provider) for s in plan.specs] == [
        ("mx1.good.test", "192.0.2.10", 25, False, "alpha"),
        ("mx1.good.test", "192.0.2.10", 465, True, "alpha"),
        ("mx1.good.test", "2001:db8::10", 25, False, "alpha"),
        ("mx1.good.test", "2001:db8::10", 465, True, "alpha"),
    ]


EVERYTHING = dict(
    domains=["good.test", "nullmx.test", "mxbroken.test", "manymx.test", "empty.test"],
    targets=["halfbroken.test", "many.test", "mx2.good.test", "192.0.2.99", "2001:db8::99"],
    ports=[25, 587],
    max_mx=3,
    max_addresses=2,
)


async def test_the_plan_does_not_depend_on_the_order_answers_arrive(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Each answer is delayed by a different (mock) time; every order gives one plan."""
    reference = await plan_for(**EVERYTHING)
    orders = set()
    for seed in range(8):
        delays = itertools.count(seed)

        async def slowly(name: str, rdtype: str, delays: Iterator[int] = delays) -> None:
            await trio.sleep((next(delays) * 37 % 13) / 10)

        fake = FakeDNS(ZONE, delay=slowly)
        plan = await build_plan(PlanInput(**EVERYTHING), lookup=fake)  # type: ignore[arg-type]
        assert plan == reference
        orders.add(tuple(fake.answered))
    assert len(orders) > 1  # the answers really did arrive in different orders


def test_a_partial_plan_only_grows_into_the_final_one() -> None:
    """Every probe of a partial plan is in the final plan: a probe started early is kept."""
    planner = make_planner(PlanInput(**EVERYTHING), lookup=FakeDNS(ZONE))  # type: ignore[arg-type]
    final = trio.run(planner.resolve)
    answers = planner._answers  # the planner's own record, in the order answers came
    final_probes = {probe_key(s) for s in final.specs}
    keys = list(answers)
    for cut in range(len(keys) + 1):
        known = {k: answers[k] for k in keys[:cut]}
        partial = assemble(planner.jobs, planner.families, planner.port_map, known).plan
        assert {probe_key(s) for s in partial.specs} <= final_probes
        assert set(partial.dns) <= set(final.dns)
    assert assemble(planner.jobs, planner.families, planner.port_map, answers).plan == final


def test_answers_do_not_reassemble_the_whole_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    """Assembling after every answer made a big run quadratic (100 domains: 43 s of CPU).
    The stream needs one assembly to start and one for the final plan, however many answers."""
    from portprobe.targets import planner as planner_module

    calls = 0
    real = planner_module.assemble

    def counting(*args: object, **kwargs: object) -> planner_module.Assembly:
        nonlocal calls
        calls += 1
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(planner_module, "assemble", counting)
    fake = FakeDNS(ZONE)
    planner = make_planner(PlanInput(**EVERYTHING), lookup=fake)  # type: ignore[arg-type]
    announced: list[ProbeSpec] = []
    plan = trio.run(planner.resolve, announced.append)
    assert len(fake.answered) > 20 and calls == 2
    assert {probe_key(s) for s in announced} == {probe_key(s) for s in plan.specs}
    assert [planner.spec_for(s) for s in announced] == [
        next(p for p in plan.specs if probe_key(p) == probe_key(s)) for s in announced
    ]
