"""Hosts in network namespaces, each on one port of a switch that runs in this namespace.

The switch owns the root-namespace end of a veth pair; the host's end moves into
its namespace with an address, a static ARP entry for the switch's MAC on that
port (the P4 program does not answer ARP) and a default route through it.
"""

from __future__ import annotations

import ipaddress
import subprocess
from dataclasses import dataclass
from pathlib import Path

from netlab.veth import offloads_off


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, text=True)


@dataclass
class SwitchHost:
    """A host `name` with `addr` (CIDR) behind switch port `port`."""

    name: str
    port: int
    addr: str          # e.g. "10.0.1.10/24"
    host_mac: str
    switch_mac: str    # the MAC the switch uses on this port
    prefix: str = "mph"

    @property
    def ip(self) -> str:
        return str(ipaddress.IPv4Interface(self.addr).ip)

    @property
    def gateway(self) -> str:
        """A made-up next hop in the host's subnet (.1): only its ARP entry matters."""
        return str(next(ipaddress.IPv4Interface(self.addr).network.hosts()))

    @property
    def switch_if(self) -> str:
        return f"{self.prefix}{self.port}s"

    def create(self) -> None:
        self.destroy()
        host_if = f"{self.prefix}{self.port}h"
        _run("ip", "netns", "add", self.name)
        _run("ip", "link", "add", self.switch_if, "type", "veth", "peer", "name", host_if)
        disable = Path(f"/proc/sys/net/ipv6/conf/{self.switch_if}/disable_ipv6")
        if disable.exists():
            disable.write_text("1\n")
        _run("ip", "link", "set", self.switch_if, "up")
        _run("ip", "link", "set", host_if, "netns", self.name)
        ns = ["ip", "netns", "exec", self.name]
        _run(*ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
        _run(*ns, "ip", "link", "set", host_if, "address", self.host_mac, "name", "eth0")
        _run(*ns, "ip", "addr", "add", self.addr, "dev", "eth0")
        _run(*ns, "ip", "link", "set", "eth0", "up")
        _run(*ns, "ip", "link", "set", "lo", "up")
        _run(*ns, "ip", "neigh", "replace", self.gateway, "lladdr", self.switch_mac,
             "dev", "eth0", "nud", "permanent")
        _run(*ns, "ip", "route", "add", "default", "via", self.gateway, "dev", "eth0")
        # offloads would hand the switch unfinished checksums and oversized frames
        offloads_off("eth0", self.name, required=False)
        offloads_off(self.switch_if, required=False)

    def destroy(self) -> None:
        subprocess.run(["ip", "link", "delete", self.switch_if], capture_output=True)
        subprocess.run(["ip", "netns", "delete", self.name], capture_output=True)

