"""The command line at its edges: help, completion, colour, the deadline, and output that
cannot be written (a full stdout, ``-o`` somewhere no file can be made, the file's mode).

Real subprocesses where the behaviour is the process's (exit codes, stdout vs stderr, a
pty for colour), loopback targets only; a listener that accepts and never greets stands in
for a slow path, so the deadline test asserts the partial report, never a duration.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer import _click
from typer.core import TyperCommand
from typer.testing import CliRunner

from portprobe import __version__
from portprobe.cli import PortprobeGroup, app, run
from portprobe.cli.output import check_writable, new_file_mode, write_atomically
from portprobe.cli.terminal import color_enabled
from portprobe.errors import OutputError
from portprobe.exit_codes import ASSERTION, INTERNAL_ERROR, INTERRUPTED, USAGE, VERDICT
from tests.servers import closed_port

PORTPROBE = [sys.executable, "-m", "portprobe"]


def portprobe(
    *args: str, env: dict[str, str] | None = None, **kwargs: object
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [*PORTPROBE, *args],
        capture_output="stdout" not in kwargs,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        **kwargs,
    )


def refused_25() -> list[str]:
    """One loopback target whose port 25 refuses: a fast, complete run."""
    return ["--target", "127.0.0.1", "--ports", "25", f"--port-map=25={closed_port()}"]


def one_error_line(proc: subprocess.CompletedProcess[str], *, code: int = USAGE) -> str:
    assert proc.returncode == code, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


# --- help, -V, commands from the group --------------------------------------------------------


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_root_help_shows_the_default_commands_options_and_the_exit_codes(flag: str) -> None:
    result = CliRunner().invoke(app, [flag])
    assert result.exit_code == 0
    text = result.output
    assert "Options of the default command (diagnose)" in text
    for option in ("--domain", "--target", "--format", "--deadline", "--color", "-t, --timeout"):
        assert option in text, option
    exits = text[text.index("Exit codes:") :]
    flat = " ".join(exits.split())  # the help wraps at the terminal's width
    for verdict, code in VERDICT.items():
        if code:
            assert f"{code} {verdict}" in flat
    first_words = {line.split()[0] for line in exits.splitlines()[1:] if line.strip()}
    for code in (ASSERTION, USAGE, INTERNAL_ERROR, INTERRUPTED):
        assert str(code) in first_words, code


def test_diagnose_help_ends_with_the_exit_codes() -> None:
    result = CliRunner().invoke(app, ["diagnose", "--help"])
    assert result.exit_code == 0
    assert "Exit codes:" in result.output and str(INTERRUPTED) in result.output


def test_dash_capital_v_is_the_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["-V"]) == 0
    assert capsys.readouterr().out.strip() == f"portprobe {__version__}"


def test_every_command_of_the_group_is_called_by_name() -> None:
    group = typer.main.get_command(app)
    assert isinstance(group, PortprobeGroup)
    names = list(group.commands)
    assert names == ["diagnose", "targets", "platforms", "merge", "serve"]
    for name in names:
        result = CliRunner().invoke(app, [name, "--help"])
        assert result.exit_code == 0
        assert f"portprobe {name} [OPTIONS]" in result.output, name


def test_a_command_added_to_the_group_is_not_taken_for_diagnose_options() -> None:
    group = typer.main.get_command(app)
    assert isinstance(group, PortprobeGroup)
    ctx = _click.Context(group, info_name="portprobe")
    assert group.wants_default_command(ctx, ["--target", "127.0.0.1"])
    assert group.wants_default_command(ctx, [])
    assert not group.wants_default_command(ctx, ["merge"])
    assert not group.wants_default_command(ctx, ["-V"])
    assert not group.wants_default_command(ctx, ["serve"])
    assert group.wants_default_command(ctx, ["watch"])
    group.commands["watch"] = TyperCommand("watch")
    try:
        assert not group.wants_default_command(ctx, ["watch"])
    finally:
        del group.commands["watch"]


# --- completion -------------------------------------------------------------------------------


def complete(line: str) -> list[str]:
    """What bash completion offers for ``line`` (the cursor at its end)."""
    words = line.split()
    cword = len(words) if line.endswith(" ") else len(words) - 1
    env = {"_PORTPROBE_COMPLETE": "complete_bash", "COMP_WORDS": line, "COMP_CWORD": str(cword)}
    proc = portprobe(env=env)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def test_completion_offers_the_values_of_format_and_platform() -> None:
    from portprobe.environment.platforms import load_platforms
    from portprobe.vocab import FORMATS

    assert complete("portprobe --format ") == list(FORMATS)
    assert complete("portprobe diagnose --format j") == ["json", "junit"]
    assert complete("portprobe merge --format ") == ["table", "markdown", "json", "openmetrics"]
    names = load_platforms().names
    assert complete("portprobe --platform ") == list(names)
    first = names[0]
    assert first in complete(f"portprobe -q --platform {first[:2]}")
    assert complete("portprobe --color ") == ["auto", "always", "never"]


def test_completion_offers_commands_and_the_default_commands_options() -> None:
    assert complete("portprobe ") == ["diagnose", "targets", "platforms", "merge", "serve"]
    assert complete("portprobe --for") == ["--format"]
    assert "--deadline" in complete("portprobe --dead")


# --- input checked before any probe -----------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--target", "::1", "-4"], "-4"),
        (["--target", "[::1]", "--target", "::2", "-4"], "-4"),
        (["--target", "127.0.0.1", "-6"], "-6"),
    ],
)
def test_a_family_that_excludes_every_literal_target_is_a_usage_error(
    args: list[str], flag: str
) -> None:
    proc = portprobe(*args, "--ports", "25")
    line = one_error_line(proc)
    assert f"{flag} excludes every target" in line
    assert proc.stdout == ""


def test_a_family_that_keeps_one_target_runs() -> None:
    proc = portprobe(*refused_25(), "--target", "::1", "-4", "-q")
    assert proc.returncode not in (USAGE, INTERNAL_ERROR), proc.stderr
    assert "port 25" in proc.stdout


@pytest.mark.parametrize("value", ["0", "-1", "abc", "inf", "nan", ""])
def test_a_bad_deadline_is_one_line_and_exit_2(value: str) -> None:
    proc = portprobe(*refused_25(), f"--deadline={value}")
    assert "--deadline" in one_error_line(proc)
    assert proc.stdout == ""


def test_dash_t_is_the_probe_timeout() -> None:
    assert "--timeout" in one_error_line(portprobe(*refused_25(), "-t", "0"))
    proc = portprobe(*refused_25(), "-t", "5", "--json")
    assert json.loads(proc.stdout)["parameters"]["timeout"] == 5.0


def test_nagios_usage_errors_are_on_stdout_too() -> None:
    proc = portprobe(*refused_25(), "--format", "nagios", "--deadline", "abc")
    line = one_error_line(proc, code=3)
    assert proc.stdout.startswith("PORTPROBE UNKNOWN - error: --deadline")
    assert len(proc.stdout.splitlines()) == 1
    assert line.startswith("portprobe: error:")


# --- the deadline -----------------------------------------------------------------------------


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port whose connections are accepted (by the kernel) and never greeted."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


def test_the_deadline_stops_the_run_and_keeps_the_partial_report(
    silent_port: int, tmp_path: Path
) -> None:
    out = tmp_path / "r.json"
    proc = portprobe(
        "--target", "127.0.0.1", "--target", "127.0.0.2", "--ports", "25",
        f"--port-map=25={silent_port}", "--timeout", "60", "--deadline", "0.5",
        "--json", "-o", str(out),
    )  # fmt: skip
    assert proc.returncode == INTERRUPTED, proc.stderr
    assert proc.stderr.strip() == (
        "portprobe: --deadline 0.5 passed; the report holds what completed"
    )
    for report in (json.loads(proc.stdout), json.loads(out.read_text())):
        assert report["interrupted"] is True
        assert report["parameters"]["targets"] == ["127.0.0.1", "127.0.0.2"]


def test_the_deadline_in_nagios_format_is_unknown(silent_port: int) -> None:
    proc = portprobe(
        "--target", "127.0.0.1", "--ports", "25", f"--port-map=25={silent_port}",
        "--timeout", "60", "--deadline", "0.5", "--format", "nagios",
    )  # fmt: skip
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout.startswith("PORTPROBE UNKNOWN")


def test_a_run_that_ends_in_time_is_not_interrupted() -> None:
    proc = portprobe(*refused_25(), "--deadline", "50", "--json")
    assert json.loads(proc.stdout)["interrupted"] is False
    assert proc.returncode != INTERRUPTED


# --- output that cannot be written ------------------------------------------------------------

needs_dev_full = pytest.mark.skipif(
    not os.path.exists("/dev/full"), reason="no /dev/full on this system"
)


@needs_dev_full
@pytest.mark.parametrize(
    "args", [["-q"], ["--json"], ["--version"], ["--help"], ["targets"]], ids=str
)
def test_a_full_stdout_is_one_line_and_exit_2(args: list[str]) -> None:
    run_args = args if args[0] in ("--version", "--help", "targets") else [*refused_25(), *args]
    with open("/dev/full", "w") as full:
        proc = portprobe(*run_args, stdout=full, stderr=subprocess.PIPE)
    line = one_error_line(proc)
    assert line == "portprobe: error: cannot write to stdout: No space left on device"


@needs_dev_full
def test_a_full_stdout_still_writes_the_report_file(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    with open("/dev/full", "w") as full:
        proc = portprobe(*refused_25(), "-o", str(out), stdout=full, stderr=subprocess.PIPE)
    assert "cannot write to stdout" in one_error_line(proc)
    assert json.loads(out.read_text())["interrupted"] is False


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_output_where_no_file_can_be_made_fails_before_probing() -> None:
    """``os.access`` says yes to root for /proc; the check makes a file for real."""
    proc = portprobe(*refused_25(), "-o", "/proc/portprobe-report.json")
    assert "cannot write the report to /proc/portprobe-report.json" in one_error_line(proc)
    assert proc.stdout == ""  # nothing was probed: no verdict printed


def test_check_writable_names_the_problem(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("")
    for path, words in [
        (tmp_path / "missing" / "r.json", "does not exist"),
        (a_file / "r.json", "is not a directory"),
        (tmp_path, "is a directory"),
    ]:
        with pytest.raises(OutputError, match=words):
            check_writable(path)
    check_writable(tmp_path / "r.json")
    assert [p.name for p in tmp_path.iterdir()] == ["file"]  # the trial file is gone


# --- the written file's mode ------------------------------------------------------------------


@pytest.fixture
def umask() -> Iterator[None]:
    old = os.umask(0o022)
    os.umask(old)
    yield
    os.umask(old)


@pytest.mark.skipif(sys.platform == "win32", reason="no permission bits on Windows")
@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_the_report_gets_the_mode_the_umask_allows(
    umask: None, tmp_path: Path, mask: int, mode: int
) -> None:
    os.umask(mask)
    assert new_file_mode() == mode
    path = tmp_path / "r.prom"
    write_atomically(path, "x 1\n")
    assert stat.S_IMODE(path.stat().st_mode) == mode
    write_atomically(path, "x 2\n")  # replacing keeps the rule
    assert stat.S_IMODE(path.stat().st_mode) == mode and path.read_text() == "x 2\n"


@pytest.mark.skipif(sys.platform == "win32", reason="no umask on Windows")
def test_the_cli_writes_with_the_umask_mode(tmp_path: Path) -> None:
    out = tmp_path / "r.prom"
    proc = portprobe(*refused_25(), "--format", "openmetrics", "-o", str(out), umask=0o022)
    assert proc.returncode not in (USAGE, INTERNAL_ERROR), proc.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o644


def _nobody() -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam("nobody")
    return entry.pw_uid, entry.pw_gid


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0,
    reason="dropping privileges to read as another user needs root",
)
def test_a_collector_running_as_another_user_reads_the_report() -> None:
    """node_exporter's textfile collector runs as its own user: it must read the file."""
    try:
        uid, gid = _nobody()
    except KeyError:
        pytest.skip("no user 'nobody' to drop privileges to")
    # pytest's tmp_path is 0700 for root; the collector needs a directory it may enter.
    directory = Path(tempfile.mkdtemp(prefix="portprobe-collector-"))
    try:
        directory.chmod(0o755)
        out = directory / "portprobe.prom"
        proc = portprobe(*refused_25(), "--format", "openmetrics", "-o", str(out), umask=0o022)
        assert proc.returncode not in (USAGE, INTERNAL_ERROR), proc.stderr
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: become nobody, read the file, say what was read
            status = 1
            try:
                os.close(read_fd)
                os.setgroups([])
                os.setgid(gid)
                os.setuid(uid)
                data = out.read_bytes()
                os.write(write_fd, data[:200])
                status = 0
            finally:
                os._exit(status)
        os.close(write_fd)
        with os.fdopen(read_fd, "rb") as pipe:
            seen = pipe.read()
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, "nobody could not read the report"
        assert seen.startswith(b"# ")  # OpenMetrics text, read by the other user
        from tests.test_openmetrics import promtool

        promtool(out.read_text())  # and the file is what Prometheus' own checker accepts
    finally:
        for child in directory.iterdir():
            child.unlink()
        directory.rmdir()


