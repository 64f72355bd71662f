"""Forwarded mode in the switch end to end: the same namespaces, switch and controller as
the shim fast path's test (test_fastpath_e2e), mp-proxy with --quic-forwarding and its
controller, a client that asks for forwarded mode. The inner connection's handshake is
tunnelled; then its short headers go client -> switch -> target and back with virtual
connection IDs swapped by the switch, through a change of connection ID mid-transfer,
and the proxy host forwards none of them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sys
from pathlib import Path

import finsy as fy
import pytest

from bmv2 import launcher
from controller.p4runtime import NotPrimary, P4RuntimeSession
from netlab.nsprocess import NamespaceProcess, python_module
from tests.dataplane import plan
from tests.masque.test_fastpath_e2e import (  # noqa: F401 - the fixture
    HERE,
    MGMT_ROOT,
    Topology,
    topology,
    write_config,
)

pytestmark = [pytest.mark.root, pytest.mark.slow]


async def forwarded_by_switch(switch_addr: str) -> tuple[int, int]:
    """(packets through quic_forward, quic_forward entries), read as a backup client."""
    session = P4RuntimeSession(switch_addr, election_id=1)
    with contextlib.suppress(NotPrimary):
        await session.open()
    try:
        entries = await session.read([fy.P4DirectCounterEntry("quic_forward_counter")])
        table = await session.read([fy.P4TableEntry("quic_forward")])
        return sum(e.data.packet_count for e in entries), len(table)
    finally:
        await session.close()


def test_inner_quic_runs_forwarded_through_the_switch(topology: Topology,  # noqa: F811
                                                       tmp_path: Path) -> None:
    target = launcher.selected_target()
    switch_cfg = launcher.SwitchConfig(ports=dict(topology.switch_if),
                                       grpc_addr=launcher.free_grpc_addr(),
                                       log_file=tmp_path / "switch.log")
    nb_port = launcher.free_tcp_port()
    config = write_config(tmp_path, switch_cfg.grpc_addr, nb_port)
    config.write_text(config.read_text() + "proxy = true\n")  # the [[client]] "proxy"
    release = tmp_path / "release"
    with contextlib.ExitStack() as stack:
        stack.enter_context(launcher.SwitchProcess(target, switch_cfg))
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
                plan.SUBNET[3], "--quic-forwarding", "--controller", f"{MGMT_ROOT}:{nb_port}",
                "--controller-token", "proxy-token", "--tls-ca", str(tmp_path / "pki" / "ca.pem")),
            ready=r"serving CONNECT-UDP", name="mp-proxy"))
        client = NamespaceProcess(
            topology.ns[1], [sys.executable, str(HERE / "forwarded_client.py"),
                             f"{plan.PROXY}:4433", f"{plan.TARGET}:4433", str(release)],
            ready=r"^RESULT ", ready_timeout=120, name="client")
        stack.callback(client.stop)
        client.start()
        [line] = [x for x in client.output if x.startswith("RESULT ")]
        result = json.loads(line.removeprefix("RESULT "))
        assert result["forwarding"], result["reason"]
        assert result["ready"] and result["echo_ok"] and result["rotated"], result
        assert result["new_cid_mapped"], result
        counters = result["counters"]
        through_switch, entries = asyncio.run(forwarded_by_switch(switch_cfg.grpc_addr))
        print(f"{target}: client {counters}; switch forwarded {through_switch} packets, "
              f"{entries} mappings")
        assert counters["sent"] > 100 and counters["received"] > 100
        assert counters["tunnelled_short"] == 0 and counters["rejected"] == []
        # every forwarded packet, both directions, crossed the switch's quic_forward table
        assert through_switch == counters["sent"] + counters["received"]
        release.touch()
        client.communicate(timeout=20)
        assert any(x == "CLOSED" for x in client.output)
    # the proxy host forwarded none of them in software, and relayed no inner short header
    out = "\n".join(proxy.output)
    totals = re.search(r"counters: (\{.*?\})", out)
    assert totals, out[-2000:]
    stats = totals.group(1)
    assert "'forwarded_up_packets': 0" in stats and "'forwarded_down_packets': 0" in stats
    assert "switch forwarding: {'installed':" in out
