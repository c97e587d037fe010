"""TLS for probes: contexts, and what a handshake tells us about the peer.

Verification uses OpenSSL (the same library MTAs use) against the system trust store plus
``--ca-file``. A certificate that does not verify is evidence, not a failure: the engine
then talks to the host once more with verification off, so the certificate itself is
recorded. ``ssl`` hands out only DER for an unverified peer, so certificates are parsed
with ``cryptography`` (imported on first use: it is not needed to print ``--help``).
"""

from __future__ import annotations

import hashlib
import ssl
from dataclasses import dataclass
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
        not_after=cert.not_valid_after_utc.isoformat().replace("+00:00", "Z"),
        sha256=hashlib.sha256(der).hexdigest(),
    )


def tls_info(stream: _HasTLS, *, verified: bool, verify_error: str | None) -> TLSInfo:
    cipher = stream.cipher()
    der = stream.getpeercert(binary_form=True)
    cert: CertInfo | None = None
    if isinstance(der, bytes) and der:
        try:
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
