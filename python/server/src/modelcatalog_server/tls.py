"""The self-signed certificate the server makes for itself when none is configured.

It covers ``localhost``, ``127.0.0.1`` and ``::1``, lives in ``DATA_DIR/tls/``, and is made
again when it is missing or within 30 days of expiry. Clients trust it by using the
certificate file itself as their CA (``--ca-cert DATA_DIR/tls/server.crt``).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .files import write_private_file

VALIDITY = timedelta(days=825)
RENEW_BEFORE = timedelta(days=30)


class CertificateError(Exception):
    """The self-signed certificate in the data directory cannot be used."""


@dataclass(frozen=True)
class CertificateFiles:
    """A PEM certificate chain and its key; ``created`` when the server just made them."""

    cert: Path
    key: Path
    created: bool = False


def ensure_self_signed(data_dir: Path) -> CertificateFiles:
    """The certificate in ``data_dir/tls/``, made anew when missing or about to expire."""
    cert_path = data_dir / "tls" / "server.crt"
    key_path = data_dir / "tls" / "server.key"
    if cert_path.exists() and key_path.exists():
        try:
            current = x509.load_pem_x509_certificate(cert_path.read_bytes())
        except ValueError as error:
            raise CertificateError(
                f"{cert_path} is not a PEM certificate ({error}); delete {cert_path.parent} "
                "to have a new self-signed certificate made"
            ) from None
        if current.not_valid_after_utc - RENEW_BEFORE > datetime.now(UTC):
            return CertificateFiles(cert_path, key_path)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("::1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    write_private_file(
        key_path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    write_private_file(cert_path, certificate.public_bytes(serialization.Encoding.PEM))
    cert_path.chmod(0o644)
    return CertificateFiles(cert_path, key_path, created=True)
