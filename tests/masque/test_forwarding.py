"""The proxy's software forwarder and VCID allocator, without sockets."""

from __future__ import annotations

import pytest

from hostagent.masque.forwarding import (
    TO_CLIENT,
    TO_TARGET,
    ForwardingRule,
    FourTuple,
    SoftwareForwarder,
)
from hostagent.masque.proxy_forwarding import VcidAllocator, client_side_vcids
from hostagent.masque.quic_proxy import NoVcidAvailable
from hostagent.masque.quic_proxy_wire import cids_conflict

CLIENT = FourTuple(("10.0.1.10", 5000), ("10.0.2.10", 4433))
TARGET_SIDE = FourTuple(("10.0.2.10", 40000), ("10.0.3.10", 4433))
BACK = FourTuple(TARGET_SIDE.dst, TARGET_SIDE.src)
TO_CLIENT_OUT = FourTuple(CLIENT.dst, CLIENT.src)


def _forwarder() -> tuple[SoftwareForwarder, list[tuple[ForwardingRule, bytes]]]:
    sent: list[tuple[ForwardingRule, bytes]] = []
    return SoftwareForwarder(lambda rule, packet: sent.append((rule, packet))), sent


def test_rewrites_the_dcid_of_matching_short_header_packets_only() -> None:
    fwd, sent = _forwarder()
    up = ForwardingRule(TO_TARGET, CLIENT, b"V" * 8, TARGET_SIDE, b"T" * 8, 3, "t")
    fwd.install(up)
    assert fwd.forward(CLIENT, b"\x41" + b"V" * 8 + b"rest")
    assert sent == [(up, b"\x41" + b"T" * 8 + b"rest")]
    assert not fwd.forward(CLIENT, b"\xc1" + b"V" * 8 + b"rest")  # long header
    assert not fwd.forward(CLIENT, b"\x41" + b"W" * 8 + b"rest")  # another DCID
    other_source = FourTuple(("10.0.1.11", 5000), CLIENT.dst)
    assert not fwd.forward(other_source, b"\x41" + b"V" * 8 + b"rest")  # another 4-tuple
    assert not fwd.forward(CLIENT, b"\x41" + b"V" * 8)  # nothing after the DCID: too short
    assert fwd.counters.to_target_packets == 1 and fwd.counters.per_tunnel == {"t": [1, 0]}


def test_dcids_of_several_lengths_on_one_4_tuple() -> None:
    fwd, sent = _forwarder()
    four = ForwardingRule(TO_CLIENT, BACK, b"abcd", TO_CLIENT_OUT, b"12345678")
    twelve = ForwardingRule(TO_CLIENT, BACK, b"x" * 12, TO_CLIENT_OUT, b"y" * 12)
    fwd.install(four)
    fwd.install(twelve)
    assert fwd.forward(BACK, b"\x40abcdpayload")
    assert fwd.forward(BACK, b"\x40" + b"x" * 12 + b"payload")
    assert [p for _, p in sent] == [b"\x4012345678payload", b"\x40" + b"y" * 12 + b"payload"]
    assert fwd.counters.to_client_packets == 2


def test_remove_takes_only_the_same_rule() -> None:
    fwd, _ = _forwarder()
    rule = ForwardingRule(TO_TARGET, CLIENT, b"V" * 8, TARGET_SIDE, b"T" * 8)
    fwd.install(rule)
    fwd.remove(ForwardingRule(TO_TARGET, CLIENT, b"V" * 8, TARGET_SIDE, b"U" * 8))
    assert len(fwd) == 1
    fwd.remove(rule)
    fwd.remove(rule)  # a rule not installed: no-op
    assert len(fwd) == 0 and fwd.rules() == []
    assert not fwd.forward(CLIENT, b"\x41" + b"V" * 8 + b"rest")


def test_vcid_allocator_avoids_known_ids_per_direction() -> None:
    fwd, _ = _forwarder()
    fwd.install(ForwardingRule(TO_TARGET, CLIENT, b"V" * 8, TARGET_SIDE, b"T" * 8))
    fwd.install(ForwardingRule(TO_CLIENT, BACK, b"C" * 8, TO_CLIENT_OUT, b"W" * 8))
    assert list(client_side_vcids(fwd, True)) == [b"W" * 8]
    assert list(client_side_vcids(fwd, False)) == [b"V" * 8]
    known = {True: [b""], False: [b"P" * 8]}  # zero-length outer CIDs towards the client
    allocate = VcidAllocator(lambda client: known[client])
    with pytest.raises(NoVcidAvailable):
        allocate(8, True)
    vcids = {allocate(8, False) for _ in range(200)}
    assert len(vcids) == 200 and all(len(v) == 8 for v in vcids)
    assert not any(cids_conflict(v, b"P" * 8) for v in vcids)
