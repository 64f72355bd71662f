"""The fast-path hand-off end to end: a real switch (the selected target) on veths, its
pipeline pushed by a real mp-controller, mp-proxy and mp-target in their own network
namespaces, and a client in a third; the inner QUIC echo goes through the switch's
decap/encap, never through the proxy.

    client ns (10.0.1.10) --port 1--+                +--port 3-- target ns (10.0.3.10)
                                    |  P4 switch     |
    proxy ns (10.0.2.10)  --port 2--+ (fast path     |
       | mgmt veth 192.168.251.2     10.0.2.1:4434)
    root ns: mp-controller (northbound 192.168.251.1, P4Runtime 127.0.0.1), this test

Each host has a static ARP entry for its gateway 10.0.P.1 (the switch's MAC of
plan.py) and a default route through it; checksum offload is off on the hosts'
ends (the switch reads frames with AF_PACKET, which would see partial checksums).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import finsy as fy
import pytest

from bmv2 import launcher
from controller import config as config_mod
from controller.p4runtime import NotPrimary, P4RuntimeSession
from hostagent.certs import write_run_pki
from netlab import capabilities
from netlab.nsprocess import NamespaceProcess, python_module
from tests.dataplane import plan

pytestmark = [pytest.mark.root, pytest.mark.slow]
HERE = Path(__file__).resolve().parent
HOSTS = {1: plan.CLIENT, 2: plan.PROXY, 3: plan.TARGET}
MGMT_ROOT, MGMT_PROXY = "192.168.251.1", "192.168.251.2"
PROXY_PORTS = (40000, 40009)

CONFIG = """
state = "state.sqlite"
northbound = "{mgmt}:{nb_port}"
sched_mode = "sppifo"
default_rank = 30000

[tls]
cert = "pki/server.pem"
key = "pki/server.key"

[[switch]]
name = "s1"
address = "{switch_addr}"
election_id = 2

[fastpath]
address = "{fastpath}"
proxy_addr = "{proxy}"
proxy_ports = [{low}, {high}]
miss = "slow-path"
slow_path_port = 2
slow_path_mac = "{proxy_mac}"

{routes}

[[class]]
name = "silver"
min_rank = 0
rank = 4096

