"""draft-ietf-masque-quic-proxy-06 wire formats, byte for byte: every capsule, the header
fields, and the identity-transform test vector of the draft's Appendix A."""

from __future__ import annotations

import pytest

from hostagent.masque import quic_proxy_wire as qp
from hostagent.masque.wire import CapsuleParser, WireError

TOKEN = bytes(range(16))


def test_codepoints_are_the_drafts() -> None:
    # the draft's "Capsule Types" table
    ours = (qp.REGISTER_CLIENT_CID, qp.REGISTER_TARGET_CID, qp.ACK_CLIENT_CID,
            qp.ACK_CLIENT_VCID, qp.ACK_TARGET_CID, qp.CLOSE_CLIENT_CID, qp.CLOSE_TARGET_CID,
            qp.MAX_CONNECTION_IDS)
    assert ours == tuple(range(0xFFE600, 0xFFE608))
    assert qp.DRAFT == "draft-ietf-masque-quic-proxy-06"
    assert qp.VCID_LENGTH == 8


# Type 0xffe6xx is a 4-byte varint: 0x80 | top bits, so 80 ff e6 xx.
@pytest.mark.parametrize(("capsule", "wire"), [
    (qp.RegisterClientCid(bytes.fromhex("31323334")), "80ffe600 04 31323334"),
    (qp.RegisterClientCid(b""), "80ffe600 00"),
    (qp.RegisterTargetCid(bytes.fromhex("61626364"), TOKEN),
     "80ffe601 16 04 61626364 10 000102030405060708090a0b0c0d0e0f"),
    (qp.RegisterTargetCid(bytes.fromhex("61626364")), "80ffe601 06 04 61626364 00"),
    (qp.AckClientCid(bytes.fromhex("31323334"), bytes.fromhex("62646668")),
     "80ffe602 0a 04 31323334 04 62646668"),
    (qp.AckClientCid(bytes.fromhex("31323334"), b""), "80ffe602 06 04 31323334 00"),
    (qp.AckClientVcid(bytes.fromhex("31323334"), bytes.fromhex("62646668"), TOKEN),
     "80ffe603 1b 04 31323334 04 62646668 10 000102030405060708090a0b0c0d0e0f"),
    (qp.AckTargetCid(bytes.fromhex("61626364"), bytes.fromhex("123412341234"), b""),
     "80ffe604 0d 04 61626364 06 123412341234 00"),
    (qp.CloseClientCid(bytes.fromhex("31323334")), "80ffe605 04 31323334"),
    (qp.CloseTargetCid(bytes.fromhex("61626364")), "80ffe606 04 61626364"),
    (qp.MaxConnectionIds(3), "80ffe607 01 03"),
    (qp.MaxConnectionIds(1000), "80ffe607 02 43e8"),
])
def test_capsules_encode_and_decode_byte_for_byte(capsule: qp.CidCapsule, wire: str) -> None:
    raw = bytes.fromhex(wire.replace(" ", ""))
    assert capsule.encode() == raw
    ((ctype, value),) = CapsuleParser().feed(raw)
    assert ctype == capsule.TYPE
    assert qp.decode_capsule(ctype, value) == capsule


def test_twenty_byte_and_255_byte_cids() -> None:
    cid = bytes(range(20))
    ((ctype, value),) = CapsuleParser().feed(qp.AckClientCid(cid, cid).encode())
    assert value[:1] == b"\x14" and qp.decode_capsule(ctype, value) == qp.AckClientCid(cid, cid)
    long = b"\x01" * 255
    raw = qp.RegisterTargetCid(long).encode()
    ((ctype, value),) = CapsuleParser().feed(raw)
    assert value[:2] == bytes.fromhex("40ff")  # 255 needs a 2-byte varint
    assert qp.decode_capsule(ctype, value) == qp.RegisterTargetCid(long)
    with pytest.raises(qp.CapsuleError):
        qp.RegisterClientCid(b"\x00" * 256).encode()


