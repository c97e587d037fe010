"""The built-in catalog's hosts, rebuilt in the lab: what bare ``portprobe`` meets.

Derived from ``portprobe/targets/catalog.toml`` itself (``load_catalog()``), so the lab
follows the catalog: every host name and mail domain it lists gets lab addresses (never
the providers' real ones), DNS records in the lab's dnsmasq, one Postfix listener per
*documented* port with a certificate from the lab CA for its real names, and a greeting
in that provider's own style. Ports the catalog does not document for a host (and its
negative ports) are silently dropped at the host, as big providers do.

What the catalog cannot say, this module does, and a catalog change it cannot follow
fails loudly (:class:`LookupError`) instead of going untested:

* ``MX``: the mail domains' real MX sets, with their real preferences. Only the first
  ``max_mx`` are probed, so the others get DNS records but no listener: probing one of
  them is a bug in the MX order the test then sees.
* ``GREETINGS``: each operator's banner, in the shape its servers use (session ids and
  dates are fixed strings here). Several name no host at all ("SG ESMTP service ready",
  "Mailgun Influx ready"), which is real and which the intercept rules must tolerate.
* ``CERT_NAMES``: names a real certificate also covers (Gmail's MX cert is
  ``mx.google.com``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from portprobe.targets.catalog import Catalog, load_catalog

from .netns import Namespace
from .pki import LabPKI
from .postfix import Listener, PostfixInstance
from .topology import CATALOG_BASE, MAIL_PORTS

#: Real MX sets of the catalog's mail domains (preference, host), as published.
MX: dict[str, tuple[tuple[int, str], ...]] = {
    "gmail.com": (
        (5, "gmail-smtp-in.l.google.com"),
        (10, "alt1.gmail-smtp-in.l.google.com"),
        (20, "alt2.gmail-smtp-in.l.google.com"),
        (30, "alt3.gmail-smtp-in.l.google.com"),
        (40, "alt4.gmail-smtp-in.l.google.com"),
    ),
    "hotmail.com": ((2, "hotmail-com.olc.protection.outlook.com"),),
    "fastmail.com": (
        (10, "in1-smtp.messagingengine.com"),
        (20, "in2-smtp.messagingengine.com"),
    ),
}

#: Greeting text after "220 ", per catalog provider (MX hosts) or host name.
GREETINGS: dict[str, str] = {
    "gmail-smtp-in.l.google.com": "mx.google.com ESMTP a640c23a62f3a-b7c1lab5si - gsmtp",
    "alt1.gmail-smtp-in.l.google.com": "mx.google.com ESMTP 4fb4d7f45d1cf-64lab2si - gsmtp",
    "smtp.gmail.com": "smtp.gmail.com ESMTP 5b1f17b1804b1-477lab8sm - gsmtp",
    "hotmail-com.olc.protection.outlook.com": (
        "DS2PEPF0000LAB1.mail.protection.outlook.com Microsoft ESMTP MAIL Service"
        " ready at Wed, 2 Dec 2026 06:00:00 +0000 [08DE2B7C1A2B3C4D]"
    ),
    "smtp-mail.outlook.com": (
        "PH7PR17CA0LAB.outlook.office365.com Microsoft ESMTP MAIL Service ready at"
        " Wed, 2 Dec 2026 06:00:00 +0000"
    ),
    "smtp.sendgrid.net": "SG ESMTP service ready at geopod-ismtpd-lab-7",
    "smtp.mailgun.org": "Mailgun Influx ready",
    "smtp.postmarkapp.com": "smtp.postmarkapp.com ESMTP Postmark",
    "mail.smtp2go.com": "mail.smtp2go.com ESMTP Exim 4.98 Wed, 02 Dec 2026 06:00:00 +0000",
    "email-smtp.us-east-1.amazonaws.com": (
        "email-smtp.amazonaws.com ESMTP SimpleEmailService-d-LAB0SES1"
    ),
    "in1-smtp.messagingengine.com": "mx3.messagingengine.com ESMTP ready",
    "in2-smtp.messagingengine.com": "mx6.messagingengine.com ESMTP ready",
    "smtp.fastmail.com": "smtp.fastmail.com ESMTP ready",
}

#: Further names the real certificate covers (beyond the host name and the catalog's
#: ``cert_name``).
CERT_NAMES: dict[str, tuple[str, ...]] = {
    "gmail-smtp-in.l.google.com": ("mx.google.com",),
    "alt1.gmail-smtp-in.l.google.com": ("mx.google.com",),
    "hotmail-com.olc.protection.outlook.com": ("*.olc.protection.outlook.com",),
    "email-smtp.us-east-1.amazonaws.com": ("email-smtp.amazonaws.com",),
    "in1-smtp.messagingengine.com": ("*.messagingengine.com",),
    "in2-smtp.messagingengine.com": ("*.messagingengine.com",),
}


@dataclass(frozen=True)
class CatalogLabHost:
    name: str
    provider: str  # the catalog provider's name
    ipv4: str
    ipv6: str
    ports: tuple[int, ...]  # listened on; every other mail port is dropped
    greeting: str | None  # None: DNS only (an MX beyond max_mx), nothing listens
    cert_names: tuple[str, ...]
    mx_of: str | None = None  # the mail domain whose MX this is
    mx_preference: int | None = None

    @property
    def key(self) -> str:
        """A file-name-safe label (certificates, logs)."""
        return self.name.replace(".", "_")


def catalog_hosts(catalog: Catalog | None = None) -> tuple[CatalogLabHost, ...]:
    """Every host the built-in catalog can make portprobe probe, at its lab address."""
    catalog = catalog or load_catalog()
    out: list[CatalogLabHost] = []

    def add(
        name: str,
        provider: str,
        ports: tuple[int, ...],
        extra_names: tuple[str, ...],
        mx_of: str | None = None,
        mx_preference: int | None = None,
    ) -> None:
        n = len(out)
        greeting = GREETINGS.get(name) if ports else None
        if ports and greeting is None:
            raise LookupError(f"tests/lab/catalog_world.py: no greeting style for {name!r}")
        names = (name, *CERT_NAMES.get(name, ()), *extra_names)
        out.append(
            CatalogLabHost(
                name=name,
                provider=provider,
                ipv4=f"203.0.113.{CATALOG_BASE + n}",
                ipv6=f"2001:db8:113::{CATALOG_BASE + n}",  # 100..: read as hex, still in range
                ports=ports,
                greeting=greeting,
                cert_names=tuple(dict.fromkeys(names)),
                mx_of=mx_of,
                mx_preference=mx_preference,
            )
        )

    for provider, host in catalog.hosts:
        cert_name = host.expect.cert_name if host.expect else None
        extra = (cert_name,) if cert_name else ()
        if host.mail_domain:
            try:
                records = MX[host.name]
            except KeyError:
                raise LookupError(
                    f"tests/lab/catalog_world.py: no MX records for catalog domain {host.name!r}"
                ) from None
            for rank, (preference, mx) in enumerate(sorted(records)):
                probed = rank < catalog.max_mx
                ports = host.ports if probed else ()
                add(mx, provider.name, ports, extra, mx_of=host.name, mx_preference=preference)
        else:
            add(host.name, provider.name, host.ports, extra)
    return tuple(out)


def probed_hosts(hosts: tuple[CatalogLabHost, ...]) -> tuple[CatalogLabHost, ...]:
    return tuple(h for h in hosts if h.greeting is not None)


def dnsmasq_records(hosts: tuple[CatalogLabHost, ...]) -> list[str]:
    args = []
    for h in hosts:
        args.append(f"--host-record={h.name},{h.ipv4},{h.ipv6}")
        if h.mx_of is not None:
            args.append(f"--mx-host={h.mx_of},{h.name},{h.mx_preference}")
    return args


def dropped_ports_rules(hosts: tuple[CatalogLabHost, ...], family: int) -> list[str]:
    """filter/INPUT rules (after "-A INPUT") dropping each host's undocumented ports."""
    rules = []
    for h in hosts:
        address = h.ipv6 if family == 6 else h.ipv4
        for port in MAIL_PORTS:
            if port not in h.ports:
                rules.append(f"-d {address} -p tcp --dport {port} -j DROP")
    return rules


def catalog_postfix(
    hosts: tuple[CatalogLabHost, ...], pki: LabPKI, directory: Path, ns: Namespace
) -> PostfixInstance:
    """One Postfix for all the catalog's hosts: a listener per documented port and family,
    each with the host's banner and certificate (``pki.certs[host.key]``)."""
    listeners = []
    for host in probed_hosts(hosts):
        assert host.greeting is not None
        cert = pki.certs[host.key]
        said = host.greeting.split()[0]
        options = {
            # The EHLO reply names the server like its greeting does, where it names one.
            "myhostname": said if "." in said else host.name,
            "smtpd_banner": host.greeting,
            "smtpd_tls_security_level": "may",
            "smtpd_tls_cert_file": str(cert.cert_file),
            "smtpd_tls_key_file": str(cert.key_file),
        }
        for address in (host.ipv4, host.ipv6):
            for port in host.ports:
                wrapper = {"smtpd_tls_wrappermode": "yes"} if port == 465 else {}
                listeners.append(Listener(address, port, {**options, **wrapper}))
    return PostfixInstance("catalog", directory, ns, listeners, "mx.lab.example")