[[client]]
name = "proxy"
token = "proxy-token"
address = "{mgmt_proxy}"
class = "silver"
operator = true
"""


def _run(*argv: str) -> None:
    subprocess.run(list(argv), check=True, capture_output=True)



class Topology:
    """Three host namespaces on switch ports 1-3 and a management link to the proxy."""

    def __init__(self) -> None:
        tag = os.getpid() % 100000
        self.ns = {1: f"mpfc{tag}", 2: f"mpfp{tag}", 3: f"mpft{tag}"}
        self.switch_if = {p: f"mf{tag}{p}s" for p in HOSTS}
        self.host_if = {p: f"mf{tag}{p}h" for p in HOSTS}
        self.mgmt = (f"mf{tag}ms", f"mf{tag}mp")

    def create(self) -> None:
        self.destroy()
        for p, ns in self.ns.items():
            _run("ip", "netns", "add", ns)
            _run("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
            _run("ip", "netns", "exec", ns, "sysctl", "-qw",
                 "net.ipv6.conf.default.disable_ipv6=1")
            _run("ip", "-n", ns, "link", "set", "lo", "up")
            s, h = self.switch_if[p], self.host_if[p]
            _run("ip", "link", "add", s, "type", "veth", "peer", "name", h, "netns", ns)
            Path(f"/proc/sys/net/ipv6/conf/{s}/disable_ipv6").write_text("1\n")
            _run("ip", "link", "set", s, "up")
            _run("ip", "-n", ns, "link", "set", h, "address", plan.HOST_MAC[p])
            _run("ip", "-n", ns, "addr", "add", f"{HOSTS[p]}/24", "dev", h)
            _run("ip", "-n", ns, "link", "set", h, "up")
            for end, where in ((s, []), (h, ["ip", "netns", "exec", ns])):
                subprocess.run([*where, "ethtool", "-K", end, "tx", "off", "tso", "off",
                                "gso", "off"], capture_output=True)
            gateway = plan.SUBNET[p].replace(".0/24", ".1")
            _run("ip", "-n", ns, "neigh", "replace", gateway, "lladdr", plan.SWITCH_MAC[p],
                 "dev", h, "nud", "permanent")
            _run("ip", "-n", ns, "route", "add", "default", "via", gateway)
        # the proxy's own sockets must never take a port the controller hands out
        _run("ip", "netns", "exec", self.ns[2], "sysctl", "-qw",
             "net.ipv4.ip_local_port_range=50000 60999")
        root_end, proxy_end = self.mgmt
        _run("ip", "link", "add", root_end, "type", "veth", "peer", "name", proxy_end,
             "netns", self.ns[2])
        _run("ip", "addr", "add", f"{MGMT_ROOT}/30", "dev", root_end)
        _run("ip", "link", "set", root_end, "up")
        _run("ip", "-n", self.ns[2], "addr", "add", f"{MGMT_PROXY}/30", "dev", proxy_end)
        _run("ip", "-n", self.ns[2], "link", "set", proxy_end, "up")

    def destroy(self) -> None:
        for ifname in [*self.switch_if.values(), self.mgmt[0]]:
            subprocess.run(["ip", "link", "delete", ifname], capture_output=True)
        for ns in self.ns.values():
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True)


def write_config(folder: Path, switch_addr: str, nb_port: int) -> Path:
    """The controller's config; its northbound API serves TLS with a PKI made in `folder`
    (the proxy reaches it over a veth, and sends its token only over TLS)."""
    write_run_pki(folder / "pki", [MGMT_ROOT])
    routes = "\n".join(
        f'[[route]]\nprefix = "{plan.SUBNET[p]}"\nport = {p}\nsrc_mac = "{plan.SWITCH_MAC[p]}"\n'
        f'dst_mac = "{plan.HOST_MAC[p]}"\n' for p in HOSTS)
    path = folder / "controller.toml"
    path.write_text(CONFIG.format(mgmt=MGMT_ROOT, nb_port=nb_port, switch_addr=switch_addr,
                                  fastpath=plan.FASTPATH_ADDR, proxy=plan.PROXY,
                                  low=PROXY_PORTS[0], high=PROXY_PORTS[1],
                                  proxy_mac=plan.HOST_MAC[2], routes=routes,
                                  mgmt_proxy=MGMT_PROXY))
    config_mod.load(path)
    return path


async def read_direct_counters(switch_addr: str) -> dict[str, tuple[int, int]]:
    """(packets, bytes) of decap_counter and encap_counter, and ("flow_rank", (entries,
    0)), read as a backup P4Runtime client."""
    session = P4RuntimeSession(switch_addr, election_id=1)
    with contextlib.suppress(NotPrimary):
        await session.open()  # the controller (election id 2) stays primary
    try:
        out = {}
        for name in ("decap_counter", "encap_counter"):
            entries = await session.read([fy.P4DirectCounterEntry(name)])
            out[name] = (sum(e.data.packet_count for e in entries),
                         sum(e.data.byte_count for e in entries))
        ranks = await session.read([fy.P4TableEntry("flow_rank")])
        out["flow_rank"] = (len([e for e in ranks if e.match]), 0)
        return out
    finally:
        await session.close()


def start_services(stack: contextlib.ExitStack, topology: Topology, tmp_path: Path,
                   proxy_flags: tuple[str, ...] = (), proxy_client: bool = False
                   ) -> tuple[launcher.SwitchConfig, NamespaceProcess]:
    """The switch (the selected target), mp-controller (northbound over TLS), mp-target and
    mp-proxy (with `proxy_flags`), each stopped by `stack`; (switch config, proxy).
    `proxy_client`: the proxy's controller client may install QUIC mappings."""
    switch_cfg = launcher.SwitchConfig(ports=dict(topology.switch_if),
                                       grpc_addr=launcher.free_grpc_addr(),
                                       log_file=tmp_path / "switch.log")
    nb_port = launcher.free_tcp_port()
    config = write_config(tmp_path, switch_cfg.grpc_addr, nb_port)
    if proxy_client:
        config.write_text(config.read_text() + "proxy = true\n")  # the [[client]] "proxy"
    stack.enter_context(launcher.SwitchProcess(launcher.selected_target(), switch_cfg))
    stack.enter_context(NamespaceProcess(
        None, python_module("controller.daemon", "--config", str(config), "--log-level",
                            "info"), ready=r"pipeline pushed", ready_timeout=60,
        name="mp-controller"))
    stack.enter_context(NamespaceProcess(
        topology.ns[3], python_module("hostagent.masque.target_cli", "--quic",
                                      f"{plan.TARGET}:4433"), ready=r"ready",
        name="mp-target"))
    proxy = stack.enter_context(NamespaceProcess(
        topology.ns[2], python_module(
            "hostagent.masque.proxy_cli", "--listen", f"{plan.PROXY}:4433", "--allow",
            plan.SUBNET[3], *proxy_flags, "--controller", f"{MGMT_ROOT}:{nb_port}",
            "--controller-token", "proxy-token", "--tls-ca", str(tmp_path / "pki" / "ca.pem")),
        ready=r"serving CONNECT-UDP", name="mp-proxy"))
    return switch_cfg, proxy


