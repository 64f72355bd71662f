"""The fast-path shim: what a client puts in front of each inner packet for the switch.

Wire format (8 bytes, network byte order), between the UDP header (destination
port FASTPATH_PORT on the switch's fast-path address) and the inner payload,
which is itself an end-to-end encrypted QUIC packet:

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |  version = 1  |   flags = 0   |        reserved = 0           |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                           flow id                             |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

The P4 program defines the same header (`mp_shim_t` in p4src/include/headers.p4); the
constants come from p4src/pipeline.py, whose values a test checks against defines.p4.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from p4src.pipeline import FASTPATH_PORT, SHIM_BYTES, SHIM_VERSION

__all__ = ["FASTPATH_PORT", "SHIM", "SHIM_SIZE", "SHIM_VERSION", "MalformedShim", "Shim"]

SHIM = struct.Struct("!BBHI")
SHIM_SIZE = SHIM.size
assert SHIM_SIZE == SHIM_BYTES, "the shim's layout and p4src.pipeline.SHIM_BYTES disagree"


class MalformedShim(ValueError):
    """Bytes that are not a valid fast-path shim."""


@dataclass(frozen=True)
class Shim:
    flow_id: int
    flags: int = 0

    def encode(self) -> bytes:
        return SHIM.pack(SHIM_VERSION, self.flags, 0, self.flow_id)


def wrap(flow_id: int, payload: bytes) -> bytes:
    """Shim + inner payload, as the client sends it to the switch."""
    return SHIM.pack(SHIM_VERSION, 0, 0, flow_id) + payload


def unwrap(datagram: bytes) -> tuple[Shim, bytes]:
    """(shim, inner payload) of a datagram the switch sent to the client."""
    if len(datagram) < SHIM_SIZE:
        raise MalformedShim(f"shim needs {SHIM_SIZE} bytes, got {len(datagram)}")
    version, flags, _reserved, flow_id = SHIM.unpack_from(datagram)
    if version != SHIM_VERSION:
        raise MalformedShim(f"unsupported shim version {version}")
    return Shim(flow_id, flags), datagram[SHIM_SIZE:]
