"""The controller end to end: mp-controller + mp-ctl against a running target on veths;
policy, restart of the target, restart of the controller, and a second controller."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from bmv2 import launcher
from controller import config as config_mod
from hostagent import shim
from netlab.nsprocess import NamespaceProcess, python_module
from tests.dataplane import plan
from tests.dataplane.layers import MpShim
from tests.dataplane.ptf import VethPorts
from tests.targets import targets_to_test

pytestmark = [pytest.mark.root, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]



CONFIG = """
state = "state.sqlite"
northbound = "127.0.0.1:{nb_port}"
sched_mode = "sppifo"
default_rank = 30000

[[switch]]
name = "s1"
address = "{switch_addr}"
election_id = {election}

[fastpath]
address = "{fastpath}"
proxy_addr = "{proxy}"
proxy_ports = [40000, 40009]
miss = "slow-path"
slow_path_port = 2
slow_path_mac = "{proxy_mac}"

{routes}

[[class]]
name = "silver"
min_rank = 2048
rank = 4096

[[client]]
name = "alice"
token = "alice-token"
address = "{client}"
class = "silver"

[[client]]
name = "bob"
token = "bob-token"
address = "10.0.1.20"
class = "silver"

[[client]]
name = "ops"
token = "ops-token"
address = "127.0.0.1"
class = "silver"
operator = true
"""


def write_config(folder: Path, switch_addr: str, nb_port: int, election: int = 2) -> Path:
    routes = "\n".join(
        f'[[route]]\nprefix = "{plan.SUBNET[p]}"\nport = {p}\nsrc_mac = "{plan.SWITCH_MAC[p]}"\n'
        f'dst_mac = "{plan.HOST_MAC[p]}"\n' for p in plan.SUBNET)
    path = folder / "controller.toml"
    path.write_text(CONFIG.format(nb_port=nb_port, switch_addr=switch_addr, election=election,
                                  fastpath=plan.FASTPATH_ADDR, proxy=plan.PROXY,
                                  proxy_mac=plan.HOST_MAC[2], routes=routes, client=plan.CLIENT))
    config_mod.load(path)  # the test's own config must be valid
    return path


def controller(path: Path, ready: str = r"pipeline pushed|reconciled") -> NamespaceProcess:
    return NamespaceProcess(None, python_module("controller.daemon", "--config", str(path),
                                                "--log-level", "info"),
                            ready=ready, ready_timeout=60, name="mp-controller")


def ctl(nb_port: int, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(python_module("controller.ctl", "--controller",
                                        f"127.0.0.1:{nb_port}", "--token", token, *args),
                          capture_output=True, text=True, cwd=REPO, timeout=60)


class Net:
    def __init__(self, tmp: Path, target: str) -> None:
        self.tmp = tmp
        self.ports = VethPorts(4, prefix=f"mp{os.getpid() % 100000}c")
        self.target = target
        self.switch_cfg = launcher.SwitchConfig(
            ports={p: self.ports.switch_if(p) for p in self.ports.ports},
            grpc_addr=launcher.free_grpc_addr())
        self.switch = launcher.SwitchProcess(self.target, self.switch_cfg)
        self.nb_port = launcher.free_tcp_port()
        self.config = write_config(tmp, self.switch_cfg.grpc_addr, self.nb_port)
        self.controller = controller(self.config)

    def restart_switch(self) -> None:
        self.switch.stop()
        self.switch = launcher.SwitchProcess(self.target, self.switch_cfg)
        self.switch.start()


@pytest.fixture(params=targets_to_test())
def net(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Net]:
    n = Net(tmp_path, request.param)
    n.ports.create()
    try:
        n.switch.start()
        n.controller.start()
        yield n
    finally:
        n.controller.stop()
        n.switch.stop()
        n.ports.destroy()


def shim_packet(flow_id: int, client_port: int) -> Ether:
    return (Ether(src=plan.HOST_MAC[1], dst=plan.SWITCH_MAC[1]) /
            IP(src=plan.CLIENT, dst=plan.FASTPATH_ADDR) /
            UDP(sport=client_port, dport=shim.FASTPATH_PORT) / MpShim(flow_id=flow_id) /
            Raw(b"inner quic"))


def decapsulates(net: Net, flow: dict) -> bool:
    net.ports.drain()
    net.ports.send(1, shim_packet(flow["flow_id"], flow["client_port"]))
    out = net.ports.receive(1.0)[3]
    return any(Ether(f)[UDP].sport == flow["proxy_port"] and Ether(f)[IP].src == plan.PROXY
               for f in out)


def add_flow(net: Net, client_port: int = 50000) -> dict:
    out = ctl(net.nb_port, "alice-token", "--json", "flow", "add", "--client",
              f"{plan.CLIENT}:{client_port}", "--target", f"{plan.TARGET}:443")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_flow_from_the_cli_is_forwarded_and_idempotent(net: Net) -> None:
    flow = add_flow(net)
    assert flow["fastpath_addr"] == plan.FASTPATH_ADDR and flow["fastpath_port"] == 4434
    assert decapsulates(net, flow)
    assert add_flow(net) == flow, "opening the same flow twice gives the same flow"
    listed = json.loads(ctl(net.nb_port, "ops-token", "--json", "flow", "list").stdout)
    assert [f["flow_id"] for f in listed["flows"]] == [flow["flow_id"]]
    assert ctl(net.nb_port, "alice-token", "flow", "del", str(flow["flow_id"])).returncode == 0
    assert not decapsulates(net, flow)


def test_policy_refuses_other_clients_flows_and_caps_ranks(net: Net) -> None:
    other = ctl(net.nb_port, "alice-token", "flow", "add", "--client", "10.0.1.20:5000",
                "--target", f"{plan.TARGET}:443")
    assert other.returncode == 1 and "permission_denied" in other.stderr
    rank_other = ctl(net.nb_port, "alice-token", "rank", "set", "--src", "10.0.1.20",
                     "--dst", plan.TARGET, "--priority", "1")
    assert rank_other.returncode == 1 and "permission_denied" in rank_other.stderr
    capped = ctl(net.nb_port, "alice-token", "--json", "rank", "set", "--src", plan.CLIENT,
                 "--dst", plan.TARGET, "--dscp", "5", "--priority", "0")
    assert capped.returncode == 0, capped.stderr
    assert json.loads(capped.stdout)["rank"] == 2048 and json.loads(capped.stdout)["clamped"]
    unknown = ctl(net.nb_port, "alice-token", "rank", "set", "--src", plan.CLIENT, "--dst",
                  plan.TARGET, "--class", "platinum")
    assert unknown.returncode == 1 and "unknown traffic class 'platinum'" in unknown.stderr
    bad = ctl(net.nb_port, "nobody", "flow", "list")
    assert bad.returncode == 1 and "unauthenticated" in bad.stderr
    sched = ctl(net.nb_port, "alice-token", "sched", "set", "fifo")
    assert sched.returncode == 1 and "not an operator" in sched.stderr
    usage = ctl(net.nb_port, "alice-token", "rank", "set", "--src", plan.CLIENT)
    assert usage.returncode == 2 and len(usage.stderr.strip().splitlines()[-1]) < 200


def wait_restores(net: Net, at_least: int, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = ctl(net.nb_port, "ops-token", "--json", "stats")
        if out.returncode == 0:
            sw = json.loads(out.stdout)["switches"][0]
            if sw.get("connected") and sw.get("last_restore_seconds", 0) > 0:
                return sw
        time.sleep(0.2)
    raise AssertionError("the controller did not restore the switch")


def test_restarted_switch_gets_every_entry_back(net: Net) -> None:
    flow = add_flow(net)
    ctl(net.nb_port, "alice-token", "rank", "set", "--src", plan.CLIENT, "--dst", plan.TARGET,
        "--dscp", "3", "--priority", "4")
    assert decapsulates(net, flow)
    started = time.monotonic()
    net.restart_switch()
    deadline = time.monotonic() + 60
    while not decapsulates(net, flow):
        assert time.monotonic() < deadline, "entries never came back"
    print(f"switch restart -> fast path forwarding again: {time.monotonic() - started:.2f} s")
    stats = wait_restores(net, 2)
    assert stats["sched_mode"] == "sppifo"
    dump = ctl(net.nb_port, "ops-token", "table", "dump", "flow_rank")
    assert dump.returncode == 0 and "set_rank" in dump.stdout and "4096" in dump.stdout


def test_restarted_controller_keeps_its_state_and_disturbs_nothing(net: Net) -> None:
    flow = add_flow(net)
    net.controller.stop()
    assert decapsulates(net, flow), "the switch keeps forwarding without a controller"
    net.controller = controller(net.config, ready=r"reconciled")
    net.controller.start()
    listed = json.loads(ctl(net.nb_port, "ops-token", "--json", "flow", "list").stdout)
    assert [f["flow_id"] for f in listed["flows"]] == [flow["flow_id"]]
    assert any("reconciled, 3 updates" in line for line in net.controller.output), (
        "only the three default entries are rewritten")
    assert decapsulates(net, flow)


def test_a_second_controller_with_a_lower_election_id_stays_backup(net: Net) -> None:
    flow = add_flow(net)
    folder = net.tmp / "second"
    folder.mkdir()
    second = controller(write_config(folder, net.switch_cfg.grpc_addr,
                                     launcher.free_tcp_port(), election=1),
                        ready=r"is not primary")
    second.start()
    try:
        assert decapsulates(net, flow)
        again = add_flow(net, client_port=50001)
        assert decapsulates(net, again), "the primary still installs flows"
    finally:
        second.stop()


def test_a_controller_with_a_higher_election_id_takes_over_and_hands_back(net: Net) -> None:
    flow = add_flow(net)
    folder = net.tmp / "second"
    folder.mkdir()
    nb_port = launcher.free_tcp_port()
    second = controller(write_config(folder, net.switch_cfg.grpc_addr, nb_port, election=3),
                        ready=r"pipeline pushed|reconciled")
    second.start()
    try:
        deadline = time.monotonic() + 30
        while not any("no longer primary" in line for line in net.controller.output):
            assert time.monotonic() < deadline, "the first controller was not told"
            time.sleep(0.2)
        taken = json.loads(ctl(nb_port, "alice-token", "--json", "flow", "add", "--client",
                               f"{plan.CLIENT}:50002", "--target",
                               f"{plan.TARGET}:443").stdout)
        assert decapsulates(net, taken), "the new primary installs flows"
    finally:
        second.stop()
    deadline = time.monotonic() + 30
    while not decapsulates(net, flow):  # the first controller is primary again and syncs
        assert time.monotonic() < deadline, "the first controller never took back over"
    assert any("reconciled" in line for line in list(net.controller.output)[-20:])