@pytest.fixture
def topology() -> Iterator[Topology]:
    if not capabilities.netns().available:
        pytest.skip(capabilities.netns().detail)
    topo = Topology()
    try:
        topo.create()
        yield topo
    finally:
        topo.destroy()


def test_inner_quic_echo_runs_through_the_switch_fast_path(topology: Topology,
                                                           tmp_path: Path) -> None:
    target = launcher.selected_target()
    release = tmp_path / "release"
    with contextlib.ExitStack() as stack:
        switch_cfg, proxy = start_services(stack, topology, tmp_path)
        client = NamespaceProcess(
            topology.ns[1], [sys.executable, str(HERE / "fastpath_client.py"),
                             f"{plan.PROXY}:4433", f"{plan.TARGET}:4433", str(release)],
            ready=r"^RESULT ", ready_timeout=60, name="client")
        stack.callback(client.stop)
        client.start()
        [line] = [x for x in client.output if x.startswith("RESULT ")]
        result = json.loads(line.removeprefix("RESULT "))
        assert result["on"], f"fast path not granted: {result['reason']} | " + " | ".join(
            list(proxy.output)[-5:])
        assert result["echo_ok"], result
        counters = result["counters"]
        switch = asyncio.run(read_direct_counters(switch_cfg.grpc_addr))
        print(f"{target}: client {counters}; switch {switch}")
        assert counters["fp_sent"] > 5 and counters["fp_received"] > 5
        assert counters["via_proxy"] == 0 and counters["fp_malformed"] == 0
        assert switch["decap_counter"][0] == counters["fp_sent"]
        assert switch["encap_counter"][0] == counters["fp_received"]
        assert switch["flow_rank"][0] == 3, "the tunnel's rank and its two DSCP tags"
        release.touch()
        client.communicate(timeout=20)
        assert any(x == "CLOSED" for x in client.output)
        # the proxy saw the flow granted, relayed no inner packet, and closed the flow
        out = list(proxy.output)
        assert any(f"fast path flow {result['flow']}" in x for x in out), out[-5:]
        closes = [x for x in out if "tunnel close" in x]
        assert closes and "up 0 pkts/0 B, down 0 pkts/0 B" in closes[0], closes
        deadline = 50
        while not any(f"fast-path flow {result['flow']} closed" in x for x in proxy.output):
            deadline -= 1
            assert deadline, list(proxy.output)[-5:]
            asyncio.run(asyncio.sleep(0.1))
        after = asyncio.run(read_direct_counters(switch_cfg.grpc_addr))
        assert after["decap_counter"] == (0, 0), "CloseFlow removed the flow's entries"
        assert after["flow_rank"] == (0, 0), "and RemoveStream the ranks"
