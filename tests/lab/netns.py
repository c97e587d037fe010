"""Network namespaces and the processes the lab starts in them.

Every process is started through ``ip netns exec`` (which execs, so the ``Popen`` pid is
the program's pid) and ended by that pid. On teardown ``ip netns pids`` lists whatever
is still alive inside a namespace this run made (Postfix's children, say), and those
pids are ended too before the namespace is deleted.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

#: Prefix of every namespace the lab makes; the creating process's pid follows it.
NAMESPACE_PREFIX = "pplab"


class LabError(RuntimeError):
    """The lab could not be built or driven (a command failed); carries its output."""


def run(
    argv: Sequence[str],
    *,
    input: str | None = None,
    check: bool = True,
    timeout: float = 30,
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        list(argv), input=input, capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and proc.returncode != 0:
        raise LabError(
            f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.strip() or proc.stdout}"
        )
    return proc


@dataclass(frozen=True)
class Namespace:
    name: str

    def argv(self, argv: Sequence[str]) -> list[str]:
        """The command line that runs ``argv`` inside this namespace."""
        return ["ip", "netns", "exec", self.name, *argv]

    def run(
        self,
        argv: Sequence[str],
        *,
        input: str | None = None,
        check: bool = True,
        timeout: float = 30,
    ) -> subprocess.CompletedProcess[str]:
        return run(self.argv(argv), input=input, check=check, timeout=timeout)

    def popen(
        self, argv: Sequence[str], *, log: Path | None = None, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        out = log.open("ab") if log is not None else subprocess.DEVNULL
        try:
            return subprocess.Popen(
                self.argv(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # a Ctrl-C in the terminal reaches the lab, not these
            )
        finally:
            if log is not None and not isinstance(out, int):
                out.close()

    def ip(self, commands: Iterable[str]) -> None:
        """Run ``ip`` commands (one per line, without the leading ``ip``) in this namespace."""
        run(["ip", "-n", self.name, "-batch", "-"], input="\n".join(commands) + "\n")

    def sysctl(self, settings: dict[str, str | int]) -> None:
        self.run(["sysctl", "-q", "-w", *(f"{k}={v}" for k, v in settings.items())])

    def pids(self) -> list[int]:
        proc = run(["ip", "netns", "pids", self.name], check=False)
        return [int(p) for p in proc.stdout.split() if p.isdigit()]


def existing_namespaces() -> list[str]:
    proc = run(["ip", "netns", "list"], check=False)
    return [line.split()[0] for line in proc.stdout.splitlines() if line.strip()]


#: ``ip netns exec NS`` bind-mounts the files in ``/etc/netns/NS/`` over ``/etc/``.
NETNS_ETC = Path("/etc/netns")


def create_namespace(name: str, resolv_conf: str | None = None) -> Namespace:
    """Make namespace ``name``; with ``resolv_conf``, programs run in it use that resolver."""
    run(["ip", "netns", "add", name])
    if resolv_conf is not None:
        etc = NETNS_ETC / name
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "resolv.conf").write_text(resolv_conf)
    return Namespace(name)


def end_processes(pids: Iterable[int], grace: float = 1.0) -> None:
    """SIGTERM each pid, wait up to ``grace`` seconds, then SIGKILL what is left."""
    pending = set(pids)
    for pid in pending:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while pending and time.monotonic() < deadline:
        for pid in list(pending):
            if not _alive(pid):
                pending.discard(pid)
        if pending:
            time.sleep(0.02)
    for pid in pending:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    # Reap our own children; for others a signal-0 probe (zombies of others count as gone).
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def delete_namespace(ns: Namespace) -> None:
    """End every process still inside ``ns`` (by pid), then delete it."""
    for _ in range(3):
        pids = ns.pids()
        if not pids:
            break
        end_processes(pids)
    run(["ip", "netns", "del", ns.name], check=False)
    _remove_netns_etc(ns.name)


def _remove_netns_etc(name: str) -> None:
    etc = NETNS_ETC / name
    if etc.is_dir():
        for child in etc.iterdir():
            child.unlink()
        etc.rmdir()
    with contextlib.suppress(OSError):
        NETNS_ETC.rmdir()  # only if empty: it may hold other programs' files


def namespace_owner(name: str) -> int | None:
    """The pid encoded in a lab namespace name (``pplab<pid>…``), if it is one of ours."""
    if not name.startswith(NAMESPACE_PREFIX):
        return None
    digits = ""
    for char in name[len(NAMESPACE_PREFIX) :]:
        if not char.isdigit():
            break
        digits += char
    return int(digits) if digits else None


def remove_stale_namespaces() -> list[str]:
    """Delete lab namespaces left by runs whose process no longer exists (a SIGKILL)."""
    removed = []
    leftover_etc = (
        [p.name for p in NETNS_ETC.glob(f"{NAMESPACE_PREFIX}*")] if NETNS_ETC.is_dir() else []
    )
    for name in sorted(set(existing_namespaces()) | set(leftover_etc)):
        owner = namespace_owner(name)
        if owner is not None and owner != os.getpid() and not _alive(owner):
            delete_namespace(Namespace(name))
            removed.append(name)
    return removed
