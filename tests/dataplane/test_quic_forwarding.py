"""Forwarded mode of QUIC-aware proxying in the switch (draft-ietf-masque-quic-proxy-06,
identity transform): both directions rewritten exactly, misses and long headers passed
on unchanged, a mapped DCID from another 4-tuple never forwarded, counters."""

from __future__ import annotations

import finsy as fy
import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from p4src.pipeline import VCID_BYTES
from tests.dataplane import plan
from tests.dataplane.ptf import VethPorts

pytestmark = pytest.mark.root

QUIC_PORT, PROXY_TARGET_PORT, CLIENT_PORT = 4433, 40001, 50000
TARGET_VCID, TARGET_CID = bytes.fromhex("a1a2a3a4a5a6a7a8"), bytes.fromhex("b1b2b3b4b5b6b7b8")
CLIENT_CID, CLIENT_VCID = bytes.fromhex("c1c2c3c4c5c6c7c8"), bytes.fromhex("d1d2d3d4d5d6d7d8")
PAYLOAD = bytes(range(40))  # packet number and protected payload: never touched


def short(dcid: bytes, first: int = 0x41) -> bytes:
    """A QUIC short header: first byte (form 0, fixed bit 1), DCID, then the payload."""
    return bytes([first]) + dcid + PAYLOAD


def udp(port: int, src: tuple[str, int], dst: tuple[str, int], payload: bytes) -> Ether:
    return (Ether(src=plan.HOST_MAC[port], dst=plan.SWITCH_MAC[port]) /
            IP(src=src[0], dst=dst[0], ttl=64) / UDP(sport=src[1], dport=dst[1]) /
            Raw(payload))


def delivered(src: tuple[str, int], dst: tuple[str, int], payload: bytes, port: int,
              checksum: int | None = None) -> Ether:
    """What the switch emits: routed to `port` (MACs, TTL - 1), UDP checksum as given."""
    pkt = (Ether(src=plan.SWITCH_MAC[port], dst=plan.HOST_MAC[port]) /
           IP(src=src[0], dst=dst[0], ttl=63) / UDP(sport=src[1], dport=dst[1]) /
           Raw(payload))
    if checksum is not None:
        pkt[UDP].chksum = checksum
    return pkt


CLIENT = (plan.CLIENT, CLIENT_PORT)
PROXY_QUIC = (plan.PROXY, QUIC_PORT)
PROXY_OUT = (plan.PROXY, PROXY_TARGET_PORT)
TARGET = (plan.TARGET, QUIC_PORT)


def install(p4rt) -> None:  # type: ignore[no-untyped-def]
    p4rt.write(plan.routes()
               + plan.quic_mapping(CLIENT, PROXY_QUIC, TARGET_VCID, PROXY_OUT, TARGET,
                                   TARGET_CID, rank=7)
               + plan.quic_mapping(TARGET, PROXY_OUT, CLIENT_CID, PROXY_QUIC, CLIENT,
                                   CLIENT_VCID, rank=9, direction="to_client"))


def forwarded_packets(p4rt) -> int:  # type: ignore[no-untyped-def]
    return sum(e.data.packet_count
               for e in p4rt.read([fy.P4DirectCounterEntry("quic_forward_counter")]))


def wrong_source(p4rt) -> int:  # type: ignore[no-untyped-def]
    return sum(e.data.packet_count for e in p4rt.read([fy.P4CounterEntry("quic_wrong_source")]))


def test_the_cid_length_is_the_proxys() -> None:
    assert len(TARGET_VCID) == VCID_BYTES


def test_client_to_target_is_rewritten(p4rt, ports: VethPorts) -> None:
    install(p4rt)
    ports.send(1, udp(1, CLIENT, PROXY_QUIC, short(TARGET_VCID)))
    ports.expect({3: [delivered(PROXY_OUT, TARGET, short(TARGET_CID), 3, checksum=0)]})


def test_target_to_client_is_rewritten(p4rt, ports: VethPorts) -> None:
    install(p4rt)
    ports.send(3, udp(3, TARGET, PROXY_OUT, short(CLIENT_CID, first=0x5f)))
    ports.expect({1: [delivered(PROXY_QUIC, CLIENT, short(CLIENT_VCID, first=0x5f), 1,
                                checksum=0)]})
    assert forwarded_packets(p4rt) == 1


def test_unknown_dcid_and_long_headers_go_to_the_proxy_unchanged(p4rt,
                                                                ports: VethPorts) -> None:
    install(p4rt)
    unknown = short(bytes(8))
    # a long header (form 1) that happens to carry the target VCID where a DCID would be
    long_header = bytes([0xc0]) + TARGET_VCID + PAYLOAD
    for payload in (unknown, long_header):
        sent = udp(1, CLIENT, PROXY_QUIC, payload)
        ports.send(1, sent)
        expected = delivered(CLIENT, PROXY_QUIC, payload, 2)
        expected[UDP].chksum = sent[UDP].chksum  # routed: the checksum stays
        ports.expect({2: [expected]})
    assert forwarded_packets(p4rt) == 0


def test_a_mapped_dcid_from_another_source_is_never_forwarded(p4rt, ports: VethPorts) -> None:
    install(p4rt)
    spoofed = udp(4, (plan.OTHER, CLIENT_PORT), PROXY_QUIC, short(TARGET_VCID))
    ports.send(4, spoofed)
    expected = delivered((plan.OTHER, CLIENT_PORT), PROXY_QUIC, short(TARGET_VCID), 2)
    expected[UDP].chksum = spoofed[UDP].chksum
    ports.expect({2: [expected]})
    other_port = udp(1, (plan.CLIENT, CLIENT_PORT + 1), PROXY_QUIC, short(TARGET_VCID))
    ports.send(1, other_port)
    assert len(ports.receive(0.5)[2]) == 1
    assert wrong_source(p4rt) == 2 and forwarded_packets(p4rt) == 0


def test_short_udp_datagrams_are_not_parsed_as_quic(p4rt, ports: VethPorts) -> None:
    install(p4rt)
    for size in (0, 1, 8):
        sent = udp(1, CLIENT, PROXY_QUIC, bytes([0x41]) * size)
        ports.send(1, sent)
        expected = delivered(CLIENT, PROXY_QUIC, bytes([0x41]) * size, 2)
        expected[UDP].chksum = sent[UDP].chksum
        ports.expect({2: [expected]})


def test_the_mapping_rank_reaches_the_scheduler(p4rt, ports: VethPorts) -> None:
    from p4src.pipeline import SchedMode
    install(p4rt)
    p4rt.write([plan.sched_mode(SchedMode.STRICT), +fy.P4TableEntry(
        "rank_to_queue", match=fy.Match(rank=(7, 7)), action=fy.Action("set_queue", queue=5),
        priority=1)])
    ports.send(1, udp(1, CLIENT, PROXY_QUIC, short(TARGET_VCID)))
    ports.receive(0.5)
    counts = {e.index: e.data.packet_count
              for e in p4rt.read([fy.P4CounterEntry("queue_enqueues")])}
    assert counts.get(5) == 1
