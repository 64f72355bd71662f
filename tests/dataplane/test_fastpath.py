"""The MASQUE fast path: decapsulation, encapsulation, spoofing, misses, bad shims."""

from __future__ import annotations

import finsy as fy
import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from hostagent import shim
from p4src.pipeline import DropReason, MissCounter
from tests.dataplane import plan
from tests.dataplane.layers import MpShim
from tests.dataplane.ptf import VethPorts
from tests.dataplane.test_forwarding import drops

pytestmark = pytest.mark.root

FLOW, CLIENT_PORT, PROXY_PORT, TARGET_PORT = 0x01020304, 50000, 40001, 443
INNER = b"\xc3" + bytes(range(64))  # stands for an encrypted inner QUIC packet


def shim_from_client(flow_id: int = FLOW, sport: int = CLIENT_PORT, src: str = plan.CLIENT,
                     version: int = shim.SHIM_VERSION, payload: bytes = INNER) -> Ether:
    return (Ether(src=plan.HOST_MAC[1], dst=plan.SWITCH_MAC[1]) /
            IP(src=src, dst=plan.FASTPATH_ADDR, ttl=64) /
            UDP(sport=sport, dport=shim.FASTPATH_PORT) /
            MpShim(version=version, flow_id=flow_id) / Raw(payload))


def decapsulated(ttl: int = 63) -> Ether:
    return (Ether(src=plan.SWITCH_MAC[3], dst=plan.HOST_MAC[3]) /
            IP(src=plan.PROXY, dst=plan.TARGET, ttl=ttl) /
            UDP(sport=PROXY_PORT, dport=TARGET_PORT, chksum=0) / Raw(INNER))


def from_target(payload: bytes = INNER) -> Ether:
    return (Ether(src=plan.HOST_MAC[3], dst=plan.SWITCH_MAC[3]) /
            IP(src=plan.TARGET, dst=plan.PROXY, ttl=64) /
            UDP(sport=TARGET_PORT, dport=PROXY_PORT) / Raw(payload))


def encapsulated(payload: bytes = INNER) -> Ether:
    return (Ether(src=plan.SWITCH_MAC[1], dst=plan.HOST_MAC[1]) /
            IP(src=plan.FASTPATH_ADDR, dst=plan.CLIENT, ttl=63) /
            UDP(sport=shim.FASTPATH_PORT, dport=CLIENT_PORT, chksum=0) /
            MpShim(flow_id=FLOW) / Raw(payload))


def same_ip_id(expected: Ether, sent: Ether) -> Ether:
    expected[IP].id = sent[IP].id
    return Ether(bytes(expected))


@pytest.fixture
def flow_installed(p4rt):  # type: ignore[no-untyped-def]
    p4rt.write(plan.routes() + plan.fastpath_base() +
               plan.flow(FLOW, CLIENT_PORT, PROXY_PORT, TARGET_PORT))
    return p4rt


def test_decapsulation_strips_the_shim_and_rewrites_to_the_target(flow_installed,
                                                                  ports: VethPorts) -> None:
    sent = shim_from_client()
    ports.send(1, sent)
    ports.expect({3: [same_ip_id(decapsulated(), sent)]})


def test_encapsulation_adds_the_shim_and_rewrites_to_the_client(flow_installed,
                                                                ports: VethPorts) -> None:
    sent = from_target()
    ports.send(3, sent)
    ports.expect({1: [same_ip_id(encapsulated(), sent)]})


def test_round_trip_counts_both_directions(flow_installed, ports: VethPorts) -> None:
    p4rt = flow_installed
    for _ in range(3):
        ports.send(1, shim_from_client())
    ports.send(3, from_target(b"answer" * 20))
    received = ports.receive(1.0)
    assert len(received[3]) == 3 and len(received[1]) == 1
    assert shim.unwrap(bytes(Ether(received[1][0])[UDP].payload)) == (
        shim.Shim(FLOW), b"answer" * 20)
    [decap] = p4rt.read([fy.P4DirectCounterEntry("decap_counter")])
    [encap] = p4rt.read([fy.P4DirectCounterEntry("encap_counter")])
    assert decap.data.packet_count == 3
    assert decap.data.byte_count == 3 * len(shim_from_client())
    assert encap.data.packet_count == 1
    assert encap.data.byte_count == len(from_target(b"answer" * 20))


