"""The user's own mail server, in the lab's client namespace: real Postfix and real Exim
holding real deferrals, and a receiver that refuses IPv6 mail like Gmail.

- :class:`LocalPostfix`: a private Postfix instance (tests/lab/postfix.py's, no listeners)
  with the delivery services (``smtp``, ``showq`` for ``postqueue -j``) that a mail server
  has and the lab's receivers do not; it resolves MX records with the lab's DNS like any
  client program, and routes ``v6ptr.example`` to the Gmail-like receiver.
- :func:`start_exim_client`: the lab's unpacked Exim as a local MTA (``-C`` config, a
  ``dnslookup`` router), whose queue run is started by the test.
- :data:`GMAIL_LIKE`: an SMTP receiver (asyncio, in the internet namespace) that answers
  end of DATA with Gmail's 550-5.7.25 text, on an IPv6 address only.
"""

from __future__ import annotations

import contextlib
import grp
import json
import os
import pwd
import subprocess
import time
from pathlib import Path

from .exim import EXIM_BINARY, EXIM_USER
from .netns import Namespace
from .postfix import PostfixInstance

#: Where the Gmail-like receiver listens (internet namespace, added to its loopback).
GMAIL_LIKE_V6 = "2001:db8:113::99"
GMAIL_LIKE_PORT = 2526
GMAIL_LIKE_ROUTE = f"smtp:[{GMAIL_LIKE_V6}]:{GMAIL_LIKE_PORT}"

_DELIVERY_SERVICES = """\
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
flush     unix  n       -       n       1000?   0       flush
"""
_QUEUES = ("incoming", "active", "deferred", "defer", "bounce", "trace", "flush", "hold",
           "corrupt", "saved")  # fmt: skip


class LocalPostfix(PostfixInstance):
    """Postfix as the user's MTA: submits with ``sendmail``, delivers with ``smtp``."""

    def __init__(self, directory: Path, ns: Namespace) -> None:
        super().__init__(
            "local",
            directory,
            ns,
            listeners=[],
            myhostname="mail.lab-client.example",
            extra_main={
                "inet_interfaces": "loopback-only",
                "disable_dns_lookups": "no",
                "smtp_dns_support_level": "enabled",
                "smtp_connect_timeout": "2s",
                "transport_maps": f"inline:{{ v6ptr.example={GMAIL_LIKE_ROUTE} }}",
                "bounce_queue_lifetime": "0",  # no bounce back to the lab sender
            },
        )

    def write_config(self) -> None:
        super().write_config()
        spool = self.directory / "spool"
        uid, gid = pwd.getpwnam("postfix").pw_uid, grp.getgrnam("postdrop").gr_gid
        for name in _QUEUES:
            (spool / name).mkdir(exist_ok=True)
            os.chown(spool / name, uid, -1)
            (spool / name).chmod(0o700)
        (spool / "maildrop").mkdir(exist_ok=True)
        os.chown(spool / "maildrop", uid, gid)
        (spool / "maildrop").chmod(0o730)
        with (self.config_dir / "master.cf").open("a") as handle:
            handle.write(_DELIVERY_SERVICES)

    def send(self, recipient: str) -> None:
        proc = self.ns.run(
            ["/usr/sbin/sendmail", "-C", str(self.config_dir), "-f", "alice@lab-client.example",
             recipient],
            input=f"Subject: to {recipient}\n\nhello\n",
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr

    def queue(self) -> list[dict[str, object]]:
        proc = self.ns.run(["/usr/sbin/postqueue", "-c", str(self.config_dir), "-j"])
        return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]

    def wait_for_log(self, *needles: str, seconds: float = 30) -> str:
        """The log once every needle is in it (polled; a deferral takes ~2 s per address)."""
        deadline = time.monotonic() + seconds
        while True:
            text = self.log_file.read_text(errors="replace") if self.log_file.exists() else ""
            if all(n in text for n in needles):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"Postfix never logged {needles}:\n{text[-3000:]}")
            time.sleep(0.2)


GMAIL_LIKE = r"""
import asyncio, sys
TEXT = (
    "550-5.7.25 [{ip}] The IP address sending this message does not have a\r\n"
    "550-5.7.25 PTR record setup, or the corresponding forward DNS entry does not\r\n"
    "550-5.7.25 point to the sending IP. As a policy, Gmail does not accept messages\r\n"
    "550-5.7.25 from IPs with missing PTR records. For more information, go to\r\n"
    "550-5.7.25  https://support.google.com/mail/answer/81126#ip-practices\r\n"
    "550 5.7.25 d9443c01a7336-21a1e5a5a1fsi123456ad.412 - gsmtp\r\n"
)
async def serve(reader, writer):
    peer = writer.get_extra_info("peername")[0]
    writer.write(b"220 mx.google.example ESMTP gsmtp\r\n")
    data = False
    while line := await reader.readline():
        if data:
            if line == b".\r\n":
                data = False
                writer.write(TEXT.format(ip=peer).encode())
        elif line[:4].upper() in (b"EHLO", b"HELO"):
            writer.write(b"250-mx.google.example\r\n250 8BITMIME\r\n")
        elif line[:4].upper() == b"DATA":
            data = True
            writer.write(b"354 go ahead\r\n")
        elif line[:4].upper() == b"QUIT":
            writer.write(b"221 bye\r\n")
            break
        else:
            writer.write(b"250 ok\r\n")
        await writer.drain()
    writer.close()
async def main():
    server = await asyncio.start_server(serve, sys.argv[1], int(sys.argv[2]))
    print("ready", flush=True)
    await server.serve_forever()
asyncio.run(main())
"""


def exim_client_config(directory: Path) -> str:
    return f"""\
primary_hostname = mail.lab-client.example
exim_user = {EXIM_USER}
exim_group = {EXIM_USER}
keep_environment =
spool_directory = {directory}/spool
log_file_path = {directory}/%slog
pid_file_path = {directory}/exim.pid
host_lookup =
rfc1413_hosts =
begin routers
dnslookup:
  driver = dnslookup
  transport = remote_smtp
  no_more
begin transports
remote_smtp:
  driver = smtp
  connect_timeout = 2s
begin retry
*   *   F,1h,1m
"""


def start_exim_client(ns: Namespace, directory: Path, recipient: str) -> Path:
    """Exim with one real message to ``recipient``, after one real queue run."""
    exim = pwd.getpwnam(EXIM_USER)
    (directory / "spool").mkdir(parents=True, exist_ok=True)
    for path in (directory, directory / "spool"):
        os.chown(path, exim.pw_uid, exim.pw_gid)
    config = directory / "exim.conf"
    config.write_text(exim_client_config(directory))
    config.chmod(0o644)
    exim_argv = [str(EXIM_BINARY), "-C", str(config)]
    proc = ns.run([*exim_argv, "-odq", "-f", "alice@lab-client.example", recipient],
                  input="Subject: test\n\nhello\n")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    with contextlib.suppress(subprocess.TimeoutExpired):
        ns.run([*exim_argv, "-qff"], timeout=30, check=False)
    return config
