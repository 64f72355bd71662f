"""Wire formats of QUIC-aware proxying (draft-ietf-masque-quic-proxy), without I/O.

Implemented version: **draft-ietf-masque-quic-proxy-06** (`DRAFT`). The editors' copy
at commit 0b58c01 (2025-08-19, the newest in the working group's repository when
this was written) has the same codepoints and capsule formats as -06; where its
prose clarified a rule, that text is followed (`DRAFT_EDITORS_COPY`).

- the capsules of the draft's section "Connection ID Capsules", byte for byte,
  as dataclasses with `encode()` and `decode_capsule()`;
- the ``Proxy-QUIC-Forwarding`` and ``Proxy-QUIC-Port-Sharing`` header fields
  (RFC 8941 Items: a Boolean with parameters);
- the QUIC invariants (RFC 8999) a forwarder relies on: the Header Form bit and
  the Destination Connection ID of a short-header packet, and replacing it.

The codepoints are provisional ("will be replaced with lower values before
publication"): they live here and nowhere else.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

from hostagent.masque.wire import WireError, decode_varint, encode_capsule, encode_varint
from p4src.pipeline import VCID_BYTES

#: The draft whose wire this module implements.
DRAFT = "draft-ietf-masque-quic-proxy-06"
#: The editors' copy whose prose rules are followed (same wire as -06).
DRAFT_EDITORS_COPY = "ietf-wg-masque/draft-ietf-masque-quic-proxy@0b58c01 (2025-08-19)"

# Capsule types (draft section "Capsule Types"; provisional codepoints).
REGISTER_CLIENT_CID = 0xFFE600
REGISTER_TARGET_CID = 0xFFE601
ACK_CLIENT_CID = 0xFFE602
ACK_CLIENT_VCID = 0xFFE603
ACK_TARGET_CID = 0xFFE604
CLOSE_CLIENT_CID = 0xFFE605
CLOSE_TARGET_CID = 0xFFE606
MAX_CONNECTION_IDS = 0xFFE607
CAPSULE_NAMES = {
    REGISTER_CLIENT_CID: "REGISTER_CLIENT_CID", REGISTER_TARGET_CID: "REGISTER_TARGET_CID",
    ACK_CLIENT_CID: "ACK_CLIENT_CID", ACK_CLIENT_VCID: "ACK_CLIENT_VCID",
    ACK_TARGET_CID: "ACK_TARGET_CID", CLOSE_CLIENT_CID: "CLOSE_CLIENT_CID",
    CLOSE_TARGET_CID: "CLOSE_TARGET_CID", MAX_CONNECTION_IDS: "MAX_CONNECTION_IDS",
}
#: Capsules only a client may send, and only a proxy may send (section "Connection
#: ID Capsules"); CLOSE_* may be sent by either.
CLIENT_ONLY = frozenset({REGISTER_CLIENT_CID, REGISTER_TARGET_CID, ACK_CLIENT_VCID})
PROXY_ONLY = frozenset({ACK_CLIENT_CID, ACK_TARGET_CID, MAX_CONNECTION_IDS})

#: Header fields (section "Proxy-QUIC-Forwarding Header", "Proxy-QUIC-Port-Sharing").
FORWARDING_HEADER = b"proxy-quic-forwarding"
PORT_SHARING_HEADER = b"proxy-quic-port-sharing"
#: Packet transform names (section "Packet Transform Names"). The scramble
#: transform of this draft is named "scramble-dt" on the wire; "scramble" is reserved.
TRANSFORM_IDENTITY = "identity"
TRANSFORM_SCRAMBLE = "scramble-dt"
TRANSFORM_SCRAMBLE_FINAL = "scramble"

#: The initial maximum registration sequence number (section "Connection ID Capsules").
INITIAL_MAX_SEQUENCE = 1
#: Connection IDs are at most 255 bytes (RFC 8999); QUIC v1 uses at most 20.
MAX_CID_LENGTH = 255
MAX_V1_CID_LENGTH = 20
#: Length of every virtual connection ID this proxy chooses (the client VCID grows to
#: the client CID's length when that is longer, as the draft requires). Fixed so that
#: a switch can parse the DCID of client-to-proxy forwarded packets as one fixed-length
#: field and match it exactly; 8 bytes is what aioquic, quiche and most stacks use for
#: their own CIDs, so the swap neither grows nor shrinks packets, and 64 random bits
#: make a collision or a guessed VCID (the draft's loop attack) negligible. The P4
#: program's constant (p4src/pipeline.py, VCID_BYTES) is this one.
VCID_LENGTH = VCID_BYTES


class CapsuleError(WireError):
    """A capsule of this draft whose value does not follow its format."""


# -- capsules --------------------------------------------------------------------------------

def _cid_field(cid: bytes) -> bytes:
    """``Connection ID Length (i), Connection ID (..)``."""
    if len(cid) > MAX_CID_LENGTH:
        raise CapsuleError(f"connection ID of {len(cid)} bytes exceeds {MAX_CID_LENGTH}")
    return encode_varint(len(cid)) + cid


def _read_field(value: bytes, offset: int, limit: int, what: str) -> tuple[bytes, int]:
    try:
        length, offset = decode_varint(value, offset)
    except WireError:
        raise CapsuleError(f"truncated {what} length") from None
    if length > limit:
        raise CapsuleError(f"{what} of {length} bytes exceeds {limit}")
    if offset + length > len(value):
        raise CapsuleError(f"truncated {what}")
    return value[offset:offset + length], offset + length


@dataclass(frozen=True)
class RegisterClientCid:
    """REGISTER_CLIENT_CID: ``Connection ID (0..2040)``, its length implied (client only)."""

    cid: bytes
    TYPE = REGISTER_CLIENT_CID

    def encode(self) -> bytes:
        if len(self.cid) > MAX_CID_LENGTH:
            raise CapsuleError(f"connection ID of {len(self.cid)} bytes exceeds 255")
        return encode_capsule(self.TYPE, self.cid)


@dataclass(frozen=True)
class RegisterTargetCid:
    """REGISTER_TARGET_CID: CID length, CID, reset token length, reset token (client only)."""

    cid: bytes
    reset_token: bytes = b""
    TYPE = REGISTER_TARGET_CID

    def encode(self) -> bytes:
        return encode_capsule(self.TYPE, _cid_field(self.cid) + _cid_field(self.reset_token))


@dataclass(frozen=True)
class AckClientCid:
    """ACK_CLIENT_CID: CID length, CID, VCID length, client VCID (proxy only)."""

    cid: bytes
    vcid: bytes
    TYPE = ACK_CLIENT_CID

    def encode(self) -> bytes:
        return encode_capsule(self.TYPE, _cid_field(self.cid) + _cid_field(self.vcid))


@dataclass(frozen=True)
class AckTargetCid:
    """ACK_TARGET_CID: CID, target VCID and the proxy's reset token, each length-prefixed."""

    cid: bytes
    vcid: bytes
    reset_token: bytes = b""
    TYPE = ACK_TARGET_CID

    def encode(self) -> bytes:
        return encode_capsule(self.TYPE, _cid_field(self.cid) + _cid_field(self.vcid)
                              + _cid_field(self.reset_token))


