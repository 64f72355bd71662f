"""Registers, counters and checksums; and what the engine refuses to load."""

from __future__ import annotations

import pytest
from scapy.layers.inet import IP, UDP
from scapy.packet import Raw

from bmv2.softswitch.engine import Engine, EngineError, UnsupportedConstruct
from tests.softswitch.jsonkit import (
    VALID,
    E,
    F,
    H,
    Program,
    assign,
    egress,
    forward_all,
    prim,
)


def ipv4_udp_program(verify: bool = True, update: bool = True, udp: bool = False) -> Program:
    p = Program()
    p.header("ipv4", [("version", 4), ("ihl", 4), ("dscp", 6), ("ecn", 2), ("total_len", 16),
                      ("identification", 16), ("flags", 3), ("frag_offset", 13), ("ttl", 8),
                      ("protocol", 8), ("hdr_checksum", 16), ("src_addr", 32),
                      ("dst_addr", 32)])
    p.header("udp", [("sport", 16), ("dport", 16), ("length", 16), ("checksum", 16)])
    p.state("start", [p.extract("ipv4")], key=[F("ipv4", "protocol")],
            cases=[("0x11", None, "udp")])
    p.state("udp", [p.extract("udp")])
    fields = ["version", "ihl", "dscp", "ecn", "total_len", "identification", "flags",
              "frag_offset", "ttl", "protocol", "src_addr", "dst_addr"]
    p.calculation("ipv4_calc", [F("ipv4", f) for f in fields])
    cond = E("and", VALID("ipv4"), E("==", F("ipv4", "ihl"), H(5)))
    if verify:
        p.checksum("v", "ipv4_calc", ["ipv4", "hdr_checksum"], True, False, cond)
    if update:
        p.checksum("u", "ipv4_calc", ["ipv4", "hdr_checksum"], False, True, cond)
    if udp:
        zero8 = {"type": "hexstr", "value": "0x00", "bitwidth": 8}
        p.calculation("udp_calc", [F("ipv4", "src_addr"), F("ipv4", "dst_addr"), zero8,
                                   F("ipv4", "protocol"), F("udp", "length"), F("udp", "sport"),
                                   F("udp", "dport"), F("udp", "length"),
                                   {"type": "payload", "value": None}])
        p.checksum("udp_u", "udp_calc", ["udp", "checksum"], False, True, VALID("udp"))
    return p


def test_verify_checksum_sets_checksum_error() -> None:
    p = ipv4_udp_program(update=False)
    p.header("report", [("err", 8)], deparse=False)
    p.j["deparsers"][0]["order"].insert(0, "report")
    p.run("fwd", [egress(1), prim("add_header", {"type": "header", "value": "report"}),
                  assign(F("report", "err"), F("standard_metadata", "checksum_error"))])
    p.start("fwd")
    e = Engine(p.json())
    good = bytes(IP(src="10.0.0.1", dst="10.0.0.2", ttl=9) / UDP(sport=1, dport=2) / b"hi")
    assert e.process(good, 0)[0].frame[0] == 0
    bad = bytearray(good)
    bad[10] ^= 0xFF
    assert e.process(bytes(bad), 0)[0].frame[0] == 1
    options = bytes(IP(src="10.0.0.1", dst="10.0.0.2", options=b"\x01\x01\x01\x00") / b"x")
    corrupt = bytearray(options)
    corrupt[10] ^= 0xFF
    assert e.process(bytes(corrupt), 0)[0].frame[0] == 0  # if_cond false: not verified


def test_update_checksum_recomputes_after_a_ttl_decrement() -> None:
    p = ipv4_udp_program()
    p.run("fwd", [egress(1), assign(F("ipv4", "ttl"),
                                    E("&", E("+", F("ipv4", "ttl"), H(0xFF)), H(0xFF)))])
    p.start("fwd")
    e = Engine(p.json())
    sent = IP(src="10.0.0.1", dst="10.0.0.2", ttl=9, id=77) / UDP(sport=1, dport=2) / b"data"
    out = e.process(bytes(sent), 0)[0].frame
    want = IP(bytes(sent))
    want.ttl = 8
    del want.chksum
    assert out == bytes(want)


