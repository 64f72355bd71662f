"""Throw-away TLS credentials for test and experiment servers (QUIC and TLS over TCP).

Experiments run between namespaces on one machine and the clients do not verify
the certificate; operators give real ones with --certificate/--private-key.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import tempfile
from collections.abc import Iterator
from functools import cache
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@cache
def self_signed_pem(common_name: str = "localhost") -> tuple[bytes, bytes]:
    """A certificate and private key (PEM), made once per process, valid for 30 days."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(
            [x509.DNSName(common_name), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
        .sign(key, hashes.SHA256())
    )
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


@contextlib.contextmanager
def credential_files(certificate: str | None = None,
                     private_key: str | None = None) -> Iterator[tuple[Path, Path]]:
    """Paths of a certificate and key while inside: the given ones, or a fresh self-signed
    pair in a private folder that is removed on exit (load them inside: the TLS contexts
    keep what they loaded), so that no server leaves a private key behind in /tmp."""
    if certificate and private_key:
        yield Path(certificate), Path(private_key)
        return
    if certificate or private_key:
        raise ValueError("give both --certificate and --private-key, or neither")
    cert_pem, key_pem = self_signed_pem()
    with tempfile.TemporaryDirectory(prefix="mp-certs-") as name:
        folder = Path(name)
        (folder / "key.pem").touch(0o600)
        (folder / "key.pem").write_bytes(key_pem)
        (folder / "cert.pem").write_bytes(cert_pem)
        yield folder / "cert.pem", folder / "key.pem"
