"""The three-namespace topology of the MASQUE experiments and one run of the workload.

    client ns (mpmq-cl)  ==emulated link==  proxy ns (mpmq-px)  --plain veth--  target ns
    10.252.0.1/30                            10.252.0.2/30 | 10.252.1.1/30      10.252.1.2/30

The impairment (rate, delay, loss; the same each way) is on the client-proxy
link only, where the outer HTTP/3 connection runs, as in the seed thesis: that
is where the outer stream scheduler decides. The proxy-target link is a plain
veth pair without impairment. The proxy relays only to the target subnet
(`--allow 10.252.1.0/30`).
"""

from __future__ import annotations

import contextlib
import json
import statistics
import subprocess
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import Any

from topologies.linkemu import LinkParams
from topologies.netns_link import EmulatedLink, netns_exists
from topologies.nsprocess import NamespaceProcess, ProcessFailed, python_module

CLIENT_NS, PROXY_NS, TARGET_NS = "mpmq-cl", "mpmq-px", "mpmq-tg"
CLIENT_ADDR, PROXY_ADDR = "10.252.0.1/30", "10.252.0.2/30"
PROXY_TARGET_SIDE, TARGET_ADDR = "10.252.1.1/30", "10.252.1.2/30"
TARGET_NET = "10.252.1.0/30"
PROXY_PORT = TARGET_PORT = 4433


def _ip(cmd: Sequence[str]) -> None:
    done = subprocess.run(["ip", *cmd], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"`ip {' '.join(cmd)}` failed: {done.stderr.strip()}")


class PlainLink:
    """A veth pair between two namespaces, no impairment; removed (with any namespace it
    made) on exit."""

    def __init__(self, ns_a: str, addr_a: str, ns_b: str, addr_b: str,
                 ifname_a: str = "mpmq-pt", ifname_b: str = "mpmq-tp") -> None:
        self.ns_a, self.addr_a, self.ns_b, self.addr_b = ns_a, addr_a, ns_b, addr_b
        self.ifname_a, self.ifname_b = ifname_a, ifname_b
        self._made_ns: list[str] = []
        self._made_veth = False

    def __enter__(self) -> PlainLink:
        try:
            for ns in (self.ns_a, self.ns_b):
                if not netns_exists(ns):
                    _ip(["netns", "add", ns])
                    self._made_ns.append(ns)
            _ip(["link", "add", self.ifname_a, "netns", self.ns_a, "type", "veth", "peer",
                 "name", self.ifname_b, "netns", self.ns_b])
            self._made_veth = True
            for ns, ifname, addr in ((self.ns_a, self.ifname_a, self.addr_a),
                                     (self.ns_b, self.ifname_b, self.addr_b)):
                _ip(["-n", ns, "addr", "add", addr, "dev", ifname])
                _ip(["-n", ns, "link", "set", "dev", ifname, "up"])
                _ip(["-n", ns, "link", "set", "dev", "lo", "up"])
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Delete the veth pair and the namespaces this link made."""
        if self._made_veth and netns_exists(self.ns_a):
            subprocess.run(["ip", "-n", self.ns_a, "link", "del", "dev", self.ifname_a],
                           capture_output=True)
        self._made_veth = False
        for ns in reversed(self._made_ns):
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True)
        self._made_ns.clear()


@contextlib.contextmanager
def masque_topology(link: LinkParams, emulation: str = "auto") -> Iterator[EmulatedLink]:
    """Client, proxy and target namespaces; the emulated link (for its mode) while inside."""
    with EmulatedLink(CLIENT_NS, CLIENT_ADDR, PROXY_NS, PROXY_ADDR, link, link,
                      prefer=emulation, static_arp=True) as em, \
            PlainLink(PROXY_NS, PROXY_TARGET_SIDE, TARGET_NS, TARGET_ADDR):
        yield em


def run_workload(outer: str, inner: str, workload_args: Sequence[str],
                 timeout: float) -> dict[str, Any]:
    """Target, proxy (outer scheduler `outer`) and the client workload; its JSON result."""
    proxy_ip, target_ip = PROXY_ADDR.split("/")[0], TARGET_ADDR.split("/")[0]
    with NamespaceProcess(TARGET_NS, python_module(
            "hostagent.masque.target_cli", "--quic", f"{target_ip}:{TARGET_PORT}",
            "--scheduler", inner), ready=r"\bready\b", name="mp-target"), \
        NamespaceProcess(PROXY_NS, python_module(
            "hostagent.masque.proxy_cli", "--listen", f"{proxy_ip}:{PROXY_PORT}",
            "--scheduler", outer, "--allow", TARGET_NET), ready=r"serving CONNECT-UDP",
            name="mp-proxy") as proxy:
        client = NamespaceProcess(CLIENT_NS, python_module(
            "hostagent.masque.workload", "--proxy", f"{proxy_ip}:{PROXY_PORT}",
            "--target", f"{target_ip}:{TARGET_PORT}", "--outer-scheduler", outer,
            "--inner-scheduler", inner, "--timeout", str(timeout), *workload_args),
            capture_stdout=True, name="workload")
        client.start()
        out = client.communicate(timeout=timeout * 2 + 60)
        if client.poll() != 0:
            raise ProcessFailed(f"workload failed ({client.poll()}): "
                                f"{' | '.join(list(client.output)[-5:])}")
        if proxy.poll() is not None:
            raise ProcessFailed(f"mp-proxy died: {' | '.join(list(proxy.output)[-5:])}")
    return json.loads(out)


def quartiles(values: Sequence[float]) -> tuple[float, float, float] | None:
    """(25th, 50th, 75th percentile), or None without values."""
    if not values:
        return None
    if len(values) == 1:
        return (values[0], values[0], values[0])
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return (q1, q2, q3)