def test_known_flow_from_another_source_is_dropped_as_spoofed(flow_installed,
                                                              ports: VethPorts) -> None:
    ports.send(1, shim_from_client(sport=CLIENT_PORT + 1))
    ports.send(1, shim_from_client(src="10.0.1.66"))
    ports.expect_nothing()
    assert drops(flow_installed, DropReason.SPOOFED_FLOW) == 2


def test_unknown_flow_goes_to_the_slow_path(flow_installed, ports: VethPorts) -> None:
    sent = shim_from_client(flow_id=0x0BADF00D)
    ports.send(1, sent)
    to_proxy = Ether(bytes(sent))
    to_proxy.dst = plan.HOST_MAC[2]
    ports.expect({2: [to_proxy]})
    [miss] = flow_installed.read([fy.P4CounterEntry("fastpath_misses",
                                                    index=int(MissCounter.TO_SLOW_PATH))])
    assert miss.data.packet_count == 1


def test_unknown_flow_goes_to_the_controller_when_asked(flow_installed,
                                                        ports: VethPorts) -> None:
    p4rt = flow_installed
    p4rt.write(plan.fastpath_base(miss_to_cpu=True)[1:])
    sent = shim_from_client(flow_id=0x0BADF00D)
    ports.send(1, sent)
    ports.expect_nothing()
    packet_in = p4rt.packet_in(timeout=3)
    assert packet_in.payload == bytes(sent)
    assert packet_in["ingress_port"] == 1 and packet_in["reason"] == 1
    [miss] = p4rt.read([fy.P4CounterEntry("fastpath_misses", index=int(MissCounter.TO_CPU))])
    assert miss.data.packet_count == 1


def routed_to_other(sent: Ether) -> Ether:
    """`sent` as the switch routes it to plan.OTHER on port 4: unchanged but for MACs, TTL."""
    out = Ether(bytes(sent))
    out.src, out.dst = plan.SWITCH_MAC[4], plan.HOST_MAC[4]
    out[IP].ttl -= 1
    del out[IP].chksum
    return Ether(bytes(out))


def test_shim_to_another_address_is_transit_traffic(flow_installed, ports: VethPorts) -> None:
    sent = shim_from_client()
    sent[IP].dst = plan.OTHER
    sent = Ether(bytes(sent))
    ports.send(1, sent)
    ports.expect({4: [routed_to_other(sent)]})


def test_other_udp_to_the_fastpath_port_of_another_host_is_routed(
        flow_installed, ports: VethPorts) -> None:
    """An application of another host on UDP port 4434 (here: a UDP echo target) is not
    ours to judge: its payload is no shim, and the switch routes it unchanged."""
    sent = (Ether(src=plan.HOST_MAC[1], dst=plan.SWITCH_MAC[1]) /
            IP(src=plan.CLIENT, dst=plan.OTHER, ttl=64) /
            UDP(sport=50001, dport=shim.FASTPATH_PORT) / Raw(b"\x00" * 14 + INNER))
    sent = Ether(bytes(sent))
    ports.send(1, sent)
    ports.expect({4: [routed_to_other(sent)]})
    assert drops(flow_installed, DropReason.SHIM_VERSION) == 0


def test_bad_version_and_truncated_shims_are_dropped(flow_installed, ports: VethPorts) -> None:
    ports.send(1, shim_from_client(version=2))
    truncated = bytes(shim_from_client(payload=b""))[:-4]  # 4 of the shim's 8 bytes
    ports.send(1, truncated)
    ports.expect_nothing()
    assert drops(flow_installed, DropReason.SHIM_VERSION) == 1
    assert drops(flow_installed, DropReason.PARSER_ERROR) == 1
