"""One ``Shared`` for many diagnoses: resources built once, manners kept for the process.

The network is the engine's connector seam over in-memory streams, in the test's trio run
under the mock clock: every server waits a (mock) second before it greets, so connections
overlap for certain, and the count of connections open to each address at once is exact.
"""

from __future__ import annotations

from collections import Counter

import pytest
import trio
import trio.testing

import portprobe
from portprobe.model import ProbeSpec
from portprobe.probe.runner import Manners
from portprobe.request import DiagnoseRequest
from tests.servers import Transcript, memory_connection_pair, simple_smtp_dialogue

ADDRESSES = ("127.0.0.1", "127.0.0.2")
PORTS = (25, 587, 2525)


class CountingNet:
    """A connector whose servers greet after a second; counts connections per address."""

    def __init__(self, nursery: trio.Nursery) -> None:
        self.nursery = nursery
        self.open_now: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()
        self.total = 0
        self.peak_together = 0  # connections open at once, all addresses together

    async def __call__(self, spec: ProbeSpec, _options: object = None) -> trio.abc.Stream:
        assert spec.address is not None
        address = spec.address
        self.open_now[address] += 1
        self.total += 1
        self.peak[address] = max(self.peak[address], self.open_now[address])
        self.peak_together = max(self.peak_together, sum(self.open_now.values()))
        client, server = memory_connection_pair()
        # Counted open until the probe closes its end, which it does before it gives its
        # slots back; the server's end may close later, in whatever order trio runs it.
        close_client = client.aclose
        closed = False

        async def aclose() -> None:
            nonlocal closed
            if not closed:
                closed = True
                self.open_now[address] -= 1
            await close_client()

        client.aclose = aclose  # type: ignore[method-assign]

        async def serve() -> None:
            try:
                await trio.sleep(1.0)
                await simple_smtp_dialogue(server, Transcript())
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass
            finally:
                await trio.aclose_forcefully(server)

        self.nursery.start_soon(serve)
        return client


def request(per_host: int) -> DiagnoseRequest:
    # No 465: its implicit TLS is not what these plain servers speak. No path trace: the
    # shared greeting makes these runs "intercepted", and the counts are of the probes.
    return DiagnoseRequest(
        targets=ADDRESSES,
        ports=PORTS,
        families=("ipv4",),
        per_host=per_host,
        readiness=False,
        trace="never",
    )


async def two_at_once(shared: portprobe.Shared | None, net: CountingNet) -> list[portprobe.Report]:
    reports: list[portprobe.Report] = []

    async def one() -> None:
        reports.append(await portprobe.diagnose(request(3), shared=shared, connector=net))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(one)
        nursery.start_soon(one)
    return reports


