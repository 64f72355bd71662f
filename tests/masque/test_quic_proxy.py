"""QUIC-aware proxying sans-I/O: negotiation (every refusal path) and both ends' connection-ID
state machines (sequence numbers, limits, conflicts, rejections, who may send what)."""

from __future__ import annotations

import itertools

import pytest

from hostagent.masque import quic_proxy as qp
from hostagent.masque import quic_proxy_wire as w
from hostagent.masque.wire import H3_DATAGRAM_ERROR

CAPSULE = (b"capsule-protocol", b"?1")


def _vcids() -> qp.Callable[[int, bool], bytes]:
    counter = itertools.count(1)
    return lambda length, client: next(counter).to_bytes(length, "big")


# -- negotiation -------------------------------------------------------------------------------

def _request(value: bytes | None, capsule: bool = True) -> dict[bytes, bytes]:
    headers = {b"capsule-protocol": b"?1"} if capsule else {}
    if value is not None:
        headers[w.FORWARDING_HEADER] = value
    return headers


def test_proxy_selects_identity() -> None:
    got = qp.proxy_negotiate(_request(b'?1; accept-transform="scramble-dt,identity"'),
                             enabled=True)
    assert got.extension and got.forwarding and got.transform == "identity"
    assert dict(got.headers) == {w.FORWARDING_HEADER: b'?1; transform="identity"',
                                 w.PORT_SHARING_HEADER: b"?0"}


@pytest.mark.parametrize(("value", "capsule", "extension", "why"), [
    (None, True, False, ""),  # plain CONNECT-UDP
    (b'?1; accept-transform="identity"', False, False, "capsule-protocol"),
    (b"?1", True, False, "without accept-transform"),  # ignored: as if absent
    (b"?1; accept-transform=3", True, False, "String"),
    (b"not a boolean", True, False, "unparsable"),
    (b"?0", True, True, "asked for ?0"),  # connection-ID awareness only
    (b'?1; accept-transform="scramble-dt"', True, True, "no common transform"),
    (b'?1; accept-transform="scramble"', True, True, "no common transform"),
    (b'?1; accept-transform=""', True, True, "no common transform"),
])
def test_proxy_refusals(value: bytes | None, capsule: bool, extension: bool, why: str) -> None:
    got = qp.proxy_negotiate(_request(value, capsule), enabled=True)
    assert not got.forwarding and got.transform is None
    assert got.extension is extension
    assert why in got.reason
    if extension:  # a proxy that speaks the draft answers ?0 and never transform=
        assert dict(got.headers)[w.FORWARDING_HEADER] == b"?0"
    else:
        assert got.headers == []


def test_proxy_with_forwarding_disabled_answers_zero() -> None:
    got = qp.proxy_negotiate(_request(b'?1; accept-transform="identity"'), enabled=False)
    assert got.extension and not got.forwarding
    assert dict(got.headers)[w.FORWARDING_HEADER] == b"?0"
    assert "disabled" in got.reason


def test_proxy_ignores_a_clients_transform_parameter() -> None:
    got = qp.proxy_negotiate(_request(b'?1; accept-transform="identity"; transform="x"'),
                             enabled=True)
    assert got.transform == "identity"


def test_client_request_headers() -> None:
    assert dict(qp.client_request_headers()) == {
        w.FORWARDING_HEADER: b'?1; accept-transform="identity"', w.PORT_SHARING_HEADER: b"?0"}


@pytest.mark.parametrize(("headers", "forwarding", "extension"), [
    ({b"capsule-protocol": b"?1", w.FORWARDING_HEADER: b'?1; transform="identity"'}, True,
     True),
    ({b"capsule-protocol": b"?1"}, False, False),
    ({w.FORWARDING_HEADER: b'?1; transform="identity"'}, False, False),
    ({b"capsule-protocol": b"?1", w.FORWARDING_HEADER: b"?0"}, False, True),
    ({b"capsule-protocol": b"?1", w.FORWARDING_HEADER: b"?1"}, False, True),
    ({b"capsule-protocol": b"?1", w.FORWARDING_HEADER: b"garbage"}, False, False),
    ({b"capsule-protocol": b"?1",  # a server's accept-transform is ignored
      w.FORWARDING_HEADER: b'?1; transform="identity"; accept-transform="x"'}, True, True),
])
def test_client_interprets_the_response(headers: dict[bytes, bytes], forwarding: bool,
                                        extension: bool) -> None:
    got = qp.client_interpret(headers)
    assert got.forwarding is forwarding and got.extension is extension
    assert (got.transform == "identity") is forwarding
    assert forwarding or got.reason


