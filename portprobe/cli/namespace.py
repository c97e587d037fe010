"""``--netns NAME|PATH`` and ``--container NAME``: run this diagnosis inside another
network namespace (a container's), with that namespace's resolver configuration.

How: portprobe re-executes itself under ``nsenter --net=PATH`` (util-linux). The whole
process then lives in the namespace: every socket, the DNS client, readiness and the MTA
tools it starts. The alternative, ``setns`` in one thread, would leave trio's sockets,
dnspython and every subprocess to be kept on that thread by hand (and Python 3.11 has no
``os.setns``); a re-exec is one line of behaviour that cannot leak a socket outside.

The namespace's resolver becomes ``--nameserver`` options (unless the user gave some):
``/etc/netns/NAME/resolv.conf`` for a named namespace (what ``ip netns exec`` would
bind-mount), the container's own ``/etc/resolv.conf`` (through ``/proc/PID/root``) for a
container. With ``--container``, the MTA tools run inside it (``docker exec NAME``).
Every mistake (no such namespace, no docker, not root) is one line and exit 2.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from portprobe.errors import InputError

#: Set in the re-executed process: it is inside the namespace already.
INSIDE = "PORTPROBE_INSIDE_NETNS"
NETNS_DIR = Path("/run/netns")
NETNS_ETC = Path("/etc/netns")


def container_tool() -> str:
    """docker, else podman (their CLIs take the same ``inspect`` and ``exec``)."""
    for tool in ("docker", "podman"):
        path = shutil.which(tool)
        if path is not None:
            return path
    raise InputError("--container: neither docker nor podman is installed")


def _container_pid(tool: str, name: str) -> int:
    try:
        proc = subprocess.run(
            [tool, "inspect", "-f", "{{.State.Pid}}", name],
            capture_output=True,
            text=True,
            timeout=15,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InputError(f"--container: {Path(tool).name} inspect {name} failed ({exc})") from None
    text = proc.stdout.strip()
    if proc.returncode != 0 or not text.isdigit() or text == "0":
        why = (proc.stderr.strip().splitlines() or ["not running"])[-1]
        raise InputError(f"--container: {name}: {why}")
    return int(text)


def container_root(name: str) -> Path:
    """The container's files as seen from here (its log, its main.cf, Debian's conf)."""
    return Path(f"/proc/{_container_pid(container_tool(), name)}/root")


def nameservers_from(resolv_conf: Path) -> list[str]:
    try:
        text = resolv_conf.read_text(errors="replace")
    except OSError:
        return []
    found = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            found.append(parts[1].split("%")[0])
    return found


def target(netns: str | None, container: str | None) -> tuple[Path, Path | None]:
    """The namespace file to enter and the resolver configuration that goes with it."""
    if netns is not None and container is not None:
        raise InputError("--netns and --container exclude each other; give one")
    if container is not None:
        pid = _container_pid(container_tool(), container)
        return Path(f"/proc/{pid}/ns/net"), Path(f"/proc/{pid}/root/etc/resolv.conf")
    assert netns is not None
    if "/" in netns:
        path, resolv = Path(netns), None
    else:
        path, resolv = NETNS_DIR / netns, NETNS_ETC / netns / "resolv.conf"
    if not path.exists():
        raise InputError(f"--netns: no network namespace {netns!r} ({path} does not exist)")
    return path, resolv


def enter(netns: str | None, container: str | None, *, nameservers_given: bool) -> None:
    """Re-execute portprobe inside the namespace (never returns), or return when there is
    nothing to enter or this process is already the one inside."""
    if (netns is None and container is None) or os.environ.get(INSIDE) == "1":
        return
    if sys.platform != "linux":
        raise InputError("--netns/--container: network namespaces are Linux only")
    path, resolv = target(netns, container)
    if os.geteuid() != 0:
        raise InputError("--netns/--container: entering a network namespace needs root")
    nsenter = shutil.which("nsenter")
    if nsenter is None:
        raise InputError("--netns/--container: nsenter (util-linux) is not installed")
    extra: list[str] = []
    if not nameservers_given and resolv is not None:
        for server in nameservers_from(resolv):
            extra += ["--nameserver", server]
    argv = [nsenter, f"--net={path}", "--", sys.executable, "-m", "portprobe"]
    argv += [*sys.argv[1:], *extra]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(nsenter, argv, {**os.environ, INSIDE: "1"})
