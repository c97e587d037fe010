"""The library API exactly as the README shows it, against real loopback SMTP servers.

``portprobe.diagnose`` must give the verdict the CLI prints for the same inputs, never
print, raise only ``PortprobeError`` for bad input (before any network), and a run that is
cancelled from outside must still yield a report of what completed.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

import portprobe
from portprobe.diagnosis import Diagnosis
from tests.servers import Certs, aiosmtpd_server, closed_port, make_certs


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("lib-certs"))


@pytest.fixture(scope="module")
def roles(certs: Certs) -> Iterator[dict[int, int]]:
    """Port 25 refused (nothing listens), the other three roles answer genuinely."""
    ctx = certs.server_context()
    with (
        aiosmtpd_server(implicit_tls=ctx) as p465,
        aiosmtpd_server(starttls=ctx) as p587,
        aiosmtpd_server(starttls=ctx) as p2525,
    ):
        yield {25: closed_port(), 465: p465, 587: p587, 2525: p2525}


def request(roles: dict[int, int], certs: Certs, **kw: object) -> portprobe.DiagnoseRequest:
    return portprobe.DiagnoseRequest(
        targets=("127.0.0.1",),
        families=("ipv4",),
        port_map=roles,
        ca_file=certs.ca_file,
        **kw,  # type: ignore[arg-type]
    )


def test_readme_call_gives_the_verdict_the_cli_prints(
    roles: dict[int, int], certs: Certs, capsys: pytest.CaptureFixture[str]
) -> None:
    req = request(roles, certs)
    report = trio.run(portprobe.diagnose, req)
    assert capsys.readouterr() == ("", "")  # the library never prints
    assert isinstance(report, portprobe.Report)
    data = report.to_dict()
    assert data["parameters"] == req.to_dict()

    argv = ["--target", "127.0.0.1", "-4", "--json", f"--ca-file={certs.ca_file}"]
    argv += [f"--port-map={role}={port}" for role, port in roles.items()]
    proc = subprocess.run(
        [sys.executable, "-m", "portprobe", *argv], capture_output=True, text=True, timeout=60
    )
    cli = json.loads(proc.stdout)
    assert cli["verdict"]["port25"] == report.verdict.port25 == data["verdict"]["port25"]
    assert cli["verdict"]["families"] == data["verdict"]["families"]
    assert [p["state"] for p in cli["probes"]] == [p["state"] for p in data["probes"]]
    assert report.ports[587].greeting_ok and not report.ports[25].reachable


def test_on_result_sees_every_probe(roles: dict[int, int], certs: Certs) -> None:
    seen: list[str] = []
    report = trio.run(
        lambda: portprobe.diagnose(request(roles, certs), on_result=lambda r: seen.append(r.state))
    )
    assert sorted(seen) == sorted(p.result.state for p in report.probes)
    assert len(seen) == 4


def test_a_cancel_from_outside_still_reports_what_completed(
    roles: dict[int, int], certs: Certs
) -> None:
    """Cancel as soon as the first probe is in: the report holds it, flagged interrupted."""
    scopes: list[trio.CancelScope] = []
    diagnosis = Diagnosis(
        request(roles, certs, concurrency=1), on_result=lambda _r: scopes[0].cancel()
    )

    async def main() -> None:
        with trio.CancelScope() as scope:
            scopes.append(scope)
            await diagnosis.run()

    trio.run(main)
    report = diagnosis.report(interrupted=True)
    assert report.interrupted
    assert 1 <= len(report.probes) < 4
    assert any("Interrupted" in note for note in report.notes)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"targets": ("bad host!",)}, "invalid target"),
        ({"ports": (26,)}, "--ports: 26"),
        ({"timeout": float("inf")}, "--timeout"),
        ({"concurrency": 0}, "--concurrency"),
        ({"nameservers": ("ns.example",)}, "invalid nameserver"),
        ({"expect": ("maybe",)}, "--expect"),
        ({"ehlo_name": "a\r\nMAIL FROM:<x>"}, "--ehlo-name"),
        ({"port_map": {25: 70000}}, "--port-map"),
        ({"families": ("ipx",)}, "families"),
        ({"targets": "127.0.0.1"}, "not one string"),
        ({"require_ports": (465,), "ports": (25,)}, "--require-port"),
    ],
)
def test_bad_input_is_one_portprobe_error(kw: dict[str, object], message: str) -> None:
    base: dict[str, object] = {"targets": ("127.0.0.1",)}
    with pytest.raises(portprobe.PortprobeError, match=message) as info:
        portprobe.DiagnoseRequest(**{**base, **kw})  # type: ignore[arg-type]
    assert "\n" not in str(info.value)


def test_unreadable_files_fail_when_the_diagnosis_is_made(tmp_path: Path) -> None:
    bad_ca = tmp_path / "ca.pem"
    bad_ca.write_text("not a certificate\n")
    with pytest.raises(portprobe.TLSConfigError, match="no usable PEM"):
        Diagnosis(portprobe.DiagnoseRequest(targets=("127.0.0.1",), ca_file=bad_ca))
    bad_catalog = tmp_path / "catalog.toml"
    bad_catalog.write_text("schema = 7\n")
    with pytest.raises(portprobe.CatalogError):
        Diagnosis(portprobe.DiagnoseRequest(catalog=bad_catalog))
    # A --sysfs that was given is checked here; the request itself reads no file.
    missing = portprobe.DiagnoseRequest(targets=("127.0.0.1",), sysfs=tmp_path / "nope")
    with pytest.raises(portprobe.InputError, match=r"--sysfs .*nope: does not exist"):
        Diagnosis(missing)


def test_a_request_is_hashable_and_equal_by_value() -> None:
    """A frozen, hashable request is a cache key (one run per request at a time)."""
    one = portprobe.DiagnoseRequest(targets=("127.0.0.1",), port_map={25: 2525, 587: 2587})
    two = portprobe.DiagnoseRequest(targets=["127.0.0.1"], port_map={587: 2587, 25: 2525})
    assert one == two and hash(one) == hash(two)
    assert len({one, two, portprobe.DiagnoseRequest(targets=("127.0.0.2",))}) == 2
    assert dict(one.port_map) == {25: 2525, 587: 2587}
    with pytest.raises(TypeError):
        one.port_map[25] = 1  # type: ignore[index]


def test_no_sysfs_means_no_dmi_evidence_not_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """macOS, Windows, BSD: no /sys at all. The default is evidence absent, never exit 2."""
    import portprobe.companions

    monkeypatch.setattr(portprobe.companions, "DEFAULT_SYSFS", tmp_path / "no-sys-here")
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, not listening: refused at once
        request = portprobe.DiagnoseRequest(
            targets=("127.0.0.1",), ports=(25,), port_map={25: closed.getsockname()[1]}
        )
        assert request.sysfs is None and request.to_dict()["sysfs"] == "/sys"
        report = trio.run(portprobe.diagnose, request)
    assert report.environment is not None
    assert report.environment.platform == "unknown"


def test_request_to_dict_is_the_reports_parameters() -> None:
    req = portprobe.DiagnoseRequest(targets=("127.0.0.1",), connect_timeout=30.0, timeout=5.0)
    params = req.to_dict()
    assert params["connect_timeout"] == 5.0  # clamped to the whole probe's bound
    assert params["catalog"] is None and params["targets"] == ["127.0.0.1"]
    assert portprobe.DiagnoseRequest().to_dict()["catalog"] == "built-in"