# --- colour -----------------------------------------------------------------------------------


class FakeTerminal:
    def __init__(self, tty: bool) -> None:
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.mark.parametrize(
    ("mode", "tty", "environ", "expected"),
    [
        ("auto", True, {}, True),
        ("auto", True, {"NO_COLOR": "1"}, False),
        ("auto", True, {"NO_COLOR": ""}, True),  # empty means unset (no-color.org)
        ("auto", False, {}, False),
        ("always", False, {"NO_COLOR": "1"}, True),  # an option overrides NO_COLOR
        ("never", True, {}, False),
    ],
)
def test_color_follows_no_color_org_and_the_option(
    mode: str, tty: bool, environ: dict[str, str], expected: bool
) -> None:
    assert color_enabled(FakeTerminal(tty), mode, environ) is expected  # type: ignore[arg-type]


def on_a_terminal(*args: str, no_color: str | None) -> str:
    """Run portprobe with stdout on a pty; returns what the terminal received."""
    pty = pytest.importorskip("pty", reason="needs a POSIX pseudo-terminal")
    import select

    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    if no_color is not None:
        env["NO_COLOR"] = no_color
    primary, secondary = pty.openpty()
    try:
        proc = subprocess.Popen(
            [*PORTPROBE, *args], stdout=secondary, stderr=subprocess.DEVNULL, env=env
        )
        os.close(secondary)
        chunks = []
        while True:
            ready, _, _ = select.select([primary], [], [], 60)
            if not ready:
                break
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert proc.wait(timeout=60) == 0
    finally:
        os.close(primary)
    return b"".join(chunks).decode()


