"""§16.1 Packet I/O (PacketOut metadata, PacketIn to the primary), §16.6 stream errors,
§17 Capabilities.

PacketOut cases use the program's loopback: a PacketOut goes where its egress_port
says, and sent to the CPU port it comes back as a PacketIn. A case sends the PacketOut
under test, then a good one with another marker, on the same stream (the server
handles one stream's messages in order): if the first PacketIn is the good one, the
first PacketOut was dropped. No port, no wait for an absence."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from finsy.proto import p4r

from bmv2 import launcher
from tests.p4runtime import client as rt
from tests.p4runtime import entities as ent
from tests.p4runtime.conftest import DEVICE, Session

GOOD = [(ent.EGRESS_PORT_ID, ent.enc(ent.CPU_PORT)), (ent.OUT_PAD_ID, b"\x00")]


def first_marker(stream: rt.Stream) -> bytes | str:
    """The marker of the next PacketIn (the bytes after the loopback frame's header)."""
    item = stream.next_of("packet")
    if isinstance(item, rt.Ended):
        return rt.status_of(item)
    return item.packet.payload[14:]


def fate(p4rt: Session, metadata: list[tuple[int, bytes]]) -> str:
    """'dropped' or 'forwarded': what becomes of a PacketOut with this metadata."""
    p4rt.stream.packet_out(ent.loopback_frame(b"under test"), metadata)
    p4rt.stream.packet_out(ent.loopback_frame(b"good"), GOOD)
    first = first_marker(p4rt.stream)
    if first == b"under test":
        assert first_marker(p4rt.stream) == b"good"
        return "forwarded"
    assert first == b"good", first
    return "dropped"


@pytest.mark.spec("§16.1")
def test_a_packet_out_comes_back_as_a_packet_in_with_every_metadata_field(
        p4rt: Session) -> None:
    p4rt.stream.packet_out(ent.loopback_frame(b"hello"), GOOD)
    item = p4rt.stream.next_of("packet")
    assert not isinstance(item, rt.Ended), item
    assert item.packet.payload == ent.loopback_frame(b"hello")[3:]
    packet_in = next(m for m in rt.p4info().controller_packet_metadata
                     if m.preamble.name == "packet_in")
    assert sorted((m.metadata_id, m.value) for m in item.packet.metadata) == sorted(
        (m.id, b"\x00") for m in packet_in.metadata)


@pytest.mark.spec("§16.1")
def test_a_packet_out_with_an_unknown_metadata_id_is_dropped(p4rt: Session) -> None:
    assert fate(p4rt, [*GOOD, (99, b"\x01")]) == "dropped"


@pytest.mark.spec("§16.1")
def test_a_packet_out_missing_a_metadata_field_is_dropped(p4rt: Session,
                                                          expect: Callable[..., str]) -> None:
    assert fate(p4rt, GOOD[:1]) == expect("dropped")


@pytest.mark.spec("§16.1")
def test_a_packet_out_with_a_metadata_field_twice_is_dropped(
        p4rt: Session, expect: Callable[..., str]) -> None:
    assert fate(p4rt, [*GOOD, GOOD[1]]) == expect("dropped")


@pytest.mark.spec("§16.1")
def test_a_packet_out_with_a_too_wide_metadata_value_is_dropped(p4rt: Session) -> None:
    assert fate(p4rt, [(ent.EGRESS_PORT_ID, b"\x02\x00"), GOOD[1]]) == "dropped"  # 10 bits


@pytest.mark.spec("§16.1")
def test_a_packet_out_from_a_backup_is_dropped(p4rt: Session,
                                               switch: launcher.SwitchProcess) -> None:
    client = rt.Client(switch.config.grpc_addr, DEVICE)
    backup = client.stream()
    backup.arbitrate(p4rt.election_id - 1, DEVICE)
    assert rt.status_of(backup.arbitration()) == "ALREADY_EXISTS"
    backup.packet_out(ent.loopback_frame(b"from backup"), GOOD)
    p4rt.stream.packet_out(ent.loopback_frame(b"good"), GOOD)
    assert first_marker(p4rt.stream) == b"good"
    backup.close()
    client.close()


@pytest.mark.spec("§16.6")
def test_a_reported_stream_error_names_the_code_and_the_packet_out(p4rt: Session) -> None:
    """Reporting stream errors is optional; a server that reports one must set the
    canonical code and say which message caused it (the packet_out detail)."""
    p4rt.stream.packet_out(ent.loopback_frame(b"bad"), [*GOOD, (99, b"\x01")])
    p4rt.stream.packet_out(ent.loopback_frame(b"good"), GOOD)
    item = p4rt.stream.next()
    assert not isinstance(item, rt.Ended), item
    if item.WhichOneof("update") == "error":
        assert rt.code_name(item.error.canonical_code) == "INVALID_ARGUMENT"
        assert item.error.WhichOneof("details") == "packet_out"
        assert item.error.packet_out.packet_out.payload == ent.loopback_frame(b"bad")
    else:  # not reported: the next message is the good PacketOut's PacketIn
        assert item.WhichOneof("update") == "packet", item


@pytest.mark.spec("§17")
def test_capabilities_give_a_full_semantic_version(p4rt: Session) -> None:
    outcome = p4rt.client.capabilities()
    assert outcome.code == "OK"
    assert isinstance(outcome.reply, p4r.CapabilitiesResponse)
    assert re.fullmatch(r"\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?",
                        outcome.reply.p4runtime_api_version)


@pytest.mark.spec("§17")
def test_capabilities_of_an_unknown_device_are_not_found(p4rt: Session,
                                                         expect: Callable[..., str]) -> None:
    assert p4rt.client.capabilities(DEVICE + 1).code == expect("NOT_FOUND")
