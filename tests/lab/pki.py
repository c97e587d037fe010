"""The lab CA and one certificate per provider (trustme: real X.509, made in milliseconds).

portprobe gets the CA with ``--ca-file``; Postfix gets each provider's chain and key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import trustme

from .topology import PROVIDERS


@dataclass(frozen=True)
class ProviderCert:
    cert_file: Path  # leaf + chain, PEM
    key_file: Path


@dataclass(frozen=True)
class LabPKI:
    ca_file: Path
    certs: dict[str, ProviderCert]  # by provider key, and by any extra key given


def make_pki(directory: Path, extra: dict[str, tuple[str, ...]] | None = None) -> LabPKI:
    """The CA, a certificate per provider, and one per ``extra`` key for its names."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="portprobe lab CA")
    ca_file = directory / "lab-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    certs: dict[str, ProviderCert] = {}
    for provider in PROVIDERS:
        leaf = ca.issue_cert(*provider.names, provider.ipv4, provider.ipv6)
        cert_file = directory / f"{provider.key}.crt"
        key_file = directory / f"{provider.key}.key"
        cert_file.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
        leaf.private_key_pem.write_to_path(str(key_file))
        key_file.chmod(0o600)
        certs[provider.key] = ProviderCert(cert_file, key_file)
    for key, names in (extra or {}).items():
        certs[key] = _issue(ca, directory, key, names)
    return LabPKI(ca_file, certs)


def _issue(ca: trustme.CA, directory: Path, key: str, names: tuple[str, ...]) -> ProviderCert:
    leaf = ca.issue_cert(*names)
    cert_file, key_file = directory / f"{key}.crt", directory / f"{key}.key"
    cert_file.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(key_file))
    key_file.chmod(0o600)
    return ProviderCert(cert_file, key_file)
