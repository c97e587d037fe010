"""The library, called exactly as the README shows, inside the lab's client namespace.

For the same scenario it must reach the verdict the CLI prints: the CLI is a thin
translation of ``portprobe.diagnose``, and this is where that claim is checked against
real Postfix, real DNS and a real ISP's firewall.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

import pytest

from .harness import Report
from .netlab import Lab
from .topology import DOMAINS

pytestmark = pytest.mark.lab

#: The README's "As a library" snippet, with the lab's resolver and CA as its inputs.
LIBRARY_CALL = """
import json, sys, trio, portprobe
domains, nameserver, ca_file = json.loads(sys.argv[1])
req = portprobe.DiagnoseRequest(
    domains=tuple(domains), nameservers=(nameserver,), ca_file=ca_file
)
report = trio.run(portprobe.diagnose, req)
print(json.dumps(report.to_dict()))
"""


@pytest.mark.parametrize("scenario", ["open", "dropped", "asa", "blocklisted", "dropped-v4"])
def test_the_library_reaches_the_verdict_the_cli_prints(
    lab: Lab, scenario_report: Callable[[str], Report], scenario: str
) -> None:
    cli = scenario_report(scenario)  # also switches the lab to the scenario
    args = json.dumps([list(DOMAINS), lab.nameserver, str(lab.ca_file)])
    proc = lab.run_client([sys.executable, "-c", LIBRARY_CALL, args], timeout=90)
    assert proc.returncode == 0, proc.stderr  # the library never exits with a verdict code
    library = json.loads(proc.stdout)
    assert library["verdict"]["port25"] == cli.verdict["port25"], cli.summary()
    assert library["verdict"]["families"] == cli.verdict["families"]
    assert library["parameters"]["domains"] == cli.data["parameters"]["domains"]
    assert sorted((p["host"], p["family"], p["port"]) for p in library["probes"]) == sorted(
        (p["host"], p["family"], p["port"]) for p in cli.data["probes"]
    )
