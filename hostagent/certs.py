"""Throw-away TLS credentials for test and experiment servers (QUIC and TLS over TCP).

Two kinds: a self-signed pair for QUIC servers whose clients do not verify it
(operators give real ones with --certificate/--private-key), and a per-run PKI for
the gRPC links (northbound API, P4Runtime) whose clients do verify: a CA, a server
certificate for the addresses the servers listen on, and a client certificate for
mutual TLS (`write_run_pki`).
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALID_DAYS = 30


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


@dataclass(frozen=True)
class Credential:
    """A certificate and its private key, PEM."""

    cert_pem: bytes
    key_pem: bytes


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def make_ca(common_name: str = "masque-pifo run CA") -> Credential:
    """A fresh certificate authority, valid for VALID_DAYS days."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .sign(key, hashes.SHA256())
    )
    return Credential(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def issue(ca: Credential, common_name: str, hosts: Sequence[str] = (),
          client: bool = False) -> Credential:
    """A certificate signed by `ca`: for a server reachable as `hosts` (names or IP
    addresses, put in its subjectAltName), or with `client` for a TLS client."""
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH if client
                                              else ExtendedKeyUsageOID.SERVER_AUTH]),
                       critical=False)
    )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    return Credential(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


@dataclass(frozen=True)
class RunPki:
    """Files of a run's PKI: the CA, one server pair for every gRPC server of the run,
    one client pair for mutual TLS."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def write_run_pki(folder: Path, hosts: Sequence[str]) -> RunPki:
    """Make a CA and the run's server and client credentials in `folder` (keys 0600).
    `hosts`: every address the run's servers are reached at (127.0.0.1 is added)."""
    folder.mkdir(parents=True, exist_ok=True)
    ca = make_ca()
    server = issue(ca, "masque-pifo server", ["localhost", "127.0.0.1", *hosts])
    client = issue(ca, "masque-pifo client", client=True)
    pki = RunPki(folder / "ca.pem", folder / "server.pem", folder / "server.key",
                 folder / "client.pem", folder / "client.key")
    pki.ca.write_bytes(ca.cert_pem)
    for cert_path, key_path, cred in ((pki.server_cert, pki.server_key, server),
                                      (pki.client_cert, pki.client_key, client)):
        cert_path.write_bytes(cred.cert_pem)
        key_path.touch(0o600)
        key_path.chmod(0o600)
        key_path.write_bytes(cred.key_pem)
    return pki
