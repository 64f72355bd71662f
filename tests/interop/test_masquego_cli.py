"""The command line of our masque-go program: help, and one clear line for bad input."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.interop


def run(binary: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=30)


def test_help_lists_the_commands_and_each_command_its_flags(masquego: Path) -> None:
    done = run(masquego, "--help")
    assert done.returncode == 0
    for command in ("proxy", "client", "tunnel", "loadgen", "echo"):
        assert f"\n  {command} " in done.stdout
        sub = run(masquego, command, "--help")
        assert sub.returncode == 0 and f"usage: masquego {command}" in sub.stdout
    assert "-allow" in run(masquego, "proxy", "--help").stdout


@pytest.mark.parametrize(("args", "message"), [
    ((), "usage: masquego COMMAND"),
    (("bogus",), 'unknown command "bogus"'),
    (("client", "--target", "127.0.0.1:9"), "give --proxy HOST:PORT"),
    (("client", "--proxy", "127.0.0.1", "--target", "127.0.0.1:9"), "not HOST:PORT"),
    (("client", "--proxy", "127.0.0.1:1", "--target", "127.0.0.1:9", "--mode", "x"),
     "--mode must be datagram or stream"),
    (("proxy", "--allow", "not-a-net"), "is not a CIDR"),
    (("proxy", "--cert", "/nonexistent.pem"), "give both --cert and --key"),
    (("loadgen", "--target", "127.0.0.1:9", "--size", "10"), "--size"),
    (("echo", "--nope"), "flag provided but not defined"),
])
def test_bad_input_is_one_line_and_exit_2(masquego: Path, args: tuple[str, ...],
                                          message: str) -> None:
    done = run(masquego, *args)
    assert done.returncode == 2
    assert message in done.stderr, done.stderr
    if args:
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
