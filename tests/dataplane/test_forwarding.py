"""Routing, sanity drops and packet I/O with the controller."""

from __future__ import annotations

import finsy as fy
import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw

from p4src.pipeline import CPU_PORT, DropReason
from tests.dataplane import plan
from tests.dataplane.ptf import VethPorts

pytestmark = pytest.mark.root


def udp_from_client(dst: str = plan.TARGET, ttl: int = 64, payload: bytes = b"x" * 32,
                    sport: int = 5000, dport: int = 6000, **ip_fields: object) -> Ether:
    return (Ether(src=plan.HOST_MAC[1], dst=plan.SWITCH_MAC[1]) /
            IP(src=plan.CLIENT, dst=dst, ttl=ttl, **ip_fields) /
            UDP(sport=sport, dport=dport) / Raw(payload))


def routed(frame: Ether, port: int) -> Ether:
    """What the switch makes of `frame` when it routes it out of `port`."""
    out = Ether(bytes(frame))
    out.src, out.dst = plan.SWITCH_MAC[port], plan.HOST_MAC[port]
    out[IP].ttl -= 1
    del out[IP].chksum
    return Ether(bytes(out))


def drops(p4rt, reason: DropReason) -> int:  # type: ignore[no-untyped-def]
    [entry] = p4rt.read([fy.P4CounterEntry("drops", index=int(reason))])
    return entry.data.packet_count


def test_routes_with_mac_rewrite_and_ttl_decrement(p4rt, ports: VethPorts) -> None:
    p4rt.write(plan.routes())
    sent = udp_from_client()
    ports.send(1, sent)
    ports.expect({3: [routed(sent, 3)]})


def test_ipv4_checksum_is_recomputed_and_udp_checksum_kept(p4rt, ports: VethPorts) -> None:
    p4rt.write(plan.routes())
    sent = udp_from_client(payload=b"checksum" * 10)
    ports.send(1, sent)
    [frame] = ports.receive(1.0)[3]
    got = Ether(frame)
    want_ip = got[IP].chksum
    del got[IP].chksum
    assert IP(bytes(got[IP]))[IP].chksum == want_ip
    assert got[UDP].chksum == Ether(bytes(sent))[UDP].chksum


@pytest.mark.parametrize("name,frame,reason", [
    ("ttl 1", udp_from_client(ttl=1), DropReason.TTL_EXPIRED),
    ("bad checksum", udp_from_client(chksum=0x1234), DropReason.IPV4_CHECKSUM),
    ("ip options", udp_from_client(options=b"\x01\x01\x01\x00"), DropReason.IPV4_OPTIONS),
    ("arp", Ether(src=plan.HOST_MAC[1], dst="ff:ff:ff:ff:ff:ff") / ARP(pdst=plan.TARGET),
     DropReason.NOT_IPV4),
    ("no route", udp_from_client(dst="192.0.2.1"), DropReason.NO_ROUTE),
    ("truncated ipv4", Ether(bytes(udp_from_client())[:24]), DropReason.PARSER_ERROR),
])
def test_unprocessable_packets_are_dropped_and_counted(p4rt, ports: VethPorts, name: str,
                                                        frame: Ether,
                                                        reason: DropReason) -> None:
    p4rt.write(plan.routes())
    ports.send(1, frame)
    ports.expect_nothing()
    assert drops(p4rt, reason) == 1, name
    others = [r for r in DropReason if r != reason]
    assert all(drops(p4rt, r) == 0 for r in others), name


def test_packet_out_leaves_on_the_port_the_controller_names(p4rt, ports: VethPorts) -> None:
    frame = udp_from_client()
    p4rt.packet_out(bytes(frame), egress_port=4, _pad=0)
    ports.expect({4: [frame]})
    assert CPU_PORT == 255
