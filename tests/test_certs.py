"""Throw-away TLS credentials: usable while inside, nothing left in /tmp afterwards."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from hostagent.certs import credential_files


def test_self_signed_pair_loads_and_its_folder_goes_away() -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with credential_files() as (cert, key):
        assert key.stat().st_mode & 0o777 == 0o600
        context.load_cert_chain(cert, key)
        folder = cert.parent
    assert not folder.exists()


def test_given_files_are_used_as_they_are(tmp_path: Path) -> None:
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    with credential_files(str(cert), str(key)) as paths:
        assert paths == (cert, key)


def test_half_a_pair_is_refused() -> None:
    with pytest.raises(ValueError, match="both --certificate and --private-key"), \
            credential_files("c.pem", None):
        pass