def test_client_aborts_on_a_transform_it_did_not_offer() -> None:
    with pytest.raises(qp.TransformNotOffered):
        qp.client_interpret({b"capsule-protocol": b"?1",
                             w.FORWARDING_HEADER: b'?1; transform="scramble-dt"'})


# -- the proxy's state machine -----------------------------------------------------------------

def _proxy(forwarding: bool = True, max_active: int = 4) -> qp.ProxyCidState:
    """A proxy state that has sent its first MAX_CONNECTION_IDS already."""
    state = qp.ProxyCidState(forwarding=forwarding, new_vcid=_vcids(), max_active=max_active)
    state.start()
    return state


def _sent(actions: list[qp.Action]) -> list[w.CidCapsule]:
    return [a.capsule for a in actions if isinstance(a, qp.Send)]


def test_proxy_full_exchange() -> None:
    state = qp.ProxyCidState(forwarding=True, new_vcid=_vcids(), max_active=4)
    assert _sent(state.start()) == [w.MaxConnectionIds(3)]
    cid, tcid = b"C" * 8, b"T" * 8
    v1 = (1).to_bytes(8, "big")
    got = state.receive(w.RegisterClientCid(cid))
    assert got == [qp.Send(w.AckClientCid(cid, v1))]  # no rule before ACK_CLIENT_VCID
    got = state.receive(w.AckClientVcid(cid, v1, b"R" * 16))
    assert got == [qp.Install(qp.ToClientRule(cid, v1))]
    v2 = (2).to_bytes(8, "big")
    got = state.receive(w.RegisterTargetCid(tcid, b"S" * 16))
    # the rule is installed before the client can learn the VCID
    assert got == [qp.Install(qp.ToTargetRule(v2, tcid)), qp.Send(w.AckTargetCid(tcid, v2, b""))]
    assert set(state.rules()) == {qp.ToClientRule(cid, v1), qp.ToTargetRule(v2, tcid)}
    got = state.receive(w.CloseTargetCid(tcid))
    assert got == [qp.Remove(qp.ToTargetRule(v2, tcid)), qp.Send(w.MaxConnectionIds(4))]
    got = state.receive(w.CloseClientCid(cid))
    assert got == [qp.Remove(qp.ToClientRule(cid, v1)), qp.Send(w.MaxConnectionIds(5))]
    assert state.rules() == []


def test_client_vcid_is_at_least_as_long_as_the_client_cid() -> None:
    state = _proxy()
    (ack,) = _sent(state.receive(w.RegisterClientCid(b"\x01" * 4)))
    assert isinstance(ack, w.AckClientCid) and len(ack.vcid) == w.VCID_LENGTH
    (ack,) = _sent(state.receive(w.RegisterClientCid(b"\x02" * 12)))
    assert isinstance(ack, w.AckClientCid) and len(ack.vcid) == 12


def test_sequence_numbers_past_the_initial_maximum_reset_the_stream() -> None:
    state = _proxy(max_active=2)  # the client keeps the initial allowance of 1
    assert state.max_sequence == 1
    state.receive(w.RegisterClientCid(b"A" * 8))  # 0
    state.receive(w.RegisterTargetCid(b"B" * 8))  # 1
    with pytest.raises(qp.ProtocolViolation) as err:
        state.receive(w.RegisterTargetCid(b"C" * 8))  # 2 > 1
    assert err.value.error_code == H3_DATAGRAM_ERROR
    assert "sequence number 2 exceeds MAX_CONNECTION_IDS 1" in err.value.reason


