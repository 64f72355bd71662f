"""Start a P4 switch, either target, the one way: tests, topologies and the demo all use this.

`simple_switch_grpc` (BMv2) and `mp-switch` (the built-in target) take the same
command line, so `command_line()` builds it once for both:

    simple_switch_grpc --device-id 0 -i 1@veth1 -i 2@veth2 --log-level warn \\
        --no-p4 -- --grpc-server-addr 127.0.0.1:9559 --cpu-port 255 --priority-queues 8

`SwitchProcess` starts it (optionally inside a network namespace), waits until
P4Runtime answers a Capabilities request, and stops it by PID. With `SwitchConfig.tls`
both targets serve P4Runtime over TLS (BMv2's --grpc-server-ssl options, which
mp-switch takes too); without it P4Runtime is plaintext.
"""

from __future__ import annotations

import functools
import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import grpc
from finsy.proto import p4r, p4r_grpc

from bmv2 import toolchain
from netlab.nsprocess import NamespaceProcess
from p4src.pipeline import CPU_PORT, NUM_QUEUES

TARGETS = ("bmv2", "soft")


class SwitchFailed(RuntimeError):
    """The switch exited or did not answer P4Runtime in time; the message says which."""


def selected_target() -> str:
    """MP_TARGET if set ('bmv2' or 'soft'), else BMv2 where installed, else the soft target."""
    chosen = os.environ.get("MP_TARGET", "").strip()
    if chosen:
        if chosen not in TARGETS:
            raise ValueError(f"MP_TARGET={chosen!r}: choose one of {', '.join(TARGETS)}")
        return chosen
    return "bmv2" if toolchain.find("simple_switch_grpc") else "soft"


@dataclass(frozen=True)
class SwitchTls:
    """P4Runtime TLS of a switch: its certificate and key, and the CA that signed them
    (clients verify the switch with it). With `client_auth` the switch also requires
    client certificates signed by that CA, and `client_cert`/`client_key` are what the
    launcher's readiness probe presents."""

    cert: Path
    key: Path
    ca: Path
    client_auth: bool = False
    client_cert: Path | None = None
    client_key: Path | None = None

    def argv(self) -> list[str]:
        """The target options (after `--`), the same for BMv2 and mp-switch."""
        argv = ["--grpc-server-ssl", "--grpc-server-cert", str(self.cert),
                "--grpc-server-key", str(self.key), "--grpc-server-cacert", str(self.ca)]
        return argv + (["--grpc-server-with-client-auth"] if self.client_auth else [])

    def as_json(self) -> dict[str, str | bool | None]:
        return {k: str(v) if isinstance(v, Path) else v for k, v in vars(self).items()}

    @classmethod
    def from_json(cls, data: dict[str, str | bool | None]) -> SwitchTls:
        paths = {k: Path(v) if isinstance(v, str) else v for k, v in data.items()}
        return cls(**paths)  # type: ignore[arg-type]

    def channel_credentials(self) -> grpc.ChannelCredentials:
        """What a client of this switch (the probe) connects with."""
        client = self.client_auth and self.client_cert and self.client_key
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca.read_bytes(),
            private_key=self.client_key.read_bytes() if client and self.client_key else None,
            certificate_chain=(self.client_cert.read_bytes()
                               if client and self.client_cert else None))


@dataclass
class SwitchConfig:
    """What a switch is started with. `json` None starts it without a program (--no-p4)."""

    ports: dict[int, str] = field(default_factory=dict)
    grpc_addr: str = "127.0.0.1:9559"
    device_id: int = 0
    cpu_port: int | None = CPU_PORT
    priority_queues: int = NUM_QUEUES
    json: Path | None = None
    log_level: str = "warn"
    log_file: Path | None = None
    #: port -> bits/s: a port-level shaper (built-in target only; BMv2 shapes per queue)
    port_rates: dict[int, int] = field(default_factory=dict)
    #: packets per priority queue (built-in target only: BMv2's depth is set by its
    #: runtime CLI; None: the target's default, 64)
    queue_depth: int | None = None
    #: P4Runtime over TLS (None: plaintext)
    tls: SwitchTls | None = None


