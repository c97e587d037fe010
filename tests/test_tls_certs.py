"""A verified peer's certificate, read from OpenSSL's own decoding, matches ``cryptography``.

Real certificates (made with ``cryptography``), a real TLS handshake (two ``ssl`` objects
over memory BIOs: no sockets, no clock), then the two readers side by side:
``cert_info_from_verified`` (``getpeercert()``, no ``cryptography`` import) and
``cert_info_from_der`` (``cryptography``). Names only ``cryptography`` writes exactly must
take the fallback; plain ones must not.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from portprobe.probe import tls as tls_module
from portprobe.probe.tls import cert_info_from_der, cert_info_from_verified

from .servers import aiosmtpd_server, free_port

HOST = "mx.certs.example"
A = x509.NameAttribute


def _name(*rdns: list[x509.NameAttribute[str]]) -> x509.Name:
    return x509.Name([x509.RelativeDistinguishedName(rdn) for rdn in rdns])


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _signed(
    subject: x509.Name,
    issuer: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    signer: ec.EllipticCurvePrivateKey,
    valid_for: dt.timedelta,
    extension: x509.ExtensionType,
    critical: bool,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + valid_for)
        .add_extension(extension, critical=critical)
        .sign(signer, hashes.SHA256())
    )


def _issue(subject: x509.Name, issuer_name: x509.Name, san: list[x509.GeneralName]) -> tuple:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    basic = x509.BasicConstraints(ca=True, path_length=None)
    ca = _signed(issuer_name, issuer_name, ca_key, ca_key, dt.timedelta(days=30), basic, True)
    key = ec.generate_private_key(ec.SECP256R1())
    names = x509.SubjectAlternativeName(san)
    valid_for = dt.timedelta(days=10, seconds=7)
    leaf = _signed(subject, issuer_name, key, ca_key, valid_for, names, False)
    return ca, leaf, key


def _handshake(ca: x509.Certificate, leaf: x509.Certificate, key, tmp_path: Path) -> tuple:
    """A real TLS 1.3 handshake over memory BIOs; the client's (decoded, DER) view."""
    (tmp_path / "leaf.pem").write_bytes(_pem(leaf))
    (tmp_path / "key.pem").write_bytes(_key_pem(key))
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(tmp_path / "leaf.pem", tmp_path / "key.pem")
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.load_verify_locations(cadata=_pem(ca).decode())
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname=HOST)
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    done = {"client": False, "server": False}
    for _ in range(10):
        for side, obj in (("client", client), ("server", server)):
            if not done[side]:
                try:
                    obj.do_handshake()
                    done[side] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            break
    assert all(done.values()), "handshake did not finish"
    der = client.getpeercert(binary_form=True)
    assert der is not None
    return client.getpeercert(), der


ISSUER = _name([A(NameOID.COUNTRY_NAME, "DE")], [A(NameOID.ORGANIZATION_NAME, "Lab CA, Inc.")])
DNS_AND_IPS: list[x509.GeneralName] = [
    x509.DNSName(HOST),
    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    x509.DNSName("smtp.certs.example"),
    x509.IPAddress(ipaddress.ip_address("2001:db8::25")),
    x509.RFC822Name("postmaster@certs.example"),
]

PLAIN = {
    "common name only": _name([A(NameOID.COMMON_NAME, HOST)]),
    "every short name": _name(
        [A(NameOID.COUNTRY_NAME, "US")],
        [A(NameOID.STATE_OR_PROVINCE_NAME, "California")],
        [A(NameOID.LOCALITY_NAME, "San Francisco")],
        [A(NameOID.STREET_ADDRESS, "1 Main St")],
        [A(NameOID.ORGANIZATION_NAME, "Example Mail")],
        [A(NameOID.ORGANIZATIONAL_UNIT_NAME, "Ops")],
        [A(NameOID.DOMAIN_COMPONENT, "example")],
        [A(NameOID.USER_ID, "mx1")],
        [A(NameOID.SERIAL_NUMBER, "0042")],
        [A(NameOID.EMAIL_ADDRESS, "hostmaster@certs.example")],
        [A(NameOID.COMMON_NAME, HOST)],
    ),
    "characters RFC 4514 escapes": _name(
        [A(NameOID.ORGANIZATION_NAME, 'Mail, "Ltd" + <Co>; a\\b')],
        [A(NameOID.ORGANIZATIONAL_UNIT_NAME, "#1 ")],
        [A(NameOID.LOCALITY_NAME, " leading space")],
        [A(NameOID.COMMON_NAME, HOST)],
    ),
    "a multi-valued RDN": _name(
        [A(NameOID.ORGANIZATION_NAME, "Example"), A(NameOID.ORGANIZATIONAL_UNIT_NAME, "MX")],
        [A(NameOID.COMMON_NAME, HOST)],
    ),
    "an empty subject": x509.Name([]),
}