def test_checksum_over_payload_matches_udp() -> None:
    """A calculation with fields, a constant and the payload: the UDP checksum."""
    p = ipv4_udp_program(udp=True)
    forward_all(p)
    e = Engine(p.json())
    for payload in (b"", b"odd", b"even!!", bytes(range(256)) * 5):
        sent = IP(src="10.1.2.3", dst="10.9.8.7") / UDP(sport=1234, dport=80, chksum=0xBEEF) / Raw(
            payload)
        out = e.process(bytes(sent), 0)[0].frame
        want = IP(bytes(sent))
        del want[UDP].chksum
        got_sum = IP(out)[UDP].chksum
        want_sum = IP(bytes(want))[UDP].chksum
        # RFC 768 transmits a computed 0 as 0xffff; BMv2's csum16 does not
        assert got_sum == (0 if want_sum == 0xFFFF and got_sum == 0 else want_sum)


def test_registers_from_actions_and_the_api() -> None:
    p = Program()
    p.header("h", [("idx", 8), ("val", 16), ("old", 16)])
    p.state("start", [p.extract("h")])
    p.register("r", 4, 12)
    reg = {"type": "register_array", "value": "r"}
    p.run("swap", [egress(1), prim("register_read", F("h", "old"), reg, F("h", "idx")),
                   prim("register_write", reg, F("h", "idx"), F("h", "val"))])
    p.start("swap")
    e = Engine(p.json())
    assert e.registers["r"].size == 4 and e.registers["r"].bitwidth == 12
    e.process(b"\x02\x01\x23\x00\x00", 0)
    assert e.register_read("r", 2) == 0x123
    out = e.process(b"\x02\xff\xff\x00\x00", 0)[0].frame
    assert out[3:] == b"\x01\x23"
    assert e.register_read("r", 2) == 0xFFF  # truncated to the register's 12 bits
    e.process(b"\x09\x00\x01\x00\x00", 0)  # out of bounds: nothing happens (as BMv2)
    e.register_write("r", 3, 7)
    assert e.process(b"\x03\x00\x00\x00\x00", 0)[0].frame[3:] == b"\x00\x07"
    for call, code in ((lambda: e.register_read("nope", 0), "NOT_FOUND"),
                       (lambda: e.register_read("r", 4), "INVALID_ARGUMENT"),
                       (lambda: e.register_write("r", 0, 1 << 12), "INVALID_ARGUMENT"),
                       (lambda: e.register_write("r", -1, 0), "INVALID_ARGUMENT")):
        with pytest.raises(EngineError) as info:
            call()
        assert info.value.code == code
    e.reset_state()
    assert [e.register_read("r", i) for i in range(4)] == [0, 0, 0, 0]


def test_counters_from_actions_and_the_api() -> None:
    p = Program()
    p.header("h", [("idx", 8)])
    p.state("start", [p.extract("h")])
    p.counter("c", 3)
    ctr = {"type": "counter_array", "value": "c"}
    p.run("count", [egress(1), prim("count", ctr, F("h", "idx")), prim("count", ctr, H(0))])
    p.start("count")
    e = Engine(p.json())
    e.process(b"\x02" + bytes(9), 0)
    e.process(b"\x02", 0)
    e.process(b"\x07", 0)  # out of bounds: only index 0 counts
    assert e.counter_read("c", 2) == (2, 11)
    assert e.counter_read("c", 0) == (3, 12)
    e.counter_write("c", 1, 10, 1000)
    assert e.counter_read("c", 1) == (10, 1000)
    for call, code in ((lambda: e.counter_read("nope", 0), "NOT_FOUND"),
                       (lambda: e.counter_read("c", 3), "INVALID_ARGUMENT"),
                       (lambda: e.counter_write("c", 0, -1, 0), "INVALID_ARGUMENT")):
        with pytest.raises(EngineError) as info:
            call()
        assert info.value.code == code
    e.reset_state()
    assert e.counter_read("c", 0) == (0, 0)