def test_sequence_numbers_are_shared_and_count_reregistrations_and_rejections() -> None:
    state = qp.ProxyCidState(forwarding=True, new_vcid=_vcids(), max_active=3)
    assert _sent(state.start()) == [w.MaxConnectionIds(2)]
    state.receive(w.RegisterClientCid(b"A" * 8))  # 0
    state.receive(w.RegisterClientCid(b"A" * 8))  # 1: re-registration, still one active
    assert state.max_sequence == 3  # the superseded registration freed a number
    state.receive(w.RegisterClientCid(b"A" * 4))  # 2: conflicts (prefix): rejected
    assert state.max_sequence == 4
    state.receive(w.RegisterTargetCid(b"T" * 8))  # 3
    state.receive(w.RegisterTargetCid(b"U" * 8))  # 4
    with pytest.raises(qp.ProtocolViolation):
        state.receive(w.RegisterTargetCid(b"V" * 8))  # 5 > 4: three active


@pytest.mark.parametrize("capsule", [w.AckClientCid(b"A", b"B"), w.AckTargetCid(b"A", b"B"),
                                     w.MaxConnectionIds(5)])
def test_proxy_only_capsules_from_a_client_reset_the_stream(capsule: w.CidCapsule) -> None:
    with pytest.raises(qp.ProtocolViolation, match="only a proxy"):
        _proxy().receive(capsule)


def test_ack_client_vcid_without_forwarding_is_a_violation() -> None:
    state = _proxy(forwarding=False)
    assert _sent(state.receive(w.RegisterClientCid(b"A" * 8))) == [w.AckClientCid(b"A" * 8,
                                                                                 b"")]
    with pytest.raises(qp.ProtocolViolation, match="without forwarded mode"):
        state.receive(w.AckClientVcid(b"A" * 8, b"X" * 8))


def test_without_forwarding_acks_carry_no_vcid_and_install_nothing() -> None:
    state = _proxy(forwarding=False)
    got = state.receive(w.RegisterTargetCid(b"T" * 8, b"S" * 16))
    assert got == [qp.Send(w.AckTargetCid(b"T" * 8, b"", b""))]
    assert state.rules() == []


def test_conflicting_client_cids_are_rejected_with_close() -> None:
    state = _proxy()
    state.receive(w.RegisterClientCid(b"\x01\x02\x03\x04\x05\x06\x07\x08"))
    got = state.receive(w.RegisterClientCid(b"\x01\x02\x03\x04"))  # a prefix
    assert _sent(got)[0] == w.CloseClientCid(b"\x01\x02\x03\x04")
    assert state.counters.rejected == 1
    got = state.receive(w.RegisterClientCid(b""))  # zero-length: conflicts with all
    assert _sent(got)[0] == w.CloseClientCid(b"")


def test_shared_4tuple_conflicts_are_rejected() -> None:
    state = qp.ProxyCidState(forwarding=True, new_vcid=_vcids(),
                             client_cid_taken=lambda cid: cid == b"X" * 8)
    state.start()
    got = _sent(state.receive(w.RegisterClientCid(b"X" * 8)))
    assert got == [w.CloseClientCid(b"X" * 8), w.MaxConnectionIds(16)]  # the number is freed


def test_overlong_client_cid_is_rejected_in_forwarded_mode() -> None:
    state = _proxy()
    got = state.receive(w.RegisterClientCid(b"\x05" * 21))
    assert _sent(got)[0] == w.CloseClientCid(b"\x05" * 21)


def test_reregistration_replaces_the_vcid_and_stops_forwarding_until_acked() -> None:
    state = _proxy()
    cid = b"C" * 8
    (ack1,) = _sent(state.receive(w.RegisterClientCid(cid)))
    assert isinstance(ack1, w.AckClientCid)
    state.receive(w.AckClientVcid(cid, ack1.vcid))
    got = state.receive(w.RegisterClientCid(cid))
    assert got[0] == qp.Remove(qp.ToClientRule(cid, ack1.vcid))
    ack2 = _sent(got)[0]
    assert isinstance(ack2, w.AckClientCid) and ack2.vcid != ack1.vcid
    assert state.rules() == []
    assert state.receive(w.AckClientVcid(cid, ack1.vcid)) == []  # stale VCID: ignored
    assert state.receive(w.AckClientVcid(cid, ack2.vcid)) == [
        qp.Install(qp.ToClientRule(cid, ack2.vcid))]
    tcid = b"T" * 8
    (first,) = [a for a in state.receive(w.RegisterTargetCid(tcid)) if isinstance(a, qp.Install)]
    again = state.receive(w.RegisterTargetCid(tcid))
    assert again[0] == qp.Remove(first.rule)
    assert isinstance(again[1], qp.Install) and again[1].rule != first.rule


