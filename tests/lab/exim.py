"""Exim as one more receiver: its EHLO reply echoes the client's address.

Debian's Exim (``250-mx.echo.example Hello lab-client.example [198.18.1.2]``) is the
third public-address method of readiness (spec: "the address a probed SMTP server
echoes in its EHLO reply"). Debian's MTA packages conflict, so ``setup_exim.sh`` unpacks
the binary under ``EXIM_PREFIX`` instead of installing it; the lab runs it in the
internet namespace with its own ``-C`` configuration in the run's directory (``-bdf``:
the daemon in the foreground, its pid the ``Popen`` pid), on mx.echo.example's addresses
and the four mail ports (465 implicit TLS), with a lab-CA certificate.
"""

from __future__ import annotations

import os
import pwd
import subprocess
from pathlib import Path

from .netns import Namespace
from .pki import ProviderCert
from .topology import ECHO_MX, ECHO_V4, ECHO_V6

EXIM_PREFIX = Path(os.environ.get("PPLAB_EXIM_PREFIX", "/opt/portprobe-lab/exim"))
EXIM_BINARY = EXIM_PREFIX / "usr/sbin/exim4"
EXIM_USER = "Debian-exim"


def exim_unavailable() -> str | None:
    """Why the lab has no Exim, or None."""
    if not os.access(EXIM_BINARY, os.X_OK):
        return f"no Exim at {EXIM_BINARY} (run tests/lab/setup_exim.sh as root)"
    try:
        pwd.getpwnam(EXIM_USER)
    except KeyError:
        return f"no {EXIM_USER} user (run tests/lab/setup_exim.sh as root)"
    return None


def exim_config(directory: Path, cert: ProviderCert) -> str:
    return f"""\
primary_hostname = {ECHO_MX}
exim_user = {EXIM_USER}
exim_group = {EXIM_USER}
keep_environment =
local_interfaces = <; {ECHO_V4} ; {ECHO_V6}
daemon_smtp_ports = 25 : 465 : 587 : 2525
tls_on_connect_ports = 465
tls_advertise_hosts = *
tls_certificate = {cert.cert_file}
tls_privatekey = {cert.key_file}
spool_directory = {directory}/spool
log_file_path = {directory}/%slog
pid_file_path = {directory}/exim.pid
# No DNS from the server: no reverse lookups, no ident.
host_lookup =
rfc1413_hosts =
acl_smtp_rcpt = refuse
begin acl
refuse:
  deny message = the lab receives no mail
"""


def start_exim(ns: Namespace, directory: Path, cert: ProviderCert) -> subprocess.Popen[bytes]:
    exim = pwd.getpwnam(EXIM_USER)
    (directory / "spool").mkdir(parents=True, exist_ok=True)
    for path in (directory, directory / "spool", cert.key_file):
        os.chown(path, exim.pw_uid, exim.pw_gid)
    config = directory / "exim.conf"
    config.write_text(exim_config(directory, cert))
    config.chmod(0o644)
    return ns.popen([str(EXIM_BINARY), "-C", str(config), "-bdf"], log=directory / "exim.out")