# -- what the engine refuses -----------------------------------------------------------------------
def _with_primitive(op: str, *params: object) -> Program:
    p = Program()
    p.run("t", [egress(1), prim(op, *params)])
    p.start("t")
    return p


@pytest.mark.parametrize("program,needle", [
    (_with_primitive("clone_ingress_pkt_to_egress", H(1), H(0)),
     "primitive 'clone_ingress_pkt_to_egress'"),
    (_with_primitive("resubmit", H(0)), "primitive 'resubmit'"),
    (_with_primitive("execute_meter", H(0)), "primitive 'execute_meter'"),
    (_with_primitive("frobnicate"), "primitive 'frobnicate'"),
])
def test_unsupported_primitives_fail_at_load(program: Program, needle: str) -> None:
    with pytest.raises(UnsupportedConstruct) as info:
        Engine(program.json())
    assert needle in str(info.value)


def test_unsupported_even_in_an_action_no_table_uses() -> None:
    p = Program()
    forward_all(p)
    p.action("unused", [prim("recirculate", H(0))])
    with pytest.raises(UnsupportedConstruct, match="primitive 'recirculate'"):
        Engine(p.json())


def test_unsupported_expression_op() -> None:
    p = Program()
    p.header("h", [("a", 8)])
    p.state("start", [p.extract("h")])
    p.run("t", [egress(1), assign(F("h", "a"), E("foo", F("h", "a"), H(1)))])
    p.start("t")
    with pytest.raises(UnsupportedConstruct, match="expression op 'foo'"):
        Engine(p.json())


def test_unsupported_match_kind_and_table_types() -> None:
    p = Program()
    p.header("h", [("a", 8)])
    a = p.action("a", [])
    p.table("t", [("selector", ["h", "a"], "a")], [a], default=a)
    p.start("t")
    with pytest.raises(UnsupportedConstruct, match="match kind 'selector'"):
        Engine(p.json())
    p = Program()
    a = p.action("a", [])
    p.table("t", [], [a], default=a)
    p.j["pipelines"][0]["tables"][0]["type"] = "indirect"
    p.start("t")
    with pytest.raises(UnsupportedConstruct, match="table type 'indirect'"):
        Engine(p.json())


def test_unsupported_declarations() -> None:
    p = Program()
    forward_all(p)
    p.j["meter_arrays"].append({"name": "m", "id": 0, "type": "packets", "size": 1,
                                "is_direct": False, "rate_count": 2})
    with pytest.raises(UnsupportedConstruct, match="meter array 'm'"):
        Engine(p.json())
    p = Program()
    p.header("v", [("len", 8), ("data", "*")])
    forward_all(p)
    with pytest.raises(UnsupportedConstruct, match="varbit field 'v_t.data'"):
        Engine(p.json())
    p = Program()
    p.j["header_union_stacks"].append({"name": "us", "id": 0, "union_type": "u_t",
                                       "header_union_ids": []})
    forward_all(p)
    with pytest.raises(UnsupportedConstruct, match="header union stack 'us'"):
        Engine(p.json())
    p = Program()
    p.run("t", [assign(F("standard_metadata", "mcast_grp"), H(1))])
    p.start("t")
    with pytest.raises(UnsupportedConstruct, match="multicast"):
        Engine(p.json())
    p = Program()
    p.j["headers"] = [h for h in p.j["headers"] if h["name"] != "standard_metadata"]
    with pytest.raises(UnsupportedConstruct, match="v1model"):
        Engine(p.json())


def test_loads_from_bytes_and_str() -> None:
    import json

    p = Program()
    forward_all(p, 2)
    text = json.dumps(p.json())
    assert Engine(text).process(b"x", 0)[0].port == 2
    assert Engine(text.encode()).process(b"x", 0)[0].port == 2