@pytest.mark.parametrize(("ctype", "value", "why"), [
    (qp.REGISTER_TARGET_CID, bytes.fromhex("0561626364"), "truncated"),
    (qp.REGISTER_TARGET_CID, bytes.fromhex("0461626364"), "truncated"),  # no token length
    (qp.ACK_CLIENT_CID, bytes.fromhex("04616263640162ff"), "after the last field"),
    (qp.ACK_TARGET_CID, bytes.fromhex("0461626364"), "truncated"),
    (qp.ACK_CLIENT_VCID, bytes.fromhex("00"), "truncated"),
    (qp.MAX_CONNECTION_IDS, b"", "truncated"),
    (qp.MAX_CONNECTION_IDS, bytes.fromhex("0300"), "after"),
    (qp.CLOSE_CLIENT_CID, b"\x00" * 256, "exceeds"),
    (qp.ACK_CLIENT_CID, bytes.fromhex("4100") + b"\x00" * 256, "exceeds"),
])
def test_malformed_capsules_are_refused(ctype: int, value: bytes, why: str) -> None:
    with pytest.raises(qp.CapsuleError, match=why):
        qp.decode_capsule(ctype, value)


def test_conflict_rule_is_equality_or_prefix() -> None:
    assert qp.cids_conflict(b"\x01\x02", b"\x01\x02")
    assert qp.cids_conflict(b"\x01", b"\x01\x02")
    assert qp.cids_conflict(b"", b"\x07")  # zero-length conflicts with everything
    assert not qp.cids_conflict(b"\x01\x02", b"\x01\x03")


# -- header fields -----------------------------------------------------------------------------

def test_header_values_follow_the_drafts_example() -> None:
    assert qp.forwarding_request_value(["scramble", "identity"]) == \
        b'?1; accept-transform="scramble,identity"'
    assert qp.forwarding_response_value("identity") == b'?1; transform="identity"'
    assert qp.forwarding_response_value(None) == b"?0"
    assert qp.forwarding_request_value(None) == b"?0"


def test_structured_field_parser() -> None:
    value, params = qp.parse_sf_boolean_item(
        b'?1; accept-transform="scramble,identity"; scramble-key=:AAEC:;x;n=5')
    assert value is True
    assert params == {"accept-transform": "scramble,identity", "scramble-key": b"\x00\x01\x02",
                      "x": True, "n": 5}
    assert qp.transform_list(params["accept-transform"]) == ["scramble", "identity"]
    assert qp.parse_sf_boolean_item("?0") == (False, {})
    assert qp.parse_sf_boolean_item('?1;transform=identity') == (True,
                                                                 {"transform": "identity"})
    for bad in ("1", "?2", '?1; transform="x', "?1 x", "?1;=3", '"?1"'):
        with pytest.raises(WireError):
            qp.parse_sf_boolean_item(bad)


# -- QUIC invariants and the identity transform ------------------------------------------------

def test_appendix_a_identity_transform_vector() -> None:
    cid = bytes.fromhex("002e9184cb0022ca7aecf1128c91d809e1b6853f")
    vcid = bytes.fromhex("0123456789abcdef0123456789abcdef01234567")
    original = bytes.fromhex("50002e9184cb0022ca7aecf1128c91d809e1b6853f1ba3bed7043a2163202304"
                             "8def32f4f8f260c290490413d24ea6")
    forwarded = bytes.fromhex("500123456789abcdef0123456789abcdef012345671ba3bed7043a2163202304"
                              "8def32f4f8f260c290490413d24ea6")
    assert qp.is_short_header(original)
    assert original[1:21] == cid
    assert qp.replace_dcid(original, len(cid), vcid) == forwarded
    assert qp.replace_dcid(forwarded, len(vcid), cid) == original


def test_replace_dcid_grows_and_shrinks() -> None:
    packet = bytes([0x41]) + b"AAAA" + b"payload"
    longer = qp.replace_dcid(packet, 4, b"BBBBBBBB")
    assert longer == bytes([0x41]) + b"BBBBBBBB" + b"payload"
    assert qp.replace_dcid(longer, 8, b"AAAA") == packet


def test_header_form_bit() -> None:
    assert qp.is_short_header(b"\x40\x00")
    assert qp.is_short_header(b"\x00\x00")  # fixed bit not relied upon
    assert not qp.is_short_header(b"\xc0\x00")
    assert not qp.is_short_header(b"")
