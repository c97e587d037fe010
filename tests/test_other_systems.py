"""macOS, BSD and Windows, faked where they cannot run here (issue 25 "Every OS").

What differs on them, and what each test stands in for:

- the errno module: ENONET is Linux's alone, and Windows sockets report WSA numbers; the
  error map must import and classify with either;
- no ``IP_RECVERR`` or error queue: the connector connects the same way, sets a TTL with
  the portable option names, and reports the errno without an ICMP part;
- no ``/sys``: no DMI evidence, never an error (tests/test_library.py);
- no ``/proc``: the fd count and the umask are read another way (their fallbacks).
"""

from __future__ import annotations

import errno
import json
import subprocess
import sys
import textwrap

import pytest
import trio

import portprobe.probe.connect as connect
from portprobe.model import ProbeSpec
from portprobe.probe.errors import classify_connect_error, errnos


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60
    )


def test_the_error_map_imports_without_linux_only_errno_names() -> None:
    """As on macOS and Windows, whose errno modules have no ENONET."""
    proc = run_python(
        """
        import errno, json
        del errno.ENONET
        from portprobe.probe.errors import classify_connect_error
        state, error = classify_connect_error(OSError(errno.EHOSTUNREACH, "No route to host"))
        print(json.dumps([state, error.errno]))
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == ["unreachable", "EHOSTUNREACH"]


@pytest.mark.parametrize(
    ("number", "state"),
    [(10061, "refused"), (10065, "unreachable"), (10013, "unreachable"), (10060, "filtered")],
    ids=["WSAECONNREFUSED", "WSAEHOSTUNREACH", "WSAEACCES", "WSAETIMEDOUT"],
)
def test_windows_socket_errors_are_classified_like_their_posix_twins(
    number: int, state: str
) -> None:
    """A Windows socket says WSAEACCES (10013), not EACCES (13): faked here by giving the
    errno module the WSA names Windows' has, in a fresh interpreter."""
    names = {
        10061: "WSAECONNREFUSED",
        10065: "WSAEHOSTUNREACH",
        10013: "WSAEACCES",
        10060: "WSAETIMEDOUT",
    }
    proc = run_python(
        f"""
        import errno, json
        for value, name in {names!r}.items():
            setattr(errno, name, value)
        from portprobe.probe.errors import classify_connect_error
        print(json.dumps(classify_connect_error(OSError({number}, "x"))[0]))
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == state


def test_errnos_skips_names_this_system_lacks() -> None:
    assert errnos("ECONNREFUSED", "NO_SUCH_ERRNO_NAME") == {errno.ECONNREFUSED}


def spec_for(port: int) -> ProbeSpec:
    return ProbeSpec(
        target="127.0.0.1",
        host="127.0.0.1",
        address="127.0.0.1",
        family="ipv4",
        port=25,
        connect_port=port,
    )


async def test_without_the_linux_error_queue_a_connect_still_works_and_reports_the_errno(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import socket

    monkeypatch.setattr(connect, "IS_LINUX", False)
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    stream = await connect.open_tcp(spec_for(port), connect.SocketOptions(ttl=9))
    async with stream:
        # The portable option name (macOS and Windows have IP_TTL too).
        assert stream.socket.getsockopt(socket.IPPROTO_IP, socket.IP_TTL) == 9
        if sys.platform.startswith("linux"):  # never set, so nothing to clear
            assert stream.socket.getsockopt(connect.SOL_IP, connect.IP_RECVERR) == 0
    for listener in listeners:
        await listener.aclose()
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        with pytest.raises(connect.ConnectFailure) as caught:
            await connect.open_tcp(spec_for(bound.getsockname()[1]))
    assert caught.value.report == connect.KernelReport(errno.ECONNREFUSED, None)
    assert classify_connect_error(caught.value)[0] == "refused"


def test_without_proc_the_fd_count_and_umask_fall_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """macOS and Windows have no /proc: both readers fall back, neither raises."""
    import builtins
    import os

    from portprobe.cli import output
    from portprobe.probe import runner

    real_open, real_listdir = builtins.open, os.listdir

    def no_proc_open(file, *args, **kwargs):  # type: ignore[no-untyped-def]
        if str(file).startswith("/proc/"):
            raise FileNotFoundError(file)
        return real_open(file, *args, **kwargs)

    def no_proc_listdir(path="."):  # type: ignore[no-untyped-def]
        if str(path).startswith("/proc/"):
            raise FileNotFoundError(path)
        return real_listdir(path)

    monkeypatch.setattr(builtins, "open", no_proc_open)
    monkeypatch.setattr(os, "listdir", no_proc_listdir)
    assert runner.open_fd_count() == 16
    mask = os.umask(0o027)
    try:
        assert output._current_umask() == 0o027
    finally:
        os.umask(mask)