@dataclass(frozen=True)
class AckClientVcid:
    """ACK_CLIENT_VCID: CID, client VCID and the client's reset token (client only)."""

    cid: bytes
    vcid: bytes
    reset_token: bytes = b""
    TYPE = ACK_CLIENT_VCID

    def encode(self) -> bytes:
        return encode_capsule(self.TYPE, _cid_field(self.cid) + _cid_field(self.vcid)
                              + _cid_field(self.reset_token))


@dataclass(frozen=True)
class CloseClientCid:
    """CLOSE_CLIENT_CID: ``Connection ID (0..2040)``, length implied (either side)."""

    cid: bytes
    TYPE = CLOSE_CLIENT_CID

    def encode(self) -> bytes:
        if len(self.cid) > MAX_CID_LENGTH:
            raise CapsuleError(f"connection ID of {len(self.cid)} bytes exceeds 255")
        return encode_capsule(self.TYPE, self.cid)


@dataclass(frozen=True)
class CloseTargetCid:
    """CLOSE_TARGET_CID: ``Connection ID (0..2040)``, length implied (either side)."""

    cid: bytes
    TYPE = CLOSE_TARGET_CID

    def encode(self) -> bytes:
        if len(self.cid) > MAX_CID_LENGTH:
            raise CapsuleError(f"connection ID of {len(self.cid)} bytes exceeds 255")
        return encode_capsule(self.TYPE, self.cid)


