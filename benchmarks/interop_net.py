"""The namespaces of benchmarks/bench_interop.py, and CPU time of processes by PID.

    client ns  10.77.1.10 --veth-- 10.77.1.1  proxy ns  10.77.2.1 --veth-- 10.77.2.10  target ns
       |                                                                         |
       +-- 10.0.1.10 --- switch port 1   [P4 switch, root ns]   port 3 --- 10.0.3.10

Rows 1-3 (the proxies) use the upper path: generator and MASQUE client in the client
namespace, the proxy in the proxy namespace, the echo in the target namespace. The proxy
namespace forwards IP too, so the generator can also reach the echo directly (the
baseline of "added latency"). Row 4 (the switch fast path) uses the lower path: the same
client and target namespaces, each with a second interface on a switch port, addressed
as tests/dataplane/plan.py's hosts 1 and 3 (static ARP for their gateways at the switch's
MACs, a route to the proxy subnet 10.0.2.0/24 through the switch, checksum offload off).
Names are netlab.names' (unique to this run); everything is deleted on exit.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from netlab import names
from netlab.veth import no_ipv6, offloads_off
from tests.dataplane import plan

CLIENT, PROXY_IN, PROXY_OUT, TARGET = "10.77.1.10", "10.77.1.1", "10.77.2.1", "10.77.2.10"
TARGET_NET = "10.77.2.0/24"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def _run(*argv: str) -> None:
    subprocess.run(list(argv), check=True, capture_output=True)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a running process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class InteropNet:
    """Client, proxy and target namespaces; optionally switch ports 1 and 3 on the hosts."""

    def __init__(self) -> None:
        self.ns = {role: names.netns(f"i{role[:2]}") for role in ("client", "proxy", "target")}
        self.links = {"a": (names.ifname("ia"), names.ifname("iA")),
                      "b": (names.ifname("ib"), names.ifname("iB"))}
        #: switch port -> (switch end in the root namespace, host end)
        self.switch_if = {p: (names.ifname(f"is{p}"), names.ifname(f"ih{p}")) for p in (1, 3)}
        self.switched = False

    def exec(self, role: str) -> list[str]:
        """The `ip netns exec` prefix of a role's namespace."""
        return ["ip", "netns", "exec", self.ns[role]]

    def create(self) -> None:
        self.destroy()
        for ns in self.ns.values():
            _run("ip", "netns", "add", ns)
            _run("ip", "-n", ns, "link", "set", "lo", "up")
        for (left, right), (ln, rn), (laddr, raddr) in (
                (self.links["a"], ("client", "proxy"), (CLIENT, PROXY_IN)),
                (self.links["b"], ("proxy", "target"), (PROXY_OUT, TARGET))):
            _run("ip", "link", "add", left, "netns", self.ns[ln], "type", "veth", "peer",
                 "name", right, "netns", self.ns[rn])
            _run("ip", "-n", self.ns[ln], "addr", "add", f"{laddr}/24", "dev", left)
            _run("ip", "-n", self.ns[rn], "addr", "add", f"{raddr}/24", "dev", right)
            _run("ip", "-n", self.ns[ln], "link", "set", left, "up")
            _run("ip", "-n", self.ns[rn], "link", "set", right, "up")
        _run("ip", "-n", self.ns["client"], "route", "add", TARGET_NET, "via", PROXY_IN)
        _run("ip", "-n", self.ns["target"], "route", "add", "10.77.1.0/24", "via", PROXY_OUT)
        _run(*self.exec("proxy"), "sysctl", "-qw", "net.ipv4.ip_forward=1")

    def add_switch_ports(self) -> dict[int, str]:
        """Client and target on switch ports 1 and 3; the switch's interface names."""
        for port, role in ((1, "client"), (3, "target")):
            s, h = self.switch_if[port]
            ns = self.ns[role]
            _run("ip", "link", "add", s, "type", "veth", "peer", "name", h, "netns", ns)
            no_ipv6(s)
            offloads_off(s)
            offloads_off(h, ns)
            _run("ip", "link", "set", s, "up")
            _run("ip", "-n", ns, "link", "set", h, "address", plan.HOST_MAC[port])
            host = plan.CLIENT if port == 1 else plan.TARGET
            _run("ip", "-n", ns, "addr", "add", f"{host}/24", "dev", h)
            _run("ip", "-n", ns, "link", "set", h, "up")
            gateway = plan.SUBNET[port].replace(".0/24", ".1")
            _run("ip", "-n", ns, "neigh", "replace", gateway, "lladdr", plan.SWITCH_MAC[port],
                 "dev", h, "nud", "permanent")
            _run("ip", "-n", ns, "route", "add", plan.SUBNET[2], "via", gateway)
        self.switched = True
        return {p: s for p, (s, _) in self.switch_if.items()}

    def destroy(self) -> None:
        for s, _ in self.switch_if.values():
            subprocess.run(["ip", "link", "delete", s], capture_output=True)
        for ns in self.ns.values():
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True)
