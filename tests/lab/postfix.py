"""Real Postfix instances with their own configuration and queue directories.

Never the system instance: ``master -c DIR`` reads ``DIR/main.cf`` and ``DIR/master.cf``
and every path in them is under the lab's temporary directory. The ``postfix`` command
is not used (its ``check`` insists on logging to syslog, which a container lacks); the
few queue directories ``smtpd`` needs are made here, and ``master -s`` runs in the
foreground with ``maillog_file = /dev/stdout``, so its pid is the ``Popen`` pid and its
log is a file.

Each listener is one ``master.cf`` line bound to one address and port; the per-provider
settings are ``-o`` overrides; a value with spaces (a provider-style banner) uses
master.cf's ``-o { name = value }`` form (Postfix >= 3.0). The lab providers' banner is
``$myhostname ESMTP Postfix (lab)`` and each line overrides ``myhostname``.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from .netns import Namespace

MASTER = "/usr/lib/postfix/sbin/master"


def postfix_available() -> str | None:
    """Why Postfix cannot run here, or None."""
    if not os.access(MASTER, os.X_OK):
        return f"no Postfix master daemon at {MASTER}"
    try:
        pwd.getpwnam("postfix")
        grp.getgrnam("postdrop")
    except KeyError:
        return "no postfix user / postdrop group"
    return None


@dataclass(frozen=True)
class Listener:
    address: str  # IP literal
    port: int
    options: dict[str, str] = field(default_factory=dict)  # master.cf ``-o`` overrides

    @property
    def endpoint(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}"


# Internal services smtpd talks to (from master.cf.proto), all without chroot: the
# instance lives in a temp dir that has none of the files a chroot would need.
_INTERNAL_SERVICES = """\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class PostfixInstance:
    """One ``master`` process in one namespace, with its listeners."""

    def __init__(
        self,
        name: str,
        directory: Path,
        ns: Namespace,
        listeners: list[Listener],
        myhostname: str,
        extra_main: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.directory = directory
        self.ns = ns
        self.listeners = listeners
        self.myhostname = myhostname
        self.extra_main = extra_main or {}
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def config_dir(self) -> Path:
        return self.directory / "etc"

    @property
    def log_file(self) -> Path:
        return self.directory / "maillog"

    def write_config(self) -> None:
        etc, spool, data = self.config_dir, self.directory / "spool", self.directory / "data"
        postfix_uid = pwd.getpwnam("postfix").pw_uid
        postdrop_gid = grp.getgrnam("postdrop").gr_gid
        for path in (etc, spool, spool / "pid", data, spool / "private", spool / "public"):
            path.mkdir(parents=True, exist_ok=True)
        # The ownership Postfix's post-install would give them.
        os.chown(data, postfix_uid, -1)
        data.chmod(0o700)
        os.chown(spool / "private", postfix_uid, -1)
        (spool / "private").chmod(0o700)
        os.chown(spool / "public", postfix_uid, postdrop_gid)
        (spool / "public").chmod(0o710)
        main = {
            "compatibility_level": "3.6",
            "config_directory": str(etc),
            "queue_directory": str(spool),
            "data_directory": str(data),
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "myhostname": self.myhostname,
            "mydomain": "lab.example",
            "myorigin": "$myhostname",
            "mydestination": "",
            "relay_domains": "",
            "mynetworks": "127.0.0.0/8",
            "inet_interfaces": "all",
            "inet_protocols": "all",
            "maillog_file": "/dev/stdout",
            "smtpd_banner": "$myhostname ESMTP Postfix (lab)",
            # No DNS from the servers: the lab's resolver is for portprobe, and nothing
            # here may ask the machine's real resolver.
            "smtpd_peername_lookup": "no",
            "disable_dns_lookups": "yes",
            "smtp_dns_support_level": "disabled",
            "alias_maps": "",
            "alias_database": "",
            "local_recipient_maps": "",
            "biff": "no",
            "smtpd_client_connection_count_limit": "0",
            "smtpd_tls_loglevel": "0",
            # An smtpd takes ~20 ms of CPU to start; keep idle ones for the whole run.
            "max_idle": "3600s",
            **self.extra_main,
        }
        (etc / "main.cf").write_text("".join(f"{k} = {v}\n" for k, v in main.items()))
        lines = []
        for listener in self.listeners:
            opts = "".join(
                f" -o {{ {k} = {v} }}" if " " in v else f" -o {k}={v}"
                for k, v in listener.options.items()
            )
            lines.append(f"{listener.endpoint} inet n - n - - smtpd{opts}\n")
        (etc / "master.cf").write_text("".join(lines) + _INTERNAL_SERVICES)

    def start(self) -> subprocess.Popen[bytes]:
        self.write_config()
        # No `postfix start`: it would run `postfix check` (syslog only) and daemonise.
        self.process = self.ns.popen(
            [MASTER, "-c", str(self.config_dir), "-s"],
            log=self.log_file,
            env={**os.environ, "MAIL_CONFIG": str(self.config_dir)},
        )
        return self.process

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


#: Run inside the server's namespace: one connection to every listener, each read up to
#: its greeting (after a TLS handshake on implicit-TLS ports). Postfix spawns an smtpd per
#: service on first use (~20 ms of CPU each, seconds when dozens start at once); after
#: this they wait, warm, for the probes, so the first measured run is not the slowest.
WARM_UP_SCRIPT = """
import json, socket, ssl, sys
from concurrent.futures import ThreadPoolExecutor
context = ssl.create_default_context()
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE
def greet(item):
    (address, port, implicit_tls) = item
    with socket.create_connection((address, port), timeout=10) as sock:
        stream = context.wrap_socket(sock) if implicit_tls else sock
        line = stream.recv(512)
        stream.sendall(b"QUIT\\r\\n")
        return line[:3].decode()
with ThreadPoolExecutor(16) as pool:
    print(json.dumps(list(pool.map(greet, json.loads(sys.argv[1])))))
"""


def warm_up(ns: Namespace, listeners: list[Listener], python: str) -> list[str]:
    """Greet every listener once (see WARM_UP_SCRIPT); returns the reply codes."""
    items = [
        (lst.address, lst.port, lst.options.get("smtpd_tls_wrappermode") == "yes")
        for lst in listeners
    ]
    proc = ns.run([python, "-c", WARM_UP_SCRIPT, json.dumps(items)], timeout=60)
    return list(json.loads(proc.stdout))


def rmtree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
