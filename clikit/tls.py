"""TLS for the project's gRPC links (northbound API, P4Runtime): one set of options,
the same meaning everywhere.

    --tls-cert FILE   this side's certificate (a server's; a client's for mutual TLS)
    --tls-key FILE    its private key
    --tls-ca FILE     the CA this side trusts for the other end: a client verifies the
                      server with it; a server given one requires client certificates
                      signed by it (mutual TLS)
    --tls-server-name NAME   (clients) the name to check in the server's certificate,
                      when the address dialled is not in it

The controller's TOML takes the same keys: `[tls] cert, key, ca` for the northbound
API, and `tls = { ca, cert, key, server_name }` in a `[[switch]]` for P4Runtime.
Without TLS a link is plaintext and says so in a WARNING line; a client never sends
a token over a plaintext link to another host (`check_token_transport`).
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import grpc

from clikit.args import parse_host_port


class TlsError(ValueError):
    """TLS options that do not fit together, or files that cannot be read."""


@dataclass(frozen=True)
class TlsFiles:
    """The TLS files of one end of a gRPC link (all None: plaintext)."""

    cert: Path | None = None
    key: Path | None = None
    ca: Path | None = None
    server_name: str = ""

    @property
    def enabled(self) -> bool:
        return any((self.cert, self.key, self.ca))

    def _read(self, path: Path | None) -> bytes | None:
        if path is None:
            return None
        try:
            return path.read_bytes()
        except OSError as exc:
            raise TlsError(f"cannot read {path}: {exc.strerror}") from None

    def check(self, server: bool) -> TlsFiles:
        """Validate the combination for a server (needs cert and key) or a client (needs
        a CA; cert and key go together); returns self."""
        if bool(self.cert) != bool(self.key):
            raise TlsError("give --tls-cert and --tls-key together")
        if server and self.enabled and not self.cert:
            raise TlsError("a TLS server needs --tls-cert and --tls-key")
        if not server and self.enabled and not self.ca:
            raise TlsError("a TLS client needs --tls-ca (the CA that signed the server's "
                           "certificate)")
        for path in (self.cert, self.key, self.ca):
            if path is not None and not path.is_file():
                raise TlsError(f"no such file: {path}")
        return self

    def server_credentials(self) -> grpc.ServerCredentials:
        """Server credentials; with a CA, client certificates are required (mutual TLS)."""
        cert, key = self._read(self.cert), self._read(self.key)
        assert cert is not None and key is not None, "check(server=True) first"
        ca = self._read(self.ca)
        return grpc.ssl_server_credentials([(key, cert)], root_certificates=ca,
                                           require_client_auth=ca is not None)

    def channel_credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(root_certificates=self._read(self.ca),
                                            private_key=self._read(self.key),
                                            certificate_chain=self._read(self.cert))

    def channel_options(self) -> list[tuple[str, str]]:
        return [("grpc.ssl_target_name_override", self.server_name)] if self.server_name else []

    def describe(self) -> str:
        if not self.enabled:
            return "plaintext"
        return "mutual TLS" if self.ca and self.cert else "TLS"


def secure_channel(address: str, tls: TlsFiles) -> grpc.Channel:
    """A blocking channel to `address`: TLS if `tls` is enabled, else plaintext."""
    if tls.enabled:
        return grpc.secure_channel(address, tls.channel_credentials(), tls.channel_options())
    return grpc.insecure_channel(address)


def aio_channel(address: str, tls: TlsFiles) -> grpc.aio.Channel:
    """An asyncio channel to `address`: TLS if `tls` is enabled, else plaintext."""
    if tls.enabled:
        return grpc.aio.secure_channel(address, tls.channel_credentials(),
                                       tls.channel_options())
    return grpc.aio.insecure_channel(address)


def is_loopback(address: str) -> bool:
    """Whether HOST:PORT names this host's loopback (a token sent there stays here)."""
    try:
        host, _ = parse_host_port(address)
    except ValueError:
        host = address
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_token_transport(address: str, tls: TlsFiles) -> None:
    """TlsError unless a token may go to `address`: over TLS, or to the loopback."""
    if not tls.enabled and not is_loopback(address):
        raise TlsError(f"refusing to send the token in clear to {address}: give --tls-ca "
                       "(the controller's CA) to use TLS")


def warn_plaintext(log: logging.Logger, what: str, address: str) -> None:
    """The WARNING line of a plaintext link."""
    log.warning("%s on %s is plaintext (no TLS): anyone on the path can read and change "
                "it; give --tls-cert/--tls-key/--tls-ca", what, address)


def add_arguments(parser: argparse.ArgumentParser, server: bool, env: str = "",
                  what: str = "") -> None:
    """--tls-cert/--tls-key/--tls-ca (and --tls-server-name for a client); defaults from
    ${env}_TLS_CERT etc. when `env` is given."""
    def default(name: str) -> str | None:
        return os.environ.get(f"{env}_TLS_{name}") if env else None

    where = f" ({what})" if what else ""
    group = parser.add_argument_group(f"TLS{where}")
    side = "server" if server else "client, for mutual TLS"
    group.add_argument("--tls-cert", metavar="FILE", default=default("CERT"),
                       help=f"certificate ({side})" + (f"; ${env}_TLS_CERT" if env else ""))
    group.add_argument("--tls-key", metavar="FILE", default=default("KEY"),
                       help="its private key" + (f"; ${env}_TLS_KEY" if env else ""))
    ca_help = ("require client certificates signed by this CA (mutual TLS)" if server
               else "the CA that signed the server's certificate (turns TLS on)")
    group.add_argument("--tls-ca", metavar="FILE", default=default("CA"),
                       help=ca_help + (f"; ${env}_TLS_CA" if env else ""))
    if not server:
        group.add_argument("--tls-server-name", metavar="NAME",
                           default=default("SERVER_NAME") or "",
                           help="name to verify in the server's certificate (default: "
                           "the address dialled)")


def from_args(args: argparse.Namespace, server: bool) -> TlsFiles:
    """The TlsFiles of parsed `add_arguments` options, checked (TlsError)."""
    def path(value: str | None) -> Path | None:
        return Path(value) if value else None

    return TlsFiles(path(args.tls_cert), path(args.tls_key), path(args.tls_ca),
                    getattr(args, "tls_server_name", "") or "").check(server)