@dataclass(frozen=True)
class MaxConnectionIds:
    """MAX_CONNECTION_IDS: ``Maximum Sequence Number (i)`` (proxy only; never below 1)."""

    max_sequence: int
    TYPE = MAX_CONNECTION_IDS

    def encode(self) -> bytes:
        return encode_capsule(self.TYPE, encode_varint(self.max_sequence))


CidCapsule = (RegisterClientCid | RegisterTargetCid | AckClientCid | AckTargetCid
              | AckClientVcid | CloseClientCid | CloseTargetCid | MaxConnectionIds)


def is_cid_capsule(capsule_type: int) -> bool:
    """Whether `capsule_type` is one of this draft's capsules."""
    return capsule_type in CAPSULE_NAMES


def decode_capsule(capsule_type: int, value: bytes) -> CidCapsule:
    """The capsule of this draft with this type and value; CapsuleError when malformed.

    Trailing bytes after the last field are malformed too (each format ends there).
    """
    if capsule_type in (REGISTER_CLIENT_CID, CLOSE_CLIENT_CID, CLOSE_TARGET_CID):
        if len(value) > MAX_CID_LENGTH:
            raise CapsuleError(f"connection ID of {len(value)} bytes exceeds {MAX_CID_LENGTH}")
        if capsule_type == REGISTER_CLIENT_CID:
            return RegisterClientCid(value)
        return CloseClientCid(value) if capsule_type == CLOSE_CLIENT_CID else CloseTargetCid(
            value)
    if capsule_type == MAX_CONNECTION_IDS:
        try:
            number, end = decode_varint(value)
        except WireError:
            raise CapsuleError("truncated Maximum Sequence Number") from None
        if end != len(value):
            raise CapsuleError("bytes after the Maximum Sequence Number")
        return MaxConnectionIds(number)
    if capsule_type not in CAPSULE_NAMES:
        raise CapsuleError(f"capsule type {capsule_type:#x} is not one of {DRAFT}")
    name = CAPSULE_NAMES[capsule_type]
    cid, pos = _read_field(value, 0, MAX_CID_LENGTH, f"{name} connection ID")
    if capsule_type == REGISTER_TARGET_CID:
        token, pos = _read_field(value, pos, MAX_CID_LENGTH, f"{name} reset token")
        decoded: CidCapsule = RegisterTargetCid(cid, token)
    else:
        vcid, pos = _read_field(value, pos, MAX_CID_LENGTH, f"{name} virtual connection ID")
        if capsule_type == ACK_CLIENT_CID:
            decoded = AckClientCid(cid, vcid)
        else:
            token, pos = _read_field(value, pos, MAX_CID_LENGTH, f"{name} reset token")
            decoded = (AckTargetCid(cid, vcid, token) if capsule_type == ACK_TARGET_CID
                       else AckClientVcid(cid, vcid, token))
    if pos != len(value):
        raise CapsuleError(f"{len(value) - pos} bytes after the last field of {name}")
    return decoded


def cids_conflict(a: bytes, b: bytes) -> bool:
    """The draft's conflict rule: one connection ID equals or is a prefix of the other."""
    return a.startswith(b) or b.startswith(a)


# -- header fields (RFC 8941 Items) ----------------------------------------------------------

_KEY = re.compile(r"[a-z*][a-z0-9_.*-]*")
_TOKEN = re.compile(r"[A-Za-z*][!#$%&'*+\-.^_`|~:/A-Za-z0-9]*")
_INTEGER = re.compile(r"-?[0-9]{1,15}(\.[0-9]{1,3})?")
ParamValue = bool | int | float | str | bytes


