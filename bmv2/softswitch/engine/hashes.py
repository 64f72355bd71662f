"""BMv2's hash algorithms (calculations.cpp), over the bit string a calculation builds.

The packet code hands every algorithm `(x, nbits)`: the calculation's input fields
concatenated as one integer of `nbits` bits (BMv2 packs fields without padding and pads
the last byte with zero bits). csum16 works on that integer directly: the ones'
complement sum of 16-bit words is the integer modulo 0xffff, one C-level operation.
"""

from __future__ import annotations

import binascii
import zlib
from collections.abc import Callable


def to_bytes(x: int, nbits: int) -> bytes:
    """The byte string BMv2 hashes: `nbits` bits, zero-padded at the end to a byte."""
    pad = -nbits % 8
    return (x << pad).to_bytes((nbits + pad) // 8, "big")


def csum16(x: int, nbits: int) -> int:
    """Internet checksum (RFC 1071) of the bit string, as BMv2's csum16/cksum16."""
    pad = -nbits % 16  # to whole 16-bit words, zeros at the end
    if pad:
        x <<= pad
    s = x % 0xFFFF
    if s == 0 and x:
        s = 0xFFFF
    return 0xFFFF - s


def _reflect(value: int, nbits: int) -> int:
    return int(f"{value:0{nbits}b}"[::-1], 2)


def _crc_table(poly: int, width: int) -> list[int]:
    top, mask = 1 << (width - 1), (1 << width) - 1
    table = []
    for byte in range(256):
        rem = byte << (width - 8)
        for _ in range(8):
            rem = ((rem << 1) ^ poly) if rem & top else rem << 1
        table.append(rem & mask)
    return table


_REFLECT8 = [_reflect(b, 8) for b in range(256)]
_CRC16_TABLE = _crc_table(0x8005, 16)


def crc16(x: int, nbits: int) -> int:
    """CRC-16/ARC (BMv2's crc16 and default crc16_custom)."""
    rem = 0
    table, refl = _CRC16_TABLE, _REFLECT8
    for byte in to_bytes(x, nbits):
        rem = table[refl[byte] ^ (rem >> 8)] ^ ((rem << 8) & 0xFFFF)
    return _reflect(rem, 16)


def crc32(x: int, nbits: int) -> int:
    """CRC-32 (IEEE, as zlib; BMv2's crc32 and default crc32_custom)."""
    return zlib.crc32(to_bytes(x, nbits))


def crc_ccitt(x: int, nbits: int) -> int:
    """CRC-16/CCITT-FALSE (BMv2's crcCCITT)."""
    return binascii.crc_hqx(to_bytes(x, nbits), 0xFFFF)


def identity(x: int, nbits: int) -> int:
    """The first 8 bytes (or fewer) as a big-endian integer."""
    data = to_bytes(x, nbits)[:8]
    return int.from_bytes(data, "big")


def _xor(width: int) -> Callable[[int, int], int]:
    n = width // 8

    def xor_hash(x: int, nbits: int) -> int:
        data = to_bytes(x, nbits)
        data += bytes(-len(data) % n)
        out = 0
        for i in range(0, len(data), n):
            out ^= int.from_bytes(data[i:i + n], "big")
        return out

    xor_hash.__doc__ = f"XOR of the {width}-bit words, the tail padded with zeros."
    return xor_hash


ALGORITHMS: dict[str, Callable[[int, int], int]] = {
    "csum16": csum16,
    "cksum16": csum16,
    "crc16": crc16,
    "crc16_custom": crc16,
    "crc32": crc32,
    "crc32_custom": crc32,
    "crcCCITT": crc_ccitt,
    "identity": identity,
    "xor16": _xor(16),
    "xor32": _xor(32),
}