async def test_two_diagnoses_sharing_one_shared_keep_the_per_address_limit_together(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as servers:
        net = CountingNet(servers)
        shared = portprobe.Shared(per_host=2)
        reports = await two_at_once(shared, net)
        servers.cancel_scope.cancel()
    assert net.total == 2 * len(PORTS) * len(ADDRESSES)  # every probe ran
    assert all(p.result.state == "open" for r in reports for p in r.probes)
    assert dict(net.peak) == {a: 2 for a in ADDRESSES}  # never 3 or more to one address
    assert shared.manners.addresses == 0  # nothing kept per address once the runs ended


async def test_without_a_shared_each_run_keeps_only_its_own_limit(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The control: two separate runs with per_host=3 open up to 6 to one address."""
    async with trio.open_nursery() as servers:
        net = CountingNet(servers)
        await two_at_once(None, net)
        servers.cancel_scope.cancel()
    assert all(net.peak[a] > 2 for a in ADDRESSES)


async def test_the_socket_budget_holds_across_runs(autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as servers:
        net = CountingNet(servers)
        shared = portprobe.Shared(per_host=3, sockets=3)
        await two_at_once(shared, net)
        servers.cancel_scope.cancel()
    # Two runs × two addresses × three ports could hold 6 at once (3 per address); the
    # process-wide budget of 3 sockets holds them to 3, across both runs.
    assert net.peak_together == 3


async def test_a_waiter_cancelled_before_its_slot_leaves_nothing_behind(
    autojump_clock: trio.testing.MockClock,
) -> None:
    manners = Manners(per_host=1)
    holding = trio.Event()
    async with trio.open_nursery() as nursery:

        async def hold() -> None:
            async with manners.address_slot("192.0.2.1"):
                holding.set()
                await trio.sleep_forever()

        nursery.start_soon(hold)
        await holding.wait()
        with trio.move_on_after(1):
            async with manners.address_slot("192.0.2.1"):
                pytest.fail("the slot was taken")
        assert manners.addresses == 1
        nursery.cancel_scope.cancel()
    assert manners.addresses == 0


def test_shared_resources_are_built_once_and_again_when_the_file_changes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    shared = portprobe.Shared()
    assert shared.platforms() is shared.platforms()
    assert shared.tls(None) is shared.tls(None)
    assert shared.catalog(None) is shared.catalog(None)
    from importlib import resources

    text = resources.files("portprobe.targets").joinpath("catalog.toml").read_text("utf-8")
    path = tmp_path / "catalog.toml"
    path.write_text(text)
    first = shared.catalog(path)
    assert shared.catalog(path) is first
    path.write_text(text + "\n# changed\n")
    assert shared.catalog(path) is not first


@pytest.mark.parametrize("kw", [{"per_host": 0}, {"per_host": True}, {"sockets": 0}])
def test_bad_limits_are_refused(kw: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="must be a whole number"):
        portprobe.Shared(**kw)  # type: ignore[arg-type]


async def test_one_lookup_serves_the_planner_and_the_readiness_checks(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """``lookup=`` on the library call is the one DNS seam: MX, A/AAAA and every readiness
    query (PTR of the stated public address, its DNSBL lookups) go to it, none elsewhere."""
    from tests.fake_dns import FakeDNS

    dns = FakeDNS(
        {"mail.test": {"MX": [(10, "mx.mail.test")]}, "mx.mail.test": {"A": ["127.0.0.1"]}}
    )
    async with trio.open_nursery() as servers:
        net = CountingNet(servers)
        req = DiagnoseRequest(
            domains=("mail.test",),
            ports=(25,),
            families=("ipv4",),
            public_ips=("192.0.2.7",),
            catalog=None,
        )
        report = await portprobe.diagnose(req, lookup=dns, connector=net)
        servers.cancel_scope.cancel()
    asked = set(dns.asked)
    assert {("mail.test", "MX"), ("mx.mail.test", "A")} <= asked
    assert ("7.2.0.192.in-addr.arpa", "PTR") in asked  # readiness, through the same seam
    assert report.readiness is not None
    assert [p.result.state for p in report.probes] == ["open"]


def test_the_readme_s_many_diagnoses_snippet_runs() -> None:
    """The README's snippet as written, on two loopback requests (a port that refuses)."""
    import re
    import socket
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("**Many diagnoses in one process**", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert code is not None
    namespace: dict[str, object] = {"trio": trio, "portprobe": portprobe}
    exec(code.group(1), namespace)
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, never listening: refused at once
        port = closed.getsockname()[1]
        requests = [
            DiagnoseRequest(targets=(a,), ports=(25,), port_map={25: port}) for a in ADDRESSES
        ]
        reports = trio.run(namespace["watch"], requests)  # type: ignore[arg-type]
    assert sorted(r.probes[0].result.state for r in reports) == ["refused", "refused"]
    shared = namespace["shared"]
    assert isinstance(shared, portprobe.Shared) and shared.per_host == 1


def test_dmi_is_read_once_per_process(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """Platform evidence from firmware does not change while the machine runs: a process
    that makes many reports reads /sys once (issue 24: platform detection cached)."""
    import portprobe.environment.detect as detect

    dmi = tmp_path / "class" / "dmi" / "id"
    dmi.mkdir(parents=True)
    (dmi / "sys_vendor").write_text("Hetzner\n")
    reads: list[object] = []
    real = detect.read_dmi

    def counting(sysfs):  # type: ignore[no-untyped-def]
        reads.append(sysfs)
        return real(sysfs)

    monkeypatch.setattr(detect, "read_dmi", counting)
    shared = portprobe.Shared()
    assert dict(shared.dmi(tmp_path)) == {"sys_vendor": "Hetzner"}
    (dmi / "sys_vendor").write_text("Amazon EC2\n")
    assert dict(shared.dmi(tmp_path)) == {"sys_vendor": "Hetzner"}
    assert len(reads) == 1
    with pytest.raises(TypeError):
        shared.dmi(tmp_path)["sys_vendor"] = "x"  # type: ignore[index]
