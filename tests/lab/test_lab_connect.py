"""The socket seam against a real router: what the kernel says about a stopped SYN.

`portprobe.probe.connect.open_tcp` run inside the lab's client namespace, as an
unprivileged user (uid 65534, no capabilities: the "no root" claim), against the lab's
router (hop 1) and the providers behind it (hop 2):

- a TTL of 1 makes the router answer time-exceeded, and the kernel hands us its type,
  code and the router's address (ICMP 11/0, ICMPv6 3/0);
- the `prohibited` scenario's ACL answers administratively prohibited (ICMP 3/13,
  ICMPv6 1/1) from the router, and a probe's error keeps that report;
- a RST (the `reset` scenario) is no ICMP: the errno alone;
- a TTL of 2 reaches the host.
"""

from __future__ import annotations

import json
import shutil
import sys

import pytest

from .netlab import Lab
from .topology import ROUTER_CLIENT_SIDE_V4, ROUTER_CLIENT_SIDE_V6

pytestmark = pytest.mark.lab

ALPHA_V4, ALPHA_V6 = "203.0.113.10", "2001:db8:113::10"

#: One connect through the seam, printed as JSON (run in the client namespace).
CONNECT = """
import json, sys, trio
from portprobe.model import ProbeSpec
from portprobe.probe.connect import ConnectFailure, SocketOptions, open_tcp
from portprobe.probe.errors import classify_connect_error

address, port, ttl = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
family = "ipv6" if ":" in address else "ipv4"
spec = ProbeSpec(target=address, host=address, address=address, family=family, port=port)

async def main():
    try:
        with trio.fail_after(5):
            stream = await open_tcp(spec, SocketOptions(ttl=ttl))
    except ConnectFailure as exc:
        state, error = classify_connect_error(exc)
        icmp = error.icmp.to_dict() if error.icmp else None
        return {"connected": False, "errno": error.errno, "state": state, "icmp": icmp}
    await stream.aclose()
    return {"connected": True}

print(json.dumps(trio.run(main)))
"""


def connect(lab: Lab, address: str, port: int, ttl: int | None = None) -> dict[str, object]:
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is needed to drop root for this test")
    unprivileged = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
    argv = [*unprivileged, sys.executable, "-c", CONNECT, address, str(port), json.dumps(ttl)]
    proc = lab.run_client(argv, timeout=30)
    assert proc.returncode == 0, proc.stderr
    result: dict[str, object] = json.loads(proc.stdout)
    return result


@pytest.mark.parametrize(
    ("address", "router", "icmp_type"),
    [(ALPHA_V4, ROUTER_CLIENT_SIDE_V4, 11), (ALPHA_V6, ROUTER_CLIENT_SIDE_V6, 3)],
    ids=["ipv4", "ipv6"],
)
def test_ttl_one_is_answered_by_the_router_with_its_address(
    lab: Lab, address: str, router: str, icmp_type: int
) -> None:
    lab.switch("open")
    assert connect(lab, address, 587, ttl=1) == {
        "connected": False,
        "errno": "EHOSTUNREACH",
        "state": "unreachable",
        "icmp": {"type": icmp_type, "code": 0, "from": router, "meaning": "time-exceeded"},
    }
    assert connect(lab, address, 587, ttl=2) == {"connected": True}


@pytest.mark.parametrize(
    ("address", "router", "icmp", "errno"),
    [
        (ALPHA_V4, ROUTER_CLIENT_SIDE_V4, (3, 13), "EHOSTUNREACH"),
        (ALPHA_V6, ROUTER_CLIENT_SIDE_V6, (1, 1), "EACCES"),
    ],
    ids=["ipv4", "ipv6"],
)
def test_an_acl_s_prohibited_answer_names_the_router(
    lab: Lab, address: str, router: str, icmp: tuple[int, int], errno: str
) -> None:
    lab.switch("prohibited")
    assert connect(lab, address, 25) == {
        "connected": False,
        "errno": errno,
        "state": "unreachable",
        "icmp": {"type": icmp[0], "code": icmp[1], "from": router, "meaning": "admin-prohibited"},
    }


def test_a_reset_is_no_icmp(lab: Lab) -> None:
    lab.switch("reset")
    result = connect(lab, ALPHA_V4, 25)
    assert result == {"connected": False, "errno": "ECONNREFUSED", "state": "refused", "icmp": None}