NOT_PLAIN = {
    "a non-ASCII value": _name(
        [A(NameOID.ORGANIZATION_NAME, "Müller Mail GmbH")], [A(NameOID.COMMON_NAME, HOST)]
    ),
    "an attribute without a short name": _name(
        [A(NameOID.BUSINESS_CATEGORY, "Private Organization")], [A(NameOID.COMMON_NAME, HOST)]
    ),
}


@pytest.fixture
def fallbacks(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every call of the ``cryptography`` reader made by the verified path."""
    calls: list[bytes] = []
    original = tls_module.cert_info_from_der

    def recording(der: bytes):
        calls.append(der)
        return original(der)

    monkeypatch.setattr(tls_module, "cert_info_from_der", recording)
    return calls


@pytest.mark.parametrize("subject", PLAIN.values(), ids=PLAIN.keys())
def test_plain_names_match_cryptography_without_it(
    subject: x509.Name, tmp_path: Path, fallbacks: list[bytes]
) -> None:
    ca, leaf, key = _issue(subject, ISSUER, DNS_AND_IPS)
    decoded, der = _handshake(ca, leaf, key, tmp_path)
    fast = cert_info_from_verified(decoded, der)
    assert fallbacks == []
    assert fast == cert_info_from_der(der)
    # DER sorts a multi-valued RDN's attributes (SET OF), so compare with the DER's name.
    assert fast.subject == x509.load_der_x509_certificate(der).subject.rfc4514_string()
    assert fast.issuer == "O=Lab CA\\, Inc.,C=DE"
    assert fast.san == (HOST, "smtp.certs.example", "127.0.0.1", "2001:db8::25")
    assert fast.not_after == leaf.not_valid_after_utc.isoformat().replace("+00:00", "Z")


@pytest.mark.parametrize("subject", NOT_PLAIN.values(), ids=NOT_PLAIN.keys())
def test_other_names_go_through_cryptography(
    subject: x509.Name, tmp_path: Path, fallbacks: list[bytes]
) -> None:
    ca, leaf, key = _issue(subject, ISSUER, DNS_AND_IPS)
    decoded, der = _handshake(ca, leaf, key, tmp_path)
    info = cert_info_from_verified(decoded, der)
    assert fallbacks == [der]
    assert info.subject == subject.rfc4514_string()


def test_an_undecoded_certificate_goes_through_cryptography(
    tmp_path: Path, fallbacks: list[bytes]
) -> None:
    # getpeercert() gives {} when the peer was not verified: nothing to read there.
    ca, leaf, key = _issue(PLAIN["common name only"], ISSUER, DNS_AND_IPS)
    _, der = _handshake(ca, leaf, key, tmp_path)
    assert cert_info_from_verified({}, der) == cert_info_from_der(der)
    assert fallbacks == [der]


def test_a_verified_probe_never_imports_cryptography(tmp_path: Path) -> None:
    """The common case (every certificate verifies) stays off ``cryptography``'s import."""
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    port = free_port()
    code = (
        "import sys, json\n"
        "from portprobe.cli import run\n"
        f"run(['--target', '127.0.0.1', '--port-map', '587={port}', '--ports', '587',\n"
        f"     '--ca-file', {str(ca_file)!r}, '--json', '-o', {str(tmp_path / 'r.json')!r}])\n"
        "print('cryptography' in sys.modules, file=sys.stderr)\n"
    )
    with aiosmtpd_server(starttls=server_ctx, port=port):
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    report = (tmp_path / "r.json").read_text()
    assert '"verified": true' in report, report
    assert '"san": [\n' in report and '"127.0.0.1"' in report
    assert proc.stderr.strip().splitlines()[-1] == "False", proc.stderr
