"""The distribution installs, its packages import, and every console script answers."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bmv2 import p4build, toolchain
from netlab import capabilities

SCRIPTS = ("mp-switch", "mp-controller", "mp-ctl", "mp-proxy", "mp-client", "mp-target")
REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("package", ["bmv2", "bmv2.softswitch", "controller", "hostagent",
                                     "hostagent.masque", "topologies"])
def test_packages_import(package: str) -> None:
    assert importlib.import_module(package).__doc__


def _script(name: str) -> str:
    path = Path(sys.executable).parent / name
    found = str(path) if path.exists() else shutil.which(name)
    assert found, f"{name} is not installed next to {sys.executable} nor on PATH"
    return found


@pytest.mark.parametrize("name", SCRIPTS)
def test_console_script_help(name: str) -> None:
    out = subprocess.run([_script(name), "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"usage: {name}")


@pytest.mark.parametrize("name", SCRIPTS)
def test_console_script_bad_flag_is_one_line_error(name: str) -> None:
    out = subprocess.run([_script(name), "--no-such-flag"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 2
    assert "unrecognized arguments: --no-such-flag" in out.stderr or "required" in out.stderr


def test_toolchain_missing_program_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(capabilities, "SEARCH_DIRS", ())
    monkeypatch.setattr(capabilities.glob, "glob", lambda pattern: [])
    assert toolchain.find("p4c") is None
    with pytest.raises(toolchain.ToolMissing, match="p4c not found"):
        toolchain.require("p4c")


def test_toolchain_override_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "p4c"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("MP_P4C", str(fake))
    assert toolchain.find("p4c") == fake


def test_source_hash_changes_with_sources(tmp_path: Path) -> None:
    (tmp_path / "p4src" / "build").mkdir(parents=True)
    (tmp_path / "p4src" / "a.p4").write_text("header h_t { bit<8> f; }\n")
    first = p4build.source_hash(tmp_path)
    (tmp_path / "p4src" / "build" / "ignored.p4").write_text("anything")
    assert p4build.source_hash(tmp_path) == first, "build/ must not count as a source"
    (tmp_path / "p4src" / "a.p4").write_text("header h_t { bit<16> f; }\n")
    assert p4build.source_hash(tmp_path) != first


def test_capability_report_names_every_requirement() -> None:
    names = [cap.name for cap in capabilities.all_capabilities()]
    assert names == ["root", "netns", "mininet", "simple_switch_grpc", "p4c"]
    for cap in capabilities.all_capabilities():
        assert cap.detail, f"{cap.name} has no reason"


def test_demo_help_says_what_it_runs() -> None:
    out = subprocess.run([sys.executable, "-m", "experiments.demo", "--help"],
                         capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "prioritized MASQUE tunnels" in out.stdout


def test_bad_demo_arguments_get_one_line_and_exit_2() -> None:
    out = subprocess.run([sys.executable, "-m", "experiments.masque_priority", "--flow",
                          "high,0,fast,200"], capture_output=True, text=True, cwd=REPO,
                         timeout=60)
    assert out.returncode == 2
    assert "rate: 'fast'" in out.stderr.strip().splitlines()[-1]


@pytest.mark.root
def test_network_namespace_round_trip() -> None:
    """As root, two namespaces joined by a veth pair ping each other and are removed."""
    a, b = "mp-test-skel-a", "mp-test-skel-b"
    for ns in (a, b):
        subprocess.run(["ip", "netns", "delete", ns], capture_output=True)
    try:
        for ns in (a, b):
            subprocess.run(["ip", "netns", "add", ns], check=True)
        subprocess.run(["ip", "link", "add", "mpskel0", "netns", a, "type", "veth", "peer",
                        "name", "mpskel1", "netns", b], check=True)
        for ns, dev, addr in ((a, "mpskel0", "10.250.0.1/30"), (b, "mpskel1", "10.250.0.2/30")):
            inns = ["ip", "netns", "exec", ns]
            subprocess.run(inns + ["ip", "addr", "add", addr, "dev", dev], check=True)
            subprocess.run(inns + ["ip", "link", "set", dev, "up"], check=True)
        ping = subprocess.run(["ip", "netns", "exec", a, "ping", "-c", "1", "-W", "2",
                               "10.250.0.2"], capture_output=True)
        assert ping.returncode == 0, ping.stdout
    finally:
        for ns in (a, b):
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True)
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert a not in listed and b not in listed


@pytest.mark.parametrize("help_text,expect_thrift", [
    ("  --thrift-port arg   TCP port on which to run the Thrift runtime server", True),
    ("  --device-id arg   Device ID", False),
])
def test_bmv2_with_thrift_gets_a_port_of_its_own(help_text: str, expect_thrift: bool,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    from bmv2 import launcher

    fake = tmp_path / f"simple_switch_grpc_{expect_thrift}"
    fake.write_text(f"#!/bin/sh\necho '{help_text}'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("MP_SIMPLE_SWITCH_GRPC", str(fake))
    argv = launcher.command_line("bmv2", launcher.SwitchConfig(ports={1: "veth1"}))
    assert argv[0] == str(fake)
    if expect_thrift:
        port = int(argv[argv.index("--thrift-port") + 1])
        assert 1024 <= port <= 65535
    else:
        assert "--thrift-port" not in argv
    assert argv[argv.index("--") + 1:][:2] == ["--grpc-server-addr", "127.0.0.1:9559"]
