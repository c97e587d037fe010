"""``serve_main`` and the modules file: a typo is exit 2 with file, line and key named; a
running exporter stops cleanly on SIGTERM; no other command imports the server stack."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import trio

from portprobe.serve.command import ServeOptions, parse_duration, parse_listen, serve_main
from portprobe.serve.config import ConfigError, TargetRefused, load_config
from tests.test_serve_support import get, start_serve, start_smtp_host

ROOT = Path(__file__).resolve().parent.parent

GOOD = """
[modules.lo]
targets = ["127.0.0.1"]
families = ["ipv4"]
ports = [25, 587]
port_map = { "25" = 2525, "587" = 2587 }
readiness = false
timeout = 2.5

[modules.mx]
target = "domain"
allow_targets = ["example.org", "*.example.net"]
expect = ["open", "restricted"]
deadline = 20
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "serve.toml"
    path.write_text(textwrap.dedent(text))
    return path


def test_a_modules_file_becomes_requests(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD))
    lo, mx = cfg.modules["lo"], cfg.modules["mx"]
    assert lo.request.targets == ("127.0.0.1",) and dict(lo.request.port_map) == {
        25: 2525,
        587: 2587,
    }
    assert lo.request.timeout == 2.5 and lo.target is None
    assert mx.target == "domain" and mx.deadline == 20
    assert mx.success_verdicts == ("open", "restricted")
    assert mx.request_for("mail.example.net").domains == ("mail.example.net",)
    hash(mx.request_for("example.org"))  # the single-flight key


def test_the_shipped_modules_file_loads() -> None:
    cfg = load_config(ROOT / "contrib" / "prometheus" / "serve.toml")
    assert set(cfg.modules) == {"default", "mx", "relay"}
    assert cfg.modules["default"].request.uses_catalog
    assert cfg.modules["relay"].request_for("smtp.example.org").targets == ("smtp.example.org",)
    with pytest.raises(TargetRefused):
        cfg.modules["relay"].request_for("10.0.0.1")  # address-text: refused, never probed


@pytest.mark.parametrize(
    ("text", "line", "says"),
    [
        (
            '[modules.lo]\ntagets = ["127.0.0.1"]\n',
            2,
            "modules.lo.tagets: unknown key (did you mean 'targets'?)",
        ),
        ("[modules.lo]\nports = [25, 26]\n", 2, "modules.lo.ports: --ports: 26 is not one of"),
        ('[modules.lo]\nports = "25"\n', 2, "modules.lo.ports: must be a list of port numbers"),
        ("[modules.lo]\n\ntimeout = -1\n", 3, "modules.lo.timeout: must be a number of seconds"),
        ('[modules.lo]\ntarget = "host"\n', 2, "needs allow_targets"),
        ('[modules.lo]\ntarget = "host"\nallow_targets = ["a..b"]\n', 3, "allow_targets: 'a..b'"),
        ("[modules.lo]\nports = [25,, 587]\n", 2, "invalid TOML"),
        ("[module.lo]\nports = [25]\n", 1, "unknown key 'module'"),
        ("", 1, "no module"),
    ],
)
def test_a_typo_is_exit_2_naming_the_line_and_key(
    tmp_path: Path, text: str, line: int, says: str
) -> None:
    path = write(tmp_path, text)
    lines: list[str] = []
    code = serve_main(ServeOptions(config=path, listen="127.0.0.1:0"), say=lines.append)
    assert code == 2
    message = "".join(f"{line}\n" for line in lines)
    assert message.count("\n") == 1 and "Traceback" not in message
    assert f"{path}:{line}: " in message, message
    assert says in message, message


def test_missing_file_and_bad_options_are_exit_2(tmp_path: Path) -> None:
    for options, says in [
        (ServeOptions(config=tmp_path / "none.toml"), "cannot read"),
        (ServeOptions(listen="localhost:9925"), "is not an IP address"),
        (ServeOptions(listen="127.0.0.1"), "is not HOST:PORT"),
        (ServeOptions(cache_ttl="soon"), "--cache-ttl"),
        (ServeOptions(max_concurrent=0), "--max-concurrent"),
    ]:
        lines: list[str] = []
        assert serve_main(options, say=lines.append) == 2
        assert len(lines) == 1 and says in lines[0] and "\n" not in lines[0]


def test_durations_and_listen_addresses() -> None:
    assert parse_duration("60s") == 60 and parse_duration("5m") == 300
    assert parse_duration("0") == 0 and parse_duration("250ms") == 0.25
    assert parse_listen("[::1]:9925") == ("::1", 9925)
    assert parse_listen("127.0.0.1:0") == ("127.0.0.1", 0)
    with pytest.raises(ConfigError):
        load_config(Path("/nonexistent/serve.toml"))


async def test_sigterm_ends_a_run_in_flight_cleanly(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        host = await start_smtp_host(nursery)
        host.behaviour.mode = "silent"  # the run would wait 30 s for a greeting
        config = write(
            tmp_path,
            f"""
            [modules.lo]
            targets = ["127.0.0.1"]
            families = ["ipv4"]
            ports = [25]
            port_map = {{ "25" = {host.port25} }}
            readiness = false
            timeout = 30
            """,
        )
        proc, url = await trio.to_thread.run_sync(start_serve, config)
        port = int(url.rsplit(":", 1)[1])
        answers = []

        async def scrape() -> None:
            answers.append(await get(port, "/probe?module=lo"))

        try:
            healthy = await get(port, "/-/healthy")
            nursery.start_soon(scrape)
            with trio.fail_after(10):
                while host.behaviour.connections == 0:  # the run is in flight
                    await trio.sleep(0.01)
            proc.send_signal(signal.SIGTERM)
            with trio.fail_after(10):
                code = await trio.to_thread.run_sync(proc.wait)
            assert proc.stderr is not None
            rest = proc.stderr.read()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        nursery.cancel_scope.cancel()
    assert healthy.status == 200
    assert code == 0
    # The scrape in flight got what the run had found, flagged partial.
    assert [a.status for a in answers] == [200]
    assert "portprobe_interrupted 1" in answers[0].text
    assert "probe_success 0" in answers[0].text
    assert "portprobe serve: stopped" in rest and "Traceback" not in rest


def test_other_commands_do_not_import_the_server_stack() -> None:
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "portprobe", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    imported = {line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines()}
    assert "portprobe.cli" in imported or "portprobe" in imported, out.stderr[-500:]
    assert "Usage" in out.stdout
    assert not imported & {"h11", "prometheus_client", "portprobe.serve.exporter"}
