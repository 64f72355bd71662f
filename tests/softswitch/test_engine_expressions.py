"""Expressions and primitives: arithmetic modulo the destination width, signed fields,
booleans, casts, ?:, jumps, hashes; checked against BMv2's infinite-precision rules."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bmv2.softswitch.engine import Engine
from bmv2.softswitch.engine.hashes import crc16, crc32, crc_ccitt, csum16, identity
from tests.softswitch.jsonkit import (
    VALID,
    B,
    E,
    F,
    H,
    Program,
    assign,
    egress,
    prim,
)


def one_field_program(width: int, expr: dict, signed: bool = False) -> Engine:
    """h.x (width bits, in a header of whole bytes) := expr; h.a and h.b are 8-bit inputs."""
    p = Program()
    pad = -(width + 16) % 8
    fields = [("a", 8), ("b", 8), ("x", width, signed)] + ([("pad", pad)] if pad else [])
    p.header("h", fields)
    p.state("start", [p.extract("h")])
    p.run("compute", [egress(1), assign(F("h", "x"), expr)])
    p.start("compute")
    return Engine(p.json())


def run_x(engine: Engine, a: int, b: int, width: int, x: int = 0) -> int:
    nbytes = (width + 16 + 7) // 8
    pad = nbytes * 8 - width - 16
    raw = ((a << (width + 16 - 8 + pad)) | (b << (width + pad)) | (x << pad)).to_bytes(nbytes,
                                                                                      "big")
    out = engine.process(raw, 0)[0].frame
    value = int.from_bytes(out[:nbytes], "big")
    return (value >> pad) & ((1 << width) - 1)


@pytest.mark.parametrize("op,a,b,width,want", [
    ("+", 200, 100, 8, 44),       # 300 mod 256
    ("-", 1, 2, 8, 255),          # wraps below zero
    ("-", 1, 2, 16, 0xFFFF),
    ("*", 20, 20, 8, 144),        # 400 mod 256
    ("<<", 0x81, 1, 8, 0x02),
    ("<<", 0x81, 4, 16, 0x810),
    (">>", 0x81, 3, 8, 0x10),
    ("&", 0xF0, 0x3C, 8, 0x30),
    ("|", 0xF0, 0x0F, 8, 0xFF),
    ("^", 0xFF, 0x0F, 8, 0xF0),
    ("/", 200, 7, 8, 28),
    ("%", 200, 7, 8, 4),
])
def test_arithmetic_is_modulo_the_destination(op: str, a: int, b: int, width: int,
                                              want: int) -> None:
    engine = one_field_program(width, E(op, F("h", "a"), F("h", "b")))
    assert run_x(engine, a, b, width) == want


def test_bit_negation_and_the_masks_p4c_adds() -> None:
    # p4c: x = ~a  ->  (~a) & 0xff ; without the mask assignment still truncates
    masked = one_field_program(8, E("&", E("~", None, F("h", "a")), H(0xFF)))
    bare = one_field_program(8, E("~", None, F("h", "a")))
    assert run_x(masked, 0x0F, 0, 8) == 0xF0
    assert run_x(bare, 0x0F, 0, 8) == 0xF0
    wide = one_field_program(16, E("~", None, F("h", "a")))
    assert run_x(wide, 0x0F, 0, 16) == 0xFFF0  # infinite precision: ~0x0f is ...fff0


def test_comparisons_booleans_and_conditional_operator() -> None:
    gt = E(">", F("h", "a"), F("h", "b"))
    expr = E("?", H(1), H(2), E("and", gt, E("not", None, E("==", F("h", "a"), H(7)))))
    engine = one_field_program(8, expr)
    assert run_x(engine, 9, 3, 8) == 1
    assert run_x(engine, 7, 3, 8) == 2
    assert run_x(engine, 1, 3, 8) == 2
    b2d = one_field_program(8, E("b2d", None, E("or", E("<=", F("h", "a"), H(2)),
                                                    E(">=", F("h", "b"), H(200)))))
    assert [run_x(b2d, a, b, 8) for a, b in ((1, 0), (3, 0), (3, 200))] == [1, 0, 1]
    truth = one_field_program(8, E("b2d", None, E("d2b", None, F("h", "a"))))
    assert [run_x(truth, a, 0, 8) for a in (0, 5)] == [0, 1]
    const = one_field_program(8, E("b2d", None, E("and", B(True), E("!=", H(1), H(2)))))
    assert run_x(const, 0, 0, 8) == 1


def test_signed_fields_and_two_comp_mod() -> None:
    # int<8> x = (int<8>) a - 100, p4c: two_comp_mod(a - 100, 8)
    engine = one_field_program(8, E("two_comp_mod", E("-", F("h", "a"), H(100)), H(8)),
                               signed=True)
    assert run_x(engine, 50, 0, 8) == 0xCE  # -50 in two's complement
    assert run_x(engine, 250, 0, 8) == 150 - 256 & 0xFF
    # a signed field read back is negative: x >> 1 on -50 is -25 (arithmetic shift)
    p = Program()
    p.header("h", [("x", 8, True), ("y", 8, True)])
    p.state("start", [p.extract("h")])
    p.run("c", [egress(1), assign(F("h", "y"), E(">>", F("h", "x"), H(1)))], "c2")
    p.run("c2", [assign(F("h", "x"), E("?", H(1), H(0), E("<", F("h", "x"), H(0))))])
    p.start("c")
    out = Engine(p.json()).process(bytes([0xCE, 0]), 0)[0].frame
    assert out == bytes([1, (-25) & 0xFF])


def test_saturating_casts() -> None:
    usat = one_field_program(8, E("usat_cast", E("+", F("h", "a"), F("h", "b")), H(8)))
    assert run_x(usat, 200, 100, 8) == 255
    assert run_x(usat, 20, 10, 8) == 30
    under = one_field_program(8, E("usat_cast", E("-", F("h", "a"), F("h", "b")), H(8)))
    assert run_x(under, 10, 20, 8) == 0
    sat = one_field_program(8, E("sat_cast", E("+", F("h", "a"), F("h", "b")), H(8)),
                            signed=True)
    assert run_x(sat, 100, 100, 8) == 127


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 255), st.integers(0, 255), st.sampled_from(["+", "-", "*", "^", "&", "|"]),
       st.sampled_from([3, 8, 12, 16]))
def test_any_arithmetic_wraps_like_bmv2(a: int, b: int, op: str, width: int) -> None:
    engine = _cached(op, width)
    want = {"+": a + b, "-": a - b, "*": a * b, "^": a ^ b, "&": a & b, "|": a | b}[op]
    assert run_x(engine, a, b, width) == want % (1 << width)


_CACHE: dict[tuple[str, int], Engine] = {}


def _cached(op: str, width: int) -> Engine:
    key = (op, width)
    if key not in _CACHE:
        _CACHE[key] = one_field_program(width, E(op, F("h", "a"), F("h", "b")))
    return _CACHE[key]


def test_valid_op_and_valid_field() -> None:
    p = Program()
    p.header("h", [("a", 8), ("b", 8)])
    p.header("g", [("c", 8)])
    p.state("start", [p.extract("h")], key=[F("h", "a")], cases=[("0x01", None, "g")])
    p.state("g", [p.extract("g")])
    p.run("c", [egress(1), assign(F("h", "b"), E("b2d", None, E("valid", None,
                                                                 {"type": "header",
                                                                  "value": "g"})))], "c2")
    p.run("c2", [assign(F("h", "a"), F("g", "$valid$"))], "c3")
    p.cond("c3", VALID("g"), None, "c4")
    p.run("c4", [assign(F("h", "a"), H(0x77))])
    p.start("c")
    e = Engine(p.json())
    assert e.process(b"\x01\x00\x05", 0)[0].frame == b"\x01\x01\x05"
    assert e.process(b"\x00\x00\x05", 0)[0].frame == b"\x77\x00\x05"


def test_jumps_inside_an_action() -> None:
    """p4c emits _jump_if_zero/_jump for if/else inside an action."""
    p = Program()
    p.header("h", [("a", 8), ("b", 8)])
    p.state("start", [p.extract("h")])
    p.run("c", [
        egress(1),
        prim("_jump_if_zero", E("b2d", None, E("==", F("h", "a"), H(1))), H(4)),
        assign(F("h", "b"), H(0x11)),
        prim("_jump", H(5)),
        assign(F("h", "b"), H(0x22)),  # index 4: the else branch
        assign(F("h", "a"), E("&", E("+", F("h", "a"), H(0x10)), H(0xFF))),  # 5: after
    ])
    p.start("c")
    e = Engine(p.json())
    assert e.process(b"\x01\x00", 0)[0].frame == b"\x11\x11"
    assert e.process(b"\x02\x00", 0)[0].frame == b"\x12\x22"


def test_hash_algorithms_match_their_reference_check_values() -> None:
    data = int.from_bytes(b"123456789", "big")
    assert crc16(data, 72) == 0xBB3D
    assert crc32(data, 72) == 0xCBF43926
    assert crc_ccitt(data, 72) == 0x29B1
    assert identity(0x1234, 16) == 0x1234
    # RFC 1071's example: words 0001 f203 f4f5 f6f7 -> sum ddf2, checksum 220d
    assert csum16(0x0001F203F4F5F6F7, 64) == 0x220D
    assert csum16(0, 0) == 0xFFFF
    assert csum16(0xFF, 8) == 0x00FF  # an odd byte is padded with a zero byte


def test_hash_primitive_with_base_and_size() -> None:
    p = Program()
    p.header("h", [("a", 8), ("b", 8), ("out", 16)])
    p.state("start", [p.extract("h")])
    p.calculation("hash", [F("h", "a"), F("h", "b")], algo="crc16")
    p.run("c", [egress(1), prim("modify_field_with_hash_based_offset", F("h", "out"), H(100),
                                {"type": "calculation", "value": "hash"}, H(1000))])
    p.start("c")
    out = Engine(p.json()).process(b"\x12\x34\x00\x00", 0)[0].frame
    assert int.from_bytes(out[2:], "big") == crc16(0x1234, 16) % 1000 + 100
