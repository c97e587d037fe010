"""Faults around the probes: DNS down or failing, no route, too few file descriptors,
Ctrl-C, an output place that cannot be written, and bad input.

What must hold (issue 8): a DNS failure is evidence and never a "blocked" verdict; a
family without a route is ``unavailable``; a low ``ulimit -n`` lowers the concurrency
with a warning instead of failing probes; Ctrl-C writes the partial report flagged
``interrupted`` and exits 130; an unwritable ``--output`` is one line and exit 2 with no
half-written file; every malformed option value is one line and exit 2.

Only loopback is used: every CLI call names ``--target 127.x`` (or ``--domain`` with a
loopback ``--nameserver``), and every port role is mapped onto a loopback test port.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import pty
import re
import resource
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trio
import trio.testing

from portprobe.cli import run as cli_run
from portprobe.model import ProbeSpec
from portprobe.probe import ProbeConfig, Runner
from portprobe.report.annotate import annotate
from portprobe.report.verdict import decide
from tests.dns_server import DNSServer, SilentDNSServer
from tests.hostile_servers import (
    InFlight,
    RecordingSMTP,
    ThreadedPeer,
    never_speaks,
    peers_on_many_addresses,
)
from tests.servers import (
    Transcript,
    closed_port,
    serve_memory,
    serve_raw,
    simple_smtp_dialogue,
)

ROLES = (25, 465, 587, 2525)
CLI_TIMEOUT = 60  # a hung CLI fails the test instead of hanging the suite


def portprobe_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "portprobe", *args]


def map_all_roles(port: int) -> list[str]:
    return [arg for role in ROLES for arg in ("--port-map", f"{role}={port}")]


def run_cli(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        portprobe_cmd(*args),
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
        **kwargs,  # type: ignore[arg-type]
    )


def wait_until(condition: Callable[[], bool], timeout: float = 20.0) -> bool:
    """Poll observable state (not a timing assumption): True as soon as it holds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def assert_one_clean_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr and lines[0].startswith("portprobe: ")
    return lines[0]


# --- DNS down or failing --------------------------------------------------------------------


def test_dns_down_or_servfail_is_evidence_not_a_block() -> None:
    with SilentDNSServer() as silent, DNSServer() as server:
        common = ["--json", "--dns-timeout", "1", "--timeout", "2", *map_all_roles(closed_port())]
        procs = {
            "timeout": subprocess.Popen(
                portprobe_cmd("--domain", "good.test", "--nameserver", silent.spec, *common),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            ),
            "servfail": subprocess.Popen(
                portprobe_cmd("--domain", "servfail.test", "--nameserver", server.spec, *common),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            ),
        }
        outputs = {k: (p.communicate(timeout=CLI_TIMEOUT), p.returncode) for k, p in procs.items()}
        assert silent.queries >= 1  # the query did go to the loopback server
    for outcome, ((stdout, stderr), code) in outputs.items():
        assert code not in (1, 2, 3), (outcome, stderr)
        assert code in (7, 8)  # inconclusive or offline: never "blocked"
        assert "Traceback" not in stderr
        report = json.loads(stdout)
        assert report["verdict"]["port25"] not in ("blocked", "partial")
        assert [q["outcome"] for q in report["dns"]] == [outcome]
        assert {p["state"] for p in report["probes"]} == {"dns-error"}
        assert any("DNS" in reason for reason in report["verdict"]["reasons"])


# --- an address family with no route -------------------------------------------------------


def kernel_has_no_ipv6_route_to_documentation_prefix() -> bool:
    """A UDP connect() only looks the route up; it sends nothing."""
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("2001:db8::1", 9))
        except OSError as exc:
            return exc.errno in (errno.ENETUNREACH, errno.EADDRNOTAVAIL, errno.EHOSTUNREACH)
    return False


def specs(port: int, family: str, address: str) -> list[ProbeSpec]:
    return [
        ProbeSpec(
            target=f"p{i}.test",
            host=f"mx.p{i}.test",
            address=address,
            family=family,  # type: ignore[arg-type]
            port=role,
            provider=f"p{i}",
            connect_port=port,
        )
        for i in range(3)
        for role in (25, 587)
    ]


