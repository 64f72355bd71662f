"""Mininet building blocks for this project's P4 topologies: the switch, hosts and links.

- `P4Switch`: a Mininet `Switch` that runs the selected P4 target (the built-in
  target, or BMv2 `simple_switch_grpc`) through `bmv2.launcher` on its Mininet
  interfaces, port numbers as Mininet numbered them, P4Runtime on
  127.0.0.1:<free port>. It stays in the root namespace, like Mininet's own
  switches, and is stopped by PID.
- `configure_host`: what a host on a P4 switch port needs, since the P4 program
  answers no ARP and AF_PACKET switches see unfinished checksums: a static ARP
  entry for its gateway at the switch port's MAC, a default route through it,
  checksum and segmentation offloads off, IPv6 off (no stray solicitations).
- `add_access_link`: a host's link to a switch port, impaired where asked. Where
  the kernel has netem, a Mininet link with `TCIntf` on both ends (Mininet's
  TCLink parameters: htb + netem). Where it has not (such as this project's
  machines), a `LinkEmulator` node sits between the host and the switch: a
  two-port Mininet node in a namespace of its own that runs the project's
  userspace emulator (`python -m netlab.linkemu_bridge`) between its two
  interfaces, host -> emulator -> switch.

Needs root and Mininet (Debian package mininet; the venv needs --system-site-packages).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from mininet.link import Link, TCIntf
from mininet.net import Mininet
from mininet.node import Node, Switch

from bmv2 import launcher
from netlab.linkemu import LinkParams, format_spec, netem_unavailable_reason
from netlab.nsprocess import NamespaceProcess
from netlab.veth import OFFLOADS_OFF

REPO = Path(__file__).resolve().parent.parent



def mnexec_argv(node: Node | None, argv: list[str]) -> list[str]:
    """argv that runs `argv` in a session of its own, inside `node`'s namespace (None: here).

    `mnexec` execs (the PID is argv's, so it is stopped by PID). The new session
    keeps a Ctrl-C typed at Mininet's CLI from reaching the topology's daemons:
    the terminal's SIGINT goes to the foreground process group only.
    """
    return ["mnexec", "-d", *(["-a", str(node.pid)] if node is not None else []), *argv]


def quiet_interface(node: Node, ifname: str) -> None:
    """Offloads and IPv6 off on `ifname` in `node`'s namespace.

    Frames read with AF_PACKET (P4 switch, emulator) must be finished frames:
    no partial checksums, no TSO/GSO super-frames. IPv6 off keeps router and
    neighbour solicitations out of the switch's counters and the loss model.
    """
    node.cmd("ethtool", "-K", ifname, *OFFLOADS_OFF, ">/dev/null", "2>&1")
    node.cmd(f"sysctl -qw net.ipv6.conf.{ifname}.disable_ipv6=1 >/dev/null 2>&1")


class P4Switch(Switch):
    """A Mininet switch that is a P4 target: the built-in target ("soft") or BMv2 ("bmv2").

    `grpc_port` (default: a free port) is the P4Runtime port on 127.0.0.1;
    `log_file` is the switch's log; `port_rates` (P4 port -> bits/s) shapes those
    egress ports, on the built-in target only (BMv2 shapes per queue, not per port);
    `tls` serves P4Runtime over TLS.
    The P4 program is not loaded: the controller pushes the pipeline, as it does for
    every target in this project.
    """

    def __init__(self, name: str, target: str = "soft", grpc_port: int | None = None,
                 log_file: Path | None = None, port_rates: dict[int, int] | None = None,
                 tls: launcher.SwitchTls | None = None, **params: Any) -> None:
        if target not in launcher.TARGETS:
            raise ValueError(f"target must be one of {', '.join(launcher.TARGETS)}, "
                             f"got {target!r}")
        if port_rates and target != "soft":
            raise ValueError("port rates need the built-in target (--target soft): BMv2 "
                             "has no port-level shaper")
        super().__init__(name, **params)
        self.target = target
        self.port_rates = dict(port_rates or {})
        self.grpc_addr = f"127.0.0.1:{grpc_port or launcher.free_tcp_port()}"
        self.log_file = log_file
        self.tls = tls  # P4Runtime over TLS (None: plaintext)
        self.process: launcher.SwitchProcess | None = None

    def port_map(self) -> dict[int, str]:
        """P4 port number -> interface name, as Mininet numbered the ports (lo excluded)."""
        return {port: intf.name for intf, port in self.ports.items()
                if port > 0 and intf.name != "lo"}

    def start(self, controllers: list[Any]) -> None:
        """Start the target on our interfaces and wait until P4Runtime answers."""
        del controllers  # a P4 switch has a P4Runtime controller, not an OpenFlow one
        for ifname in self.port_map().values():
            quiet_interface(self, ifname)
        config = launcher.SwitchConfig(ports=self.port_map(), grpc_addr=self.grpc_addr,
                                       log_file=self.log_file, port_rates=self.port_rates,
                                       tls=self.tls)
        self.process = launcher.SwitchProcess(self.target, config, namespace=None,
                                              ready_timeout=60)
        self.process.process.argv = mnexec_argv(None, self.process.process.argv)
        self.process.start()

    @property
    def switch_pid(self) -> int | None:
        """PID of the target's process while it runs."""
        return None if self.process is None else self.process.pid

    def stop(self, deleteIntfs: bool = True) -> None:  # noqa: N803 - Mininet's signature
        """Stop the target by PID (idempotent), then let Mininet delete the interfaces."""
        if self.process is not None:
            self.process.stop()
        super().stop(deleteIntfs)


class LinkEmulator(Switch):
    """A two-port link emulator: `netlab.linkemu_bridge` in a namespace of its own.

    Port 1 (the first link added) faces the host, port 2 the switch; `a_to_b`
    impairs frames from port 1 to port 2 (host to switch), `b_to_a` the return.
    A Mininet switch rather than a host so that `pingall` leaves it out.
    """

    def __init__(self, name: str, a_to_b: LinkParams, b_to_a: LinkParams,
                 **params: Any) -> None:
        params["inNamespace"] = True  # Mininet's addSwitch passes the net's default (False)
        super().__init__(name, **params)
        self.a_to_b, self.b_to_a = a_to_b, b_to_a
        self.process: NamespaceProcess | None = None

    def start(self, controllers: list[Any]) -> None:
        """Offloads off on both links (both ends), then run the emulator until it is ready."""
        del controllers
        ports = sorted((port, intf) for intf, port in self.ports.items() if port > 0)
        if len(ports) != 2:
            raise RuntimeError(f"{self.name}: a link emulator needs exactly two links, "
                               f"has {len(ports)}")
        self.cmd("sysctl -qw net.ipv6.conf.all.disable_ipv6=1 >/dev/null 2>&1")
        for _, intf in ports:
            quiet_interface(self, intf.name)
            self.cmd("ip", "link", "set", "dev", intf.name, "up")
            peer = intf.link.intf2 if intf.link.intf1 is intf else intf.link.intf1
            quiet_interface(peer.node, peer.name)
        (_, a), (_, b) = ports
        argv = [sys.executable, "-m", "netlab.linkemu_bridge", "--a", a.name, "--b", b.name,
                "--a-to-b", format_spec(self.a_to_b), "--b-to-a", format_spec(self.b_to_a)]
        self.process = NamespaceProcess(None, mnexec_argv(self, argv), ready=r"\bready\b",
                                        ready_timeout=30, name=f"linkemu {self.name}")
        self.process.start()

    @property
    def emulator_pid(self) -> int | None:
        """PID of the emulator process while it runs."""
        proc = None if self.process is None else self.process.proc
        return None if proc is None else proc.pid

    def stop(self, deleteIntfs: bool = True) -> None:  # noqa: N803 - Mininet's signature
        """Stop the emulator by PID (it prints its counters), then Mininet's part."""
        if self.process is not None:
            self.process.stop()
        super().stop(deleteIntfs)

    def counters(self) -> str:
        """The emulator's last output lines (its per-direction counters once stopped)."""
        return "" if self.process is None else "\n".join(self.process.output)


def configure_host(host: Node, gateway: str, gateway_mac: str) -> None:
    """Static ARP for `gateway` at `gateway_mac`, default route through it, quiet interface.

    The P4 program answers no ARP, so the host must know the switch port's MAC;
    every destination outside its subnet then goes to the switch.
    """
    ifname = host.defaultIntf().name
    host.cmd("sysctl -qw net.ipv6.conf.all.disable_ipv6=1 "
             "net.ipv6.conf.default.disable_ipv6=1 >/dev/null 2>&1")
    quiet_interface(host, ifname)
    host.cmd("ip", "neigh", "replace", gateway, "lladdr", gateway_mac, "dev", ifname,
             "nud", "permanent")
    host.cmd("ip", "route", "replace", "default", "via", gateway, "dev", ifname)


def emulation_mode() -> str:
    """'netem' where the kernel's netem works, else 'userspace' (the emulator node)."""
    return "netem" if netem_unavailable_reason() is None else "userspace"


def tc_params(params: LinkParams) -> dict[str, Any]:
    """Mininet TCIntf parameters (bw in Mbit/s, delay, jitter, loss in %, queue) of `params`."""
    out: dict[str, Any] = {}
    if params.rate_bps is not None:
        out["bw"] = params.rate_bps / 1e6
    if params.delay_s:
        out["delay"] = f"{params.delay_s * 1000:g}ms"
    if params.jitter_s:
        out["jitter"] = f"{params.jitter_s * 1000:g}ms"
    if params.loss:
        out["loss"] = params.loss * 100
    if out:
        out["max_queue_size"] = params.queue_packets
    return out


def is_impaired(params: LinkParams | None) -> bool:
    """Whether `params` changes anything (rate, delay, jitter or loss)."""
    return params is not None and bool(params.rate_bps or params.delay_s or params.jitter_s
                                       or params.loss)


def add_access_link(net: Mininet, host: Node, switch: Node, port: int,
                    up: LinkParams | None = None, down: LinkParams | None = None,
                    mode: str | None = None) -> str:
    """Link `host` to `switch` port `port`; `up` impairs host->switch, `down` the return.

    Returns how: "plain", "netem" (TCIntf on both ends) or "userspace" (a
    `LinkEmulator` node named `mpe<port>` between them). `mode` None chooses by
    `emulation_mode()`.
    """
    if not (is_impaired(up) or is_impaired(down)):
        net.addLink(host, switch, port2=port)
        return "plain"
    up, down = up or LinkParams(), down or LinkParams()
    mode = mode or emulation_mode()
    if mode == "netem":
        net.addLink(host, switch, port2=port, cls=Link, intf=TCIntf,
                    params1=tc_params(up), params2=tc_params(down))
        return "netem"
    if mode != "userspace":
        raise ValueError(f"mode must be netem or userspace, got {mode!r}")
    emulator = net.addSwitch(f"mpe{port}", cls=LinkEmulator, a_to_b=up, b_to_a=down,
                             dpid=f"{0xe000 + port:x}")
    net.addLink(host, emulator, port2=1)
    net.addLink(emulator, switch, port1=2, port2=port)
    return "userspace"


def process_alive(pid: int) -> bool:
    """Whether `pid` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError, ProcessLookupError):
        return False
    return state != "Z"


def root_links(prefixes: tuple[str, ...]) -> list[str]:
    """Root-namespace interfaces whose names start with one of `prefixes`."""
    shown = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    names = [line.split(":", 2)[1].strip().split("@")[0] for line in shown.splitlines()
             if line.count(":") >= 2]
    return [n for n in names if n.startswith(prefixes)]


def topology_pids(processes: dict[str, Any], net: Any) -> dict[str, int]:
    """Every process a topology runs: its daemons (NamespaceProcess by label), and the
    Mininet nodes' shells, switches and emulators."""
    out: dict[str, int] = {}
    for label, proc in processes.items():
        if proc.proc is not None:
            out[label] = proc.proc.pid
    if net is not None:
        for node in [*net.hosts, *net.switches]:
            if node.shell is not None and node.pid:
                out[f"shell {node.name}"] = node.pid
            for attr in ("switch_pid", "emulator_pid"):
                pid = getattr(node, attr, None)
                if pid:
                    out[f"{attr.split('_')[0]} {node.name}"] = pid
    return out


def topology_netns_inodes(net: Any) -> set[int]:
    """The network namespaces of a topology's Mininet nodes that have one (by inode)."""
    out: set[int] = set()
    if net is not None:
        for node in [*net.hosts, *net.switches]:
            if node.inNamespace and node.pid:
                with contextlib.suppress(FileNotFoundError):
                    out.add(os.stat(f"/proc/{node.pid}/ns/net").st_ino)
    return out
