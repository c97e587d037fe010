"""Who stops port 25, end to end: portprobe's path trace on a five-hop path, unprivileged.

The path lab (pathlab.py): client → home router (private address, NAT) → ISP router →
transit router → destination router → the hosts, with Team Cymru AS data and PTR names
for every hop in the lab DNS. For each place a block can sit, portprobe runs as uid 65534
(no capabilities: the README's "no root" claim) and the report's ``path.blocker`` must say
where, how and at which hop, and the advice must follow it.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from .harness import PORTPROBE
from .netlab import lab_unavailable
from .pathlab import AS_NAMES, HOME_LAN_V4, HOST_DISTANCE, ISP_AS, ISP_V4, SCENARIOS, PathLab
from .topology import RESOLVER_V4

pytestmark = pytest.mark.lab

DOMAINS = ("alpha.example", "beta.example", "gamma.example")


@pytest.fixture(scope="module")
def pathlab() -> Iterator[PathLab]:
    reason = lab_unavailable()
    if reason is not None:
        pytest.skip(f"lab needs root and ip netns: {reason}")
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is needed to drop root")
    if not PORTPROBE.exists():
        pytest.skip(f"portprobe is not installed at {PORTPROBE}")
    with PathLab() as lab:
        yield lab


_cache: dict[tuple[str, tuple[str, ...]], dict[str, Any]] = {}


def run(lab: PathLab, scenario: str, *extra: str) -> dict[str, Any]:
    key = (scenario, extra)
    if key not in _cache:
        lab.switch(scenario)
        unprivileged = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        argv = [*unprivileged, str(PORTPROBE)]
        argv += [arg for d in DOMAINS for arg in ("--domain", d)]
        argv += ["--nameserver", RESOLVER_V4, "--ports", "25,587", "--no-readiness", "--json"]
        proc = lab.run_client([*argv, *extra], timeout=60)
        assert proc.stdout, proc.stderr
        _cache[key] = json.loads(proc.stdout)
    return _cache[key]


ADVICE = {
    "this-machine": "nft list ruleset",
    "local-network": "admin of that router",
    "isp": "Quote this evidence to your ISP",
    "transit": "transit network",
    "destination": "refuses you, not your network",
}
PLACED = [name for name, s in SCENARIOS.items() if s.where is not None]


@pytest.mark.parametrize("name", PLACED)
def test_the_blocker_is_placed(pathlab: PathLab, name: str) -> None:
    scenario = SCENARIOS[name]
    extra = ("--trace", "always") if name == "one-destination-drop" else ()
    report = run(pathlab, name, *extra)
    path, verdict = report["path"], report["verdict"]
    why = json.dumps({"verdict": verdict, "path": path}, indent=1)[:6000]
    blocker = path["blocker"]
    assert blocker is not None, why
    assert (blocker["where"], blocker["how"], blocker["hop"]) == (
        scenario.where,
        scenario.how,
        scenario.hop,
    ), why
    assert blocker["evidence"], why
    advice = " ".join(verdict["advice"])
    assert ADVICE[str(scenario.where)] in advice, why
    if scenario.where in ("this-machine", "local-network", "destination"):
        assert "ask the ISP" not in advice, why
    traced = {t["family"] for t in path["traces"]}
    assert traced == ({"ipv4"} if scenario.v4_only else {"ipv4", "ipv6"}), why
    for trace in path["traces"]:
        assert len({t["host"] for t in path["traces"] if t["family"] == trace["family"]}) <= 2
        if name != "local-drop-v4" or trace["family"] == "ipv4":
            assert trace["distance"] == HOST_DISTANCE, why


def test_isp_hop_is_named_with_its_as(pathlab: PathLab) -> None:
    report = run(pathlab, "isp-drop")
    blocker = report["path"]["blocker"]
    assert blocker["address"] == ISP_V4
    assert blocker["name"] == "edge1.isp.example"
    assert (blocker["asn"], blocker["as_name"]) == (ISP_AS, AS_NAMES[ISP_AS])
    hop1 = report["path"]["traces"][0]["hops"][0]
    # The home router's LAN address inside the path lab's own namespaces; compared as text.
    assert hop1["address"] == HOME_LAN_V4  # private: no AS asked
    assert hop1["asn"] is None


def test_proxy_distance(pathlab: PathLab) -> None:
    report = run(pathlab, "proxy-hop2")
    assert report["verdict"]["port25"] == "intercepted"
    evidence = " ".join(report["path"]["blocker"]["evidence"])
    assert f"greeting comes from hop 2, the server is {HOST_DISTANCE} hops away" in evidence


def test_nothing_blocked_is_not_traced(pathlab: PathLab) -> None:
    report = run(pathlab, "open")
    assert report["verdict"]["port25"] == "open"
    assert report["path"] == {"traces": [], "blocker": None, "notes": []}


def test_no_asn_keeps_hop_and_address(pathlab: PathLab) -> None:
    report = run(pathlab, "isp-drop", "--no-asn")
    blocker = report["path"]["blocker"]
    assert (blocker["hop"], blocker["address"], blocker["asn"]) == (2, ISP_V4, None)
    assert blocker["where"] == "unknown"