def test_stale_acks_and_closes_are_counted_not_fatal() -> None:
    state = _proxy()
    assert state.receive(w.AckClientVcid(b"nope", b"V" * 8)) == []
    assert state.receive(w.CloseClientCid(b"nope")) == []
    assert state.receive(w.CloseTargetCid(b"nope")) == []
    assert state.counters.stale == 3


def test_proxy_initiated_close() -> None:
    state = _proxy()
    tcid = b"T" * 8
    (install, _ack) = state.receive(w.RegisterTargetCid(tcid))
    assert isinstance(install, qp.Install)
    got = state.close_target_cid(tcid)
    assert got[:2] == [qp.Remove(install.rule), qp.Send(w.CloseTargetCid(tcid))]
    assert state.close_target_cid(tcid) == []


def test_no_free_vcid_rejects_the_registration() -> None:
    def none(length: int, client: bool) -> bytes:
        raise qp.NoVcidAvailable("zero-length outer CIDs")

    state = qp.ProxyCidState(forwarding=True, new_vcid=none, max_active=4)
    state.start()
    assert _sent(state.receive(w.RegisterClientCid(b"C" * 8)))[0] == w.CloseClientCid(b"C" * 8)
    assert _sent(state.receive(w.RegisterTargetCid(b"T" * 8)))[0] == w.CloseTargetCid(b"T" * 8)
    assert state.rules() == [] and not state.client_cids and not state.target_cids
    assert state.counters.rejected == 2


def test_max_active_must_allow_the_initial_two() -> None:
    with pytest.raises(ValueError):
        qp.ProxyCidState(forwarding=True, new_vcid=_vcids(), max_active=1)


# -- the client's state machine ----------------------------------------------------------------

def test_client_full_exchange() -> None:
    state = qp.ClientCidState(forwarding=True)
    cid, tcid, vc, vt = b"C" * 8, b"T" * 8, b"v" * 8, b"w" * 8
    assert state.add_client_cid(cid) == [w.RegisterClientCid(cid)]
    assert state.add_client_cid(cid) == []  # registered once
    assert state.add_target_cid(tcid, b"S" * 16) == [w.RegisterTargetCid(tcid, b"S" * 16)]
    sent, events = state.receive(w.AckClientCid(cid, vc))
    assert sent == [w.AckClientVcid(cid, vc, b"")]
    assert events == [qp.ClientVcidReady(cid, vc)]
    sent, events = state.receive(w.AckTargetCid(tcid, vt, b""))
    assert sent == [] and events == [qp.TargetVcidReady(tcid, vt)]
    assert state.target_vcid(tcid) == vt
    sent, events = state.retire_target_cid(tcid)
    assert sent == [w.CloseTargetCid(tcid)] and events == [qp.TargetVcidGone(tcid, vt)]
    assert state.target_vcid(tcid) is None
    sent, events = state.retire_client_cid(cid)
    assert sent == [w.CloseClientCid(cid)] and events == [qp.ClientVcidGone(cid, vc)]


def test_client_queues_registrations_beyond_the_allowance() -> None:
    state = qp.ClientCidState(forwarding=True)
    assert state.add_client_cid(b"A" * 8)  # 0
    assert state.add_target_cid(b"B" * 8)  # 1
    assert state.add_client_cid(b"C" * 8) == []  # 2: waits
    assert state.add_target_cid(b"D" * 8) == []  # 3: waits
    assert state.retire_target_cid(b"D" * 8) == ([], [])  # never sent: nothing to close
    sent, _ = state.receive(w.MaxConnectionIds(5))
    assert sent == [w.RegisterClientCid(b"C" * 8)]
    assert state.next_sequence == 3 and state.counters.queued == 2


def test_client_resets_on_max_connection_ids_below_one() -> None:
    state = qp.ClientCidState(forwarding=True)
    with pytest.raises(qp.ProtocolViolation) as err:
        state.receive(w.MaxConnectionIds(0))
    assert err.value.error_code == H3_DATAGRAM_ERROR


def test_client_ignores_a_lower_maximum() -> None:
    state = qp.ClientCidState(forwarding=True)
    state.receive(w.MaxConnectionIds(9))
    state.receive(w.MaxConnectionIds(2))
    assert state.max_sequence == 9