@pytest.mark.parametrize(
    ("args", "no_color", "coloured"),
    [
        ([], None, True),
        ([], "", True),
        ([], "1", False),
        (["--color", "never"], None, False),
        (["--color", "always"], "1", True),
    ],
)
def test_colour_on_a_real_terminal(args: list[str], no_color: str | None, coloured: bool) -> None:
    text = on_a_terminal("targets", *args, no_color=no_color)
    assert "gmail" in text.lower() or "google" in text.lower()
    assert ("\x1b[" in text) is coloured


def test_color_always_colours_a_pipe_too() -> None:
    assert "\x1b[" in portprobe("targets", "--color", "always").stdout
    assert "\x1b[" not in portprobe("targets").stdout


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--max-hops", "0"], "--max-hops"),
        (["--max-hops", "300"], "--max-hops"),
        (["--max-hops", "abc"], "--max-hops"),
        (["--trace", "sometimes"], "--trace"),
    ],
)
def test_bad_trace_options_are_one_line_and_exit_2(args: list[str], flag: str) -> None:
    proc = portprobe(*refused_25(), *args)
    assert flag in one_error_line(proc)
    assert proc.stdout == ""


def test_trace_options_reach_the_parameters() -> None:
    proc = portprobe(*refused_25(), "--trace", "never", "--max-hops", "7", "--no-asn", "--json")
    parameters = json.loads(proc.stdout)["parameters"]
    assert (parameters["trace"], parameters["max_hops"], parameters["asn"]) == ("never", 7, False)