def _bare_item(text: str, pos: int) -> tuple[ParamValue, int]:
    if text.startswith("?", pos):
        if text[pos + 1:pos + 2] not in ("0", "1"):
            raise WireError("bad structured-field boolean")
        return text[pos + 1] == "1", pos + 2
    if text.startswith('"', pos):
        out = []
        pos += 1
        while pos < len(text):
            char = text[pos]
            if char == "\\":
                if text[pos + 1:pos + 2] not in ('"', "\\"):
                    raise WireError("bad escape in a structured-field string")
                out.append(text[pos + 1])
                pos += 2
            elif char == '"':
                return "".join(out), pos + 1
            elif not 0x20 <= ord(char) < 0x7F:
                raise WireError("non-ASCII character in a structured-field string")
            else:
                out.append(char)
                pos += 1
        raise WireError("unterminated structured-field string")
    if text.startswith(":", pos):
        end = text.find(":", pos + 1)
        if end < 0:
            raise WireError("unterminated structured-field byte sequence")
        try:
            return base64.b64decode(text[pos + 1:end], validate=True), end + 1
        except ValueError:
            raise WireError("bad base64 in a structured-field byte sequence") from None
    number = _INTEGER.match(text, pos)
    if number:
        raw = number.group(0)
        return (float(raw) if "." in raw else int(raw)), number.end()
    token = _TOKEN.match(text, pos)
    if token:
        return token.group(0), token.end()
    raise WireError(f"unparsable structured-field item at {text[pos:pos + 10]!r}")


def parse_sf_boolean_item(value: bytes | str) -> tuple[bool, dict[str, ParamValue]]:
    """An RFC 8941 Item that must be a Boolean: (value, parameters); WireError otherwise.

    RFC 8941 says a field that fails to parse is ignored; callers treat WireError so.
    """
    text = value.decode("ascii") if isinstance(value, bytes) else value
    text = text.strip(" \t")
    item, pos = _bare_item(text, 0)
    if not isinstance(item, bool):
        raise WireError("the field's value must be a Boolean (?0 or ?1)")
    params: dict[str, ParamValue] = {}
    while pos < len(text):
        if text[pos] != ";":
            raise WireError(f"unexpected {text[pos]!r} in the field")
        pos += 1
        while text.startswith(" ", pos):
            pos += 1
        key = _KEY.match(text, pos)
        if not key:
            raise WireError("bad parameter name")
        pos = key.end()
        param: ParamValue = True
        if text.startswith("=", pos):
            param, pos = _bare_item(text, pos + 1)
        params[key.group(0)] = param
    return item, params


def _sf_string(value: str) -> str:
    if any(not 0x20 <= ord(c) < 0x7F for c in value):
        raise WireError("structured-field strings are printable ASCII")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def forwarding_request_value(transforms: list[str] | None) -> bytes:
    """The client's Proxy-QUIC-Forwarding value: ``?1; accept-transform="a,b"`` or ``?0``.

    `transforms` in descending preference; None asks for connection-ID awareness only.
    """
    if transforms is None:
        return b"?0"
    if not transforms:
        raise WireError("forwarding needs at least one transform")
    return f"?1; accept-transform={_sf_string(','.join(transforms))}".encode()


def forwarding_response_value(transform: str | None) -> bytes:
    """The proxy's Proxy-QUIC-Forwarding value: ``?1; transform="identity"`` or ``?0``."""
    if transform is None:
        return b"?0"
    return f"?1; transform={_sf_string(transform)}".encode()


def transform_list(value: ParamValue) -> list[str]:
    """The names in an accept-transform String ("scramble,identity"), in order."""
    if not isinstance(value, str):
        raise WireError("accept-transform must be a String")
    return [name.strip() for name in value.split(",") if name.strip()]


# -- QUIC invariants (RFC 8999) ---------------------------------------------------------------

def is_short_header(packet: bytes | bytearray | memoryview) -> bool:
    """Header Form bit 0: a short-header packet (the only kind forwarded mode carries).

    The fixed bit is not checked (the draft: forwarders MUST NOT rely on it).
    """
    return len(packet) > 0 and not packet[0] & 0x80


def replace_dcid(packet: bytes, old_length: int, new_dcid: bytes) -> bytes:
    """A short-header packet with its first `old_length` DCID bytes replaced.

    The packet grows or shrinks when the lengths differ (draft section "Sending
    With Forwarded Mode"); everything after the DCID is left as it is.
    """
    return packet[:1] + new_dcid + packet[1 + old_length:]
