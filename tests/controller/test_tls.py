"""TLS on the project's gRPC links: mp-ctl against a TLS controller works and a plaintext
client is refused; the controller speaks P4Runtime over (mutual) TLS to a TLS switch;
tokens never go out in clear and are kept only as hashes; plaintext says so in a
WARNING line. No ports, no root: the switch runs without interfaces."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from bmv2 import launcher
from clikit.tls import TlsFiles
from controller import config as config_mod
from hostagent.certs import RunPki, write_run_pki
from netlab.nsprocess import NamespaceProcess, python_module
from tests.targets import targets_to_test

REPO = Path(__file__).resolve().parents[2]
OPS_TOKEN = "ops-token"

CONFIG = """
state = "state.sqlite"
northbound = "127.0.0.1:{nb_port}"
{northbound_tls}

[[switch]]
name = "s1"
address = "{switch_addr}"
{switch_tls}

[fastpath]
address = "10.0.2.1"
proxy_addr = "10.0.2.10"

[[class]]
name = "ops"

[[client]]
name = "ops"
token_sha256 = "{ops_hash}"
address = "127.0.0.1"
class = "ops"
operator = true

[[client]]
name = "legacy"
token = "legacy-token"
address = "10.0.1.10"
class = "ops"
"""


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> RunPki:
    return write_run_pki(tmp_path_factory.mktemp("pki"), ["127.0.0.1"])


def write_config(folder: Path, switch_addr: str, nb_port: int, pki: RunPki | None) -> Path:
    northbound_tls = switch_tls = ""
    if pki is not None:
        northbound_tls = (f'[tls]\ncert = "{pki.server_cert}"\nkey = "{pki.server_key}"\n'
                          f'ca = "{pki.ca}"')
        switch_tls = (f'tls = {{ ca = "{pki.ca}", cert = "{pki.client_cert}", '
                      f'key = "{pki.client_key}" }}')
    path = folder / "controller.toml"
    path.write_text(CONFIG.format(nb_port=nb_port, switch_addr=switch_addr,
                                  northbound_tls=northbound_tls, switch_tls=switch_tls,
                                  ops_hash=config_mod.token_hash(OPS_TOKEN)))
    return path


@dataclass
class Net:
    switch: launcher.SwitchProcess
    controller: NamespaceProcess
    nb_addr: str


def start(tmp: Path, pki: RunPki | None, target: str = "soft") -> Net:
    tls = None if pki is None else launcher.SwitchTls(
        pki.server_cert, pki.server_key, pki.ca, client_auth=True,
        client_cert=pki.client_cert, client_key=pki.client_key)
    cfg = launcher.SwitchConfig(grpc_addr=launcher.free_grpc_addr(), tls=tls,
                                log_level="info", log_file=tmp / "switch.log")
    switch = launcher.SwitchProcess(target, cfg)
    switch.start()
    nb_port = launcher.free_tcp_port()
    controller = NamespaceProcess(
        None, python_module("controller.daemon", "--config",
                            str(write_config(tmp, cfg.grpc_addr, nb_port, pki))),
        ready=r"pipeline pushed", ready_timeout=60, name="mp-controller")
    try:
        controller.start()
    except Exception:
        switch.stop()
        raise
    return Net(switch, controller, f"127.0.0.1:{nb_port}")


@pytest.fixture(params=targets_to_test())
def tls_net(tmp_path: Path, pki: RunPki, request: pytest.FixtureRequest) -> Iterator[Net]:
    """Switch (either target: BMv2 serves TLS too) and controller, mutual TLS on both links."""
    net = start(tmp_path, pki, request.param)
    try:
        yield net
    finally:
        net.controller.stop()
        net.switch.stop()


def ctl(address: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(python_module("controller.ctl", "--controller", address,
                                        "--token", OPS_TOKEN, *args),
                          capture_output=True, text=True, cwd=REPO, timeout=60)


def mutual(pki: RunPki) -> list[str]:
    return ["--tls-ca", str(pki.ca), "--tls-cert", str(pki.client_cert),
            "--tls-key", str(pki.client_key)]


# -- northbound API ----------------------------------------------------------------------------
def test_mp_ctl_over_mutual_tls_reaches_the_switch(tls_net: Net, pki: RunPki) -> None:
    done = ctl(tls_net.nb_addr, *mutual(pki), "stats")
    assert done.returncode == 0, done.stderr
    assert "switch s1: connected" in done.stdout, "the controller reached the TLS switch"


def test_a_plaintext_mp_ctl_is_refused(tls_net: Net) -> None:
    done = ctl(tls_net.nb_addr, "stats")
    assert done.returncode == 1
    assert "not reachable in plaintext" in done.stderr


def test_mp_ctl_without_a_client_certificate_is_refused(tls_net: Net, pki: RunPki) -> None:
    done = ctl(tls_net.nb_addr, "--tls-ca", str(pki.ca), "stats")
    assert done.returncode == 1, done.stdout


def test_mp_ctl_trusting_another_ca_is_refused(tls_net: Net, pki: RunPki,
                                               tmp_path: Path) -> None:
    other = write_run_pki(tmp_path / "other", ["127.0.0.1"])
    done = ctl(tls_net.nb_addr, "--tls-ca", str(other.ca), "--tls-cert",
               str(pki.client_cert), "--tls-key", str(pki.client_key), "stats")
    assert done.returncode == 1, done.stdout


def test_a_token_is_never_sent_in_clear_to_another_host() -> None:
    done = ctl("192.0.2.1:50060", "stats")  # TEST-NET-1: nothing is sent anyway
    assert done.returncode == 2
    assert "refusing to send the token in clear" in done.stderr


# -- P4Runtime ---------------------------------------------------------------------------------
def test_a_tls_switch_refuses_plaintext_and_clients_without_certificate(
        tls_net: Net, pki: RunPki) -> None:
    addr = tls_net.switch.config.grpc_addr
    tls = tls_net.switch.config.tls
    assert tls is not None
    assert launcher.p4runtime_answers(addr, 2, tls.channel_credentials())
    assert not launcher.p4runtime_answers(addr, 2)
    no_cert = grpc.ssl_channel_credentials(root_certificates=pki.ca.read_bytes())
    assert not launcher.p4runtime_answers(addr, 2, no_cert)


def test_plaintext_links_say_so_in_a_warning(tmp_path: Path) -> None:
    net = start(tmp_path, None)
    try:
        lines = list(net.controller.output)
    finally:
        net.controller.stop()
        net.switch.stop()
    warnings = [line for line in lines if "WARNING" in line and "plaintext" in line]
    assert any("northbound API" in line for line in warnings), lines
    assert any("P4Runtime to switch s1" in line for line in warnings), lines
    assert any("legacy" in line and "in clear" in line for line in lines), lines
    switch_log = (tmp_path / "switch.log").read_text()
    assert any("WARNING" in line and "plaintext" in line for line in switch_log.splitlines())


# -- tokens ------------------------------------------------------------------------------------
def test_the_config_keeps_only_token_hashes(tmp_path: Path) -> None:
    config = config_mod.load(write_config(tmp_path, "127.0.0.1:9559", 50060, None))
    assert config.client_by_token(OPS_TOKEN).name == "ops"  # type: ignore[union-attr]
    assert config.client_by_token("legacy-token").name == "legacy"  # type: ignore[union-attr]
    assert config.client_by_token("wrong") is None
    text = repr(config)
    assert OPS_TOKEN not in text and "legacy-token" not in text
    assert config.clear_tokens == ("legacy",)


def test_hash_token_prints_what_the_config_takes() -> None:
    done = subprocess.run([sys.executable, "-m", "controller.daemon", "--hash-token"],
                          input="s3cret\n", capture_output=True, text=True, cwd=REPO,
                          timeout=60)
    assert done.stdout.strip() == config_mod.token_hash("s3cret")


def test_tls_keys_are_checked_and_relative_to_the_config(tmp_path: Path, pki: RunPki) -> None:
    (tmp_path / "ca.pem").write_bytes(pki.ca.read_bytes())
    path = write_config(tmp_path, "127.0.0.1:9559", 50060, None)
    text = path.read_text().replace('address = "127.0.0.1:9559"',
                                    'address = "127.0.0.1:9559"\ntls = { ca = "ca.pem" }')
    path.write_text(text)
    config = config_mod.load(path)
    assert config.switches[0].tls == TlsFiles(ca=tmp_path / "ca.pem")
    path.write_text(text.replace('"ca.pem"', '"missing.pem"'))
    with pytest.raises(config_mod.ConfigError, match="switch\\[0\\].tls: no such file"):
        config_mod.load(path)
    path.write_text(text + '\n[tls]\ncert = "server.pem"\n')
    with pytest.raises(config_mod.ConfigError, match="tls: give --tls-cert and --tls-key"):
        config_mod.load(path)
