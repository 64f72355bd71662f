"""Fixtures of the interop tests: our masque-go program (built once per session), and
mp-proxy, mp-target and the masque-go proxy as processes on loopback, stopped by PID."""

from __future__ import annotations

import json
import os
import re
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from netlab.nsprocess import NamespaceProcess, python_module
from tests.interop.masquego_build import build


@pytest.fixture(scope="session")
def masquego() -> Path:
    """The masquego binary; skips where Go or its modules are missing."""
    result = build()
    if result.binary is None and result.missing:
        pytest.skip(result.missing)
    if result.binary is None:
        pytest.fail(result.error)
    return result.binary


def loopback(index: int) -> str:
    """A loopback address of this run (127.0.0.x; x from the pid and `index`), so that
    sessions running at once seldom meet on one address."""
    return f"127.0.{(os.getpid() >> 8) % 250 + 1}.{(os.getpid() + index) % 250 + 2}"


def free_udp_port(host: str) -> int:
    """A UDP port free on `host` just now (our CLIs take no port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class Processes:
    """Starts the programs of one test; all stopped by PID at the end."""

    def __init__(self, stack: ExitStack, binary: Path | None) -> None:
        self.stack = stack
        self.binary = binary

    def start(self, argv: list[str], ready: str | None, name: str,
              capture_stdout: bool = False) -> NamespaceProcess:
        proc = NamespaceProcess(None, argv, ready=ready, ready_timeout=30, name=name,
                                capture_stdout=capture_stdout)
        self.stack.callback(proc.stop)
        proc.start()
        return proc

    def mp_target(self, host: str, udp: bool = True, quic: bool = False) -> dict[str, str]:
        """mp-target on host: its "udp" and/or "quic" HOST:PORT."""
        addrs, argv = {}, []
        for kind, wanted in (("udp", udp), ("quic", quic)):
            if wanted:
                addrs[kind] = f"{host}:{free_udp_port(host)}"
                argv += [f"--{kind}", addrs[kind]]
        self.target = self.start(python_module("hostagent.masque.target_cli", *argv),
                                 r"\bready\b", "mp-target")
        return addrs

    def mp_proxy(self, host: str, *flags: str) -> tuple[str, NamespaceProcess]:
        """mp-proxy on host (any free port), allowing loopback unless `flags` say otherwise."""
        addr = f"{host}:{free_udp_port(host)}"
        if "--allow" not in flags:
            flags = (*flags, "--allow", "127.0.0.0/8")
        proc = self.start(python_module("hostagent.masque.proxy_cli", "--listen", addr, *flags),
                          r"serving CONNECT-UDP", "mp-proxy")
        return addr, proc

    def masque_go_proxy(self, host: str, *flags: str) -> tuple[str, NamespaceProcess]:
        """masque-go's proxy (our wrapper) on host:0; its bound HOST:PORT."""
        assert self.binary is not None
        proc = self.start([str(self.binary), "proxy", "--listen", f"{host}:0", *flags],
                          r"^ready ", "masque-go proxy")
        line = next(x for x in proc.output if x.startswith("ready "))
        return line.split()[1], proc


@pytest.fixture
def procs(request: pytest.FixtureRequest) -> Iterator[Processes]:
    """A Processes for this test; the masquego binary when the test asked for it."""
    binary = request.getfixturevalue("masquego")
    with ExitStack() as stack:
        yield Processes(stack, binary)


def json_lines(text: str) -> list[dict]:
    """The JSON objects printed one per line."""
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def wait_for_line(proc: NamespaceProcess, pattern: str, timeout: float = 10.0) -> str:
    """The first output line of `proc` matching `pattern`, waiting up to `timeout` s."""
    regex = re.compile(pattern)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in list(proc.output):
            if regex.search(line):
                return line
        time.sleep(0.05)
    raise AssertionError(f"{proc.name}: no line matching {pattern!r}: "
                         + " | ".join(list(proc.output)[-5:]))