@functools.lru_cache(maxsize=8)
def has_thrift(binary: Path) -> bool:
    """Whether this BMv2 build runs a Thrift server (built with Thrift: `--thrift-port` in
    its `--help`). Such a switch listens on port 9090 of every address unless told
    another port, so two of them at once would collide."""
    try:
        done = subprocess.run([str(binary), "--help"], capture_output=True, text=True,
                              timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "--thrift-port" in done.stdout + done.stderr


def command_line(target: str, config: SwitchConfig) -> list[str]:
    """argv of the target's switch for `config` (raises ToolMissing for absent BMv2). A
    BMv2 built with Thrift gets a free `--thrift-port` of its own (its runtime CLI's port,
    which this project does not use: P4Runtime does everything)."""
    if target == "bmv2":
        binary = toolchain.require("simple_switch_grpc")
        argv = [str(binary)]
        if has_thrift(binary):
            argv += ["--thrift-port", str(free_tcp_port())]
    elif target == "soft":
        argv = [sys.executable, "-m", "bmv2.softswitch.cli"]
    else:
        raise ValueError(f"unknown target {target!r}; choose one of {', '.join(TARGETS)}")
    if config.port_rates and target != "soft":
        raise ValueError("port_rates need the built-in target (BMv2 has no port shaper)")
    if config.queue_depth is not None and target != "soft":
        raise ValueError("queue_depth needs the built-in target (BMv2 sets it at run time)")
    argv += ["--device-id", str(config.device_id)]
    for port, ifname in sorted(config.ports.items()):
        argv += ["-i", f"{port}@{ifname}"]
    argv += ["--log-level", config.log_level]
    if config.log_file is not None:
        argv += ["--log-file", str(config.log_file)]
    for port, rate in sorted(config.port_rates.items()):
        argv += ["--port-rate", f"{port}={rate}"]
    if config.queue_depth is not None:
        argv += ["--queue-depth", str(config.queue_depth)]
    argv += [str(config.json)] if config.json is not None else ["--no-p4"]
    argv += ["--", "--grpc-server-addr", config.grpc_addr,
             "--priority-queues", str(config.priority_queues)]
    if config.cpu_port is not None:
        argv += ["--cpu-port", str(config.cpu_port)]
    if config.tls is not None:
        argv += config.tls.argv()
    return argv


#: the readiness probe run inside a namespace: argv = address, SwitchTls as JSON or null
_PROBE = ("import json, sys; from bmv2.launcher import SwitchTls, p4runtime_answers; "
          "t = json.loads(sys.argv[2]); "
          "c = SwitchTls.from_json(t).channel_credentials() if t else None; "
          "sys.exit(0 if p4runtime_answers(sys.argv[1], 0.5, c) else 1)")


def free_tcp_port() -> int:
    """A TCP port on 127.0.0.1 that is free now: for a switch's or controller's gRPC address."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_grpc_addr() -> str:
    """`127.0.0.1:PORT` with a port that is free now."""
    return f"127.0.0.1:{free_tcp_port()}"


def p4runtime_answers(address: str, timeout: float = 1.0,
                      credentials: grpc.ChannelCredentials | None = None) -> bool:
    """True once a P4Runtime server at `address` answers a Capabilities request (over TLS
    with `credentials`)."""
    channel = (grpc.secure_channel(address, credentials) if credentials is not None
               else grpc.insecure_channel(address))
    with channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=timeout)
            stub = p4r_grpc.P4RuntimeStub(channel)
            stub.Capabilities(p4r.CapabilitiesRequest(), timeout=timeout)
            return True
        except (grpc.FutureTimeoutError, grpc.RpcError):
            return False


class SwitchProcess:
    """A running switch of `target`, started in `namespace` (None: this one)."""

    def __init__(self, target: str, config: SwitchConfig, namespace: str | None = None,
                 ready_timeout: float = 30.0) -> None:
        self.target = target
        self.config = config
        self.namespace = namespace
        self.ready_timeout = ready_timeout
        self.process = NamespaceProcess(namespace, command_line(target, config),
                                        name=f"{target} switch")

    def __enter__(self) -> SwitchProcess:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def start(self) -> None:
        """Start it and wait until P4Runtime answers; SwitchFailed otherwise."""
        self.process.start()
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.process.stop()
                raise SwitchFailed(f"{self.target} switch exited with {self.process.poll()}: "
                                   f"{' | '.join(list(self.process.output)[-8:])}")
            if self._answers():
                return
            time.sleep(0.1)
        self.stop()
        raise SwitchFailed(f"{self.target} switch did not answer P4Runtime on "
                           f"{self.config.grpc_addr} within {self.ready_timeout:g} s")

    def _answers(self) -> bool:
        tls = self.config.tls
        if self.namespace is None:
            return p4runtime_answers(self.config.grpc_addr, 0.5,
                                     tls.channel_credentials() if tls else None)
        probe = subprocess.run(
            ["ip", "netns", "exec", self.namespace, sys.executable, "-c", _PROBE,
             self.config.grpc_addr, json.dumps(None if tls is None else tls.as_json())],
            capture_output=True, cwd=Path(__file__).resolve().parent.parent)
        return probe.returncode == 0

    @property
    def pid(self) -> int | None:
        proc = self.process.proc
        return None if proc is None else proc.pid

    def stop(self) -> None:
        """SIGTERM, then SIGKILL; by PID; idempotent."""
        self.process.stop()