@pytest.mark.parametrize("capsule", [w.RegisterClientCid(b"A"), w.RegisterTargetCid(b"A"),
                                     w.AckClientVcid(b"A", b"B")])
def test_client_only_capsules_from_a_proxy_reset_the_stream(capsule: w.CidCapsule) -> None:
    with pytest.raises(qp.ProtocolViolation, match="only a client"):
        qp.ClientCidState(forwarding=True).receive(capsule)


def test_vcid_without_forwarding_is_a_violation() -> None:
    state = qp.ClientCidState(forwarding=False)
    state.add_client_cid(b"A" * 8)
    with pytest.raises(qp.ProtocolViolation, match="without forwarded mode"):
        state.receive(w.AckClientCid(b"A" * 8, b"V" * 8))
    state.add_target_cid(b"T" * 8)
    with pytest.raises(qp.ProtocolViolation):
        state.receive(w.AckTargetCid(b"T" * 8, b"", b"S" * 16))


def test_client_refuses_bad_client_vcids_with_close() -> None:
    outer = [b"O" * 8]
    state = qp.ClientCidState(forwarding=True, outer_cids=lambda: outer)
    state.add_client_cid(b"A" * 8)
    sent, events = state.receive(w.AckClientCid(b"A" * 8, b"O" * 8))  # an outer CID
    assert sent == [w.CloseClientCid(b"A" * 8)]
    assert isinstance(events[0], qp.Rejected) and "outer" in events[0].reason
    state.add_client_cid(b"B" * 8)
    sent, events = state.receive(w.AckClientCid(b"B" * 8, b"short"))
    assert sent == [w.CloseClientCid(b"B" * 8)] and "shorter" in events[0].reason  # type: ignore[union-attr]
    state.receive(w.MaxConnectionIds(10))
    state.add_client_cid(b"C" * 8)
    state.receive(w.AckClientCid(b"C" * 8, b"V" * 8))
    state.add_client_cid(b"D" * 8)
    sent, _ = state.receive(w.AckClientCid(b"D" * 8, b"V" * 8))  # same VCID as C's
    assert sent == [w.CloseClientCid(b"D" * 8)]
    with pytest.raises(qp.ProtocolViolation, match="not a valid QUIC v1"):
        state.add_client_cid(b"E" * 8)
        state.receive(w.AckClientCid(b"E" * 8, b"V" * 21))


def test_client_sees_rejections_and_proxy_closes() -> None:
    state = qp.ClientCidState(forwarding=True)
    state.add_target_cid(b"T" * 8)
    _, events = state.receive(w.CloseTargetCid(b"T" * 8))  # before any ACK: rejected
    assert events == [qp.Rejected("target", b"T" * 8, "CLOSE_TARGET_CID before an ACK")]
    assert state.add_target_cid(b"T" * 8) == []  # not offered again while it lives
    state.retire_target_cid(b"T" * 8)
    assert state.add_target_cid(b"T" * 8) == [w.RegisterTargetCid(b"T" * 8)]
    state.add_target_cid(b"U" * 8)
    state.receive(w.AckTargetCid(b"U" * 8, b"w" * 8))
    _, events = state.receive(w.CloseTargetCid(b"U" * 8))  # after: the proxy closed it
    assert events == [qp.TargetVcidGone(b"U" * 8, b"w" * 8)]
    assert state.add_target_cid(b"U" * 8) == []  # closed by the proxy: not offered again
    assert state.counters.rejected == 1 and state.counters.closed_by_proxy == 1
    assert state.receive(w.AckTargetCid(b"U" * 8, b"x" * 8)) == ([], [])  # stale
    assert state.counters.stale == 1


def test_client_close_all_reports_every_vcid() -> None:
    state = qp.ClientCidState(forwarding=True)
    state.add_client_cid(b"A" * 8)
    state.add_target_cid(b"T" * 8)
    state.receive(w.AckClientCid(b"A" * 8, b"v" * 8))
    state.receive(w.AckTargetCid(b"T" * 8, b"w" * 8))
    assert set(state.close_all()) == {qp.ClientVcidGone(b"A" * 8, b"v" * 8),
                                      qp.TargetVcidGone(b"T" * 8, b"w" * 8)}
