"""TLS for probes: contexts, and what a handshake tells us about the peer.

Verification uses OpenSSL (the same library MTAs use) against the system trust store plus
``--ca-file``. A certificate that does not verify is evidence, not a failure: the engine
then talks to the host once more with verification off, so the certificate itself is
recorded. ``ssl`` hands out only DER for an unverified peer, so those certificates are
parsed with ``cryptography``. A verified peer's certificate comes already decoded from
OpenSSL (``getpeercert()``); it is written out in ``cryptography``'s own RFC 4514 form, so
the common case never imports ``cryptography`` (~18 ms CPU of a nothing-blocked run).
A name outside that plain form (an attribute type not in the table below, a non-ASCII
value) goes through ``cryptography`` as well, so both paths give the same text.
"""

from __future__ import annotations

import hashlib
import ipaddress
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from portprobe.model import CertInfo, TLSInfo


class _HasTLS(Protocol):
    def version(self) -> str | None: ...
    def cipher(self) -> tuple[str, str, int] | None: ...
    def getpeercert(self, binary_form: bool = ...) -> object: ...


@dataclass(frozen=True)
class TLSContexts:
    verify: ssl.SSLContext
    no_verify: ssl.SSLContext


def make_contexts(ca_file: str | None = None) -> TLSContexts:
    """Build the two contexts once per run (loading the trust store costs milliseconds)."""
    from portprobe import truststore

    verify = truststore.take()  # the system trust store, usually preloaded in a thread
    if ca_file:
        verify.load_verify_locations(cafile=ca_file)
    # The second look at an unverified peer needs no trust store (loading one costs ~40 ms).
    no_verify = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    no_verify.check_hostname = False
    no_verify.verify_mode = ssl.CERT_NONE
    for ctx in (verify, no_verify):
        # Mail servers still run TLS 1.0/1.1 (RFC 8996 deprecates them; we record what we
        # get rather than refuse to look). OpenSSL's security level may still refuse.
        ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    return TLSContexts(verify=verify, no_verify=no_verify)


def _utc_text(when: datetime) -> str:
    """ISO 8601 with ``Z``, as the report writes ``not_after``."""
    return when.isoformat().replace("+00:00", "Z")


def cert_info_from_der(der: bytes) -> CertInfo:
    from cryptography import x509
    from cryptography.x509.oid import ExtensionOID

    cert = x509.load_der_x509_certificate(der)
    san: list[str] = []
    try:
        ext = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
        names = ext.value
        if isinstance(names, x509.SubjectAlternativeName):
            san.extend(str(n) for n in names.get_values_for_type(x509.DNSName))
            san.extend(str(ip) for ip in names.get_values_for_type(x509.IPAddress))
    except x509.ExtensionNotFound:
        pass
    except ValueError:  # a malformed extension is evidence too; keep what parsed
        pass
    return CertInfo(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        san=tuple(san),
        not_after=_utc_text(cert.not_valid_after_utc),
        sha256=hashlib.sha256(der).hexdigest(),
    )


#: OpenSSL's long attribute names (as ``getpeercert()`` gives them) -> the names
#: ``cryptography``'s ``rfc4514_string()`` writes: RFC 4514's short names, else the OID.
_RFC4514_NAMES = {
    "commonName": "CN",
    "localityName": "L",
    "stateOrProvinceName": "ST",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "countryName": "C",
    "streetAddress": "STREET",
    "domainComponent": "DC",
    "userId": "UID",
    "emailAddress": "1.2.840.113549.1.9.1",
    "serialNumber": "2.5.4.5",
}


def _escape_dn_value(value: str) -> str:
    """RFC 4514 §2.4 escaping, character for character as ``cryptography`` does it."""
    if not value:
        return ""
    for char in ("\\", '"', "+", ",", ";", "<", ">"):
        value = value.replace(char, "\\" + char)
    value = value.replace("\0", "\\00")
    if value[0] == "#" or (value[0] == " " and len(value) > 1):
        value = "\\" + value
    if value[-1] == " ":
        value = value[:-1] + "\\ "
    return value


class _NotPlain(Exception):
    """The decoded certificate holds something only ``cryptography`` writes exactly."""


def _rfc4514(name: object) -> str:
    """``getpeercert()``'s name (RDNs of (type, value) pairs) in RFC 4514 order: last first."""
    if not isinstance(name, tuple):
        raise _NotPlain
    rdns = []
    for rdn in reversed(name):
        parts = []
        for kind, value in rdn:
            short = _RFC4514_NAMES.get(kind)
            if short is None or not isinstance(value, str) or not value.isascii():
                raise _NotPlain
            parts.append(f"{short}={_escape_dn_value(value)}")
        rdns.append("+".join(parts))
    return ",".join(rdns)


def cert_info_from_verified(decoded: object, der: bytes) -> CertInfo:
    """A verified peer's certificate from ``getpeercert()`` (no ``cryptography`` import).

    Gives what ``cert_info_from_der(der)`` gives; falls back to it for anything else.
    """
    try:
        if not isinstance(decoded, dict) or "notAfter" not in decoded:
            raise _NotPlain
        dns: list[str] = []
        ips: list[str] = []
        for kind, value in decoded.get("subjectAltName", ()):
            if kind == "DNS":
                if not value.isascii():
                    raise _NotPlain
                dns.append(value)
            elif kind == "IP Address":
                ips.append(str(ipaddress.ip_address(value)))
        seconds = ssl.cert_time_to_seconds(decoded["notAfter"])
        return CertInfo(
            subject=_rfc4514(decoded.get("subject", ())),
            issuer=_rfc4514(decoded.get("issuer", ())),
            san=(*dns, *ips),
            not_after=_utc_text(datetime.fromtimestamp(seconds, UTC)),
            sha256=hashlib.sha256(der).hexdigest(),
        )
    except (_NotPlain, ValueError, TypeError):
        return cert_info_from_der(der)


def tls_info(stream: _HasTLS, *, verified: bool, verify_error: str | None) -> TLSInfo:
    cipher = stream.cipher()
    der = stream.getpeercert(binary_form=True)
    cert: CertInfo | None = None
    if isinstance(der, bytes) and der:
        try:
            if verified:
                cert = cert_info_from_verified(stream.getpeercert(), der)
            else:
                cert = cert_info_from_der(der)
        except ValueError:
            cert = CertInfo(subject="(unparsable certificate)", issuer="", san=(), not_after=None)
    return TLSInfo(
        version=stream.version(),
        cipher=cipher[0] if cipher else None,
        verified=verified,
        verify_error=verify_error,
        cert=cert,
    )