async def test_family_without_a_route_is_unavailable_not_blocked(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The connector seam stands in for a kernel with no IPv6 route (ENETUNREACH at once).

    The kernel here may well have an IPv6 default route, and a real SYN to a
    documentation address must never leave the machine, so the seam does it; IPv4 goes
    to in-memory SMTP servers, so the mock clock shows that nobody waited for a deadline.
    """
    calls: list[str] = []

    async with trio.open_nursery() as nursery:
        smtp, _ = await serve_memory(nursery, simple_smtp_dialogue)

        async def no_ipv6_route(spec: ProbeSpec, options: object = None) -> trio.abc.Stream:
            calls.append(spec.family or "")
            if spec.family == "ipv6":
                raise OSError(errno.ENETUNREACH, os.strerror(errno.ENETUNREACH))
            return await smtp(spec, options)

        port = 1
        plan = specs(port, "ipv4", "127.0.0.1") + specs(port, "ipv6", "2001:db8::1")
        runner = Runner(plan, ProbeConfig(timeout=5), connector=no_ipv6_route, per_host=8)
        start = trio.current_time()
        results = await runner.run()
        elapsed = trio.current_time() - start
        nursery.cancel_scope.cancel()
    assert calls.count("ipv6") == 6  # one attempt each: no retry, no fallback
    v6 = [r for r in results if r.spec.family == "ipv6"]
    assert {r.state for r in v6} == {"unreachable"}
    assert {r.error.errno for r in v6 if r.error} == {"ENETUNREACH"}
    assert elapsed < 5  # nobody waited for a deadline
    verdict = decide(annotate(results), (), used_catalog=False)
    assert verdict.families["ipv6"] == "unavailable"
    assert verdict.port25 == verdict.families["ipv4"] != "blocked"


@pytest.mark.skipif(
    not kernel_has_no_ipv6_route_to_documentation_prefix(),
    reason="this kernel has an IPv6 route to 2001:db8::/32: a probe would leave the machine",
)
async def test_real_kernel_without_ipv6_route_says_unreachable() -> None:
    spec = specs(closed_port(), "ipv6", "2001:db8::1")[0]
    runner = Runner([spec], ProbeConfig(timeout=3))
    (result,) = await runner.run()
    assert result.state == "unreachable"


# --- a file-descriptor limit lower than the concurrency ---------------------------------------


def low_fd_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))


def test_ulimit_64_with_concurrency_500_degrades_with_a_warning() -> None:
    in_flight = InFlight(RecordingSMTP(pause=0.2))
    with peers_on_many_addresses(in_flight, 40) as (port, peers):
        targets = [arg for i in range(1, 41) for arg in ("--target", f"127.0.0.{i}")]
        proc = run_cli(
            *targets,
            "--ports",
            "25,587,2525",
            *map_all_roles(port),
            "--concurrency",
            "500",
            "--timeout",
            "10",
            "--trace",
            "never",  # the shared greeting is "intercepted": no trace, only the probes count
            "--json",
            preexec_fn=low_fd_limit,
        )
        served = sum(peer.connections for peer in peers)
    assert proc.returncode not in (1, 2), proc.stderr
    warning = assert_one_clean_line(proc.stderr)
    match = re.search(r"concurrency lowered from 500 to (\d+)", warning)
    assert match is not None and "ulimit -n" in warning
    lowered = int(match.group(1))
    assert 1 <= lowered < 64
    report = json.loads(proc.stdout)
    assert len(report["probes"]) == 120 == served
    assert {p["state"] for p in report["probes"]} == {"open"}  # no EMFILE, no local error
    assert any("ulimit -n" in w for w in report.get("warnings", []))
    # Fewer probes in parallel, not fewer probes: the peers never saw more than allowed.
    # A probe that sent a spare SYN (its first got no answer within 50 ms: a loaded
    # machine can defer loopback packets that long) may have had both accepted for a
    # moment, the loser closed at once; the JSON says which probes did.
    spares = sum(p["syn_attempts"] == 2 for p in report["probes"])
    assert 1 < in_flight.peak <= lowered + spares, f"peak {in_flight.peak}, {spares} spares"


# --- Ctrl-C ---------------------------------------------------------------------------------


def read_terminal_until(
    fd: int, seen: bytearray, marker: bytes | None, timeout: float = 20.0
) -> bool:
    """Read a pty into ``seen`` until ``marker`` shows (None: until it closes)."""
    end = time.monotonic() + timeout
    while marker is None or marker not in seen:
        ready, _, _ = select.select([fd], [], [], max(0.0, end - time.monotonic()))
        if not ready:
            return False
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the other end closed
            return marker is None
        if not chunk:
            return marker is None
        seen += chunk
    return True


def test_ctrl_c_while_probing_writes_the_partial_report(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    refused = closed_port()
    with ThreadedPeer(never_speaks) as silent:
        args = ["--target", "127.0.0.1", "--timeout", "60", "-o", str(out), "--json"]
        args += ["--port-map", f"25={refused}"]
        args += [a for r in (465, 587, 2525) for a in ("--port-map", f"{r}={silent.port}")]
        # stderr on a terminal, so the progress line says when the port-25 result is in:
        # the kernel may answer the three connections before the refusal on a loaded
        # machine, so "three connected" alone does not mean "port 25 done".
        terminal, their_end = pty.openpty()
        proc = subprocess.Popen(
            portprobe_cmd(*args), stdout=subprocess.PIPE, stderr=their_end, text=True
        )
        os.close(their_end)
        seen = bytearray()
        try:
            # Three probes are in flight (connected, waiting for a greeting that never
            # comes); the port-25 probe was refused and has its result.
            assert silent.wait_for_connections(3)
            assert read_terminal_until(terminal, seen, b"port 25: 1 refused"), seen
            proc.send_signal(signal.SIGINT)
            stdout, _ = proc.communicate(timeout=20)
            read_terminal_until(terminal, seen, None)
        finally:
            if proc.poll() is None:
                proc.kill()
            os.close(terminal)
    stderr = seen.decode(errors="replace")
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted" in stderr
    report = json.loads(out.read_text())
    assert report["interrupted"] is True
    assert [(p["port"], p["state"]) for p in report["probes"]] == [(25, "refused")]
    assert json.loads(stdout)["interrupted"] is True
    assert sorted(os.listdir(tmp_path)) == ["report.json"]  # no temporary file left


def test_ctrl_c_while_resolving_still_writes_a_report(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    with SilentDNSServer() as dns:
        args = ["--domain", "good.test", "--nameserver", dns.spec, "--dns-timeout", "60"]
        args += ["-o", str(out), "--format", "json", *map_all_roles(closed_port())]
        proc = subprocess.Popen(
            portprobe_cmd(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            assert wait_until(lambda: dns.queries >= 1)
            proc.send_signal(signal.SIGINT)
            _, stderr = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 130, stderr
    report = json.loads(out.read_text())
    assert report["interrupted"] is True and report["probes"] == []


# --- output that cannot be written ----------------------------------------------------------


def quick_args(out: Path) -> list[str]:
    return ["--target", "127.0.0.1", *map_all_roles(closed_port()), "--json", "-o", str(out)]


@contextlib.contextmanager
def mounted(*mount_args: str, at: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("needs root to mount")
    at.mkdir(exist_ok=True)
    done = subprocess.run(["mount", *mount_args, str(at)], capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount here: {done.stderr.decode().strip()}")
    try:
        yield at
    finally:
        subprocess.run(["umount", "-l", str(at)], check=False)


@contextlib.contextmanager
def read_only(directory: Path) -> Iterator[Path]:
    """A directory root cannot write either: a read-only bind mount of itself."""
    with mounted("--bind", str(directory), at=directory):
        done = subprocess.run(
            ["mount", "-o", "remount,ro,bind", str(directory)], capture_output=True, check=False
        )
        if done.returncode != 0:
            pytest.skip(f"cannot remount read-only: {done.stderr.decode().strip()}")
        yield directory


def test_output_to_a_read_only_place_is_one_line_and_exit_2(tmp_path: Path) -> None:
    place = tmp_path / "ro"
    place.mkdir()
    (place / "old.json").write_text('{"old": true}')
    with read_only(place):
        with pytest.raises(OSError):
            (place / "probe").write_text("x")  # really read-only, even for root
        proc = run_cli(*quick_args(place / "old.json"))
        listing = sorted(os.listdir(place))
        old = (place / "old.json").read_text()
    assert proc.returncode == 2
    line = assert_one_clean_line(proc.stderr)
    assert "cannot write the report" in line and str(place) in line
    assert proc.stdout == ""
    assert listing == ["old.json"] and old == '{"old": true}'


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to a 0o500 directory anyway")
def test_output_to_an_unwritable_directory_as_a_user(tmp_path: Path) -> None:
    place = tmp_path / "locked"
    place.mkdir(mode=0o500)
    proc = run_cli(*quick_args(place / "r.json"))
    assert proc.returncode == 2
    assert "cannot write the report" in assert_one_clean_line(proc.stderr)
    assert os.listdir(place) == []


def test_output_to_a_full_disk_leaves_no_half_written_file(tmp_path: Path) -> None:
    with mounted("-t", "tmpfs", "-o", "size=64k,mode=0755", "tmpfs", at=tmp_path / "full") as disk:
        (disk / "report.json").write_text('{"old": true}')
        # Fill all but one page: the report (several KB) starts to fit, then does not.
        fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            with contextlib.suppress(OSError):
                while os.write(fd, b"\0" * 1024):
                    pass
        finally:
            os.close(fd)
        os.truncate(disk / "filler", os.path.getsize(disk / "filler") - 4096)
        # Four targets, sixteen probes: a report of well over the one page left.
        more = [a for i in range(2, 5) for a in ("--target", f"127.0.0.{i}")]
        proc = run_cli(*quick_args(disk / "report.json"), *more)
        listing = sorted(os.listdir(disk))
        old = (disk / "report.json").read_text()
    assert proc.returncode == 2, proc.stderr
    line = assert_one_clean_line(proc.stderr)
    assert "cannot write the report" in line and "No space left" in line
    assert listing == ["filler", "report.json"]  # no temporary file left behind
    assert old == '{"old": true}'  # the previous report is intact: no half-written file
    assert json.loads(proc.stdout)["probes"]  # and the printed report is not lost with it


# --- bad input ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("bad")
    (d / "broken.toml").write_text("[provider\nname = 'x'\n")
    (d / "shape.toml").write_text("[[providers]]\nname = 5\n")
    (d / "not-pem.pem").write_text("not a certificate\n")
    return {name: str(d / name) for name in ("broken.toml", "shape.toml", "not-pem.pem")}


# Every run names a loopback target, maps every role onto a closed loopback port and
# sends any DNS to a loopback port: if a bad value slipped through, nothing leaves.
SAFE = ["--target", "127.0.0.1", "--nameserver", "127.0.0.1:9", "--timeout", "2"]

BAD_INPUT = [
    # (id, extra arguments, text the one line must contain)
    ("ports-0", ["--ports", "0"], "--ports"),
    ("ports-70000", ["--ports", "70000"], "70000"),
    ("ports-abc", ["--ports", "abc"], "abc"),
    ("ports-empty", ["--ports", ","], "--ports"),
    ("timeout-negative", ["--timeout", "-1"], "--timeout"),
    ("timeout-zero", ["--timeout", "0"], "--timeout"),
    ("timeout-nan", ["--timeout", "nan"], "--timeout"),
    ("timeout-text", ["--timeout", "soon"], "--timeout"),
    ("connect-timeout-negative", ["--connect-timeout", "-5"], "--connect-timeout"),
    ("dns-timeout-zero", ["--dns-timeout", "0"], "--dns-timeout"),
    ("concurrency-0", ["--concurrency", "0"], "--concurrency"),
    ("concurrency-fraction", ["--concurrency", "1.5"], "--concurrency"),
    ("per-host-0", ["--per-host", "0"], "--per-host"),
    ("nameserver-name", ["--nameserver", "not-an-ip"], "not-an-ip"),
    ("nameserver-port", ["--nameserver", "127.0.0.1:99999"], "127.0.0.1:99999"),
    ("target-spaces", ["--target", "bad host!"], "bad host!"),
    ("target-empty", ["--target", ""], "target"),
    ("target-bad-ipv6", ["--target", "[::1"], "[::1"),
    ("ca-file-missing", ["--ca-file", "/nonexistent/ca.pem"], "/nonexistent/ca.pem"),
    ("ca-file-not-pem", ["--ca-file", "@not-pem.pem"], "not-pem.pem"),
    ("catalog-broken", ["--catalog", "@broken.toml"], "broken.toml"),
    ("catalog-shape", ["--catalog", "@shape.toml"], "shape.toml"),
    ("catalog-missing", ["--catalog", "/nonexistent/catalog.toml"], "catalog.toml"),
    ("expect-nonsense", ["--expect", "nonsense"], "nonsense"),
    ("expect-empty", ["--expect", ","], "--expect"),
    ("format-xml", ["--format", "xml"], "xml"),
    ("json-and-format", ["--json", "--format", "table"], "--json"),
    ("both-families", ["-4", "-6"], "-4"),
    ("port-map-text", ["--port-map", "25=abc"], "25=abc"),
    ("port-map-zero", ["--port-map", "25=0"], "--port-map"),
    ("port-map-role", ["--port-map", "26=2526"], "26"),
    ("require-port-unprobed", ["--ports", "25", "--require-port", "587"], "587"),
    ("output-no-dir", ["-o", "/nonexistent/dir/r.json"], "/nonexistent/dir"),
    ("unknown-option", ["--frobnicate"], "--frobnicate"),
    ("missing-value", ["--timeout"], "--timeout"),
]

BAD_INPUT_FOUND_IN_REVIEW = [
    pytest.param(
        ["--domain", "bad domain!"],
        "bad domain!",
        id="domain-syntax",
    ),
    pytest.param(
        ["--ehlo-name", "x.test\r\nMAIL FROM:<a@b.test>"],
        "--ehlo-name",
        id="ehlo-name-crlf",
    ),
    pytest.param(
        ["--ehlo-name", "bücher.test"],
        "--ehlo-name",
        id="ehlo-name-non-ascii",
    ),
    pytest.param(
        ["--timeout", "inf"],
        "--timeout",
        id="timeout-infinite",
    ),
]


def with_files(args: list[str], files: dict[str, str]) -> list[str]:
    return [files[a[1:]] if a.startswith("@") else a for a in args]


def check_bad_input(
    args: list[str], names: str, capsys: pytest.CaptureFixture[str], files: dict[str, str]
) -> None:
    argv = [*SAFE, *map_all_roles(closed_port()), *with_files(args, files)]
    code = cli_run(argv)
    out, err = capsys.readouterr()
    assert code == 2, err
    assert out == ""
    line = assert_one_clean_line(err)
    assert "error" in line
    assert with_files([names], files)[0].lstrip("@") in line


@pytest.mark.parametrize(
    ("args", "names"), [c[1:] for c in BAD_INPUT], ids=[c[0] for c in BAD_INPUT]
)
def test_bad_input_is_one_line_and_exit_2(
    args: list[str], names: str, capsys: pytest.CaptureFixture[str], bad_files: dict[str, str]
) -> None:
    check_bad_input(args, names, capsys, bad_files)


@pytest.mark.parametrize(("args", "names"), BAD_INPUT_FOUND_IN_REVIEW)
def test_bad_input_found_in_review(
    args: list[str], names: str, capsys: pytest.CaptureFixture[str], bad_files: dict[str, str]
) -> None:
    check_bad_input(args, names, capsys, bad_files)


def test_bad_input_in_a_real_process(bad_files: dict[str, str]) -> None:
    """The same at the process boundary: exit status 2, one line, no traceback."""
    cases = {
        "--frobnicate": ["--frobnicate"],
        "70000": ["--ports", "70000"],
        "broken.toml": ["--catalog", bad_files["broken.toml"]],
    }
    procs = {
        name: subprocess.Popen(
            portprobe_cmd(*SAFE, *map_all_roles(closed_port()), *args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, args in cases.items()
    }
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=CLI_TIMEOUT)
        assert proc.returncode == 2, stderr
        assert stdout == ""
        assert name in assert_one_clean_line(stderr)


def test_targets_command_with_a_broken_catalog(bad_files: dict[str, str], capsys) -> None:
    code = cli_run(["targets", "--catalog", bad_files["broken.toml"]])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert "broken.toml" in assert_one_clean_line(err)


# --- the engine refuses what the CLI should have refused ------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(
            "x.test\r\nMAIL FROM:<a@b.test>",
            id="crlf",
        ),
        pytest.param(
            "bücher.test",
            id="non-ascii",
        ),
    ],
)
async def test_an_ehlo_name_is_refused_before_it_reaches_the_wire(name: str) -> None:
    from portprobe.probe import probe
    from tests.servers import spec

    async with trio.open_nursery() as nursery:
        port, transcript = await serve_raw(nursery, smtp_with_bait)
        try:
            result = await probe(spec(port, role=587), ProbeConfig(timeout=5, ehlo_name=name))
        except ValueError:
            # Refusing the name is right, but only before any connection is made.
            assert transcript.connections == 0
        else:
            assert result.quit_sent
        nursery.cancel_scope.cancel()
    verbs = [line.split(b" ")[0].upper() for line in transcript.data.splitlines()]
    assert b"MAIL" not in verbs, transcript.data


async def smtp_with_bait(stream: trio.SocketStream, t: Transcript) -> None:
    await stream.send_all(b"220 bait.test ESMTP\r\n")
    buf = bytearray()
    while (line := await t.read_line(stream, buf)) is not None:
        if line.upper().startswith(b"QUIT"):
            await stream.send_all(b"221 bye\r\n")
            return
        await stream.send_all(b"250 ok\r\n")
